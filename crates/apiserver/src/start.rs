//! Starting a server: PKI and kubeconfig, the store, bootstrap objects of the root logical
//! cluster, controllers, the listener.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kplex_apimachinery::{ApiError, meta};
use kplex_store::{
    EmbeddedOptions, EmbeddedStore, EtcdOptions, EtcdStore, EtcdTls, RangeRequest, Store,
};
use serde_json::{Value, json};

use crate::chain::Api;
use crate::registry::admission::AdmissionPlugin;
use crate::registry::{Registry, Scope, WriteOptions};
use crate::served::Served;
use crate::{metrics, object, openapi, pki, request::ROOT_CLUSTER, tenancy};
use kplex_feature::{Context, Feature, Plugin};
use kplex_runtime::ControllerSet;

/// Where objects are kept.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// The embedded store under the root directory.
    Embedded,
    Etcd {
        endpoints: Vec<String>,
        tls: Option<EtcdTls>,
    },
}

#[derive(Clone, Debug)]
pub struct Config {
    pub root_directory: PathBuf,
    pub bind_address: IpAddr,
    /// 0 picks a free port (tests).
    pub secure_port: u16,
    pub store: StoreConfig,
    /// History kept for watches: compaction runs this often, to the revision seen one
    /// interval before (as kube-apiserver does every 5 minutes).
    pub compaction_interval: Duration,
    /// CA bundle client certificates must chain to; `None`: the server's own CA
    /// (`<root>/ca.crt`), so certificates it signs authenticate.
    pub client_ca_file: Option<PathBuf>,
    /// kube-apiserver's static token file (`token,user,uid,"group1,group2"`).
    pub token_auth_file: Option<PathBuf>,
    /// kube-apiserver's audit log, one JSON event a line (`-`: standard output); `None`:
    /// no audit log.
    pub audit_log_path: Option<PathBuf>,
    /// An `audit.k8s.io/v1` Policy; `None`: every request at level Metadata.
    pub audit_policy_file: Option<PathBuf>,
    pub limits: crate::limits::LimitsConfig,
    /// Workspaces whose request figures get series of their own (none by default).
    pub workspace_metrics: crate::workspace_metrics::WorkspaceMetricsConfig,
    /// kube-apiserver's `EncryptionConfiguration`: which resources are encrypted at rest.
    pub encryption_provider_config: Option<PathBuf>,
    /// kcp's `--logical-cluster-total-object-limit`: objects per logical cluster (0: none;
    /// a LogicalCluster's `core.kcp.io/max-total-objects` annotation overrides it).
    pub logical_cluster_total_object_limit: u64,
    /// An OpenID Connect issuer whose ID tokens authenticate (kube's `--oidc-*` flags).
    pub oidc: Option<crate::oidc::OidcConfig>,
    /// Serve this certificate chain and key instead of the generated serving certificate.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    /// The URL clients reach the control plane at (kcp's `--shard-external-url`: a load
    /// balancer's in front of replicas), written into Workspaces and endpoint slices; `None`:
    /// this process's own address.
    pub external_url: Option<String>,
    /// kube's `--service-account-signing-key-file`: the key that signs service-account tokens;
    /// `None`: `<root>/sa.key`, generated on first start.
    pub service_account_signing_key_file: Option<PathBuf>,
    /// kube's `--service-account-key-file`: further keys whose tokens verify (a rotated-out
    /// signing key); the signing key always verifies.
    pub service_account_key_files: Vec<PathBuf>,
}

impl Config {
    pub fn new(root_directory: impl Into<PathBuf>) -> Self {
        Self {
            root_directory: root_directory.into(),
            bind_address: IpAddr::from([127, 0, 0, 1]),
            secure_port: 6443,
            store: StoreConfig::Embedded,
            compaction_interval: Duration::from_secs(300),
            client_ca_file: None,
            token_auth_file: None,
            audit_log_path: None,
            audit_policy_file: None,
            limits: crate::limits::LimitsConfig::default(),
            workspace_metrics: Default::default(),
            encryption_provider_config: None,
            logical_cluster_total_object_limit: 0,
            oidc: None,
            tls_cert_file: None,
            tls_private_key_file: None,
            external_url: None,
            service_account_signing_key_file: None,
            service_account_key_files: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("prepare certificates: {0}")]
    Pki(#[from] pki::PkiError),
    #[error("authentication: {0}")]
    Authn(#[from] crate::authn::AuthnError),
    #[error(transparent)]
    ServiceAccountKey(#[from] crate::serviceaccount::KeyError),
    #[error("audit: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("oidc: {0}")]
    Oidc(#[from] crate::oidc::OidcError),
    #[error("encryption at rest: {0}")]
    Encryption(#[from] crate::encryption::EncryptionError),
    #[error("open store: {0}")]
    Store(#[from] kplex_store::Error),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] ApiError),
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    shutdown: tokio::sync::watch::Sender<bool>,
    serving: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, ends watches, drains in-flight requests.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.serving.await;
    }

    /// Resolves when the server has stopped serving.
    pub async fn wait(self) {
        let _ = self.serving.await;
    }

    pub fn stop_signal(&self) -> tokio::sync::watch::Sender<bool> {
        self.shutdown.clone()
    }
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    // One Prometheus registry for the process; each component registers its metrics.
    let mut prometheus = prometheus_client::registry::Registry::default();
    let store: Arc<dyn Store> = match &config.store {
        StoreConfig::Embedded => {
            let embedded =
                EmbeddedStore::open(EmbeddedOptions::new(config.root_directory.join("store.db")))?;
            crate::store_metrics::observe_commits(&embedded, &mut prometheus);
            Arc::new(embedded)
        }
        StoreConfig::Etcd { endpoints, tls } => {
            let mut options = EtcdOptions::new(endpoints.clone());
            options.tls = tls.clone();
            Arc::new(EtcdStore::connect(options).await?)
        }
    };
    let store: Arc<dyn Store> = Arc::new(crate::store_metrics::TimedStore::new(
        store,
        &mut prometheus,
    ));
    let store: Arc<dyn Store> = match &config.encryption_provider_config {
        Some(path) => Arc::new(crate::encryption::EncryptingStore::new(
            store,
            crate::encryption::EncryptionConfig::load(path)?,
        )),
        None => store,
    };
    let addr = SocketAddr::new(config.bind_address, config.secure_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Listen { addr, source })?;
    let host = match config.bind_address {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let mut pki =
        pki::Pki::load_or_create(&config.root_directory, &[config.bind_address.to_string()])?;
    if let (Some(cert), Some(key)) = (&config.tls_cert_file, &config.tls_private_key_file) {
        pki = pki.with_serving_files(cert, key)?;
    }
    let kubeconfig = pki::write_admin_kubeconfig(
        &config.root_directory,
        &format!("https://{host}:{}", addr.port()),
        &pki,
    )?;
    let client_ca = config
        .client_ca_file
        .clone()
        .unwrap_or_else(|| config.root_directory.join("ca.crt"));
    let authn = crate::authn::Authenticator::new(
        pki.admin_token.clone(),
        Some(&client_ca),
        config.token_auth_file.as_deref(),
    )?
    .with_service_accounts(service_account_signer(&config)?);
    let authn = match &config.oidc {
        Some(oidc) => {
            let oidc = crate::oidc::Oidc::new(oidc.clone())?;
            oidc.spawn_refresh();
            authn.with_oidc(oidc)
        }
        None => authn,
    };
    let tls = pki.server_config(authn.tls_verifier())?;
    let authn = Arc::new(authn);

    let mut registry = Registry::new(store.clone());
    registry.shared_store = matches!(config.store, StoreConfig::Etcd { .. });
    let served = Arc::new(Served::new(kinds()));
    let authz = crate::authz::Authorizer {
        registry: registry.clone(),
        served: served.clone(),
    };
    let quota = Arc::new(crate::quota::Quota::new(
        served.clone(),
        config.logical_cluster_total_object_limit,
    ));
    registry.quota = Some(quota.clone());
    let legacy_tokens = Arc::new(crate::serviceaccount::LegacyTokens {
        signer: service_account_signer(&config)?,
        ca_pem: std::fs::read(config.root_directory.join("ca.crt")).unwrap_or_default(),
    });
    let context = Context {
        registry: registry.clone(),
        served: served.clone(),
        authz: authz.clone(),
        base_url: match &config.external_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("https://{host}:{}", addr.port()),
        },
        legacy_tokens: Some(legacy_tokens),
    };
    let features = assemble(&context, &authn);
    registry
        .admission
        .install(admission_plugins(&features, &registry, &mut prometheus))
        .map_err(|e| StartError::Bootstrap(ApiError::internal(&e.to_string())))?;
    load_clusters(&registry, &served, &quota).await?;
    bootstrap_root(&registry, &served).await?;
    let request_metrics = metrics::Metrics::register(&mut prometheus);
    let workspace_requests = crate::workspace_metrics::WorkspaceRequests::new(
        config.workspace_metrics.clone(),
        served.clone(),
    );
    if let Some(w) = &workspace_requests {
        prometheus.register_collector(Box::new(crate::workspace_metrics::WorkspaceCollector(
            w.clone(),
        )));
    }
    let controller_metrics = kplex_runtime::Metrics::register(&mut prometheus);
    let storage_metrics = crate::storage_metrics::StorageMetrics::register(&mut prometheus);
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    // One process owns an embedded store, so it always leads; replicas on etcd elect one.
    let lease = match &config.store {
        StoreConfig::Embedded => None,
        StoreConfig::Etcd { .. } => Some(controllers_lease(addr.port())),
    };
    start_controllers(
        &store,
        &features.controllers,
        &controller_metrics,
        lease,
        cancelled_on(shutdown_rx.clone()),
    )
    .await?;
    tokio::spawn(compactor(store, config.compaction_interval));

    let audit = match &config.audit_log_path {
        Some(path) => {
            let policy = config
                .audit_policy_file
                .as_deref()
                .map(crate::audit::Policy::load)
                .transpose()?;
            Some(crate::audit::Auditor::start(path, policy).await?)
        }
        None => None,
    };
    let api = Arc::new(Api {
        registry,
        served,
        virtual_resources: features.virtual_resources,
        authn,
        metrics: request_metrics,
        workspace_requests,
        exposition: metrics::Exposition::new(prometheus),
        storage_metrics,
        shutdown: shutdown_rx.clone(),
        openapi: openapi::Cache::default(),
        virtual_workspaces: features.virtual_workspaces,
        authorization_hooks: features.authorization_hooks,
        create_hooks: features.create_hooks,
        cluster_lookups: features.cluster_lookups,
        authz,
        audit,
        limits: crate::limits::Limits::new(&config.limits),
    });
    let serving = tokio::spawn(crate::server::serve(listener, tls, api, shutdown_rx));
    tracing::info!(%addr, kubeconfig = %kubeconfig.display(), "kplex is serving");
    Ok(Running {
        addr,
        kubeconfig,
        shutdown,
        serving,
    })
}

/// The service-account token key: the configured one or `<root>/sa.key`, and the further
/// keys whose tokens verify.
fn service_account_signer(
    config: &Config,
) -> Result<crate::serviceaccount::Signer, crate::serviceaccount::KeyError> {
    let signer = match &config.service_account_signing_key_file {
        Some(path) => crate::serviceaccount::Signer::load(path)?,
        None => {
            crate::serviceaccount::Signer::load_or_create(&config.root_directory.join("sa.key"))?
        }
    };
    config
        .service_account_key_files
        .iter()
        .try_fold(signer, |signer, path| signer.accept_keys_from(path))
}

/// The features, in admission order. Adding one: its crate, and one line here.
const PLUGINS: &[Plugin] = &[
    crate::builtins::feature::PLUGIN,
    tenancy::feature::PLUGIN,
    crate::apis::feature::PLUGIN,
    kplex_workload::feature::PLUGIN,
];

/// The kinds every logical cluster serves: Kubernetes' built-ins and kcp's system kinds.
pub fn kinds() -> Vec<crate::catalog::ResourceDesc> {
    PLUGINS.iter().flat_map(|p| (p.kinds)()).collect()
}

/// Every feature's parts, then the server's own: authentication's and authorization's
/// reviews and TokenRequest, and RBAC's escalation check.
fn assemble(context: &Context, authn: &Arc<crate::authn::Authenticator>) -> Feature {
    let (registry, served) = (&context.registry, &context.served);
    let own = Feature {
        admission: vec![Arc::new(crate::authz::EscalationCheck(
            context.authz.clone(),
        ))],
        virtual_resources: vec![
            Arc::new(crate::authn::AuthnReviews {
                authn: authn.clone(),
                registry: registry.clone(),
                served: served.clone(),
            }),
            Arc::new(crate::authz::AccessReviews(context.authz.clone())),
            Arc::new(crate::serviceaccount::TokenRequests {
                registry: registry.clone(),
                served: served.clone(),
                signer: authn.service_account_signer(),
            }),
        ],
        ..Default::default()
    };
    PLUGINS
        .iter()
        .map(|p| (p.build)(context))
        .fold(Feature::default(), Feature::merge)
        .merge(own)
}

/// Every write's admission plugins, in kube-apiserver's order: the features' own, then the
/// webhooks (mutating last among mutations, validating last among validations).
fn admission_plugins(
    features: &Feature,
    registry: &Registry,
    metrics: &mut prometheus_client::registry::Registry,
) -> Vec<Arc<dyn AdmissionPlugin>> {
    let mut plugins = features.admission.clone();
    plugins.push(Arc::new(crate::admission::Webhooks::new(registry, metrics)));
    plugins
}

/// Every feature's controllers, fed by one store watch; they run until `cancel` fires.
/// Returns once what CRDs and bindings serve is served.
/// Leader-only sets run while this replica holds `lease` (`None`: always).
async fn start_controllers(
    store: &Arc<dyn Store>,
    controllers: &[Arc<dyn ControllerSet>],
    metrics: &kplex_runtime::Metrics,
    lease: Option<kplex_runtime::LeaseConfig>,
    cancel: kplex_runtime::CancellationToken,
) -> Result<(), StartError> {
    let mut handlers: Vec<Arc<dyn kplex_runtime::EventHandler>> = Vec::new();
    let mut gated = Vec::new();
    for set in controllers {
        if set.leader_only() && lease.is_some() {
            gated.push(set.clone());
        } else {
            set.clone().run(metrics, &cancel);
        }
        handlers.push(set.clone());
    }
    if let Some(lease) = lease {
        let gate = kplex_runtime::LeaderGate::new(store.clone(), lease)
            .map_err(|e| StartError::Bootstrap(ApiError::internal(&e.to_string())))?;
        let metrics = metrics.clone();
        tokio::spawn(gate.run(cancel.clone(), move |term| {
            for set in &gated {
                set.clone().run(&metrics, &term);
            }
            async move { term.cancelled().await }
        }));
    }
    kplex_runtime::Informer::new(store.clone(), handlers)
        .start(cancel)
        .await?;
    Ok(())
}

/// The Lease the replicas of one control plane elect their controllers' leader with:
/// `kube-system/kplex-controllers` in the root workspace (`kubectl get leases -n
/// kube-system`). The identity is stable across restarts of one replica (host and port),
/// so a restarted leader takes its term back at once instead of waiting for it to expire.
fn controllers_lease(port: u16) -> kplex_runtime::LeaseConfig {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "kplex".into());
    kplex_runtime::LeaseConfig::new(
        tenancy::ROOT_CLUSTER,
        "kube-system",
        "kplex-controllers",
        format!("{host}_{port}"),
    )
    // A follower takes over within 10 s of the leader's death (kube's 15 s is too slow
    // for the replicas' promise).
    .durations(kplex_runtime::LeaseDurations {
        lease: Duration::from_secs(8),
        renew_deadline: Duration::from_secs(6),
        retry_period: Duration::from_secs(1),
    })
}

/// A token cancelled once `shutdown` says so (or its sender is gone).
fn cancelled_on(
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> kplex_runtime::CancellationToken {
    let token = kplex_runtime::CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        crate::server::stopped(&mut shutdown).await;
        cancel.cancel();
    });
    token
}

const LOGICAL_CLUSTERS: &str = "/registry/core.kcp.io/logicalclusters/";

/// Every logical cluster recorded in the store becomes servable, under its canonical path.
async fn load_clusters(
    registry: &Registry,
    served: &Served,
    quota: &crate::quota::Quota,
) -> Result<(), ApiError> {
    let list = registry
        .store
        .range(RangeRequest::prefix(LOGICAL_CLUSTERS))
        .await
        .map_err(crate::registry::store_error)?;
    for kv in list.kvs {
        // Key: /registry/core.kcp.io/logicalclusters/<cluster>/cluster
        let Some(cluster) = kv
            .key
            .strip_prefix(LOGICAL_CLUSTERS)
            .and_then(|rest| rest.split('/').next())
        else {
            continue;
        };
        let obj = object::decode(&kv.value, kv.mod_revision)?;
        let path = meta::annotation(&obj, tenancy::PATH_ANNOTATION)
            .unwrap_or(cluster)
            .to_string();
        served.add_cluster(cluster, &path);
        quota.observe_logical_cluster(cluster, &obj);
    }
    // Namespaces holding ResourceQuotas (key: /registry/resourcequotas/<cluster>/<ns>/<name>).
    let quotas = registry
        .store
        .range(RangeRequest::prefix(RESOURCE_QUOTAS))
        .await
        .map_err(crate::registry::store_error)?;
    for kv in quotas.kvs {
        let mut parts = kv.key.trim_start_matches(RESOURCE_QUOTAS).split('/');
        if let (Some(cluster), Some(namespace)) = (parts.next(), parts.next()) {
            quota.observe_quota(cluster, namespace);
        }
    }
    Ok(())
}

const RESOURCE_QUOTAS: &str = "/registry/resourcequotas/";

/// The root logical cluster, its standard namespaces and the built-in workspace types, on
/// first start.
async fn bootstrap_root(registry: &Registry, served: &Served) -> Result<(), ApiError> {
    served.add_cluster(ROOT_CLUSTER, ROOT_CLUSTER);
    let scope = |resource: &str, group: &str, version: &str| {
        served
            .lookup(Some(ROOT_CLUSTER), group, version, resource)
            .map(|desc| Scope {
                cluster: Some(ROOT_CLUSTER.into()),
                desc,
                namespace: None,
            })
    };
    let mut objects: Vec<(Option<Scope>, Value)> = vec![(
        scope("logicalclusters", tenancy::CORE, tenancy::VERSION),
        tenancy::lifecycle::logical_cluster_object(
            ROOT_CLUSTER,
            None,
            &tenancy::types::TypeRef::root(),
            &[],
            "",
        ),
    )];
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        objects.push((
            scope("namespaces", "", "v1"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        ));
    }
    for wt in tenancy::types::builtin_types() {
        objects.push((
            scope("workspacetypes", tenancy::TENANCY, tenancy::VERSION),
            wt,
        ));
    }
    for (scope, obj) in objects {
        let Some(scope) = scope else { continue };
        match registry.create(&scope, obj, &WriteOptions::default()).await {
            Ok(_) => {}
            Err(e) if e.is_already_exists() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Compacts history older than one interval, like kube-apiserver's compactor.
async fn compactor(store: Arc<dyn Store>, interval: Duration) {
    let mut last_seen = 0;
    loop {
        tokio::time::sleep(interval).await;
        let Ok(status) = store.status().await else {
            continue;
        };
        if last_seen > status.compacted_revision
            && let Err(e) = store.compact(last_seen).await
        {
            tracing::debug!(error = %e, revision = last_seen, "compaction skipped");
        }
        last_seen = status.revision;
    }
}
