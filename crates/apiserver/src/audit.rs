//! Audit logging as kube-apiserver does it: an `audit.k8s.io/v1` Policy picks a level per
//! request (first matching rule wins), and one `Event` JSON line per request is written to
//! the audit log at stage `ResponseComplete` (watches: when the response starts).
//!
//! Writing never blocks a request: events go through a bounded channel to one writer task,
//! and are dropped (and counted) when the channel is full, e.g. on a stalled disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

use kplex_apimachinery::UserInfo;

/// kcp's annotation naming the logical cluster (workspace) a request was for.
pub const WORKSPACE_ANNOTATION: &str = "tenancy.kcp.io/workspace";

/// Events waiting for the writer; beyond this they are dropped rather than slowing requests.
const QUEUE: usize = 10_000;

/// How much is recorded about a request, in kube's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Level {
    None,
    #[default]
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupResources {
    #[serde(default)]
    group: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    resource_names: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    level: Level,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    user_groups: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    resources: Vec<GroupResources>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
}

/// An `audit.k8s.io/v1` (or `v1beta1`) Policy.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("read audit policy {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse audit policy {path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("open audit log {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a policy rule is matched against.
#[derive(Clone, Debug, Default)]
pub struct Attributes<'a> {
    pub user: Option<&'a UserInfo>,
    pub verb: &'a str,
    /// `Some` for resource requests.
    pub resource: Option<ResourceAttributes<'a>>,
    /// The URL path, for non-resource requests.
    pub path: &'a str,
}

#[derive(Clone, Debug, Default)]
pub struct ResourceAttributes<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    /// "" for cluster-scoped requests.
    pub namespace: &'a str,
    pub name: &'a str,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Self, String> {
        let policy: Policy = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        match policy.kind.as_deref() {
            None | Some("Policy") => Ok(policy),
            Some(kind) => Err(format!("kind {kind:?} is not Policy")),
        }
    }

    pub fn load(path: &Path) -> Result<Self, AuditError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuditError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|msg| AuditError::Parse {
            path: path.to_path_buf(),
            msg,
        })
    }

    /// Without a policy file every request is logged at Metadata; with one, a request no
    /// rule matches is not logged (kube's default level None).
    pub fn level(policy: Option<&Self>, attrs: &Attributes<'_>) -> Level {
        let Some(policy) = policy else {
            return Level::Metadata;
        };
        policy
            .rules
            .iter()
            .find(|rule| rule.matches(attrs))
            .map_or(Level::None, |rule| rule.level)
    }
}

impl Rule {
    /// kube's `ruleMatches` (staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go).
    fn matches(&self, attrs: &Attributes<'_>) -> bool {
        if !self.users.is_empty() && !attrs.user.is_some_and(|u| self.users.contains(&u.name)) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !attrs
                .user
                .is_some_and(|u| u.groups.iter().any(|g| self.user_groups.contains(g)))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.iter().any(|v| v == attrs.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(attrs);
        }
        if !self.non_resource_urls.is_empty() {
            return attrs.resource.is_none()
                && self
                    .non_resource_urls
                    .iter()
                    .any(|url| match url.strip_suffix('*') {
                        Some(prefix) => attrs.path.starts_with(prefix),
                        None => attrs.path == url,
                    });
        }
        true
    }

    fn matches_resource(&self, attrs: &Attributes<'_>) -> bool {
        let Some(r) = &attrs.resource else {
            return false;
        };
        if !self.namespaces.is_empty() && !self.namespaces.iter().any(|n| n == r.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = match r.subresource {
            Some(sub) => format!("{}/{sub}", r.resource),
            None => r.resource.to_string(),
        };
        self.resources.iter().any(|gr| {
            if gr.group != r.group {
                return false;
            }
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !gr.resource_names.iter().any(|n| n == r.name) {
                return false;
            }
            gr.resources.iter().any(|res| {
                *res == combined
                    || r.subresource
                        .is_some_and(|sub| res.strip_prefix("*/") == Some(sub))
                    || res.strip_suffix("/*") == Some(r.resource)
            })
        })
    }
}

/// The audit log: policy and writer. Cheap to share.
pub struct Auditor {
    policy: Option<Policy>,
    queue: tokio::sync::mpsc::Sender<String>,
    dropped: Arc<AtomicU64>,
}

impl Auditor {
    /// Opens (appends to) `path` (`-`: standard output) and starts the writer task.
    pub async fn start(path: &Path, policy: Option<Policy>) -> Result<Self, AuditError> {
        // tokio's stdout needs a feature this crate does not enable; the device is the same.
        let target = if path == Path::new("-") {
            Path::new("/dev/stdout")
        } else {
            path
        };
        let out = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(target)
            .await
            .map_err(|source| AuditError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let (queue, rx) = tokio::sync::mpsc::channel(QUEUE);
        tokio::spawn(writer(rx, out));
        Ok(Self {
            policy,
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn level(&self, attrs: &Attributes<'_>) -> Level {
        Policy::level(self.policy.as_ref(), attrs)
    }

    /// Events lost because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues one event; never waits.
    pub fn record(&self, event: &Value) {
        let mut line = event.to_string();
        line.push('\n');
        if self.queue.try_send(line).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            // Once, then sparsely: a stalled disk would otherwise flood the log too.
            if n.is_power_of_two() || n == 0 {
                tracing::warn!(dropped = n + 1, "audit log cannot keep up; events dropped");
            }
        }
    }
}

/// Writes queued lines, flushing whenever the queue runs empty.
async fn writer(mut rx: tokio::sync::mpsc::Receiver<String>, mut out: tokio::fs::File) {
    while let Some(line) = rx.recv().await {
        let mut batch = line.into_bytes();
        while let Ok(more) = rx.try_recv() {
            batch.extend_from_slice(more.as_bytes());
            if batch.len() > 1 << 20 {
                break;
            }
        }
        if let Err(e) = out.write_all(&batch).await {
            tracing::warn!(error = %e, "writing the audit log failed");
            continue;
        }
        if let Err(e) = out.flush().await {
            tracing::warn!(error = %e, "flushing the audit log failed");
        }
    }
}

/// kube's MicroTime: RFC 3339 UTC with microseconds.
pub fn micro_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = kplex_apimachinery::meta::format_rfc3339(d.as_secs() as i64);
    format!("{}.{:06}Z", secs.trim_end_matches('Z'), d.subsec_micros())
}

/// Everything known about a request when its event is written.
pub struct EventData<'a> {
    pub level: Level,
    pub request_uri: &'a str,
    pub verb: &'a str,
    pub user: Option<&'a UserInfo>,
    /// Who sent an impersonating request; `user` is then the impersonated user.
    pub impersonator: Option<&'a UserInfo>,
    pub source_ip: std::net::IpAddr,
    pub user_agent: Option<&'a str>,
    pub resource: Option<ResourceAttributes<'a>>,
    pub api_version: &'a str,
    pub workspace: Option<&'a str>,
    pub code: u16,
    pub received: SystemTime,
    pub request_body: Option<&'a Bytes>,
    pub request_content_type: Option<&'a str>,
    pub response_body: Option<&'a Bytes>,
}

/// kube's `audit.k8s.io/v1` Event at stage ResponseComplete.
pub fn event(data: &EventData<'_>) -> Value {
    let mut event = Map::new();
    event.insert("kind".into(), json!("Event"));
    event.insert("apiVersion".into(), json!("audit.k8s.io/v1"));
    event.insert("level".into(), json!(data.level.as_str()));
    event.insert("auditID".into(), json!(uuid::Uuid::new_v4().to_string()));
    event.insert("stage".into(), json!("ResponseComplete"));
    event.insert("requestURI".into(), json!(data.request_uri));
    event.insert("verb".into(), json!(data.verb));
    let user_info = |u: &UserInfo| {
        let mut user = json!({"username": u.name, "groups": u.groups});
        if !u.uid.is_empty() {
            user["uid"] = json!(u.uid);
        }
        user
    };
    // As kube: `user` is who authenticated, `impersonatedUser` whom they acted as.
    match (data.impersonator, data.user) {
        (Some(by), Some(as_user)) => {
            event.insert("user".into(), user_info(by));
            event.insert("impersonatedUser".into(), user_info(as_user));
        }
        (_, user) => {
            event.insert("user".into(), user.map_or_else(|| json!({}), user_info));
        }
    }
    event.insert("sourceIPs".into(), json!([data.source_ip.to_string()]));
    if let Some(agent) = data.user_agent {
        event.insert("userAgent".into(), json!(agent));
    }
    if let Some(r) = &data.resource {
        let mut obj = Map::new();
        obj.insert("resource".into(), json!(r.resource));
        if !r.namespace.is_empty() {
            obj.insert("namespace".into(), json!(r.namespace));
        }
        if !r.name.is_empty() {
            obj.insert("name".into(), json!(r.name));
        }
        if !r.group.is_empty() {
            obj.insert("apiGroup".into(), json!(r.group));
        }
        if !data.api_version.is_empty() {
            obj.insert("apiVersion".into(), json!(data.api_version));
        }
        if let Some(sub) = r.subresource {
            obj.insert("subresource".into(), json!(sub));
        }
        event.insert("objectRef".into(), Value::Object(obj));
    }
    event.insert(
        "responseStatus".into(),
        json!({"metadata": {}, "code": data.code}),
    );
    if data.level >= Level::Request
        && let Some(obj) = data
            .request_body
            .and_then(|b| request_object(data.request_content_type, b))
    {
        event.insert("requestObject".into(), obj);
    }
    if data.level >= Level::RequestResponse
        && let Some(obj) = data.response_body.and_then(as_json)
    {
        event.insert("responseObject".into(), obj);
    }
    event.insert(
        "requestReceivedTimestamp".into(),
        json!(micro_time(data.received)),
    );
    event.insert(
        "stageTimestamp".into(),
        json!(micro_time(SystemTime::now())),
    );
    if let Some(ws) = data.workspace {
        event.insert("annotations".into(), json!({ WORKSPACE_ANNOTATION: ws }));
    }
    Value::Object(event)
}

/// The request body as JSON: protobuf bodies (kubectl sends them for built-in kinds) are
/// decoded, JSON ones (objects and patches) parsed, others left out.
fn request_object(content_type: Option<&str>, body: &Bytes) -> Option<Value> {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if media == "application/vnd.kubernetes.protobuf" {
        return kplex_protobuf::decode(body).ok();
    }
    as_json(body)
}

/// A body that is a JSON object or array (protobuf and YAML bodies are left out).
fn as_json(body: &Bytes) -> Option<Value> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => serde_json::from_slice(body).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    fn res<'a>(group: &'a str, resource: &'a str, ns: &'a str) -> Option<ResourceAttributes<'a>> {
        Some(ResourceAttributes {
            group,
            resource,
            namespace: ns,
            ..Default::default()
        })
    }

    #[test]
    fn first_matching_rule_wins() {
        let policy = Policy::parse(
            r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources:
  - group: ""
    resources: ["secrets"]
- level: Request
  verbs: ["create"]
  resources:
  - group: ""
    resources: ["configmaps", "pods/*"]
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
- level: RequestResponse
  users: ["alice"]
- level: Metadata
  userGroups: ["ops"]
  namespaces: ["prod"]
"#,
        )
        .unwrap();
        let alice = user("alice", &[]);
        let bob = user("bob", &["ops"]);
        let level = |u: &UserInfo, verb: &str, resource, path| {
            Policy::level(
                Some(&policy),
                &Attributes {
                    user: Some(u),
                    verb,
                    resource,
                    path,
                },
            )
        };
        assert_eq!(
            level(&alice, "get", res("", "secrets", "x"), ""),
            Level::None
        );
        assert_eq!(
            level(&bob, "create", res("", "configmaps", "x"), ""),
            Level::Request
        );
        assert_eq!(
            level(&alice, "get", res("", "configmaps", "x"), ""),
            Level::RequestResponse
        );
        assert_eq!(level(&alice, "get", None, "/healthz/ping"), Level::None);
        assert_eq!(
            level(&bob, "get", res("apps", "deployments", "prod"), ""),
            Level::Metadata
        );
        // Non-resource request against a namespaced rule: no match, so no event.
        assert_eq!(level(&bob, "get", None, "/api"), Level::None);
        let mut pods_log = res("", "pods", "x").unwrap();
        pods_log.subresource = Some("log");
        assert_eq!(level(&bob, "create", Some(pods_log), ""), Level::Request);
        assert_eq!(Policy::level(None, &Attributes::default()), Level::Metadata);
    }

    #[test]
    fn event_shape() {
        let u = user("alice", &["dev"]);
        let admin = user("root", &["system:masters"]);
        let body = Bytes::from_static(br#"{"kind":"ConfigMap"}"#);
        let ev = event(&EventData {
            level: Level::Request,
            request_uri: "/api/v1/namespaces/default/configmaps",
            verb: "create",
            user: Some(&u),
            impersonator: Some(&admin),
            source_ip: [127, 0, 0, 1].into(),
            user_agent: Some("kubectl"),
            resource: res("", "configmaps", "default"),
            api_version: "v1",
            workspace: Some("root"),
            code: 201,
            received: SystemTime::now(),
            request_body: Some(&body),
            request_content_type: Some("application/json"),
            response_body: None,
        });
        assert_eq!(ev["kind"], "Event");
        assert_eq!(ev["user"]["username"], "root");
        assert_eq!(ev["impersonatedUser"]["username"], "alice");
        assert_eq!(ev["impersonatedUser"]["groups"], json!(["dev"]));
        assert_eq!(ev["objectRef"]["namespace"], "default");
        assert_eq!(ev["responseStatus"]["code"], 201);
        assert_eq!(ev["requestObject"]["kind"], "ConfigMap");
        assert_eq!(ev["annotations"][WORKSPACE_ANNOTATION], "root");
        let ts = ev["stageTimestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-01-01T00:00:00.000000Z".len(), "{ts}");
    }
}
