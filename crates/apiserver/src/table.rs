//! Server-side printing: objects as a `meta.k8s.io/v1` Table with kube-apiserver's columns
//! (what `kubectl get` shows).

use kplex_apimachinery::meta;
use serde_json::{Map, Value, json};

use crate::catalog::{Cell, Column, ResourceDesc};

/// `includeObject`: what each row carries besides its cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

pub fn column_definitions(desc: &ResourceDesc) -> Vec<Value> {
    desc.columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "type": c.type_, "format": c.format,
                "description": if c.description.is_empty() { default_description(c) } else { c.description.clone() },
                "priority": c.priority,
            })
        })
        .collect()
}

fn default_description(c: &Column) -> String {
    match c.cell {
        Cell::Name => "Name must be unique within a namespace. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names".into(),
        Cell::Age => "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
        _ => c.name.clone(),
    }
}

/// One row: the cells and, per `include`, the object or its metadata.
pub fn row(desc: &ResourceDesc, obj: &Value, include: IncludeObject) -> Value {
    let cells: Vec<Value> = desc.columns.iter().map(|c| cell(c, obj)).collect();
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    match include {
        IncludeObject::None => {}
        IncludeObject::Object => {
            row.insert("object".into(), obj.clone());
        }
        IncludeObject::Metadata => {
            row.insert("object".into(), partial_metadata(obj));
        }
    }
    Value::Object(row)
}

/// The `PartialObjectMetadata` form of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A whole Table.
pub fn table(
    desc: &ResourceDesc,
    objects: &[Value],
    include: IncludeObject,
    list_meta: Value,
) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions(desc),
        "rows": objects.iter().map(|o| row(desc, o, include)).collect::<Vec<_>>(),
    })
}

fn cell(c: &Column, obj: &Value) -> Value {
    match &c.cell {
        Cell::Name => json!(meta::name(obj).unwrap_or("")),
        Cell::Age => json!(age(meta::creation_timestamp(obj))),
        Cell::Path(p) => {
            let found = p.find(obj);
            if c.type_ == "date" {
                // Printer columns of type date render as ages, as kube-apiserver does.
                return match found.first().and_then(|v| v.as_str()) {
                    Some(ts) => json!(age(Some(ts))),
                    None => Value::Null,
                };
            }
            let v = kplex_schema::jsonpath::format_cell(&found, &c.type_);
            match (&v, c.type_.as_str()) {
                (Value::Null, "string") => json!("<none>"),
                _ => v,
            }
        }
        Cell::Computed(name) => computed(name, obj),
    }
}

fn get<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, p| v.get(*p))
}

fn int(obj: &Value, path: &[&str]) -> i64 {
    get(obj, path).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    get(obj, path).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(obj: &'a Value, path: &[&str]) -> &'a [Value] {
    get(obj, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn count(obj: &Value, path: &[&str]) -> usize {
    match get(obj, path) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn none_if_empty(s: String) -> Value {
    if s.is_empty() {
        json!("<none>")
    } else {
        json!(s)
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(",")
}

fn containers(obj: &Value, field: &str) -> String {
    join(
        arr(obj, &["spec", "template", "spec", "containers"])
            .iter()
            .map(|c| text(c, &[field]).to_string()),
    )
}

fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return String::new() };
    kplex_apimachinery::selector::LabelSelector::from_json(sel)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn computed(name: &str, obj: &Value) -> Value {
    match name {
        "dataCount" => json!(count(obj, &["data"]) + count(obj, &["binaryData"])),
        "secretsCount" => json!(count(obj, &["secrets"])),
        // A ComponentStatus: kubectl's "Healthy" / "Unhealthy" from its Healthy condition.
        "componentHealth" => {
            let healthy = obj["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Healthy" && c["status"] == "True")
            });
            json!(if healthy { "Healthy" } else { "Unhealthy" })
        }
        "createdAt" => json!(meta::creation_timestamp(obj).unwrap_or("")),
        "eventLastSeen" => {
            let ts = [
                &["lastTimestamp"][..],
                &["eventTime"],
                &["deprecatedLastTimestamp"],
                &["metadata", "creationTimestamp"],
            ]
            .iter()
            .find_map(|p| {
                get(obj, p)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            });
            json!(age(ts))
        }
        "eventObject" => {
            let o = get(obj, &["involvedObject"]).or_else(|| get(obj, &["regarding"]));
            let o = o.unwrap_or(&Value::Null);
            json!(format!(
                "{}/{}",
                text(o, &["kind"]).to_ascii_lowercase(),
                text(o, &["name"])
            ))
        }
        "eventMessage" => json!(
            match text(obj, &["message"]) {
                "" => text(obj, &["note"]),
                m => m,
            }
            .trim()
        ),
        "podReady" => {
            let statuses = arr(obj, &["status", "containerStatuses"]);
            let ready = statuses
                .iter()
                .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            json!(format!(
                "{ready}/{}",
                arr(obj, &["spec", "containers"]).len()
            ))
        }
        "podStatus" => {
            let phase = text(obj, &["status", "phase"]);
            let reason = text(obj, &["status", "reason"]);
            json!(if meta::deletion_timestamp(obj).is_some() {
                "Terminating"
            } else if !reason.is_empty() {
                reason
            } else if phase.is_empty() {
                "Pending"
            } else {
                phase
            })
        }
        "podRestarts" => json!(
            arr(obj, &["status", "containerStatuses"])
                .iter()
                .map(|s| int(s, &["restartCount"]))
                .sum::<i64>()
                .to_string()
        ),
        "externalIPs" => {
            let mut ips: Vec<String> = arr(obj, &["spec", "externalIPs"])
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
            ips.extend(arr(obj, &["status", "loadBalancer", "ingress"]).iter().map(
                |i| match text(i, &["ip"]) {
                    "" => text(i, &["hostname"]).to_string(),
                    ip => ip.to_string(),
                },
            ));
            match (ips.is_empty(), text(obj, &["spec", "type"])) {
                (true, "LoadBalancer") => json!("<pending>"),
                (true, "ExternalName") => json!(text(obj, &["spec", "externalName"])),
                (true, _) => json!("<none>"),
                (false, _) => json!(ips.join(",")),
            }
        }
        "servicePorts" => none_if_empty(
            arr(obj, &["spec", "ports"])
                .iter()
                .map(|p| {
                    let node = p
                        .get("nodePort")
                        .and_then(Value::as_i64)
                        .map(|n| format!(":{n}"))
                        .unwrap_or_default();
                    format!(
                        "{}{node}/{}",
                        int(p, &["port"]),
                        match text(p, &["protocol"]) {
                            "" => "TCP",
                            x => x,
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        "serviceSelector" => none_if_empty(
            get(obj, &["spec", "selector"])
                .and_then(Value::as_object)
                .map(|m| {
                    join(
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
                    )
                })
                .unwrap_or_default(),
        ),
        "endpoints" => none_if_empty(join(arr(obj, &["subsets"]).iter().flat_map(|s| {
            let ports: Vec<i64> = arr(s, &["ports"])
                .iter()
                .map(|p| int(p, &["port"]))
                .collect();
            arr(s, &["addresses"])
                .iter()
                .flat_map(move |a| {
                    let ip = text(a, &["ip"]).to_string();
                    let ports = ports.clone();
                    if ports.is_empty() {
                        vec![ip]
                    } else {
                        ports.into_iter().map(|p| format!("{ip}:{p}")).collect()
                    }
                })
                .collect::<Vec<_>>()
        }))),
        "accessModes" => json!(
            arr(obj, &["spec", "accessModes"])
                .iter()
                .filter_map(Value::as_str)
                .map(|m| match m {
                    "ReadWriteOnce" => "RWO",
                    "ReadOnlyMany" => "ROX",
                    "ReadWriteMany" => "RWX",
                    "ReadWriteOncePod" => "RWOP",
                    o => o,
                })
                .collect::<Vec<_>>()
                .join(",")
        ),
        "readyOfReplicas" => json!(format!(
            "{}/{}",
            int(obj, &["status", "readyReplicas"]),
            int(obj, &["spec", "replicas"])
        )),
        "updatedReplicas" => json!(int(obj, &["status", "updatedReplicas"])),
        "availableReplicas" => json!(int(obj, &["status", "availableReplicas"])),
        "specReplicas" => json!(int(obj, &["spec", "replicas"])),
        "statusReplicas" => json!(int(obj, &["status", "replicas"])),
        "readyReplicas" => json!(int(obj, &["status", "readyReplicas"])),
        "containers" => json!(containers(obj, "name")),
        "images" => json!(containers(obj, "image")),
        "selector" => none_if_empty(selector_string(get(obj, &["spec", "selector"]))),
        "dsDesired" => json!(int(obj, &["status", "desiredNumberScheduled"])),
        "dsCurrent" => json!(int(obj, &["status", "currentNumberScheduled"])),
        "dsReady" => json!(int(obj, &["status", "numberReady"])),
        "dsUpdated" => json!(int(obj, &["status", "updatedNumberScheduled"])),
        "dsAvailable" => json!(int(obj, &["status", "numberAvailable"])),
        "nodeSelector" => none_if_empty(
            get(obj, &["spec", "template", "spec", "nodeSelector"])
                .and_then(Value::as_object)
                .map(|m| {
                    join(
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
                    )
                })
                .unwrap_or_default(),
        ),
        "jobStatus" => {
            let done = arr(obj, &["status", "conditions"]).iter().find(|c| {
                text(c, &["status"]) == "True"
                    && matches!(text(c, &["type"]), "Complete" | "Failed")
            });
            json!(done.map(|c| text(c, &["type"])).unwrap_or("Running"))
        }
        "jobCompletions" => json!(format!(
            "{}/{}",
            int(obj, &["status", "succeeded"]),
            get(obj, &["spec", "completions"])
                .and_then(Value::as_i64)
                .unwrap_or(1)
        )),
        "jobDuration" => {
            let (start, end) = (
                parse_rfc3339(text(obj, &["status", "startTime"])),
                parse_rfc3339(text(obj, &["status", "completionTime"])),
            );
            json!(match (start, end) {
                (Some(s), Some(e)) => human_duration(e - s),
                (Some(s), None) => human_duration(now() - s),
                _ => String::new(),
            })
        }
        "timeZone" => none_if_empty(text(obj, &["spec", "timeZone"]).to_string()),
        "suspend" => json!(
            get(obj, &["spec", "suspend"])
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
        "activeCount" => json!(count(obj, &["status", "active"])),
        "lastSchedule" => match get(obj, &["status", "lastScheduleTime"]).and_then(Value::as_str) {
            Some(ts) => json!(age(Some(ts))),
            None => json!("<none>"),
        },
        "ingressClass" => none_if_empty(text(obj, &["spec", "ingressClassName"]).to_string()),
        "ingressHosts" => json!(match join(
            arr(obj, &["spec", "rules"])
                .iter()
                .map(|r| text(r, &["host"]).to_string())
                .filter(|h| !h.is_empty())
        ) {
            h if h.is_empty() => "*".to_string(),
            h => h,
        }),
        "ingressAddress" => json!(join(
            arr(obj, &["status", "loadBalancer", "ingress"])
                .iter()
                .map(|i| match text(i, &["ip"]) {
                    "" => text(i, &["hostname"]).to_string(),
                    ip => ip.to_string(),
                })
        )),
        "ingressPorts" => json!(if arr(obj, &["spec", "tls"]).is_empty() {
            "80"
        } else {
            "80, 443"
        }),
        "podSelector" => none_if_empty(selector_string(get(obj, &["spec", "podSelector"]))),
        "hpaReference" => json!(format!(
            "{}/{}",
            text(obj, &["spec", "scaleTargetRef", "kind"]),
            text(obj, &["spec", "scaleTargetRef", "name"])
        )),
        "minAvailable" => json!(
            get(obj, &["spec", "minAvailable"])
                .map(|v| v
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string()))
                .unwrap_or_else(|| "N/A".into())
        ),
        "maxUnavailable" => json!(
            get(obj, &["spec", "maxUnavailable"])
                .map(|v| v
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string()))
                .unwrap_or_else(|| "N/A".into())
        ),
        "roleRef" => json!(format!(
            "{}/{}",
            text(obj, &["roleRef", "kind"]),
            text(obj, &["roleRef", "name"])
        )),
        "bindingUsers" => json!(subjects(obj, "User")),
        "bindingGroups" => json!(subjects(obj, "Group")),
        "bindingServiceAccounts" => json!(subjects(obj, "ServiceAccount")),
        "webhooksCount" => json!(count(obj, &["webhooks"])),
        "csrCondition" => json!(match join(
            arr(obj, &["status", "conditions"])
                .iter()
                .map(|c| text(c, &["type"]).to_string())
        ) {
            c if c.is_empty() => "Pending".to_string(),
            c => c,
        }),
        other => computed_cluster_kinds(other, obj),
    }
}

/// Cells of the kinds a cluster's infrastructure owns: nodes, storage, networking plumbing,
/// policies, as kube's printers show them.
fn computed_cluster_kinds(name: &str, obj: &Value) -> Value {
    let or_none = |path: &[&str]| none_if_empty(text(obj, path).to_string());
    match name {
        "nodeStatus" => {
            let ready = arr(obj, &["status", "conditions"])
                .iter()
                .find(|c| text(c, &["type"]) == "Ready");
            let mut status = match ready.map(|c| text(c, &["status"])) {
                Some("True") => "Ready".to_string(),
                Some("False") => "NotReady".to_string(),
                _ => "Unknown".to_string(),
            };
            if get(obj, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            json!(status)
        }
        "nodeRoles" => {
            let labels = get(obj, &["metadata", "labels"]).and_then(Value::as_object);
            let roles: Vec<String> = labels
                .into_iter()
                .flatten()
                .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
                .filter(|r| !r.is_empty())
                .map(String::from)
                .collect();
            none_if_empty(roles.join(","))
        }
        "nodeInternalIP" => none_if_empty(join(
            arr(obj, &["status", "addresses"])
                .iter()
                .filter(|a| text(a, &["type"]) == "InternalIP")
                .map(|a| text(a, &["address"]).to_string()),
        )),
        "pvClaim" => json!(match text(obj, &["spec", "claimRef", "name"]) {
            "" => String::new(),
            name => format!("{}/{name}", text(obj, &["spec", "claimRef", "namespace"])),
        }),
        "templateLabels" => none_if_empty(join(
            get(obj, &["template", "metadata", "labels"])
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        )),
        "ownerController" => none_if_empty(
            arr(obj, &["metadata", "ownerReferences"])
                .iter()
                .find(|o| get(o, &["controller"]).and_then(Value::as_bool) == Some(true))
                .map(|o| {
                    let group = text(o, &["apiVersion"]).split('/').next().unwrap_or("");
                    format!(
                        "{}.{group}/{}",
                        text(o, &["kind"]).to_lowercase(),
                        text(o, &["name"])
                    )
                })
                .unwrap_or_default(),
        ),
        "ingressClassParameters" => {
            none_if_empty(match text(obj, &["spec", "parameters", "name"]) {
                "" => String::new(),
                name => format!("{}/{name}", text(obj, &["spec", "parameters", "kind"])),
            })
        }
        "ipParentRef" => json!(format!(
            "{}/{}",
            text(obj, &["spec", "parentRef", "resource"]),
            text(obj, &["spec", "parentRef", "name"])
        )),
        "cidrs" => json!(join(
            arr(obj, &["spec", "cidrs"])
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
        )),
        "slicePorts" => none_if_empty(join(
            arr(obj, &["ports"])
                .iter()
                .filter_map(|p| get(p, &["port"]).and_then(Value::as_i64))
                .map(|p| p.to_string()),
        )),
        "sliceEndpoints" => none_if_empty(join(
            arr(obj, &["endpoints"])
                .iter()
                .flat_map(|e| arr(e, &["addresses"]).iter())
                .filter_map(Value::as_str)
                .map(String::from),
        )),
        "reclaimPolicy" => json!(match text(obj, &["reclaimPolicy"]) {
            "" => "Delete",
            p => p,
        }),
        "volumeBindingMode" => json!(match text(obj, &["volumeBindingMode"]) {
            "" => "Immediate",
            m => m,
        }),
        "allowVolumeExpansion" => json!(
            get(obj, &["allowVolumeExpansion"])
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string()
        ),
        "attached" => json!(
            get(obj, &["status", "attached"])
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
        "csiModes" => match join(
            arr(obj, &["spec", "volumeLifecycleModes"])
                .iter()
                .filter_map(Value::as_str)
                .map(String::from),
        ) {
            m if m.is_empty() => json!("Persistent"),
            m => json!(m),
        },
        "templateContainers" | "templateImages" => {
            let field = if name == "templateImages" {
                "image"
            } else {
                "name"
            };
            json!(join(
                arr(obj, &["template", "spec", "containers"])
                    .iter()
                    .map(|c| text(c, &[field]).to_string())
            ))
        }
        "csiDrivers" => json!(count(obj, &["spec", "drivers"])),
        "globalDefault" => json!(
            get(obj, &["globalDefault"])
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
        "distinguisherMethod" => or_none(&["spec", "distinguisherMethod", "type"]),
        "validationsCount" => json!(count(obj, &["spec", "validations"])),
        "paramKind" => none_if_empty(match text(obj, &["spec", "paramKind", "kind"]) {
            "" => String::new(),
            kind => format!("{}/{kind}", text(obj, &["spec", "paramKind", "apiVersion"])),
        }),
        "paramRef" => or_none(&["spec", "paramRef", "name"]),
        _ => Value::Null,
    }
}

fn subjects(obj: &Value, kind: &str) -> String {
    join(
        arr(obj, &["subjects"])
            .iter()
            .filter(|s| text(s, &["kind"]) == kind)
            .map(|s| match (kind, text(s, &["namespace"])) {
                ("ServiceAccount", ns) => format!("{ns}/{}", text(s, &["name"])),
                _ => text(s, &["name"]).to_string(),
            }),
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Time since `ts` in kubectl's short form ("5m", "3d4h"), or "<unknown>".
pub fn age(ts: Option<&str>) -> String {
    match ts.and_then(parse_rfc3339) {
        Some(t) => human_duration(now() - t),
        None => "<unknown>".into(),
    }
}

/// k8s.io/apimachinery/pkg/util/duration.HumanDuration.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d, y) = (s / 60, s / 3600, s / 86400, s / (86400 * 365));
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        match s % 60 {
            0 => format!("{m}m"),
            r => format!("{m}m{r}s"),
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            r => format!("{h}h{r}m"),
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        match h % 24 {
            0 => format!("{d}d"),
            r => format!("{d}d{r}h"),
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if y < 8 {
        match d % 365 {
            0 => format!("{y}y"),
            r => format!("{y}y{r}d"),
        }
    } else {
        format!("{y}y")
    }
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2026-11-22T00:00:00Z`, offsets and
/// fractions accepted).
pub fn parse_rfc3339(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, s) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let mut rest = &ts[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 3600
                + o.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 3600, "3d1h"),
            (40 * 86400, "40d"),
            (3 * 365 * 86400, "3y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn parses_timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-22T00:00:00Z"), Some(1_795_305_600));
        assert_eq!(
            parse_rfc3339("2026-11-22T01:00:00.123+01:00"),
            Some(1_795_305_600)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("2026-11-22T00:00:00"), None);
    }

    #[test]
    fn builtin_columns() {
        let descs = crate::builtins::all();
        let deploy = descs.iter().find(|d| d.kind == "Deployment").unwrap();
        let obj = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let r = row(deploy, &obj, IncludeObject::None);
        assert_eq!(r["cells"][0], "web");
        assert_eq!(r["cells"][1], "2/3");
        assert_eq!(r["cells"][2], 3);
        assert_eq!(r["cells"][5], "nginx");
        assert_eq!(r["cells"][7], "app=web");
        let cm = descs.iter().find(|d| d.kind == "ConfigMap").unwrap();
        let r = row(
            cm,
            &json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}),
            IncludeObject::Metadata,
        );
        assert_eq!(r["cells"], json!(["c", 2, "<unknown>"]));
        assert_eq!(r["object"]["kind"], "PartialObjectMetadata");
    }
}
