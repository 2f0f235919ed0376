//! `kubectl kplex workload …` and `kubectl kplex bind compute …`: kcp v0.11's placement
//! commands.
//!
//! - `workload sync NAME --syncer-image IMAGE -o FILE` creates the SyncTarget in the current
//!   (compute) workspace, the workspace's `kubernetes` APIExport (the target's supported
//!   export: the syncer imports the downstream CRDs of `--resources` into it), a service
//!   account allowed to `sync` the target and import APIs, and writes what the
//!   downstream cluster needs to run the agent: a namespace, its service account and
//!   cluster role (only what the syncer touches), a Secret whose `kubeconfig` reaches the
//!   compute workspace with that account's token, and a Deployment running
//!   `kplex syncer --from-kubeconfig=… --sync-target-name=… --sync-target-uid=… --from-cluster=…`;
//! - `workload cordon|uncordon|drain NAME` stop new placements onto a target, allow them
//!   again, or move everything off it;
//! - `bind compute LOCATION_WORKSPACE` creates a Placement in the current workspace, and
//!   binds the location workspace's compute APIExports (default: its `kubernetes` export,
//!   if it has one) so the resources the syncers imported are served here too.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Parser, Subcommand};
use http::Method;
use serde_json::{Value, json};

use crate::apis::{GlobalFlags, Target, connection, target};
use crate::error::{Error, Result};

const SYNCTARGETS: &str = "apis/workload.kcp.io/v1alpha1/synctargets";
const PLACEMENTS: &str = "apis/scheduling.kcp.io/v1alpha1/placements";
const LOCATIONS: &str = "apis/scheduling.kcp.io/v1alpha1/locations";
const APIEXPORTS: &str = "apis/apis.kcp.io/v1alpha1/apiexports";
const APIBINDINGS: &str = "apis/apis.kcp.io/v1alpha1/apibindings";
/// The APIExport of a compute workspace that its SyncTargets support (kcp's name).
const COMPUTE_EXPORT: &str = "kubernetes";
/// kcp's mark of an APIExport that serves compute (workload) resources.
const COMPUTE_EXPORT_ANNOTATION: &str = "extra.apis.kcp.io/compute.workload.kcp.io";
const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// What every syncer syncs (kcp's builtin set plus the workload kinds), as `plural.group`.
const DEFAULT_RESOURCES: &[&str] = &[
    "configmaps",
    "secrets",
    "serviceaccounts",
    "services",
    "deployments.apps",
    "statefulsets.apps",
    "jobs.batch",
    "ingresses.networking.k8s.io",
];

#[derive(Parser, Debug)]
#[command(name = "kubectl kplex", disable_help_subcommand = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Top,
}

#[derive(Args, Debug, Default)]
struct Global {
    /// Path to the kubeconfig file to use.
    #[arg(long, global = true)]
    kubeconfig: Option<String>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    context: Option<String>,
    /// The address of the server (replaces the context's server URL).
    #[arg(long, short = 's', global = true)]
    server: Option<String>,
    /// Bearer token for authentication to the server.
    #[arg(long, global = true)]
    token: Option<String>,
    /// Do not verify the server's certificate (insecure).
    #[arg(long, global = true)]
    insecure_skip_tls_verify: bool,
}

#[derive(Subcommand, Debug)]
enum Top {
    /// Manage sync targets (the clusters workloads run on).
    Workload {
        #[command(subcommand)]
        command: WorkloadCommand,
    },
    /// Bind compute: place this workspace's namespaces on a location's clusters.
    Bind {
        #[command(subcommand)]
        command: BindCommand,
    },
}

#[derive(Subcommand, Debug)]
enum WorkloadCommand {
    /// Create a SyncTarget and write the manifests that run its syncer downstream.
    Sync(SyncArgs),
    /// Stop placing new workloads on a SyncTarget.
    Cordon { name: String },
    /// Place workloads on a SyncTarget again.
    Uncordon { name: String },
    /// Move every workload off a SyncTarget.
    Drain { name: String },
}

#[derive(Args, Debug)]
struct SyncArgs {
    /// The SyncTarget's name.
    name: String,
    /// The syncer's image (its entrypoint is the kplex binary).
    #[arg(long)]
    syncer_image: String,
    /// Where to write the downstream manifests (`-` for stdout).
    #[arg(long, short = 'o')]
    output_file: String,
    /// Resources to sync beyond the defaults (`plural.group`, comma-separated).
    #[arg(long, value_delimiter = ',')]
    resources: Vec<String>,
    /// Replicas of the syncer Deployment (0 or 1).
    #[arg(long, default_value_t = 1)]
    replicas: u32,
    /// The namespace of the compute workspace that holds the syncer's service account.
    #[arg(long, default_value = "default")]
    kcp_namespace: String,
    /// Labels of the SyncTarget (`k=v`, comma-separated): locations select on them.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Namespace mode (a virtual-cluster target): everything placed on the target goes
    /// into this one downstream namespace, where the agent runs too, with rights in that
    /// namespace only.
    #[arg(long)]
    downstream_namespace: Option<String>,
}

#[derive(Subcommand, Debug)]
enum BindCommand {
    /// Create a Placement in the current workspace for locations of LOCATION_WORKSPACE.
    Compute(ComputeArgs),
}

#[derive(Args, Debug)]
struct ComputeArgs {
    /// The workspace (path) of the locations, e.g. root:compute.
    location_workspace: String,
    /// Label selectors of locations (`k=v,…`; repeatable, ORed). Default: every location.
    #[arg(long)]
    location_selectors: Vec<String>,
    /// Label selector of the namespaces to place (`k=v,…`). Default: every namespace.
    #[arg(long)]
    namespace_selector: Option<String>,
    /// The Placement's name (default: derived from the location workspace).
    #[arg(long)]
    name: Option<String>,
    /// Compute APIExports to bind (`<path>:<name>`, comma-separated). Default: the location
    /// workspace's `kubernetes` export, if it exists.
    #[arg(long, value_delimiter = ',')]
    apiexports: Vec<String>,
}

/// Whether `args` (without the program name) is a command of this module.
pub fn handles(args: &[String]) -> bool {
    let mut words = Vec::new();
    let mut args = args.iter().map(String::as_str);
    while let Some(a) = args.next() {
        if matches!(
            a,
            "--kubeconfig" | "--context" | "-s" | "--server" | "--token"
        ) {
            args.next();
        } else if !a.starts_with('-') {
            words.push(a);
        }
    }
    matches!(words.as_slice(), ["workload", ..] | ["bind", "compute", ..])
}

/// Runs `kubectl kplex workload …` / `bind compute …`.
pub fn run(args: &[String], out: &mut dyn Write) -> Result<()> {
    let cli = Cli::try_parse_from(
        std::iter::once("kubectl-kplex".to_string()).chain(args.iter().cloned()),
    )
    .map_err(|e| Error::msg(e.to_string().trim_end().to_string()))?;
    let global = GlobalFlags {
        kubeconfig: cli.global.kubeconfig,
        context: cli.global.context,
        server: cli.global.server,
        token: cli.global.token,
        insecure_skip_tls_verify: cli.global.insecure_skip_tls_verify,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Output)?;
    runtime.block_on(async {
        let t = target(&global)?;
        match cli.command {
            Top::Workload {
                command: WorkloadCommand::Sync(a),
            } => sync(&t, &global, &a, out).await,
            Top::Workload {
                command: WorkloadCommand::Cordon { name },
            } => set_spec(&t, &name, json!({"unschedulable": true}), "cordoned", out).await,
            Top::Workload {
                command: WorkloadCommand::Uncordon { name },
            } => {
                set_spec(
                    &t,
                    &name,
                    json!({"unschedulable": false, "evictAfter": null}),
                    "uncordoned",
                    out,
                )
                .await
            }
            Top::Workload {
                command: WorkloadCommand::Drain { name },
            } => {
                set_spec(
                    &t,
                    &name,
                    json!({"evictAfter": now_rfc3339()}),
                    "drained",
                    out,
                )
                .await
            }
            Top::Bind {
                command: BindCommand::Compute(a),
            } => bind_compute(&t, &a, out).await,
        }
    })
}

fn url(t: &Target, rel: &str) -> String {
    format!("{}/{rel}", t.prefix)
}

async fn get_or_none(t: &Target, path: &str) -> Result<Option<Value>> {
    match t.client.get(path).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates `obj` at `collection` unless an object of that name exists; returns it.
async fn ensure(t: &Target, collection: &str, obj: Value) -> Result<Value> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Some(existing) = get_or_none(t, &format!("{}/{name}", url(t, collection))).await? {
        return Ok(existing);
    }
    t.client.post(&url(t, collection), &obj).await
}

/// A short stable suffix for names derived from `s` (FNV-1a, hex).
fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:08x}", h as u32)
}

fn labels_of(pairs: &[String]) -> Result<serde_json::Map<String, Value>> {
    let mut m = serde_json::Map::new();
    for p in pairs.iter().filter(|p| !p.is_empty()) {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Error::msg(format!("invalid label {p:?}: expected key=value")))?;
        m.insert(k.to_string(), json!(v));
    }
    Ok(m)
}

/// `plural.group` → (group, plural).
fn group_resource(r: &str) -> (String, String) {
    match r.split_once('.') {
        Some((plural, group)) => (group.to_string(), plural.to_string()),
        None => (String::new(), r.to_string()),
    }
}

async fn sync(t: &Target, global: &GlobalFlags, a: &SyncArgs, out: &mut dyn Write) -> Result<()> {
    let path = t.path.as_ref().map(|p| p.to_string()).ok_or_else(|| {
        Error::msg("the current server URL is not a workspace's (…/clusters/<path>)")
    })?;
    let labels = labels_of(&a.labels)?;
    ensure(
        t,
        APIEXPORTS,
        json!({"apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIExport",
        "metadata": {"name": COMPUTE_EXPORT, "annotations": {COMPUTE_EXPORT_ANNOTATION: "true"}},
        "spec": {"latestResourceSchemas": []}}),
    )
    .await?;
    let mut target_obj = json!({"apiVersion": "workload.kcp.io/v1alpha1", "kind": "SyncTarget",
        "metadata": {"name": a.name},
        "spec": {"supportedAPIExports": [{"export": COMPUTE_EXPORT}]}});
    if !labels.is_empty() {
        target_obj["metadata"]["labels"] = Value::Object(labels);
    }
    let synctarget = ensure(t, SYNCTARGETS, target_obj).await?;
    let uid = synctarget["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let account = format!(
        "kcp-syncer-{}-{}",
        a.name,
        short_hash(&format!("{path}:{}", a.name))
    );
    let ns = &a.kcp_namespace;
    ensure(
        t,
        &format!("api/v1/namespaces/{ns}/serviceaccounts"),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}}),
    )
    .await?;
    ensure(t, "apis/rbac.authorization.k8s.io/v1/clusterroles", json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": account},
        "rules": [
            {"apiGroups": ["workload.kcp.io"], "resources": ["synctargets"], "resourceNames": [a.name], "verbs": ["sync", "get", "list", "watch"]},
            {"apiGroups": ["workload.kcp.io"], "resources": ["synctargets/status"], "resourceNames": [a.name], "verbs": ["get", "update", "patch"]},
            // The API importer: downstream CRDs become schemas of the supported export.
            {"apiGroups": ["apis.kcp.io"], "resources": ["apiresourceschemas"], "verbs": ["get", "list", "create"]},
            {"apiGroups": ["apis.kcp.io"], "resources": ["apiexports"], "resourceNames": [COMPUTE_EXPORT], "verbs": ["get", "update", "patch"]},
        ],
    })).await?;
    ensure(t, "apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": account},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": account},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}],
    })).await?;
    let token = account_token(t, ns, &account).await?;
    let kubeconfig =
        upstream_kubeconfig(global, &format!("{}{}", t.client.base(), t.prefix), &token)?;
    let mut resources: Vec<String> = DEFAULT_RESOURCES.iter().map(|s| s.to_string()).collect();
    resources.extend(
        a.resources
            .iter()
            .filter(|r| !resources.contains(r))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let manifests = downstream_manifests(&DownstreamSpec {
        name: &a.name,
        uid: &uid,
        path: &path,
        account: &account,
        image: &a.syncer_image,
        replicas: a.replicas,
        extra_resources: &a.resources,
        resources: &resources,
        kubeconfig: &kubeconfig,
        downstream_namespace: a.downstream_namespace.as_deref(),
    });
    let yaml = serde_saphyr::to_string_multiple(&manifests)
        .map_err(|e| Error::msg(format!("rendering the manifests: {e}")))?;
    if a.output_file == "-" {
        write!(out, "{yaml}")?;
        return Ok(());
    }
    write_private(&a.output_file, &yaml)?;
    // The same agent as a plain process (tests, demos, a cluster you reach from here).
    let kubeconfig_file = format!("{}.kubeconfig", a.output_file);
    write_private(&kubeconfig_file, &kubeconfig)?;
    let mut command = format!(
        "kplex syncer --from-kubeconfig={kubeconfig_file} --sync-target-name={} --sync-target-uid={uid} --from-cluster={path}",
        a.name
    );
    if !a.resources.is_empty() {
        command.push_str(&format!(" --resources={}", a.resources.join(",")));
    }
    if let Some(ns) = &a.downstream_namespace {
        command.push_str(&format!(" --downstream-namespace={ns}"));
    }
    writeln!(
        out,
        "Creating synctarget {:?}\nWrote the syncer's manifests to {:?}: apply them to the downstream cluster with\n\n  kubectl apply -f {:?}\n\nor run the agent as a process, next to the cluster:\n\n  {command} --to-kubeconfig=<the cluster's kubeconfig>\n",
        a.name, a.output_file, a.output_file
    )?;
    Ok(())
}

/// Writes a file that holds a credential, readable by its owner only.
fn write_private(path: &str, contents: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| Error::Io {
        path: path.into(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)
}

/// A long-lived token of the account (a legacy token Secret, as kcp's command made).
async fn account_token(t: &Target, ns: &str, account: &str) -> Result<String> {
    let secrets = format!("api/v1/namespaces/{ns}/secrets");
    let name = format!("{account}-token");
    ensure(
        t,
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": account}},
        "type": "kubernetes.io/service-account-token"}),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let secret = t
            .client
            .get(&format!("{}/{name}", url(t, &secrets)))
            .await?;
        if let Some(token) = secret["data"]["token"].as_str().filter(|s| !s.is_empty()) {
            let bytes = STANDARD
                .decode(token)
                .map_err(|e| Error::msg(format!("the token Secret's token is not base64: {e}")))?;
            return String::from_utf8(bytes).map_err(|e| Error::msg(e.to_string()));
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::msg(format!(
                "timed out waiting for the token of {ns}/{account}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The kubeconfig the syncer reaches the compute workspace with.
fn upstream_kubeconfig(global: &GlobalFlags, server: &str, token: &str) -> Result<String> {
    let conn = connection(global)?;
    let mut cluster = json!({"server": server});
    match &conn.config.root_cert {
        Some(certs) if !certs.is_empty() && !conn.config.accept_invalid_certs => {
            let pem: String = certs.iter().map(|der| pem_certificate(der)).collect();
            cluster["certificate-authority-data"] = json!(STANDARD.encode(pem));
        }
        _ => cluster["insecure-skip-tls-verify"] = json!(true),
    }
    let kubeconfig = json!({"apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "upstream", "cluster": cluster}],
        "users": [{"name": "syncer", "user": {"token": token}}],
        "contexts": [{"name": "upstream", "context": {"cluster": "upstream", "user": "syncer"}}],
        "current-context": "upstream"});
    serde_saphyr::to_string(&kubeconfig).map_err(|e| Error::msg(e.to_string()))
}

fn pem_certificate(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

struct DownstreamSpec<'a> {
    name: &'a str,
    uid: &'a str,
    path: &'a str,
    account: &'a str,
    image: &'a str,
    replicas: u32,
    extra_resources: &'a [String],
    resources: &'a [String],
    kubeconfig: &'a str,
    /// Namespace mode: the one downstream namespace.
    downstream_namespace: Option<&'a str>,
}

/// What the downstream cluster runs the syncer with: only the rights it uses — in
/// namespace mode, a Role in that namespace and nothing cluster-wide.
fn downstream_manifests(s: &DownstreamSpec<'_>) -> Vec<Value> {
    // Namespace mode lives in the platform team's namespace (it exists before the agent)
    // with a Role there; otherwise the agent has its own namespace and a ClusterRole that
    // manages the `kcp-…` namespaces and reads what the cluster runs for the workloads.
    let (ns, (role, binding), namespace_object, mut rules) = match s.downstream_namespace {
        Some(shared) => (shared, ("Role", "RoleBinding"), None, vec![]),
        None => (
            s.account,
            ("ClusterRole", "ClusterRoleBinding"),
            Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": s.account}})),
            vec![
                json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create", "get", "list", "watch", "update", "patch", "delete"]}),
                json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}),
                json!({"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]}),
            ],
        ),
    };
    if !s.extra_resources.is_empty() && s.downstream_namespace.is_none() {
        // The API importer reads the CRDs of `--resources` (cluster-wide: not in namespace mode).
        rules.push(json!({"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get"]}));
    }
    for r in s.resources {
        let (group, plural) = group_resource(r);
        rules.push(json!({"apiGroups": [group], "resources": [plural, format!("{plural}/status")], "verbs": ["*"]}));
    }
    let mut args = vec![
        "syncer".to_string(),
        "--from-kubeconfig=/kcp/kubeconfig".to_string(),
        format!("--sync-target-name={}", s.name),
        format!("--sync-target-uid={}", s.uid),
        format!("--from-cluster={}", s.path),
    ];
    if !s.extra_resources.is_empty() {
        args.push(format!("--resources={}", s.extra_resources.join(",")));
    }
    let mut role_meta = json!({"name": s.account});
    if let Some(shared) = s.downstream_namespace {
        args.push(format!("--downstream-namespace={shared}"));
        role_meta["namespace"] = json!(shared);
    }
    namespace_object.into_iter().chain([
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": s.account, "namespace": ns}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": role, "metadata": role_meta, "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding, "metadata": role_meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role, "name": s.account},
            "subjects": [{"kind": "ServiceAccount", "name": s.account, "namespace": ns}]}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": s.account, "namespace": ns},
            "stringData": {"kubeconfig": s.kubeconfig}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": s.account, "namespace": ns},
        "spec": {"replicas": s.replicas, "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": s.account}},
            "template": {"metadata": {"labels": {"app": s.account}}, "spec": {
                "serviceAccountName": s.account,
                "containers": [{"name": "kplex-syncer", "image": s.image, "args": args,
                    "volumeMounts": [{"name": "kcp-config", "mountPath": "/kcp/", "readOnly": true}],
                    "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false}}],
                "volumes": [{"name": "kcp-config", "secret": {"secretName": s.account, "items": [{"key": "kubeconfig", "path": "kubeconfig"}]}}],
            }}}}),
    ]).collect()
}

async fn set_spec(
    t: &Target,
    name: &str,
    spec: Value,
    done: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let path = format!("{}/{name}", url(t, SYNCTARGETS));
    for _ in 0..5 {
        let mut obj = t.client.get(&path).await?;
        let Some(current) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            obj["spec"] = json!({});
            continue;
        };
        if let Some(fields) = spec.as_object() {
            for (k, v) in fields {
                if v.is_null() {
                    current.remove(k);
                } else {
                    current.insert(k.clone(), v.clone());
                }
            }
        }
        match t.client.json(Method::PUT, &path, Some(&obj)).await {
            Ok(_) => {
                writeln!(out, "synctarget.workload.kcp.io/{name} {done}")?;
                return Ok(());
            }
            Err(e) if e.code() == Some(409) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::msg(format!(
        "synctarget {name} kept changing; try again"
    )))
}

/// A label selector from `k=v,k2=v2`.
fn selector(s: &str) -> Result<Value> {
    let pairs: Vec<String> = s.split(',').map(String::from).collect();
    Ok(json!({"matchLabels": labels_of(&pairs)?}))
}

async fn bind_compute(t: &Target, a: &ComputeArgs, out: &mut dyn Write) -> Result<()> {
    let location_ws = a.location_workspace.trim_start_matches(':').to_string();
    // The locations must be there to be chosen: say so now rather than leave a Pending
    // placement behind.
    let locations = t
        .client
        .get(&format!("/clusters/{location_ws}/{LOCATIONS}"))
        .await?;
    if locations["items"].as_array().is_none_or(|i| i.is_empty()) {
        return Err(Error::msg(format!(
            "no locations in workspace {location_ws}"
        )));
    }
    let location_selectors: Vec<Value> = if a.location_selectors.is_empty() {
        vec![json!({})]
    } else {
        a.location_selectors
            .iter()
            .map(|s| selector(s))
            .collect::<Result<_>>()?
    };
    let namespace_selector = match &a.namespace_selector {
        Some(s) if !s.is_empty() => selector(s)?,
        _ => json!({}),
    };
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("placement-{}", short_hash(&location_ws)));
    let placement = json!({"apiVersion": "scheduling.kcp.io/v1alpha1", "kind": "Placement",
        "metadata": {"name": name},
        "spec": {"locationWorkspace": location_ws, "locationSelectors": location_selectors,
            "namespaceSelector": namespace_selector,
            "locationResource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"}}});
    ensure(t, PLACEMENTS, placement).await?;
    writeln!(out, "placement.scheduling.kcp.io/{name} created")?;
    let (exports, required) = if a.apiexports.is_empty() {
        (vec![format!("{location_ws}:{COMPUTE_EXPORT}")], false)
    } else {
        (a.apiexports.clone(), true)
    };
    for export in exports {
        bind_export(t, &export, required, out).await?;
    }
    Ok(())
}

/// Binds the compute APIExport `<path>:<name>` in the current workspace. A missing default
/// export (a compute workspace without syncers yet) is skipped.
async fn bind_export(t: &Target, export: &str, required: bool, out: &mut dyn Write) -> Result<()> {
    let (path, name) = export.rsplit_once(':').ok_or_else(|| {
        Error::msg(format!(
            "invalid APIExport {export:?}: expected <path>:<name>"
        ))
    })?;
    let found = get_or_none(t, &format!("/clusters/{path}/{APIEXPORTS}/{name}")).await?;
    if found.is_none() {
        return match required {
            true => Err(Error::msg(format!(
                "no APIExport {name} in workspace {path}"
            ))),
            false => Ok(()),
        };
    }
    let binding = format!("{name}-{}", short_hash(path));
    ensure(
        t,
        APIBINDINGS,
        json!({"apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIBinding",
        "metadata": {"name": binding},
        "spec": {"reference": {"export": {"path": path, "name": name}}}}),
    )
    .await?;
    writeln!(out, "apibinding.apis.kcp.io/{binding} created")?;
    Ok(())
}

fn now_rfc3339() -> String {
    kplex_gocompat::now_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dispatch_and_names() {
        assert!(handles(&v(&["workload", "sync", "x"])));
        assert!(handles(&v(&[
            "--kubeconfig",
            "k",
            "bind",
            "compute",
            "root:c"
        ])));
        assert!(!handles(&v(&["bind", "apiexport", "root:x"])));
        assert_eq!(
            short_hash("root:compute:east"),
            short_hash("root:compute:east")
        );
        assert_ne!(
            short_hash("root:compute:east"),
            short_hash("root:compute:west")
        );
        assert_eq!(
            group_resource("deployments.apps"),
            ("apps".into(), "deployments".into())
        );
        assert_eq!(
            group_resource("configmaps"),
            (String::new(), "configmaps".into())
        );
    }

    #[test]
    fn manifests_give_the_syncer_only_what_it_uses() {
        let m = downstream_manifests(&DownstreamSpec {
            name: "east",
            uid: "u",
            path: "root:compute",
            account: "kcp-syncer-east-1",
            image: "img",
            replicas: 1,
            extra_resources: &[],
            resources: &["deployments.apps".to_string()],
            kubeconfig: "k",
            downstream_namespace: None,
        });
        let kinds: Vec<&str> = m.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Secret",
                "Deployment"
            ]
        );
        let args = &m[5]["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(args[4], "--from-cluster=root:compute");
        assert_eq!(m[2]["rules"][3]["apiGroups"][0], "apps");

        // Namespace mode: everything in that namespace, nothing cluster-wide.
        let m = downstream_manifests(&DownstreamSpec {
            name: "team-a",
            uid: "u",
            path: "root:compute",
            account: "kcp-syncer-team-a-1",
            image: "img",
            replicas: 1,
            extra_resources: &[],
            resources: &["deployments.apps".to_string()],
            kubeconfig: "k",
            downstream_namespace: Some("tenant-a"),
        });
        let kinds: Vec<&str> = m.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "Secret",
                "Deployment"
            ]
        );
        assert!(m.iter().all(|o| o["metadata"]["namespace"] == "tenant-a"));
        assert_eq!(m[1]["rules"].as_array().unwrap().len(), 1);
        let args = m[4]["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap();
        assert!(args.contains(&json!("--downstream-namespace=tenant-a")));
    }
}
