//! `kplex start`: run the control plane.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kplex_apiserver::{Config, StoreConfig};
use kplex_store::EtcdTls;

#[derive(Args)]
pub struct StartArgs {
    /// Directory for certificates, the admin kubeconfig and (without --etcd-servers) the store.
    #[arg(long, default_value = ".kplex")]
    root_directory: PathBuf,
    /// HTTPS port.
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    /// etcd endpoints (comma-separated); absent = the embedded store in the root directory.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// CA bundle to verify etcd's certificate.
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd.
    #[arg(long)]
    etcd_certfile: Option<PathBuf>,
    /// Client key for etcd.
    #[arg(long)]
    etcd_keyfile: Option<PathBuf>,
    /// CA bundle that client certificates must chain to (CN = user, O = groups); default:
    /// the server's own CA in the root directory.
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Static bearer tokens, kube-apiserver's CSV format: token,user,uid,"group1,group2".
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Serve this certificate (PEM chain, leaf first) instead of the one kplex generates;
    /// admin.kubeconfig then trusts the chain's last certificate.
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// The key of `--tls-cert-file`.
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    // Boxed: it keeps the `start` command variant small.
    #[command(flatten)]
    pub(crate) limits_and_audit: Box<LimitsAndAuditArgs>,
    /// kube-apiserver's EncryptionConfiguration file: resources encrypted at rest
    /// (providers aesgcm and identity).
    #[arg(long)]
    encryption_provider_config: Option<PathBuf>,
    /// Objects one logical cluster may hold (0: no limit). A LogicalCluster's
    /// `core.kcp.io/max-total-objects` annotation overrides it.
    #[arg(long, default_value_t = 0)]
    logical_cluster_total_object_limit: u64,
    #[command(flatten)]
    oidc: Box<OidcArgs>,
    /// The URL clients reach this control plane at (kcp's flag), written into Workspaces'
    /// `spec.URL` and endpoint slices: a load balancer's in front of replicas. Default: this
    /// process's own `https://<bind address>:<port>`.
    #[arg(long)]
    shard_external_url: Option<String>,
    /// The PKCS#8 PEM key (ECDSA P-256) that signs service-account tokens; default:
    /// `<root-directory>/sa.key`, generated on first start.
    #[arg(long)]
    service_account_signing_key_file: Option<PathBuf>,
    /// PEM keys (P-256 public, or PKCS#8 private) whose service-account tokens also verify,
    /// e.g. the signing key before a rotation; repeatable.
    #[arg(long)]
    service_account_key_file: Vec<PathBuf>,
}

/// An OpenID Connect issuer whose ID tokens authenticate, as kube-apiserver's flags.
#[derive(Args)]
struct OidcArgs {
    /// The issuer (https); its ID tokens authenticate when this is set.
    #[arg(long)]
    oidc_issuer_url: Option<String>,
    /// The client ID tokens must be issued for (`aud`).
    #[arg(long, default_value = "")]
    oidc_client_id: String,
    /// The claim naming the user.
    #[arg(long, default_value = "sub")]
    oidc_username_claim: String,
    /// Prefix of user names (default: `<issuer>#` unless the claim is email; `-`: none).
    #[arg(long)]
    oidc_username_prefix: Option<String>,
    /// The claim listing the user's groups.
    #[arg(long)]
    oidc_groups_claim: Option<String>,
    /// Prefix of group names.
    #[arg(long, default_value = "")]
    oidc_groups_prefix: String,
    /// CA bundle for fetching the issuer's discovery document and keys.
    #[arg(long)]
    oidc_ca_file: Option<PathBuf>,
    /// The issuer's keys (a JWKS document) from a file instead of the issuer.
    #[arg(long)]
    oidc_jwks_file: Option<PathBuf>,
}

/// Raises the soft open-files limit to the hard one, as Go programs (kube-apiserver) do at
/// start: every client connection and watch holds a descriptor, and 1024 is a common default.
pub fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "could not raise the open-files limit");
        }
    }
}

pub async fn run(args: StartArgs) -> anyhow::Result<()> {
    raise_open_files_limit();
    let mut config = Config::new(&args.root_directory);
    config.secure_port = args.secure_port;
    config.bind_address = args.bind_address;
    config.client_ca_file = args.client_ca_file.clone();
    config.token_auth_file = args.token_auth_file.clone();
    config.tls_cert_file = args.tls_cert_file.clone();
    config.tls_private_key_file = args.tls_private_key_file.clone();
    let la = &args.limits_and_audit;
    config.audit_log_path = la.audit_log_path.clone();
    config.audit_policy_file = la.audit_policy_file.clone();
    config.workspace_metrics = kplex_apiserver::workspace_metrics::WorkspaceMetricsConfig {
        top: la.metrics_top_workspaces,
        named: la.metrics_workspaces.clone(),
    };
    config.limits = kplex_apiserver::limits::LimitsConfig {
        max_requests_inflight: la.max_requests_inflight,
        max_mutating_requests_inflight: la.max_mutating_requests_inflight,
        max_watches_per_user: la.max_watches_per_user,
        request_timeout: la.request_timeout,
    };
    config.encryption_provider_config = args.encryption_provider_config.clone();
    config.logical_cluster_total_object_limit = args.logical_cluster_total_object_limit;
    config.external_url = args.shard_external_url.clone();
    config.service_account_signing_key_file = args.service_account_signing_key_file.clone();
    config.service_account_key_files = args.service_account_key_file.clone();
    let o = &args.oidc;
    config.oidc = o
        .oidc_issuer_url
        .clone()
        .map(|issuer_url| kplex_apiserver::oidc::OidcConfig {
            issuer_url,
            client_id: o.oidc_client_id.clone(),
            username_claim: o.oidc_username_claim.clone(),
            username_prefix: o.oidc_username_prefix.clone(),
            groups_claim: o.oidc_groups_claim.clone(),
            groups_prefix: o.oidc_groups_prefix.clone(),
            ca_file: o.oidc_ca_file.clone(),
            jwks_file: o.oidc_jwks_file.clone(),
        });
    if !args.etcd_servers.is_empty() {
        let tls = (args.etcd_cafile.is_some() || args.etcd_certfile.is_some()).then(|| EtcdTls {
            ca_file: args.etcd_cafile.clone(),
            cert_file: args.etcd_certfile.clone(),
            key_file: args.etcd_keyfile.clone(),
        });
        config.store = StoreConfig::Etcd {
            endpoints: args.etcd_servers.clone(),
            tls,
        };
    }
    let running = kplex_apiserver::start(config)
        .await
        .context("start kplex")?;
    // A log line (not a bare print), so `--log-format json` stays one object per line.
    tracing::info!(
        "kplex is ready on https://{}; export KUBECONFIG={}",
        running.addr,
        running.kubeconfig.display()
    );
    let stop = running.stop_signal();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    running.wait().await;
    Ok(())
}

/// Audit logging and overload protection, as kube-apiserver's flags.
#[derive(Args)]
pub(crate) struct LimitsAndAuditArgs {
    /// Audit log file, one JSON audit.k8s.io/v1 Event a line (`-`: standard output); absent:
    /// no audit log.
    #[arg(long)]
    audit_log_path: Option<PathBuf>,
    /// audit.k8s.io/v1 Policy (YAML); absent: every request at level Metadata.
    #[arg(long)]
    audit_policy_file: Option<PathBuf>,
    /// Give the N workspaces with the most requests series of their own at /metrics
    /// (`kplex_workspace_requests_total{workspace}`); 0: none (the series count then never
    /// grows with workspaces).
    #[arg(long, default_value_t = 0)]
    metrics_top_workspaces: usize,
    /// Workspaces (paths or logical cluster names, comma-separated) that always get series
    /// of their own at /metrics.
    #[arg(long, value_delimiter = ',')]
    metrics_workspaces: Vec<String>,
    /// kube-apiserver's TracingConfiguration (YAML: `endpoint`, `samplingRatePerMillion`):
    /// spans go to that OpenTelemetry collector over OTLP/HTTP; absent: no traces.
    #[arg(long)]
    pub(crate) tracing_config_file: Option<PathBuf>,
    /// Concurrent non-mutating requests (watches excluded) before 429; 0 = unlimited.
    #[arg(long, default_value_t = 400)]
    max_requests_inflight: usize,
    /// Concurrent mutating requests before 429; 0 = unlimited.
    #[arg(long, default_value_t = 200)]
    max_mutating_requests_inflight: usize,
    /// Concurrent watch streams of one user before 429; 0 = unlimited.
    #[arg(long, default_value_t = 1000)]
    max_watches_per_user: usize,
    /// Deadline of non-watch requests (Go duration: 60s, 1m, 500ms) before 504.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    request_timeout: std::time::Duration,
}

/// A Go duration (`60s`, `1m30s`, `500ms`), as kube-apiserver flags take.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    kplex_gocompat::parse_std_duration(s).ok_or_else(|| format!("invalid duration {s:?}"))
}
