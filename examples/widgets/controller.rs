//! widgets-controller: the provider's side of the `widgets.example.dev` example.
//!
//! The provider workspace exports widgets (APIExport `widgets`); any number of consumer
//! workspaces bind that export and create Widgets. This controller, written with the
//! ordinary `kube` crate, serves them all from one watch:
//!
//! 1. read the APIExportEndpointSlice `widgets` in the provider workspace; its
//!    `status.endpoints[0].url` is the export's virtual workspace
//!    (`<server>/services/apiexport/<provider cluster>/widgets`);
//! 2. watch `<url>/clusters/*`: every Widget in every workspace that binds the export, each
//!    stamped with the logical cluster it lives in (annotation `kcp.io/cluster`);
//! 3. write each Widget's status through `<url>/clusters/<that cluster>`.
//!
//! Run it (see examples/widgets/README.md for the whole walkthrough):
//!
//! ```text
//! cargo run --example widgets-controller -- --kubeconfig .kplex/admin.kubeconfig --workspace root:provider
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde_json::{Value, json};

/// The annotation kplex (like kcp) puts on every object: its logical cluster.
const CLUSTER_ANNOTATION: &str = "kcp.io/cluster";
/// Who owns the status fields this controller writes.
const FIELD_MANAGER: &str = "widgets-controller";

/// Writes the status of Widgets in every workspace that binds the provider's APIExport.
#[derive(Parser)]
struct Args {
    /// The kubeconfig to use; its current context names the server and the credentials.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// The provider workspace, the one holding the APIExport (e.g. root:provider).
    #[arg(long)]
    workspace: String,
    /// The name of the APIExport (and of its APIExportEndpointSlice).
    #[arg(long, default_value = "widgets")]
    export: String,
}

/// The type of the objects we watch, known at compile time but used through
/// `DynamicObject`, so that the example needs no generated Rust types.
fn widgets() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.dev", "v1", "Widget"),
        "widgets",
    )
}

fn endpoint_slices() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apis.kcp.io", "v1alpha1", "APIExportEndpointSlice"),
        "apiexportendpointslices",
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();

    // The kubeconfig's TLS settings and credentials work for every URL on the same server:
    // workspaces and virtual workspaces alike. Only the URL changes.
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("loading the kubeconfig")?;
    let base = server_base(&config.cluster_url.to_string());

    // 1. Where is the virtual workspace? The endpoint slice appears with the export and
    //    lists its URL once at least one workspace binds the export.
    let provider = client_at(&config, &format!("{base}/clusters/{}", args.workspace))?;
    let url = endpoint_url(provider, &args.export).await?;
    println!("watching widgets in every workspace that binds the export, via {url}");

    // 2. One watch over all consumers. `watcher` lists, then watches, and re-lists after
    //    errors (with backoff). We use it directly rather than `kube::runtime::Controller`:
    //    the Controller's cache keys objects by namespace/name, and here two workspaces may
    //    both hold `default/my-widget`; the cluster annotation tells them apart.
    let all: Api<DynamicObject> = Api::all_with(
        client_at(&config, &format!("{url}/clusters/*"))?,
        &widgets(),
    );
    let mut events = watcher(all, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();

    // 3. One client per consumer workspace, made on first use.
    let mut writers: HashMap<String, Client> = HashMap::new();
    while let Some(event) = events.next().await {
        let widget = match event {
            Ok(widget) => widget,
            // The watcher retries by itself; just say what happened.
            Err(e) => {
                eprintln!("watch error (retrying): {e}");
                continue;
            }
        };
        // A production controller would requeue a failed widget with a backoff; here the
        // widget's next change (or a restart, which lists everything again) retries it.
        if let Err(e) = reconcile(&config, &url, &mut writers, &widget).await {
            eprintln!(
                "reconciling {}: {e:#}",
                widget.metadata.name.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(())
}

/// Makes the Widget's status say that its current size has been seen.
async fn reconcile(
    config: &Config,
    url: &str,
    writers: &mut HashMap<String, Client>,
    widget: &DynamicObject,
) -> Result<()> {
    let meta = &widget.metadata;
    let name = meta.name.as_deref().context("a widget without a name")?;
    let namespace = meta.namespace.as_deref().unwrap_or("default");
    let cluster = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLUSTER_ANNOTATION))
        .with_context(|| format!("widget {name} has no {CLUSTER_ANNOTATION} annotation"))?;

    let size = widget.data["spec"]["size"].as_i64().unwrap_or(0);
    let status = &widget.data["status"];
    // Writing the status produces another watch event for this widget; when the status
    // already says what we would write, there is nothing to do (and no loop).
    if status["ready"] == Value::Bool(true) && status["observedSize"].as_i64() == Some(size) {
        return Ok(());
    }

    let client = match writers.get(cluster) {
        Some(client) => client.clone(),
        None => {
            let client = client_at(config, &format!("{url}/clusters/{cluster}"))?;
            writers.insert(cluster.clone(), client.clone());
            client
        }
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &widgets());
    let patch = json!({"status": {"ready": true, "observedSize": size}});
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Merge(&patch),
    )
    .await
    .with_context(|| format!("patching the status of {cluster}/{namespace}/{name}"))?;
    println!("reconciled {cluster}/{namespace}/{name} size={size}");
    Ok(())
}

/// Polls the APIExportEndpointSlice named after the export until it lists an endpoint.
async fn endpoint_url(provider: Client, export: &str) -> Result<String> {
    let slices: Api<DynamicObject> = Api::all_with(provider, &endpoint_slices());
    let mut said_waiting = false;
    loop {
        let slice = slices
            .get_opt(export)
            .await
            .with_context(|| format!("reading APIExportEndpointSlice {export}"))?;
        let url = slice
            .as_ref()
            .and_then(|s| s.data["status"]["endpoints"][0]["url"].as_str());
        if let Some(url) = url {
            return Ok(url.trim_end_matches('/').to_string());
        }
        if !said_waiting {
            println!(
                "waiting for APIExportEndpointSlice {export} to list an endpoint (bind the export in a workspace)"
            );
            said_waiting = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The server's address without any `/clusters/<workspace>` the kubeconfig points at.
fn server_base(server: &str) -> String {
    let server = server.trim_end_matches('/');
    match server.find("/clusters/") {
        Some(i) => server[..i].to_string(),
        None => server.to_string(),
    }
}

/// A client with the kubeconfig's TLS and credentials, sending requests under `url`.
fn client_at(config: &Config, url: &str) -> Result<Client> {
    let mut config = config.clone();
    config.cluster_url = url
        .parse()
        .map_err(|e| anyhow!("invalid server URL {url}: {e}"))?;
    Client::try_from(config).context("building a client")
}
