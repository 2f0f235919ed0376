//! The generic registry as a client sees it, on a real embedded store in a temporary
//! directory: create, compare-and-swap updates, no-op writes, finalizers and deletion,
//! propagation policies, the status subresource and generation, selectors, list paging,
//! watch from a resourceVersion, dry run, and scoping by logical cluster and namespace.
//!
//! Kubernetes' `registry/rest/resttest/resttest.go` is the model. Every expectation is
//! kube-apiserver's: the Status code and reason, and the message where clients print it.
//! Each test opens its own store, with namespaces `team-a` and `team-b` in logical clusters
//! `c1` and `c2`.
//!
//! Not here: the watch cache's own edges (selector transitions, resourceVersion 0, watches
//! older than the cache window), which `registry.rs` covers; and `/scale`, which is served
//! above the registry (`handler.rs`, `write_scale` over `Registry::update_with`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kplex_apimachinery::ApiError;
use kplex_apiserver::registry::{
    DeleteOptions, DeleteOutcome, ListOptions, ListResult, PatchKind, Registry, Scope, Selectors,
    WatchEvent, WatchEventKind, WatchOptions, WatchStream, WriteOptions,
};
use kplex_apiserver::served::Served;
use kplex_store::{EmbeddedOptions, EmbeddedStore};
use serde_json::{Value, json};

const CLUSTERS: [&str; 2] = ["c1", "c2"];
const NAMESPACES: [&str; 2] = ["team-a", "team-b"];

const CONFIGMAPS: (&str, &str, &str) = ("", "v1", "configmaps");
const DEPLOYMENTS: (&str, &str, &str) = ("apps", "v1", "deployments");
const NAMESPACE_RESOURCE: (&str, &str, &str) = ("", "v1", "namespaces");
/// A custom resource with a status subresource.
const WIDGETS: (&str, &str, &str) = ("example.com", "v1", "widgets");
/// A custom resource without subresources.
const GADGETS: (&str, &str, &str) = ("example.com", "v1", "gadgets");

struct Fixture {
    registry: Registry,
    served: Served,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(EmbeddedOptions::new(dir.path().join("db"))).unwrap());
    let f = Fixture {
        registry: Registry::new(store),
        served: Served::new(kplex_apiserver::kinds()),
        _dir: dir,
    };
    for cluster in CLUSTERS {
        for ns in NAMESPACES {
            f.create(
                &f.scope(Some(cluster), NAMESPACE_RESOURCE, None),
                json!({"metadata": {"name": ns}}),
            )
            .await;
        }
        for (plural, kind, subresources) in [
            ("widgets", "Widget", json!({"status": {}})),
            ("gadgets", "Gadget", json!({})),
        ] {
            let crd = custom_resource_definition(plural, kind, subresources);
            let name = crd["metadata"]["name"].as_str().unwrap().to_string();
            f.served
                .set_crd(cluster, &name, kplex_apiserver::crd::descriptions(&crd));
        }
    }
    f
}

fn custom_resource_definition(plural: &str, kind: &str, subresources: Value) -> Value {
    let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.example.com")},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List")},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": open, "status": open}}},
                "subresources": subresources,
            }],
        },
    })
}

impl Fixture {
    fn scope(
        &self,
        cluster: Option<&str>,
        (group, version, resource): (&str, &str, &str),
        namespace: Option<&str>,
    ) -> Scope {
        Scope {
            cluster: cluster.map(String::from),
            desc: self
                .served
                .lookup(Some(cluster.unwrap_or("c1")), group, version, resource)
                .unwrap(),
            namespace: namespace.map(String::from),
        }
    }

    /// `resource` in one namespace of one logical cluster.
    fn ns(&self, cluster: &str, resource: (&str, &str, &str), namespace: &str) -> Scope {
        self.scope(Some(cluster), resource, Some(namespace))
    }

    async fn create(&self, scope: &Scope, obj: Value) -> Value {
        self.registry
            .create(scope, obj, &WriteOptions::default())
            .await
            .unwrap()
            .object
    }

    async fn try_create(&self, scope: &Scope, obj: Value) -> Result<Value, ApiError> {
        self.registry
            .create(scope, obj, &WriteOptions::default())
            .await
            .map(|r| r.object)
    }

    async fn get(&self, scope: &Scope, name: &str) -> Result<Value, ApiError> {
        let stored = self.registry.get(scope, name).await?;
        stored.decode_as(&scope.desc)
    }

    /// PUT of the main resource: `obj` names itself.
    async fn update(&self, scope: &Scope, obj: Value) -> Result<Value, ApiError> {
        let name = name_of(&obj);
        self.registry
            .update(scope, &name, obj, &WriteOptions::default())
            .await
            .map(|r| r.object)
    }

    /// PUT of `/status`.
    async fn update_status(&self, scope: &Scope, obj: Value) -> Result<Value, ApiError> {
        let name = name_of(&obj);
        let opts = WriteOptions {
            subresource: Some("status".into()),
            ..Default::default()
        };
        self.registry
            .update(scope, &name, obj, &opts)
            .await
            .map(|r| r.object)
    }

    async fn patch(
        &self,
        scope: &Scope,
        name: &str,
        kind: PatchKind,
        body: Value,
    ) -> Result<Value, ApiError> {
        let body = serde_json::to_vec(&body).unwrap();
        self.registry
            .patch(scope, name, kind, &body, &WriteOptions::default())
            .await
            .map(|r| r.object)
    }

    async fn merge_patch(&self, scope: &Scope, name: &str, body: Value) -> Result<Value, ApiError> {
        self.patch(scope, name, PatchKind::Merge, body).await
    }

    async fn delete(
        &self,
        scope: &Scope,
        name: &str,
        opts: DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError> {
        self.registry.delete(scope, name, &opts).await
    }

    async fn list(&self, scope: &Scope, opts: ListOptions) -> Result<ListResult, ApiError> {
        self.registry.list(scope, &opts).await
    }

    /// Names (namespace/name where the scope spans namespaces) of a filtered list.
    async fn names(
        &self,
        scope: &Scope,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Vec<String> {
        let opts = ListOptions {
            selectors: Selectors::parse(&scope.desc, labels, fields).unwrap(),
            ..Default::default()
        };
        names(&self.list(scope, opts).await.unwrap())
    }

    async fn watch_from(&self, scope: &Scope, resource_version: &str) -> WatchStream {
        let opts = WatchOptions {
            resource_version: Some(resource_version.to_string()),
            ..Default::default()
        };
        self.registry.watch(scope, opts).await.unwrap()
    }

    /// The store's current revision, as a list reports it (what a client watches from).
    async fn list_resource_version(&self, scope: &Scope) -> String {
        self.list(scope, ListOptions::default())
            .await
            .unwrap()
            .resource_version
            .to_string()
    }
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
            },
        },
    })
}

fn custom(kind: &str, name: &str) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": kind, "metadata": {"name": name}, "spec": {"size": 1}})
}

fn at<'a>(obj: &'a Value, pointer: &str) -> &'a Value {
    obj.pointer(pointer).unwrap_or(&Value::Null)
}

fn rv(obj: &Value) -> String {
    at(obj, "/metadata/resourceVersion")
        .as_str()
        .unwrap()
        .to_string()
}

fn rv_number(obj: &Value) -> i64 {
    rv(obj).parse().unwrap()
}

fn name_of(obj: &Value) -> String {
    at(obj, "/metadata/name").as_str().unwrap().to_string()
}

fn generation(obj: &Value) -> i64 {
    at(obj, "/metadata/generation").as_i64().unwrap()
}

fn names(list: &ListResult) -> Vec<String> {
    list.items
        .iter()
        .map(|s| {
            let obj = s.decode().unwrap();
            match at(&obj, "/metadata/namespace").as_str() {
                Some(ns) if !ns.is_empty() => format!("{ns}/{}", name_of(&obj)),
                _ => name_of(&obj),
            }
        })
        .collect()
}

#[track_caller]
fn assert_status(err: &ApiError, code: u16, reason: &str) {
    assert_eq!(
        (err.code, err.reason.as_str()),
        (code, reason),
        "unexpected status: {err:?}"
    );
}

#[track_caller]
fn pending(outcome: DeleteOutcome) -> Value {
    match outcome {
        DeleteOutcome::Pending(obj) => obj,
        DeleteOutcome::Deleted(obj) => panic!("deleted at once, expected pending: {obj}"),
    }
}

#[track_caller]
fn deleted(outcome: DeleteOutcome) -> Value {
    match outcome {
        DeleteOutcome::Deleted(obj) => obj,
        DeleteOutcome::Pending(obj) => panic!("pending, expected deleted: {obj}"),
    }
}

/// The next watch event: its type, the object's name and resourceVersion.
async fn next(w: &mut WatchStream) -> (WatchEventKind, String, i64) {
    let event = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("no watch event within 5s")
        .expect("watch ended");
    let (kind, stored) = match event {
        WatchEvent::Object(k, s) => (k, s),
        WatchEvent::Shared(k, o) => (k, o.stored.clone()),
        other => panic!("unexpected {other:?}"),
    };
    let obj = stored.decode().unwrap();
    (kind, name_of(&obj), stored.resource_version)
}

/// The next watch event's type and object name.
async fn next_named(w: &mut WatchStream) -> (WatchEventKind, String) {
    let (kind, name, _) = next(w).await;
    (kind, name)
}

fn policy(p: &str) -> DeleteOptions {
    DeleteOptions {
        propagation_policy: Some(p.into()),
        ..Default::default()
    }
}

fn dry_run() -> WriteOptions {
    WriteOptions {
        dry_run: true,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------
// Create

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_sets_system_metadata_and_get_returns_what_create_returned() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let mut body = configmap("settings");
    // Fields only the server may set are replaced, whatever the client sent.
    body["metadata"]["uid"] = json!("client-uid");
    body["metadata"]["creationTimestamp"] = json!("2001-01-01T00:00:00Z");
    body["metadata"]["deletionTimestamp"] = json!("2001-01-01T00:00:00Z");
    body["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    let created = f.create(&s, body).await;
    let uid = at(&created, "/metadata/uid").as_str().unwrap();
    assert!(!uid.is_empty() && uid != "client-uid", "{created}");
    let created_at = at(&created, "/metadata/creationTimestamp")
        .as_str()
        .unwrap();
    assert_ne!(created_at, "2001-01-01T00:00:00Z");
    assert!(
        at(&created, "/metadata/deletionTimestamp").is_null(),
        "{created}"
    );
    assert!(at(&created, "/metadata/deletionGracePeriodSeconds").is_null());
    assert_eq!(at(&created, "/metadata/namespace"), &json!("team-a"));
    assert!(rv_number(&created) > 0);
    assert_eq!(f.get(&s, "settings").await.unwrap(), created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_of_an_existing_name_is_409_already_exists() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let first = f.create(&s, configmap("taken")).await;
    let err = f.try_create(&s, configmap("taken")).await.unwrap_err();
    assert_status(&err, 409, "AlreadyExists");
    assert_eq!(err.message, "configmaps \"taken\" already exists");
    assert_eq!(f.get(&s, "taken").await.unwrap(), first, "left as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_create_of_an_existing_name_is_409_already_exists() {
    // kube's dry-run storage checks the key like a real create would (resttest runs
    // testCreateAlreadyExisting with and without dryRun).
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    f.create(&s, configmap("taken")).await;
    let err = f
        .registry
        .create(&s, configmap("taken"), &dry_run())
        .await
        .unwrap_err();
    assert_status(&err, 409, "AlreadyExists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_create_returns_the_object_and_stores_nothing() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let since = f.list_resource_version(&s).await;
    let mut w = f.watch_from(&s, &since).await;
    let result = f
        .registry
        .create(&s, configmap("imagined"), &dry_run())
        .await
        .unwrap();
    assert!(result.created);
    assert_eq!(name_of(&result.object), "imagined");
    assert!(at(&result.object, "/metadata/uid").is_string());
    assert_status(&f.get(&s, "imagined").await.unwrap_err(), 404, "NotFound");
    f.create(&s, configmap("real")).await;
    assert_eq!(
        next_named(&mut w).await,
        (WatchEventKind::Added, "real".into()),
        "no event for the dry run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_name_appends_a_random_suffix() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let body = json!({"metadata": {"generateName": "job-"}, "data": {}});
    let a = name_of(&f.create(&s, body.clone()).await);
    let b = name_of(&f.create(&s, body).await);
    for n in [&a, &b] {
        assert!(n.starts_with("job-") && n.len() == "job-".len() + 5, "{n}");
    }
    assert_ne!(a, b);
    let mut listed = f.names(&s, None, None).await;
    listed.sort();
    let mut want = vec![format!("team-a/{a}"), format!("team-a/{b}")];
    want.sort();
    assert_eq!(listed, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_without_a_name_or_with_an_invalid_one_is_422_invalid() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let err = f
        .try_create(&s, json!({"metadata": {}, "data": {}}))
        .await
        .unwrap_err();
    assert_status(&err, 422, "Invalid");
    let causes = err.details.unwrap().causes;
    assert_eq!(
        (causes[0].field.as_str(), causes[0].reason.as_str()),
        ("metadata.name", "FieldValueRequired")
    );
    // Names a path segment or a DNS subdomain cannot carry (resttest's NameMayNotBe /
    // NameMayNotContain, plus upper case and underscores).
    for bad in ["..", ".", "a/b", "a%b", "Upper", "under_score"] {
        let err = f.try_create(&s, configmap(bad)).await.unwrap_err();
        assert_status(&err, 422, "Invalid");
        assert_eq!(
            err.details.unwrap().causes[0].field,
            "metadata.name",
            "{bad}"
        );
    }
    assert!(f.names(&s, None, None).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_a_mismatched_namespace_is_400() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let mut body = configmap("elsewhere");
    body["metadata"]["namespace"] = json!("team-b");
    let err = f.try_create(&s, body).await.unwrap_err();
    assert_status(&err, 400, "BadRequest");
    assert_eq!(
        err.message,
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    assert!(
        f.names(&f.ns("c1", CONFIGMAPS, "team-b"), None, None)
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_scoped_create_drops_a_namespace_in_the_body() {
    let f = fixture().await;
    let s = f.scope(Some("c1"), NAMESPACE_RESOURCE, None);
    let created = f
        .create(
            &s,
            json!({"metadata": {"name": "team-c", "namespace": "team-a"}}),
        )
        .await;
    assert!(at(&created, "/metadata/namespace").is_null(), "{created}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_a_foreign_api_version_or_kind_is_400() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    for (api_version, kind) in [("v2", "ConfigMap"), ("v1", "Secret")] {
        let mut body = configmap("typed");
        body["apiVersion"] = json!(api_version);
        body["kind"] = json!(kind);
        assert_status(
            &f.try_create(&s, body).await.unwrap_err(),
            400,
            "BadRequest",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_in_a_missing_namespace_is_404_namespace_not_found() {
    let f = fixture().await;
    let err = f
        .try_create(&f.ns("c1", CONFIGMAPS, "nowhere"), configmap("lost"))
        .await
        .unwrap_err();
    assert_status(&err, 404, "NotFound");
    assert_eq!(err.message, "namespaces \"nowhere\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_in_a_terminating_namespace_is_403_forbidden() {
    let f = fixture().await;
    let ns = f.scope(Some("c1"), NAMESPACE_RESOURCE, None);
    let terminating = pending(
        f.delete(&ns, "team-b", DeleteOptions::default())
            .await
            .unwrap(),
    );
    assert_eq!(at(&terminating, "/status/phase"), &json!("Terminating"));
    let err = f
        .try_create(&f.ns("c1", CONFIGMAPS, "team-b"), configmap("late"))
        .await
        .unwrap_err();
    assert_status(&err, 403, "Forbidden");
    // NamespaceLifecycle: admission.NewForbidden names the object, plus a cause clients test for.
    assert_eq!(
        err.message,
        "configmaps \"late\" is forbidden: unable to create new content in namespace team-b because it is being terminated"
    );
    let causes = err.details.unwrap().causes;
    assert!(
        causes
            .iter()
            .any(|c| c.reason == "NamespaceTerminating" && c.field == "metadata.namespace"),
        "{causes:?}"
    );
    // The namespace of the same name in another logical cluster is not affected.
    f.create(&f.ns("c2", CONFIGMAPS, "team-b"), configmap("late"))
        .await;
}

// ---------------------------------------------------------------------------------------
// Update: compare-and-swap, preconditions, rules

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_at_the_current_resource_version_succeeds_and_get_returns_it() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let created = f.create(&s, configmap("cas")).await;
    let mut next = created.clone();
    next["data"]["k"] = json!("v2");
    let updated = f.update(&s, next).await.unwrap();
    assert!(rv_number(&updated) > rv_number(&created));
    assert_eq!(at(&updated, "/data/k"), &json!("v2"));
    assert_eq!(at(&updated, "/metadata/uid"), at(&created, "/metadata/uid"));
    assert_eq!(f.get(&s, "cas").await.unwrap(), updated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_or_patch_at_a_stale_resource_version_is_409_conflict() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let stale = f.create(&s, configmap("cas")).await;
    let mut winner = stale.clone();
    winner["data"]["k"] = json!("first");
    let current = f.update(&s, winner).await.unwrap();

    let mut loser = stale.clone();
    loser["data"]["k"] = json!("second");
    let err = f.update(&s, loser).await.unwrap_err();
    assert_status(&err, 409, "Conflict");
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on configmaps \"cas\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let patch = json!({"metadata": {"resourceVersion": rv(&stale)}, "data": {"k": "third"}});
    let err = f.merge_patch(&s, "cas", patch).await.unwrap_err();
    assert_status(&err, 409, "Conflict");
    assert_eq!(f.get(&s, "cas").await.unwrap(), current, "the winner stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_without_a_resource_version_is_unconditional_for_built_ins() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    f.create(&s, configmap("blind")).await;
    f.merge_patch(&s, "blind", json!({"data": {"k": "meanwhile"}}))
        .await
        .unwrap();
    let mut body = configmap("blind");
    body["data"]["k"] = json!("overwritten");
    let updated = f.update(&s, body).await.unwrap();
    assert_eq!(at(&updated, "/data/k"), &json!("overwritten"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_or_patch_of_a_missing_object_is_404() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let err = f.update(&s, configmap("ghost")).await.unwrap_err();
    assert_status(&err, 404, "NotFound");
    assert_eq!(err.message, "configmaps \"ghost\" not found");
    let err = f
        .registry
        .update(&s, "ghost", configmap("ghost"), &dry_run())
        .await
        .unwrap_err();
    assert_status(&err, 404, "NotFound");
    let err = f
        .merge_patch(&s, "ghost", json!({"data": {"k": "v"}}))
        .await
        .unwrap_err();
    assert_status(&err, 404, "NotFound");
    assert_status(&f.get(&s, "ghost").await.unwrap_err(), 404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_a_mismatched_name_is_400() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let created = f.create(&s, configmap("right")).await;
    let mut body = created.clone();
    body["metadata"]["name"] = json!("wrong");
    let err = f
        .registry
        .update(&s, "right", body, &WriteOptions::default())
        .await
        .unwrap_err();
    assert_status(&err, 400, "BadRequest");
    assert_eq!(
        err.message,
        "the name of the object (wrong) does not match the name on the URL (right)"
    );
    assert_status(&f.get(&s, "wrong").await.unwrap_err(), 404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_a_mismatched_namespace_is_400() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let created = f.create(&s, configmap("here")).await;
    let mut body = created.clone();
    body["metadata"]["namespace"] = json!("team-b");
    let err = f.update(&s, body).await.unwrap_err();
    assert_status(&err, 400, "BadRequest");
    assert_eq!(
        err.message,
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    assert_eq!(f.get(&s, "here").await.unwrap(), created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_another_uid_is_409_conflict() {
    // A PUT body's uid is a precondition (rest.DefaultUpdatedObjectInfo.Preconditions):
    // an object deleted and recreated under the same name is not silently overwritten.
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let created = f.create(&s, configmap("reborn")).await;
    let mut body = created.clone();
    body["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000000");
    body["data"]["k"] = json!("changed");
    let err = f.update(&s, body).await.unwrap_err();
    assert_status(&err, 409, "Conflict");
    assert_eq!(f.get(&s, "reborn").await.unwrap(), created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_ignores_client_changes_to_generation_and_creation_timestamp() {
    let f = fixture().await;
    let s = f.ns("c1", DEPLOYMENTS, "team-a");
    let mut body = deployment("web");
    body["metadata"]["generation"] = json!(5);
    let created = f.create(&s, body).await;
    assert_eq!(
        generation(&created),
        1,
        "a new object starts at generation 1"
    );
    let mut body = created.clone();
    body["metadata"]["generation"] = json!(7);
    body["metadata"]["creationTimestamp"] = json!("2001-01-01T00:00:00Z");
    let updated = f.update(&s, body).await.unwrap();
    assert_eq!(generation(&updated), 1);
    assert_eq!(
        at(&updated, "/metadata/creationTimestamp"),
        at(&created, "/metadata/creationTimestamp")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_update_is_422_and_changes_nothing() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let created = f.create(&s, configmap("strict")).await;
    let mut body = created.clone();
    body["data"] = json!({"not a key!": "v"});
    let err = f.update(&s, body).await.unwrap_err();
    assert_status(&err, 422, "Invalid");
    assert_eq!(err.details.unwrap().causes[0].field, "data[not a key!]");
    assert_eq!(f.get(&s, "strict").await.unwrap(), created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_update_and_patches_keep_the_resource_version_and_emit_no_event() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let mut body = configmap("steady");
    body["metadata"]["labels"] = json!({"app": "web"});
    let created = f.create(&s, body).await;
    let mut w = f.watch_from(&s, &rv(&created)).await;

    let put = f.update(&s, created.clone()).await.unwrap();
    assert_eq!(rv(&put), rv(&created), "PUT of the object as read");
    let mut unpinned = created.clone();
    unpinned["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    assert_eq!(rv(&f.update(&s, unpinned).await.unwrap()), rv(&created));
    let empty = f.merge_patch(&s, "steady", json!({})).await.unwrap();
    assert_eq!(rv(&empty), rv(&created), "empty merge patch");
    let same = f
        .merge_patch(
            &s,
            "steady",
            json!({"metadata": {"labels": {"app": "web"}}, "data": {"k": "v"}}),
        )
        .await
        .unwrap();
    assert_eq!(rv(&same), rv(&created), "merge patch restating the object");
    let json_patch = f
        .patch(
            &s,
            "steady",
            PatchKind::Json,
            json!([{"op": "replace", "path": "/data/k", "value": "v"}]),
        )
        .await
        .unwrap();
    assert_eq!(
        rv(&json_patch),
        rv(&created),
        "JSON patch restating a value"
    );
    assert_eq!(f.get(&s, "steady").await.unwrap(), created);

    f.create(&s, configmap("marker")).await;
    assert_eq!(
        next_named(&mut w).await,
        (WatchEventKind::Added, "marker".into()),
        "no MODIFIED event for writes that changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_update_patch_and_delete_store_nothing() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let mut body = configmap("kept");
    body["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let created = f.create(&s, body).await;
    f.create(&s, configmap("plain")).await;
    let since = f.list_resource_version(&s).await;
    let mut w = f.watch_from(&s, &since).await;

    let mut body = created.clone();
    body["data"]["k"] = json!("dry");
    let updated = f
        .registry
        .update(&s, "kept", body, &dry_run())
        .await
        .unwrap();
    assert_eq!(
        at(&updated.object, "/data/k"),
        &json!("dry"),
        "the would-be object"
    );
    let patch = serde_json::to_vec(&json!({"data": {"k": "dry"}})).unwrap();
    f.registry
        .patch(&s, "kept", PatchKind::Merge, &patch, &dry_run())
        .await
        .unwrap();
    let opts = DeleteOptions {
        dry_run: true,
        ..Default::default()
    };
    let marked = pending(f.registry.delete(&s, "kept", &opts).await.unwrap());
    assert!(at(&marked, "/metadata/deletionTimestamp").is_string());
    deleted(f.registry.delete(&s, "plain", &opts).await.unwrap());

    assert_eq!(f.get(&s, "kept").await.unwrap(), created);
    assert!(f.get(&s, "plain").await.is_ok());
    f.create(&s, configmap("marker")).await;
    assert_eq!(
        next_named(&mut w).await,
        (WatchEventKind::Added, "marker".into()),
        "no events for dry runs"
    );
}

// ---------------------------------------------------------------------------------------
// Delete: finalizers, preconditions, propagation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_of_a_missing_object_is_404() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let err = f
        .delete(&s, "ghost", DeleteOptions::default())
        .await
        .unwrap_err();
    assert_status(&err, 404, "NotFound");
    let dry = DeleteOptions {
        dry_run: true,
        ..Default::default()
    };
    assert_status(
        &f.delete(&s, "ghost", dry).await.unwrap_err(),
        404,
        "NotFound",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_without_finalizers_removes_the_object_at_once() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let created = f.create(&s, configmap("brief")).await;
    let mut w = f.watch_from(&s, &rv(&created)).await;
    let last = deleted(
        f.delete(&s, "brief", DeleteOptions::default())
            .await
            .unwrap(),
    );
    assert_eq!(name_of(&last), "brief");
    assert_status(&f.get(&s, "brief").await.unwrap_err(), 404, "NotFound");
    assert_eq!(
        next_named(&mut w).await,
        (WatchEventKind::Deleted, "brief".into())
    );
    // The name is free again: a new object, with a new uid.
    let again = f.create(&s, configmap("brief")).await;
    assert_ne!(at(&again, "/metadata/uid"), at(&created, "/metadata/uid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_keep_a_deleted_object_until_the_last_one_is_removed() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let mut body = configmap("doomed");
    body["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b"]);
    let created = f.create(&s, body).await;
    let mut w = f.watch_from(&s, &rv(&created)).await;

    let marked = pending(
        f.delete(&s, "doomed", DeleteOptions::default())
            .await
            .unwrap(),
    );
    let stamp = at(&marked, "/metadata/deletionTimestamp").clone();
    assert!(stamp.is_string(), "{marked}");
    assert_eq!(
        at(&marked, "/metadata/deletionGracePeriodSeconds"),
        &json!(0)
    );
    assert_eq!(f.get(&s, "doomed").await.unwrap(), marked);
    assert_eq!(
        next_named(&mut w).await,
        (WatchEventKind::Modified, "doomed".into())
    );

    // Deleting again changes nothing.
    let again = pending(
        f.delete(&s, "doomed", DeleteOptions::default())
            .await
            .unwrap(),
    );
    assert_eq!(rv(&again), rv(&marked));
    assert_eq!(at(&again, "/metadata/deletionTimestamp"), &stamp);

    // No new finalizers once deletion started; the deletion timestamp cannot be undone.
    let mut more = marked.clone();
    more["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b", "example.com/c"]);
    let err = f.update(&s, more).await.unwrap_err();
    assert_status(&err, 422, "Invalid");
    let cause = &err.details.unwrap().causes[0];
    assert_eq!(
        (cause.field.as_str(), cause.reason.as_str()),
        ("metadata.finalizers", "FieldValueForbidden")
    );
    let mut undo = marked.clone();
    undo["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("deletionTimestamp");
    undo["metadata"]["finalizers"] = json!(["example.com/b"]);
    let one_left = f.update(&s, undo).await.unwrap();
    assert_eq!(at(&one_left, "/metadata/deletionTimestamp"), &stamp);
    assert_eq!(
        next_named(&mut w).await,
        (WatchEventKind::Modified, "doomed".into())
    );

    let release = f
        .patch(
            &s,
            "doomed",
            PatchKind::Json,
            json!([{"op": "remove", "path": "/metadata/finalizers"}]),
        )
        .await
        .unwrap();
    assert_eq!(name_of(&release), "doomed");
    assert_status(&f.get(&s, "doomed").await.unwrap_err(), 404, "NotFound");
    assert_eq!(
        next_named(&mut w).await,
        (WatchEventKind::Deleted, "doomed".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_over_an_object_being_deleted_is_409_already_exists() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let mut body = configmap("lingering");
    body["metadata"]["finalizers"] = json!(["example.com/hold"]);
    f.create(&s, body).await;
    pending(
        f.delete(&s, "lingering", DeleteOptions::default())
            .await
            .unwrap(),
    );
    let err = f.try_create(&s, configmap("lingering")).await.unwrap_err();
    assert_status(&err, 409, "AlreadyExists");
    // genericregistry.Store.create says why the name is still taken.
    assert_eq!(
        err.message,
        "object is being deleted: configmaps \"lingering\" already exists"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_bumps_the_generation_of_kinds_that_track_it() {
    let f = fixture().await;
    let s = f.ns("c1", DEPLOYMENTS, "team-a");
    let mut body = deployment("web");
    body["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let created = f.create(&s, body).await;
    let marked = pending(f.delete(&s, "web", DeleteOptions::default()).await.unwrap());
    assert_eq!(generation(&marked), generation(&created) + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_preconditions_on_uid_and_resource_version() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let created = f.create(&s, configmap("guarded")).await;
    let current = f
        .merge_patch(&s, "guarded", json!({"data": {"k": "v2"}}))
        .await
        .unwrap();
    let uid = at(&current, "/metadata/uid").as_str().unwrap().to_string();

    let wrong_uid = DeleteOptions {
        precondition_uid: Some("00000000-0000-0000-0000-000000000000".into()),
        ..Default::default()
    };
    let err = f.delete(&s, "guarded", wrong_uid).await.unwrap_err();
    assert_status(&err, 409, "Conflict");
    let stale = DeleteOptions {
        precondition_resource_version: Some(rv(&created)),
        ..Default::default()
    };
    let err = f.delete(&s, "guarded", stale).await.unwrap_err();
    assert_status(&err, 409, "Conflict");
    assert_eq!(f.get(&s, "guarded").await.unwrap(), current);

    let right = DeleteOptions {
        precondition_uid: Some(uid),
        precondition_resource_version: Some(rv(&current)),
        ..Default::default()
    };
    deleted(f.delete(&s, "guarded", right).await.unwrap());
    assert_status(&f.get(&s, "guarded").await.unwrap_err(), 404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_and_foreground_propagation_add_their_finalizers() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    for (p, finalizer) in [("Orphan", "orphan"), ("Foreground", "foregroundDeletion")] {
        let name = p.to_lowercase();
        f.create(&s, configmap(&name)).await;
        let marked = pending(f.delete(&s, &name, policy(p)).await.unwrap());
        assert_eq!(
            at(&marked, "/metadata/finalizers"),
            &json!([finalizer]),
            "{p}"
        );
        assert!(
            at(&marked, "/metadata/deletionTimestamp").is_string(),
            "{p}"
        );
        assert_eq!(
            f.get(&s, &name).await.unwrap(),
            marked,
            "{p}: waits for the collector"
        );
    }
    f.create(&s, configmap("background")).await;
    deleted(
        f.delete(&s, "background", policy("Background"))
            .await
            .unwrap(),
    );
    assert_status(&f.get(&s, "background").await.unwrap_err(), 404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_after_orphan_replaces_the_orphan_finalizer() {
    // genericregistry deletionFinalizersForGarbageCollection: the two GC finalizers are
    // removed, then the one the new policy asks for is added back.
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let mut body = configmap("switch");
    body["metadata"]["finalizers"] = json!(["example.com/hold"]);
    f.create(&s, body).await;
    let orphaned = pending(f.delete(&s, "switch", policy("Orphan")).await.unwrap());
    assert_eq!(
        at(&orphaned, "/metadata/finalizers"),
        &json!(["example.com/hold", "orphan"])
    );
    let foreground = pending(f.delete(&s, "switch", policy("Foreground")).await.unwrap());
    assert_eq!(
        at(&foreground, "/metadata/finalizers"),
        &json!(["example.com/hold", "foregroundDeletion"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_propagation_policy_is_422_invalid_delete_options() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let created = f.create(&s, configmap("kept")).await;
    let err = f.delete(&s, "kept", policy("Sometimes")).await.unwrap_err();
    assert_status(&err, 422, "Invalid");
    let details = err.details.clone().unwrap();
    assert_eq!(
        (details.group.as_str(), details.kind.as_str()),
        ("meta.k8s.io", "DeleteOptions"),
        "{err:?}"
    );
    assert_eq!(
        (
            details.causes[0].field.as_str(),
            details.causes[0].reason.as_str()
        ),
        ("propagationPolicy", "FieldValueNotSupported")
    );
    assert_eq!(f.get(&s, "kept").await.unwrap(), created);
}

// ---------------------------------------------------------------------------------------
// Status subresource and generation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_resource_ignores_status() {
    let f = fixture().await;
    let s = f.ns("c1", DEPLOYMENTS, "team-a");
    let mut body = deployment("web");
    body["status"] = json!({"replicas": 9, "observedGeneration": 9});
    let created = f.create(&s, body).await;
    assert!(
        at(&created, "/status/replicas").is_null(),
        "create drops status: {created}"
    );

    let with_status = f
        .update_status(
            &s,
            json!({"metadata": {"name": "web"}, "status": {"replicas": 1}}),
        )
        .await
        .unwrap();
    let mut body = with_status.clone();
    body["status"] = json!({"replicas": 7});
    body["spec"]["replicas"] = json!(2);
    let updated = f.update(&s, body).await.unwrap();
    assert_eq!(at(&updated, "/spec/replicas"), &json!(2));
    assert_eq!(
        at(&updated, "/status"),
        &json!({"replicas": 1}),
        "status kept"
    );
    let patched = f
        .merge_patch(&s, "web", json!({"status": {"replicas": 5}}))
        .await
        .unwrap();
    assert_eq!(at(&patched, "/status"), &json!({"replicas": 1}));
    assert_eq!(
        rv(&patched),
        rv(&updated),
        "a status-only patch of the main resource is a no-op"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_subresource_ignores_spec_and_labels() {
    let f = fixture().await;
    let s = f.ns("c1", DEPLOYMENTS, "team-a");
    let created = f.create(&s, deployment("web")).await;
    let mut body = created.clone();
    body["spec"]["replicas"] = json!(4);
    body["metadata"]["labels"] = json!({"app": "web", "extra": "x"});
    body["status"] = json!({"replicas": 1, "observedGeneration": 1});
    let updated = f.update_status(&s, body).await.unwrap();
    assert_eq!(
        at(&updated, "/status"),
        &json!({"replicas": 1, "observedGeneration": 1})
    );
    assert_eq!(at(&updated, "/spec"), at(&created, "/spec"));
    assert_eq!(
        at(&updated, "/metadata/labels"),
        at(&created, "/metadata/labels")
    );
    assert_eq!(generation(&updated), 1, "status does not bump generation");
    assert!(rv_number(&updated) > rv_number(&created));
    assert_eq!(f.get(&s, "web").await.unwrap(), updated);

    let again = f.update_status(&s, updated.clone()).await.unwrap();
    assert_eq!(
        rv(&again),
        rv(&updated),
        "a no-op status write keeps the resourceVersion"
    );

    let mut stale = created.clone();
    stale["status"] = json!({"replicas": 2});
    assert_status(
        &f.update_status(&s, stale).await.unwrap_err(),
        409,
        "Conflict",
    );
    let err = f
        .update_status(&s, json!({"metadata": {"name": "ghost"}, "status": {}}))
        .await
        .unwrap_err();
    assert_status(&err, 404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_bumps_on_spec_changes_only() {
    let f = fixture().await;
    let s = f.ns("c1", DEPLOYMENTS, "team-a");
    let created = f.create(&s, deployment("web")).await;
    assert_eq!(generation(&created), 1);
    let labelled = f
        .merge_patch(&s, "web", json!({"metadata": {"labels": {"extra": "x"}}}))
        .await
        .unwrap();
    assert_eq!(generation(&labelled), 1, "labels");
    let finalized = f
        .merge_patch(
            &s,
            "web",
            json!({"metadata": {"finalizers": ["example.com/x"]}}),
        )
        .await
        .unwrap();
    assert_eq!(generation(&finalized), 1, "finalizers");
    let status = f
        .update_status(
            &s,
            json!({"metadata": {"name": "web"}, "status": {"replicas": 1}}),
        )
        .await
        .unwrap();
    assert_eq!(generation(&status), 1, "status");
    let scaled = f
        .merge_patch(&s, "web", json!({"spec": {"replicas": 3}}))
        .await
        .unwrap();
    assert_eq!(generation(&scaled), 2, "spec");
    let image = f
        .patch(
            &s,
            "web",
            PatchKind::Strategic,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.28"}]}}}}),
        )
        .await
        .unwrap();
    assert_eq!(generation(&image), 3, "pod template");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_annotation_changes_bump_generation() {
    // deploymentStrategy.PrepareForUpdate: "annotation updates bump the generation because
    // annotations are copied from deployments to their replica sets".
    let f = fixture().await;
    let s = f.ns("c1", DEPLOYMENTS, "team-a");
    f.create(&s, deployment("web")).await;
    let annotated = f
        .merge_patch(
            &s,
            "web",
            json!({"metadata": {"annotations": {"example.com/rollout": "1"}}}),
        )
        .await
        .unwrap();
    assert_eq!(generation(&annotated), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resource_status_subresource_ignores_everything_but_status() {
    let f = fixture().await;
    let s = f.ns("c1", WIDGETS, "team-a");
    let created = f.create(&s, custom("Widget", "w")).await;
    assert_eq!(generation(&created), 1);
    let mut body = created.clone();
    body["spec"]["size"] = json!(2);
    body["metadata"]["labels"] = json!({"x": "y"});
    body["metadata"]["annotations"]["example.com/note"] = json!("n");
    body["status"] = json!({"ready": true});
    let updated = f.update_status(&s, body).await.unwrap();
    assert_eq!(at(&updated, "/status"), &json!({"ready": true}));
    assert_eq!(at(&updated, "/spec"), at(&created, "/spec"));
    assert_eq!(at(&updated, "/metadata/labels"), &Value::Null);
    assert_eq!(
        at(&updated, "/metadata/annotations"),
        at(&created, "/metadata/annotations")
    );
    assert_eq!(generation(&updated), 1);
    let mut body = updated.clone();
    body["status"] = json!({"ready": false});
    body["spec"]["size"] = json!(3);
    let main = f.update(&s, body).await.unwrap();
    assert_eq!(at(&main, "/status"), &json!({"ready": true}));
    assert_eq!(generation(&main), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resource_without_status_subresource_bumps_generation_on_status_changes() {
    // customResourceStrategy.PrepareForUpdate: without a status subresource, status is just
    // another field, and any change outside metadata bumps the generation.
    let f = fixture().await;
    let s = f.ns("c1", GADGETS, "team-a");
    let created = f.create(&s, custom("Gadget", "g")).await;
    let mut body = created.clone();
    body["status"] = json!({"ready": true});
    let updated = f.update(&s, body).await.unwrap();
    assert_eq!(at(&updated, "/status"), &json!({"ready": true}));
    assert_eq!(generation(&updated), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resource_update_without_a_resource_version_is_422() {
    // customResourceStrategy.AllowUnconditionalUpdate is false: a PUT must name the version
    // it replaces ("metadata.resourceVersion: must be specified for an update").
    let f = fixture().await;
    let s = f.ns("c1", WIDGETS, "team-a");
    let created = f.create(&s, custom("Widget", "w")).await;
    let mut body = custom("Widget", "w");
    body["spec"]["size"] = json!(5);
    let err = f.update(&s, body).await.unwrap_err();
    assert_status(&err, 422, "Invalid");
    assert_eq!(
        err.details.unwrap().causes[0].field,
        "metadata.resourceVersion"
    );
    assert_eq!(f.get(&s, "w").await.unwrap(), created);
    // A patch names no version and needs none.
    let patched = f
        .merge_patch(&s, "w", json!({"spec": {"size": 5}}))
        .await
        .unwrap();
    assert_eq!(at(&patched, "/spec/size"), &json!(5));
}

// ---------------------------------------------------------------------------------------
// Selectors

async fn labelled_configmaps(f: &Fixture) -> Scope {
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "web", "tier": "back"})),
        ("c", json!({"app": "db"})),
        ("d", json!({})),
    ] {
        let mut body = configmap(name);
        body["metadata"]["labels"] = labels;
        f.create(&s, body).await;
    }
    let mut other = configmap("a");
    other["metadata"]["labels"] = json!({"app": "web", "tier": "front"});
    f.create(&f.ns("c1", CONFIGMAPS, "team-b"), other.clone())
        .await;
    f.create(&f.ns("c2", CONFIGMAPS, "team-a"), other).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_selectors_filter_lists() {
    let f = fixture().await;
    let s = labelled_configmaps(&f).await;
    let cases = [
        ("app=web", vec!["a", "b"]),
        ("app==web", vec!["a", "b"]),
        ("app!=web", vec!["c", "d"]),
        ("tier in (front,back)", vec!["a", "b"]),
        ("tier notin (front)", vec!["b", "c", "d"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c", "d"]),
        ("app=web,tier=back", vec!["b"]),
        ("app=cache", vec![]),
        ("", vec!["a", "b", "c", "d"]),
    ];
    for (selector, want) in cases {
        let want: Vec<String> = want.iter().map(|n| format!("team-a/{n}")).collect();
        assert_eq!(
            f.names(&s, Some(selector), None).await,
            want,
            "{selector:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_selectors_on_name_and_namespace() {
    let f = fixture().await;
    let s = labelled_configmaps(&f).await;
    assert_eq!(
        f.names(&s, None, Some("metadata.name=c")).await,
        vec!["team-a/c"]
    );
    assert_eq!(
        f.names(&s, None, Some("metadata.name!=c")).await,
        vec!["team-a/a", "team-a/b", "team-a/d"]
    );
    let all_namespaces = f.scope(Some("c1"), CONFIGMAPS, None);
    assert_eq!(
        f.names(&all_namespaces, None, Some("metadata.name=a"))
            .await,
        vec!["team-a/a", "team-b/a"]
    );
    assert_eq!(
        f.names(
            &all_namespaces,
            Some("tier=front"),
            Some("metadata.namespace=team-b")
        )
        .await,
        vec!["team-b/a"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_field_labels_and_malformed_selectors_are_400() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let err = Selectors::parse(&s.desc, None, Some("data.k=v")).unwrap_err();
    assert_status(&err, 400, "BadRequest");
    assert_eq!(err.message, "field label not supported: data.k");
    let err = Selectors::parse(&s.desc, Some("app in (web"), None).unwrap_err();
    assert_status(&err, 400, "BadRequest");
}

// ---------------------------------------------------------------------------------------
// Lists: paging and resourceVersion

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_limit_and_continue_at_one_resource_version() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    for i in 0..5 {
        f.create(&s, configmap(&format!("p{i}"))).await;
    }
    f.create(&f.ns("c1", CONFIGMAPS, "team-b"), configmap("p9"))
        .await;
    let page = |token: Option<String>| ListOptions {
        limit: 2,
        continue_token: token,
        ..Default::default()
    };

    let first = f.list(&s, page(None)).await.unwrap();
    assert_eq!(names(&first), vec!["team-a/p0", "team-a/p1"]);
    assert_eq!(first.remaining, Some(3));
    let at_rv = first.resource_version;
    // Writes between pages do not show: every page is read at the first page's revision.
    f.merge_patch(&s, "p2", json!({"data": {"k": "later"}}))
        .await
        .unwrap();
    f.create(&s, configmap("p5")).await;
    f.delete(&s, "p4", DeleteOptions::default()).await.unwrap();

    let second = f
        .list(&s, page(first.continue_token.clone()))
        .await
        .unwrap();
    assert_eq!(names(&second), vec!["team-a/p2", "team-a/p3"]);
    assert_eq!(second.resource_version, at_rv);
    assert_eq!(second.remaining, Some(1));
    assert_eq!(
        at(&second.items[0].decode().unwrap(), "/data/k"),
        &json!("v")
    );

    let third = f
        .list(&s, page(second.continue_token.clone()))
        .await
        .unwrap();
    assert_eq!(names(&third), vec!["team-a/p4"]);
    assert_eq!(third.resource_version, at_rv);
    assert_eq!(third.continue_token, None, "the last page");

    let fresh = f.list(&s, ListOptions::default()).await.unwrap();
    assert_eq!(
        names(&fresh),
        vec![
            "team-a/p0",
            "team-a/p1",
            "team-a/p2",
            "team-a/p3",
            "team-a/p5"
        ]
    );
    assert!(fresh.resource_version > at_rv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_with_a_label_selector_hold_matches_only() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    for i in 0..7 {
        let mut body = configmap(&format!("s{i}"));
        body["metadata"]["labels"] = json!({"even": (i % 2 == 0).to_string()});
        f.create(&s, body).await;
    }
    let selectors = Selectors::parse(&s.desc, Some("even=true"), None).unwrap();
    let mut pages = vec![];
    let mut token = None;
    loop {
        let opts = ListOptions {
            selectors: selectors.clone(),
            limit: 3,
            continue_token: token,
            ..Default::default()
        };
        let page = f.list(&s, opts).await.unwrap();
        pages.push(names(&page));
        token = page.continue_token;
        if token.is_none() || pages.len() > 3 {
            break;
        }
    }
    assert_eq!(
        pages,
        vec![
            vec!["team-a/s0", "team-a/s2", "team-a/s4"],
            vec!["team-a/s6"]
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_tokens_of_a_compacted_revision_are_410_expired() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    for i in 0..3 {
        f.create(&s, configmap(&format!("p{i}"))).await;
    }
    let first = f
        .list(
            &s,
            ListOptions {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.create(&s, configmap("p3")).await;
    let now = f.registry.store.status().await.unwrap().revision;
    f.registry.store.compact(now).await.unwrap();
    let opts = ListOptions {
        limit: 1,
        continue_token: first.continue_token,
        ..Default::default()
    };
    let err = f.list(&s, opts).await.unwrap_err();
    assert_status(&err, 410, "Expired");
    // The 410 carries a token that goes on from the same key at the latest revision.
    let fresh = err
        .continue_token
        .clone()
        .expect("a fresh continue token in the 410");
    let rest = f
        .list(
            &s,
            ListOptions {
                continue_token: Some(fresh),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let names: Vec<String> = rest
        .items
        .iter()
        .map(|i| {
            at(&i.decode().unwrap(), "/metadata/name")
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["p1", "p2", "p3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_with_a_resource_version_is_400() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    for i in 0..2 {
        f.create(&s, configmap(&format!("p{i}"))).await;
    }
    let first = f
        .list(
            &s,
            ListOptions {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let opts = ListOptions {
        limit: 1,
        continue_token: first.continue_token,
        resource_version: Some(first.resource_version.to_string()),
        ..Default::default()
    };
    let err = f.list(&s, opts).await.unwrap_err();
    assert_status(&err, 400, "BadRequest");
    assert_eq!(
        err.message,
        "specifying resource version is not allowed when using continue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_at_an_exact_past_resource_version_shows_the_past() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let first = f.create(&s, configmap("early")).await;
    f.create(&s, configmap("late")).await;
    f.merge_patch(&s, "early", json!({"data": {"k": "new"}}))
        .await
        .unwrap();
    let exact = ListOptions {
        resource_version: Some(rv(&first)),
        resource_version_match: Some("Exact".into()),
        ..Default::default()
    };
    let past = f.list(&s, exact).await.unwrap();
    assert_eq!(names(&past), vec!["team-a/early"]);
    assert_eq!(past.resource_version, rv_number(&first));
    assert_eq!(at(&past.items[0].decode().unwrap(), "/data/k"), &json!("v"));
    // NotOlderThan (the default) may answer with anything at least that new: here, now.
    let not_older = ListOptions {
        resource_version: Some(rv(&first)),
        ..Default::default()
    };
    assert_eq!(
        names(&f.list(&s, not_older).await.unwrap()),
        vec!["team-a/early", "team-a/late"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_at_a_future_resource_version_is_504_too_large_resource_version() {
    // storage.NewTooLargeResourceVersionError: a Timeout with the ResourceVersionTooLarge
    // cause, which client-go's reflector tests for (storage.IsTooLargeResourceVersion).
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let now = f.registry.store.status().await.unwrap().revision;
    let opts = ListOptions {
        resource_version: Some((now + 100).to_string()),
        ..Default::default()
    };
    let err = f.list(&s, opts).await.unwrap_err();
    assert_status(&err, 504, "Timeout");
    let details = err.details.clone().unwrap();
    assert!(
        details
            .causes
            .iter()
            .any(|c| c.reason == "ResourceVersionTooLarge"),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Watch

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_list_resource_version_replays_later_events_in_order() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    f.create(&s, configmap("before")).await;
    let listed = f.list_resource_version(&s).await;
    f.create(&s, configmap("a")).await;
    f.merge_patch(&s, "a", json!({"data": {"k": "2"}}))
        .await
        .unwrap();
    f.create(&s, configmap("b")).await;
    // Same names elsewhere: another namespace, another logical cluster.
    f.create(&f.ns("c1", CONFIGMAPS, "team-b"), configmap("a"))
        .await;
    f.create(&f.ns("c2", CONFIGMAPS, "team-a"), configmap("a"))
        .await;
    f.delete(&s, "a", DeleteOptions::default()).await.unwrap();

    // Opened after the writes: everything after the list's revision comes back, in order.
    let mut w = f.watch_from(&s, &listed).await;
    let mut seen = vec![];
    for _ in 0..4 {
        seen.push(next(&mut w).await);
    }
    let kinds: Vec<(WatchEventKind, &str)> =
        seen.iter().map(|(k, n, _)| (*k, n.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (WatchEventKind::Added, "a"),
            (WatchEventKind::Modified, "a"),
            (WatchEventKind::Added, "b"),
            (WatchEventKind::Deleted, "a"),
        ]
    );
    let versions: Vec<i64> = seen.iter().map(|(_, _, rv)| *rv).collect();
    assert!(
        versions.windows(2).all(|p| p[0] < p[1]),
        "resourceVersions increase: {versions:?}"
    );
    assert!(versions[0] > listed.parse::<i64>().unwrap());
    // And it goes on live.
    f.create(&s, configmap("c")).await;
    assert_eq!(
        next_named(&mut w).await,
        (WatchEventKind::Added, "c".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_with_a_field_selector_sees_only_that_object() {
    let f = fixture().await;
    let s = f.ns("c1", CONFIGMAPS, "team-a");
    let since = f.list_resource_version(&s).await;
    let opts = WatchOptions {
        selectors: Selectors::parse(&s.desc, None, Some("metadata.name=mine")).unwrap(),
        resource_version: Some(since),
        ..Default::default()
    };
    let mut w = f.registry.watch(&s, opts).await.unwrap();
    f.create(&s, configmap("other")).await;
    f.create(&s, configmap("mine")).await;
    f.merge_patch(&s, "other", json!({"data": {"k": "2"}}))
        .await
        .unwrap();
    f.delete(&s, "mine", DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        next_named(&mut w).await,
        (WatchEventKind::Added, "mine".into())
    );
    assert_eq!(
        next_named(&mut w).await,
        (WatchEventKind::Deleted, "mine".into())
    );
}

// ---------------------------------------------------------------------------------------
// Scoping: logical clusters and namespaces

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_scoped_by_logical_cluster_and_namespace() {
    let f = fixture().await;
    let c1a = f.ns("c1", CONFIGMAPS, "team-a");
    let c1b = f.ns("c1", CONFIGMAPS, "team-b");
    let c2a = f.ns("c2", CONFIGMAPS, "team-a");
    // One name, three objects.
    let one = f.create(&c1a, configmap("shared")).await;
    let two = f.create(&c1b, configmap("shared")).await;
    let three = f.create(&c2a, configmap("shared")).await;
    let uids = [&one, &two, &three].map(|o| at(o, "/metadata/uid").clone());
    assert!(uids[0] != uids[1] && uids[1] != uids[2] && uids[0] != uids[2]);
    assert_eq!(
        at(&three, "/metadata/annotations/kcp.io~1cluster"),
        &json!("c2")
    );
    f.create(&c1a, configmap("only-c1")).await;

    assert_status(&f.get(&c2a, "only-c1").await.unwrap_err(), 404, "NotFound");
    assert_status(&f.get(&c1b, "only-c1").await.unwrap_err(), 404, "NotFound");
    assert_eq!(f.names(&c1b, None, None).await, vec!["team-b/shared"]);
    assert_eq!(f.names(&c2a, None, None).await, vec!["team-a/shared"]);
    assert_eq!(
        f.names(&f.scope(Some("c1"), CONFIGMAPS, None), None, None)
            .await,
        vec!["team-a/only-c1", "team-a/shared", "team-b/shared"]
    );
    assert_eq!(
        f.names(&f.scope(Some("c2"), CONFIGMAPS, None), None, None)
            .await,
        vec!["team-a/shared"]
    );
    // Across logical clusters (a wildcard list) every object shows, and none can be written.
    let everywhere = f.scope(None, CONFIGMAPS, None);
    assert_eq!(f.names(&everywhere, None, None).await.len(), 4);
    let err = f
        .try_create(&everywhere, configmap("nowhere"))
        .await
        .unwrap_err();
    assert_status(&err, 405, "MethodNotAllowed");

    // Writes stay in their scope.
    f.merge_patch(&c2a, "shared", json!({"data": {"k": "c2"}}))
        .await
        .unwrap();
    deleted(
        f.delete(&c1b, "shared", DeleteOptions::default())
            .await
            .unwrap(),
    );
    assert_eq!(f.get(&c1a, "shared").await.unwrap(), one);
    assert_eq!(
        at(&f.get(&c2a, "shared").await.unwrap(), "/data/k"),
        &json!("c2")
    );
    assert_status(&f.get(&c1b, "shared").await.unwrap_err(), 404, "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_are_scoped_by_logical_cluster_and_namespace() {
    let f = fixture().await;
    let c1b = f.ns("c1", CONFIGMAPS, "team-b");
    let since = f.list_resource_version(&c1b).await;
    let mut in_namespace = f.watch_from(&c1b, &since).await;
    let c2 = f.scope(Some("c2"), CONFIGMAPS, None);
    let mut in_cluster = f.watch_from(&c2, &since).await;

    f.create(&f.ns("c1", CONFIGMAPS, "team-a"), configmap("x"))
        .await;
    f.create(&f.ns("c2", CONFIGMAPS, "team-b"), configmap("y"))
        .await;
    f.create(&c1b, configmap("z")).await;

    assert_eq!(
        next_named(&mut in_namespace).await,
        (WatchEventKind::Added, "z".into())
    );
    assert_eq!(
        next_named(&mut in_cluster).await,
        (WatchEventKind::Added, "y".into())
    );
    f.create(&f.ns("c2", CONFIGMAPS, "team-a"), configmap("w"))
        .await;
    assert_eq!(
        next_named(&mut in_cluster).await,
        (WatchEventKind::Added, "w".into())
    );
}
