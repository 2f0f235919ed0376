//! The built-in kinds with rules of their own (Kubernetes' per-kind strategies): namespaces,
//! services, secrets, config maps, workloads, pods, RBAC names, CRDs. Every other built-in kind
//! is fully generic.

use std::sync::Arc;

use base64::Engine;
use kplex_apimachinery::names::{self, NameValidator};
use kplex_apimachinery::status::BadValue;
use kplex_apimachinery::{ApiError, StatusCause, meta};
use serde_json::{Map, Value, json};

use kplex_registry::object::intent_annotations;
use kplex_registry::registry::strategy::{self, Strategy};

/// The strategy of built-in kind `group`/`plural`.
pub fn for_kind(group: &str, plural: &str) -> Arc<dyn Strategy> {
    match (group, plural) {
        ("", "namespaces") => Arc::new(Namespaces),
        ("", "services") => Arc::new(Services),
        ("", "secrets") => Arc::new(Secrets),
        ("", "configmaps") => Arc::new(ConfigMaps),
        ("", "pods") => Arc::new(Pods),
        ("", "nodes") => Arc::new(Nodes),
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") => {
            Arc::new(Workload(workload_kind(plural)))
        }
        ("rbac.authorization.k8s.io", _) => Arc::new(Rbac),
        ("apiextensions.k8s.io", "customresourcedefinitions") => Arc::new(Crds),
        ("certificates.k8s.io", "certificatesigningrequests") => Arc::new(Csrs),
        ("coordination.k8s.io", "leases") => Arc::new(Leases),
        ("autoscaling", "horizontalpodautoscalers") => Arc::new(Hpas),
        _ => strategy::generic(),
    }
}

/// Leases say who runs what right now (a leader, a heartbeat): not part of a workspace's
/// snapshot, where a restore would hand out a stale term.
#[derive(Debug)]
struct Leases;

impl Strategy for Leases {
    fn in_workspace_snapshot(&self) -> bool {
        false
    }
}

/// The label kube gives every namespace: its name.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Debug)]
struct Namespaces;

impl Strategy for Namespaces {
    fn name_validator(&self) -> NameValidator {
        names::dns_label_name
    }

    /// kube labels every namespace with its own name, on every write, whatever the client
    /// sent: namespace selectors of webhooks and NetworkPolicies rely on it.
    fn apply_defaults(&self, obj: &mut Value) {
        let labelled = obj
            .pointer("/metadata/labels/kubernetes.io~1metadata.name")
            .and_then(Value::as_str);
        if labelled.is_some() && labelled == meta::name(obj) {
            return;
        }
        if let Some(name) = meta::name(obj).map(String::from) {
            let mut labels = meta::labels(obj);
            labels.insert(NAME_LABEL.into(), Value::String(name));
            meta::set_labels(obj, labels);
        }
    }

    fn prepare_create(&self, obj: &mut Value) -> Result<(), ApiError> {
        meta::set_path(obj, &["status", "phase"], json!("Active"));
        meta::set_path(obj, &["spec", "finalizers"], json!(["kubernetes"]));
        Ok(())
    }

    /// Marks a namespace Terminating when its deletion starts.
    fn prepare_delete(&self, obj: &mut Value) {
        meta::set_path(obj, &["status", "phase"], json!("Terminating"));
    }

    /// A namespace lives until its `spec.finalizers` are emptied through `/finalize` too.
    fn finalizers_done(&self, obj: &Value) -> bool {
        let spec_done = obj
            .get("spec")
            .and_then(|s| s.get("finalizers"))
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
        meta::finalizers(obj).is_empty() && spec_done
    }

    fn subresources(&self) -> &'static [&'static str] {
        &["finalize"]
    }

    /// `/finalize` changes `spec.finalizers` and nothing else.
    fn update_subresource(
        &self,
        subresource: &str,
        old: &Value,
        new: Value,
    ) -> Option<Result<Value, ApiError>> {
        (subresource == "finalize").then(|| Ok(take_field(old, &new, &["spec", "finalizers"])))
    }
}

#[derive(Debug)]
struct Hpas;

impl Strategy for Hpas {
    fn apply_defaults(&self, obj: &mut Value) {
        crate::hpa::apply_defaults(obj);
    }
}

#[derive(Debug)]
struct Services;

impl Strategy for Services {
    fn name_validator(&self) -> NameValidator {
        names::dns_label_name
    }

    fn apply_defaults(&self, obj: &mut Value) {
        default_service(obj);
    }

    /// kube-apiserver allocates a cluster IP at create (clients such as `helm --wait` wait
    /// for one) and starts the status with an empty load balancer.
    fn prepare_create(&self, obj: &mut Value) -> Result<(), ApiError> {
        allocate_cluster_ip(obj);
        meta::set_path(obj, &["status", "loadBalancer"], json!({}));
        Ok(())
    }

    /// An update that leaves the cluster IP out keeps the allocated one (kube's
    /// `patchAllocatedValues`).
    fn prepare_update(&self, old: &Value, obj: &mut Value) -> Result<(), ApiError> {
        let unset = obj
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if unset {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if let Some(v) = old.pointer(&format!("/spec/{field}")) {
                    meta::set_path(obj, &["spec", field], v.clone());
                }
            }
        } else if let Some(ip) = obj.pointer("/spec/clusterIP").cloned()
            && obj.pointer("/spec/clusterIPs") == old.pointer("/spec/clusterIPs")
        {
            // A changed clusterIP with the old clusterIPs: kube's NormalizeClusterIPs makes
            // them agree, so validation sees the change where kube reports it.
            meta::set_path(obj, &["spec", "clusterIPs"], json!([ip]));
        }
        Ok(())
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        cluster_ip_causes(obj, old)
    }
}

/// The Service range kplex allocates from (kube-apiserver's default
/// `--service-cluster-ip-range`).
const SERVICE_RANGE: &str = "10.96.0.0/12";

/// The range's first address, which kube gives the `kubernetes` Service; the allocator
/// never hands it out.
pub(crate) const API_SERVICE_IP: &str = "10.96.0.1";

/// kube's rules on a Service's cluster IP: one a client asks for must lie in the service
/// range, and once set it may not change (except to or from ExternalName).
fn cluster_ip_causes(obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let ip = |o: &Value| {
        o.pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let external =
        |o: &Value| o.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
    let new_ip = ip(obj);
    match old {
        Some(old) if !external(old) && !external(obj) && !ip(old).is_empty() => {
            if new_ip == ip(old) {
                Vec::new()
            } else {
                vec![StatusCause::invalid(
                    "spec.clusterIPs[0]",
                    BadValue::Str(&new_ip),
                    "may not change once set",
                )]
            }
        }
        None if new_ip == API_SERVICE_IP && !is_api_service(obj) => {
            vec![StatusCause::invalid(
                "spec.clusterIPs",
                BadValue::Str(&new_ip),
                &format!("failed to allocate IP {new_ip}: provided IP is already allocated"),
            )]
        }
        _ if !new_ip.is_empty() && new_ip != "None" && !in_service_range(&new_ip) => {
            vec![StatusCause::invalid(
                "spec.clusterIPs",
                BadValue::Str(&new_ip),
                &format!(
                    "failed to allocate IP {new_ip}: the provided IP ({new_ip}) is not in the valid range. The range of valid IPs is {SERVICE_RANGE}"
                ),
            )]
        }
        _ => Vec::new(),
    }
}

/// Whether `obj` is `default/kubernetes`, the one Service [`API_SERVICE_IP`] belongs to.
fn is_api_service(obj: &Value) -> bool {
    meta::namespace(obj) == Some("default") && meta::name(obj) == Some("kubernetes")
}

fn in_service_range(ip: &str) -> bool {
    // 10.96.0.0/12: 10.96.0.0 – 10.111.255.255.
    match ip.parse::<std::net::Ipv4Addr>() {
        Ok(addr) => {
            let [a, b, ..] = addr.octets();
            a == 10 && (96..=111).contains(&b)
        }
        Err(_) => false,
    }
}

/// A cluster IP from 10.96.0.0/12 for a Service that asks for one (not headless, not
/// ExternalName). Random: a workspace holds few Services, and no packet is ever routed to
/// it here — downstream clusters allocate their own.
fn allocate_cluster_ip(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return;
    }
    if let Some(asked) = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
        .map(str::to_string)
    {
        // An IP the client chose (or "None", headless): kube lists it in clusterIPs too.
        spec.entry("clusterIPs").or_insert(json!([asked]));
        spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        return;
    }
    let n: u32 = rand::random::<u32>() % (1 << 20);
    let ip = format!(
        "10.{}.{}.{}",
        96 + (n >> 16),
        (n >> 8) & 0xff,
        // Never .0, nor .1: 10.96.0.1 is API_SERVICE_IP.
        (n & 0xff).max(2)
    );
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
    spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
}

#[derive(Debug)]
struct Secrets;

impl Strategy for Secrets {
    fn apply_defaults(&self, obj: &mut Value) {
        secret_string_data(obj);
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut out = secret_type_causes(obj);
        let type_of = |o: &Value| {
            o.get("type")
                .and_then(Value::as_str)
                .unwrap_or("Opaque")
                .to_string()
        };
        if let Some(old) = old
            && type_of(old) != type_of(obj)
        {
            out.push(StatusCause::invalid(
                "type",
                BadValue::Str(&type_of(obj)),
                "field is immutable",
            ));
        }
        for (key, value) in obj
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if !valid_config_key(key) {
                out.push(StatusCause::invalid(
                    &format!("data[{key}]"),
                    BadValue::Str(key),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                ));
            }
            let ok = value
                .as_str()
                .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
            if !ok {
                out.push(StatusCause::invalid(
                    &format!("data[{key}]"),
                    BadValue::Json(value),
                    "must be base64-encoded",
                ));
            }
        }
        out
    }
}

/// kube's rules per Secret type (ValidateSecret): the keys each type must hold, and the
/// docker configurations must be JSON.
fn secret_type_causes(obj: &Value) -> Vec<StatusCause> {
    let data = obj.get("data").and_then(Value::as_object);
    let has = |key: &str| data.is_some_and(|d| d.contains_key(key));
    let required = |key: &str| StatusCause::required(&format!("data[{key}]"), "");
    let json = |key: &str| -> Option<StatusCause> {
        let encoded = data?.get(key)?.as_str()?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let err = serde_json::from_slice::<Value>(&decoded).err()?;
        Some(StatusCause::invalid(
            &format!("data[{key}]"),
            BadValue::Str("<secret contents redacted>"),
            &err.to_string(),
        ))
    };
    let mut out = Vec::new();
    match obj.get("type").and_then(Value::as_str).unwrap_or("Opaque") {
        "kubernetes.io/service-account-token" => {
            let annotation = "kubernetes.io/service-account.name";
            if meta::annotation(obj, annotation).is_none_or(str::is_empty) {
                out.push(StatusCause::required(
                    &format!("metadata.annotations[{annotation}]"),
                    "",
                ));
            }
        }
        kind @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = match kind {
                "kubernetes.io/dockercfg" => ".dockercfg",
                _ => ".dockerconfigjson",
            };
            if has(key) {
                out.extend(json(key));
            } else {
                out.push(required(key));
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            out.push(required("username"));
            out.push(required("password"));
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => out.push(required("ssh-privatekey")),
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    out.push(required(key));
                }
            }
        }
        _ => {}
    }
    out
}

#[derive(Debug)]
struct ConfigMaps;

impl Strategy for ConfigMaps {
    fn validate(&self, obj: &Value, _old: Option<&Value>) -> Vec<StatusCause> {
        let mut out = Vec::new();
        for field in ["data", "binaryData"] {
            for key in obj
                .get(field)
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(Map::keys)
            {
                if !valid_config_key(key) {
                    out.push(StatusCause::invalid(
                        &format!("{field}[{key}]"),
                        BadValue::Str(key),
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                    ));
                }
            }
        }
        out
    }
}

#[derive(Debug)]
struct Pods;

impl Strategy for Pods {
    fn apply_defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec") {
            default_pod_spec(spec);
        }
    }

    /// A new pod is Pending, with its QoS class (kube's pod strategy: clients such as
    /// `--field-selector status.phase=Pending` and `kubectl describe` read both).
    fn prepare_create(&self, obj: &mut Value) -> Result<(), ApiError> {
        if let Some(spec) = obj.get_mut("spec") {
            default_pod_spec(spec);
        }
        let qos = qos_class(&obj["spec"]);
        let status = obj
            .as_object_mut()
            .map(|o| o.entry("status").or_insert(json!({})));
        if let Some(status) = status.and_then(Value::as_object_mut) {
            status.entry("phase").or_insert(json!("Pending"));
            status.insert("qosClass".into(), json!(qos));
        }
        Ok(())
    }

    /// A pod's spec is fixed once created, but for what kube lets change: images, deadlines,
    /// tolerations, scheduling gates; the node only through `binding`, ephemeral containers
    /// only through their subresource.
    fn check_update(&self, old: &Value, obj: &Value, sub: Option<&str>) -> Result<(), ApiError> {
        let allowed: &[&str] = match sub {
            Some("binding") => &["nodeName"],
            Some("ephemeralcontainers") => &["ephemeralContainers"],
            _ => &[],
        };
        if mutable_pod_spec_view(old, allowed) == mutable_pod_spec_view(obj, allowed) {
            return Ok(());
        }
        Err(ApiError::invalid(
            "",
            "Pod",
            meta::name(obj).unwrap_or(""),
            vec![StatusCause::forbidden("spec", POD_UPDATE_FORBIDDEN)],
        ))
    }

    fn subresources(&self) -> &'static [&'static str] {
        &["ephemeralcontainers"]
    }

    /// `/ephemeralcontainers` changes `spec.ephemeralContainers` and nothing else.
    fn update_subresource(
        &self,
        subresource: &str,
        old: &Value,
        new: Value,
    ) -> Option<Result<Value, ApiError>> {
        (subresource == "ephemeralcontainers")
            .then(|| Ok(take_field(old, &new, &["spec", "ephemeralContainers"])))
    }
}

#[derive(Debug)]
struct Nodes;

impl Strategy for Nodes {
    fn status_on_create(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct Csrs;

impl Strategy for Csrs {
    fn subresources(&self) -> &'static [&'static str] {
        &["approval"]
    }

    /// `/approval` (`kubectl certificate approve|deny`) changes the conditions only.
    fn update_subresource(
        &self,
        subresource: &str,
        old: &Value,
        new: Value,
    ) -> Option<Result<Value, ApiError>> {
        (subresource == "approval").then(|| Ok(take_field(old, &new, &["status", "conditions"])))
    }
}

/// kube's message for a pod update that changes what may not change.
const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than \
`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,\
`spec.tolerations` (only additions to existing tolerations),\
`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A pod's spec without what an update may change (plus `extra`, what the subresource
/// written through may change).
fn mutable_pod_spec_view(pod: &Value, extra: &[&str]) -> Value {
    let mut spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    let Some(m) = spec.as_object_mut() else {
        return spec;
    };
    for field in [
        "activeDeadlineSeconds",
        "tolerations",
        "terminationGracePeriodSeconds",
        "schedulingGates",
    ]
    .iter()
    .chain(extra)
    {
        m.remove(*field);
    }
    for list in ["containers", "initContainers"] {
        for c in m
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(c) = c.as_object_mut() {
                c.remove("image");
            }
        }
    }
    spec
}

/// `old` with the value at `path` taken from `new` (removed when `new` has none): what a
/// subresource that owns one field writes. The stored resourceVersion is dropped so that
/// only the client's (if any) is a precondition.
fn take_field(old: &Value, new: &Value, path: &[&str]) -> Value {
    let mut out = old.clone();
    let value = path.iter().try_fold(new, |v, p| v.get(*p)).cloned();
    match value {
        Some(v) => meta::set_path(&mut out, path, v),
        None => {
            if let Some((last, parents)) = path.split_last() {
                let parent: String = parents.iter().map(|p| format!("/{p}")).collect();
                if let Some(m) = out.pointer_mut(&parent).and_then(Value::as_object_mut) {
                    m.retain(|k, _| k != last);
                }
            }
        }
    }
    meta::remove(&mut out, "resourceVersion");
    if let Some(rv) = meta::resource_version(new).map(String::from) {
        meta::set_resource_version(&mut out, &rv);
    }
    out
}

/// The pod-template workload kinds of `apps/v1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WorkloadKind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
}

fn workload_kind(plural: &str) -> WorkloadKind {
    match plural {
        "deployments" => WorkloadKind::Deployment,
        "statefulsets" => WorkloadKind::StatefulSet,
        "daemonsets" => WorkloadKind::DaemonSet,
        _ => WorkloadKind::ReplicaSet,
    }
}

#[derive(Debug)]
struct Workload(WorkloadKind);

impl Strategy for Workload {
    fn apply_defaults(&self, obj: &mut Value) {
        default_workload(self.0, obj);
    }

    fn validate(&self, obj: &Value, _old: Option<&Value>) -> Vec<StatusCause> {
        let mut out = Vec::new();
        validate_workload(obj, &mut out);
        out
    }

    /// A Deployment's annotations bump its generation: its controller copies them to the
    /// ReplicaSets it makes (kube's deployment strategy) — except placement's per-target
    /// status reports, which are status.
    fn bumps_generation(&self, old: &Value, new: &Value) -> bool {
        self.0 == WorkloadKind::Deployment && intent_annotations(old) != intent_annotations(new)
    }
}

#[derive(Debug)]
struct Rbac;

impl Strategy for Rbac {
    fn name_validator(&self) -> NameValidator {
        names::path_segment_name
    }
}

#[derive(Debug)]
struct Crds;

impl Strategy for Crds {
    fn validate(&self, obj: &Value, _old: Option<&Value>) -> Vec<StatusCause> {
        kplex_registry::crd::validate(obj)
    }
}

fn valid_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `stringData` is write-only: merged into `data` (base64) and dropped.
fn secret_string_data(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if !map.contains_key("type") {
        map.insert("type".into(), json!("Opaque"));
    }
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(data) = data.as_object_mut() {
        for (k, v) in string_data {
            if let Some(s) = v.as_str() {
                data.insert(
                    k,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(s)),
                );
            }
        }
    }
}

fn validate_workload(obj: &Value, out: &mut Vec<StatusCause>) {
    let spec = obj.get("spec");
    let selector = spec.and_then(|s| s.get("selector"));
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        out.push(StatusCause::required("spec.selector", ""));
        return;
    };
    let labels = spec
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match kplex_apimachinery::selector::LabelSelector::from_json(selector) {
        Ok(sel) if sel.is_empty() => out.push(StatusCause::invalid(
            "spec.selector",
            BadValue::Json(selector),
            "empty selector is invalid for deployment",
        )),
        Ok(sel) if !sel.matches(&labels) => out.push(StatusCause::invalid(
            "spec.template.metadata.labels",
            BadValue::Json(&Value::Object(labels)),
            "`selector` does not match template `labels`",
        )),
        Ok(_) => {}
        Err(e) => out.push(StatusCause::invalid(
            "spec.selector",
            BadValue::Json(selector),
            &e.0,
        )),
    }
    let containers = spec
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    if containers.is_none_or(|c| c.is_empty()) {
        out.push(StatusCause::required("spec.template.spec.containers", ""));
    }
}

/// kube-apiserver's defaults for the fields users most often leave out, so that objects
/// read back as they would from Kubernetes (and client-side apply diffs stay small).
fn default_workload(kind: WorkloadKind, obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if kind != WorkloadKind::DaemonSet {
        spec.entry("replicas").or_insert(json!(1));
    }
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    match kind {
        WorkloadKind::Deployment => {
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            default_rolling(
                spec.entry("strategy").or_insert(json!({})),
                &[("maxUnavailable", json!("25%")), ("maxSurge", json!("25%"))],
            );
        }
        WorkloadKind::StatefulSet => {
            spec.entry("podManagementPolicy")
                .or_insert(json!("OrderedReady"));
            default_rolling(
                spec.entry("updateStrategy").or_insert(json!({})),
                &[("partition", json!(0))],
            );
        }
        WorkloadKind::DaemonSet => {
            default_rolling(
                spec.entry("updateStrategy").or_insert(json!({})),
                &[("maxUnavailable", json!(1)), ("maxSurge", json!(0))],
            );
        }
        WorkloadKind::ReplicaSet => {}
    }
    if let Some(pod) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(pod);
    }
}

/// A workload's update strategy as kube defaults it — also when a client sends it empty
/// (`kubectl create deployment` sends `strategy: {}`): RollingUpdate with `params`.
fn default_rolling(strategy: &mut Value, params: &[(&str, Value)]) {
    let Some(strategy) = strategy.as_object_mut() else {
        return;
    };
    let unset = strategy
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if unset {
        strategy.insert("type".into(), json!("RollingUpdate"));
    }
    if strategy.get("type").and_then(Value::as_str) != Some("RollingUpdate") {
        return;
    }
    let rolling = strategy.entry("rollingUpdate").or_insert(json!({}));
    if let Some(rolling) = rolling.as_object_mut() {
        for (name, value) in params {
            rolling.entry(*name).or_insert(value.clone());
        }
    }
}

fn default_pod_spec(pod: &mut Value) {
    let Some(pod) = pod.as_object_mut() else {
        return;
    };
    pod.entry("restartPolicy").or_insert(json!("Always"));
    pod.entry("enableServiceLinks").or_insert(json!(true));
    // A volume naming no source is an emptyDir (kube's SetDefaults_Volume).
    for volume in pod
        .get_mut("volumes")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        if volume.keys().all(|k| k == "name") {
            volume.insert("emptyDir".into(), json!({}));
        }
        // SetDefaults_HostPathVolumeSource: an unset type is the empty HostPathUnset.
        if let Some(host_path) = volume.get_mut("hostPath").and_then(Value::as_object_mut) {
            host_path.entry("type").or_insert(json!(""));
        }
    }
    pod.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    pod.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    pod.entry("securityContext").or_insert(json!({}));
    pod.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    for field in ["containers", "initContainers"] {
        for c in pod
            .get_mut(field)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(c) = c.as_object_mut() else { continue };
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            let tag_latest = !image.contains('@')
                && image
                    .rsplit('/')
                    .next()
                    .is_none_or(|last| !last.contains(':') || last.ends_with(":latest"));
            c.entry("imagePullPolicy").or_insert(json!(if tag_latest {
                "Always"
            } else {
                "IfNotPresent"
            }));
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            default_requests_from_limits(c.entry("resources").or_insert(json!({})));
            for p in c
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(p) = p.as_object_mut() {
                    p.entry("protocol").or_insert(json!("TCP"));
                }
            }
        }
    }
}

/// Limits without requests are the requests too (kube's SetDefaults_ResourceList for pods).
fn default_requests_from_limits(resources: &mut Value) {
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let Some(resources) = resources.as_object_mut() else {
        return;
    };
    if let Some(requests) = resources
        .entry("requests")
        .or_insert(json!({}))
        .as_object_mut()
    {
        for (name, quantity) in limits {
            requests.entry(name).or_insert(quantity);
        }
    }
}

/// A pod's QoS class (kube's `GetPodQOS`, for cpu and memory): Guaranteed when every
/// container's requests equal its limits for both, BestEffort when none sets any, else
/// Burstable.
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .flat_map(|f| spec[*f].as_array().into_iter().flatten())
        .collect();
    let of = |c: &Value, kind: &str, res: &str| {
        c["resources"][kind][res]
            .as_str()
            .map(String::from)
            .or_else(|| c["resources"][kind][res].as_number().map(|n| n.to_string()))
    };
    let any = containers.iter().any(|c| {
        ["requests", "limits"]
            .iter()
            .any(|k| ["cpu", "memory"].iter().any(|r| of(c, k, r).is_some()))
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = of(c, "limits", r);
            limit.is_some() && limit == of(c, "requests", r)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn default_service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("type").or_insert(json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    for p in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(p) = p.as_object_mut() {
            p.entry("protocol").or_insert(json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                p.entry("targetPort").or_insert(port);
            }
        }
    }
}

#[cfg(test)]
mod secret_type_tests {
    use super::*;
    use serde_json::json;

    fn fields(obj: Value) -> Vec<String> {
        secret_type_causes(&obj)
            .into_iter()
            .map(|c| c.field)
            .collect()
    }

    #[test]
    fn each_secret_type_needs_its_keys() {
        assert_eq!(
            fields(json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}})),
            ["data[tls.key]"]
        );
        assert!(
            fields(
                json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eA=="}})
            )
            .is_empty()
        );
        assert_eq!(
            fields(
                json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "eA=="}})
            ),
            ["data[.dockerconfigjson]"],
            "not JSON"
        );
        assert_eq!(
            fields(json!({"type": "kubernetes.io/basic-auth", "data": {}})),
            ["data[username]", "data[password]"]
        );
        assert_eq!(
            fields(json!({"type": "kubernetes.io/service-account-token"})),
            ["metadata.annotations[kubernetes.io/service-account.name]"]
        );
        assert!(
            fields(json!({"data": {}})).is_empty(),
            "Opaque takes anything"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ips_are_in_range_unique_to_the_api_service_and_fixed() {
        let svc = |ns: &str, name: &str, ip: &str| json!({"metadata": {"namespace": ns, "name": name}, "spec": {"clusterIP": ip}});
        let messages = |obj: &Value, old: Option<&Value>| -> Vec<String> {
            cluster_ip_causes(obj, old)
                .into_iter()
                .map(|c| c.message)
                .collect()
        };
        assert!(messages(&svc("default", "web", "10.96.10.10"), None).is_empty());
        assert!(
            messages(&svc("default", "web", "1.2.3.4"), None)[0].contains("not in the valid range")
        );
        assert!(
            messages(&svc("default", "web", API_SERVICE_IP), None)[0].contains("already allocated")
        );
        assert!(messages(&svc("default", "kubernetes", API_SERVICE_IP), None).is_empty());
        let old = svc("default", "web", "10.96.10.10");
        assert!(
            messages(&svc("default", "web", "10.96.10.11"), Some(&old))[0]
                .contains("may not change once set")
        );
        assert!(messages(&old, Some(&old)).is_empty());
    }

    #[test]
    fn qos_classes_follow_requests_and_limits() {
        let pod = |resources: Value| json!({"containers": [{"name": "c", "resources": resources}]});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        let both = json!({"cpu": "1", "memory": "1Gi"});
        assert_eq!(
            qos_class(&pod(json!({"limits": both, "requests": both}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
    }

    #[test]
    fn an_empty_strategy_is_defaulted_like_a_missing_one() {
        let mut deploy =
            json!({"spec": {"strategy": {}, "template": {"spec": {"containers": []}}}});
        default_workload(WorkloadKind::Deployment, &mut deploy);
        assert_eq!(
            deploy["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let mut recreate = json!({"spec": {"strategy": {"type": "Recreate"}}});
        default_workload(WorkloadKind::Deployment, &mut recreate);
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn limits_become_requests_and_bare_volumes_empty_dirs() {
        let mut spec = json!({"containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}}}],
            "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "x"}}]});
        default_pod_spec(&mut spec);
        assert_eq!(spec["containers"][0]["resources"]["requests"]["cpu"], "1");
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert!(spec["volumes"][1].get("emptyDir").is_none());
        assert_eq!(spec["enableServiceLinks"], true);
    }
}
