//! Resource descriptions: what the generic registry needs to know to serve a kind.
//!
//! Adding a kind is data, not code: one [`ResourceDesc`] per group/version/resource. Built-in
//! kinds come from the table in [`builtins`]; CRDs are turned into descriptions when they are
//! established (see `crd.rs`).

use std::borrow::Cow;
use std::sync::Arc;

use kplex_schema::Schema;

use crate::registry::strategy::{self, Strategy};
use crate::shared::SharedObjects;

/// A column of `kubectl get` output (a Table column).
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// `name` for the Name column.
    pub format: String,
    pub description: String,
    /// 0: always shown; >0: only with `-o wide`.
    pub priority: i32,
    pub cell: Cell,
}

/// How a column's cell is computed from an object.
#[derive(Clone, Debug)]
pub enum Cell {
    Name,
    /// Humanized time since creation (kube-apiserver sends "5m", "3d").
    Age,
    /// A JSONPath into the object (CRD printer columns, simple built-in columns).
    Path(Arc<kplex_schema::jsonpath::JsonPath>),
    /// One of the computed built-in columns (see `table.rs`).
    Computed(&'static str),
}

/// Where a resource comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A Kubernetes kind (schema from k8s-openapi, strategic merge patch, protobuf).
    Builtin,
    /// A kind kplex itself defines (kcp's tenancy/core/apis groups): described by a schema
    /// like a CRD, served in every logical cluster, merge patch only (as kcp serves them).
    System,
    /// Served from a CustomResourceDefinition (its name); `storage_version` is the version
    /// objects are stored at.
    Crd {
        name: String,
        storage_version: String,
    },
    /// Served through an APIBinding from an APIExport's APIResourceSchema (see `apis`).
    Bound(Arc<BoundInfo>),
}

/// Where a bound resource comes from: the binding, the export and its identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundInfo {
    /// The APIBinding serving it in this logical cluster.
    pub binding: String,
    /// The logical cluster (name) and name of the APIExport.
    pub export_cluster: String,
    pub export: String,
    /// The export's identity hash: bound objects are stored under it, so two exports of the
    /// same group/resource never share storage.
    pub identity: String,
    /// The APIResourceSchema's name.
    pub schema: String,
    pub storage_version: String,
    /// The export has a `maximalPermissionPolicy.local`.
    pub maximal_permission_policy: bool,
}

/// Converts an object of a multi-version system kind to another version of it.
pub type Conversion = fn(&mut serde_json::Value, &str);

/// The scale subresource's mapping (CRDs use JSON paths; built-ins use spec.replicas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// A subresource beyond `status` and `scale`, as discovery lists it. Its handler is the
/// kind's strategy (`update_subresource`) or a feature's virtual resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// The body's (group, version, kind); `None`: the parent kind itself.
    pub kind: Option<(&'static str, &'static str, &'static str)>,
    pub verbs: &'static [&'static str],
}

/// Everything the server needs to serve one group/version/resource.
#[derive(Clone, Debug)]
pub struct ResourceDesc {
    /// "" for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// Subresources beyond status and scale (discovery; see [`Subresource`]).
    pub subresources: Vec<Subresource>,
    /// Bump `metadata.generation` when anything but metadata (and status) changes.
    pub generation: bool,
    pub columns: Vec<Column>,
    /// Field selectors beyond metadata.name/namespace: (label, JSONPath).
    pub field_labels: Vec<(String, String)>,
    /// Validation, pruning and defaulting: a CRD version's schema. Built-ins compile theirs
    /// on first use (see [`ResourceDesc::validation_schema`]), keeping start-up fast.
    pub schema: Option<Arc<Schema>>,
    pub builtin_schema: Arc<std::sync::OnceLock<Option<Arc<Schema>>>>,
    pub origin: Origin,
    /// Verbs the resource supports (discovery and dispatch).
    pub verbs: Vec<&'static str>,
    /// System kinds served at several versions convert stored objects on read.
    pub conversion: Option<Conversion>,
    /// The kind's own rules on writes (generic unless the owning feature says otherwise).
    pub strategy: Arc<dyn Strategy>,
    /// Read-only objects every logical cluster has without storing them (cluster-scoped
    /// kinds only; see [`crate::shared`]).
    pub shared: Option<Arc<SharedObjects>>,
    /// Another group's storage this resource is a view of (see [`StoredAs`]).
    pub stored_as: Option<StoredAs>,
    /// A deprecated version's warning, sent with every answer about it (a `Warning` header,
    /// which kubectl prints and `--warnings-as-errors` fails on).
    pub deprecation_warning: Option<String>,
}

/// A resource stored as the same-named resource of another group, as another version of
/// it (kube's `events.k8s.io/v1` Events are core/v1 Events): objects are written in that
/// group's form and read back through the resource's [`Conversion`].
#[derive(Clone, Copy, Debug)]
pub struct StoredAs {
    pub group: &'static str,
    /// The version objects are stored at, when not this resource's own (discovery's
    /// `storageVersionHash` names it).
    pub version: Option<&'static str>,
    /// Turns an object of this resource into the stored form.
    pub to_storage: fn(&mut serde_json::Value),
}

pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceDesc {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The group whose storage holds this resource's objects.
    pub fn storage_group(&self) -> &str {
        self.stored_as.as_ref().map_or(&self.group, |s| s.group)
    }

    /// The version objects of this resource are stored at.
    pub fn storage_version(&self) -> &str {
        match &self.origin {
            Origin::Crd {
                storage_version, ..
            } => storage_version,
            Origin::Bound(b) => &b.storage_version,
            _ => self
                .stored_as
                .as_ref()
                .and_then(|s| s.version)
                .unwrap_or(&self.version),
        }
    }

    /// Discovery's `storageVersionHash` (kube's `discovery.StorageVersionHash`): the first
    /// 8 bytes of the SHA-256 of `group/version/kind` at the storage version, base64. Clients
    /// compare it to notice a storage version change; it is not a security hash.
    pub fn storage_version_hash(&self) -> String {
        use base64::Engine;
        use sha2::Digest;
        let gvk = format!("{}/{}/{}", self.group, self.storage_version(), self.kind);
        let digest = sha2::Sha256::digest(gvk.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(&digest[..8])
    }

    /// An object as it is stored (converted when the resource is a view of another).
    pub fn storage_form<'a>(&self, obj: &'a serde_json::Value) -> Cow<'a, serde_json::Value> {
        match &self.stored_as {
            Some(s) => {
                let mut stored = obj.clone();
                (s.to_storage)(&mut stored);
                Cow::Owned(stored)
            }
            None => Cow::Borrowed(obj),
        }
    }

    /// `configmaps` or `deployments.apps`: how errors name the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Served from a CRD or an APIBinding: versions share storage, apiVersion is rewritten.
    pub fn is_custom(&self) -> bool {
        matches!(self.origin, Origin::Crd { .. } | Origin::Bound(_))
    }

    /// The bound resource's export, if served through an APIBinding.
    pub fn bound(&self) -> Option<&BoundInfo> {
        match &self.origin {
            Origin::Bound(b) => Some(b),
            _ => None,
        }
    }

    /// The resource's segment of its storage keys, as kcp lays them out: custom resources
    /// under `<plural>/customresources`, bound ones under `<plural>/<identityHash>`.
    pub fn storage_resource(&self) -> String {
        match &self.origin {
            Origin::Crd { .. } => format!("{}/customresources", self.plural),
            Origin::Bound(b) => format!("{}/{}", self.plural, b.identity),
            _ => self.plural.clone(),
        }
    }

    /// Built-ins accept strategic merge patch; custom resources answer it with 415.
    pub fn strategic_patch(&self) -> bool {
        self.origin == Origin::Builtin
    }

    /// The schema objects are checked against: the CRD's, or the built-in kind's (derived
    /// from k8s-openapi by `kplex-openapi`, compiled once).
    pub fn validation_schema(&self) -> Option<Arc<Schema>> {
        if self.schema.is_some() {
            return self.schema.clone();
        }
        if self.origin != Origin::Builtin {
            return None;
        }
        self.builtin_schema
            .get_or_init(|| {
                let raw = kplex_openapi::builtin_schema(&self.group, &self.version, &self.kind)?;
                match Schema::compile(&raw) {
                    Ok(s) => Some(Arc::new(s)),
                    Err(errors) => {
                        tracing::warn!(kind = %self.kind, ?errors, "built-in schema does not compile; skipping validation");
                        None
                    }
                }
            })
            .clone()
    }

    /// The same description with `strategy` as the kind's rules.
    pub fn with_strategy(mut self, strategy: Arc<dyn Strategy>) -> Self {
        self.strategy = strategy;
        self
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

impl Column {
    pub fn name() -> Self {
        Column {
            name: "Name".into(),
            type_: "string".into(),
            format: "name".into(),
            description: String::new(),
            priority: 0,
            cell: Cell::Name,
        }
    }

    pub fn age() -> Self {
        Column {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            cell: Cell::Age,
        }
    }

    /// A column read from the object by a JSONPath (ours, so known to parse).
    pub fn path(name: &str, type_: &str, path: &str) -> Self {
        let cell = match kplex_schema::jsonpath::parse(path) {
            Ok(p) => Cell::Path(Arc::new(p)),
            Err(_) => Cell::Computed("invalid"),
        };
        Column {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            cell,
        }
    }
}

/// A kind kplex defines itself (kcp's `*.kcp.io` groups): cluster-scoped, with status, in the
/// `kcp` category, described by `schema` like a CRD.
pub fn system(
    (group, version): (&str, &str),
    (kind, plural): (&str, &str),
    short: &[&str],
    columns: Vec<Column>,
    schema: &serde_json::Value,
) -> ResourceDesc {
    let schema = Schema::compile(schema).ok().map(Arc::new);
    ResourceDesc {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: vec!["kcp".into()],
        namespaced: false,
        status: true,
        scale: None,
        subresources: vec![],
        generation: true,
        columns,
        field_labels: vec![],
        schema,
        builtin_schema: Arc::default(),
        origin: Origin::System,
        verbs: ALL_VERBS.to_vec(),
        conversion: None,
        strategy: strategy::generic(),
        shared: None,
        stored_as: None,
        deprecation_warning: None,
    }
}
