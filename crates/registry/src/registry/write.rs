//! CREATE, UPDATE, PATCH and DELETE: optimistic concurrency over the store's compare-and-swap,
//! Kubernetes' metadata rules, finalizers, dry run.

use kplex_apimachinery::patch_schema::{self, PatchSchema};
use std::sync::Arc;

use kplex_apimachinery::{ApiError, BadValue, StatusCause, UserInfo, meta, names, patch};
use kplex_store::{Precondition, TxnOutcome};
use serde_json::{Map, Value};

use super::admission::Operation;
use super::{Registry, Scope, Stored, store_error};
use crate::catalog::ResourceDesc;
use crate::object::{self, CLUSTER_ANNOTATION};

/// `fieldValidation`: what to do with unknown fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s.unwrap_or("") {
            "" | "Warn" => Ok(Self::Warn),
            "Ignore" => Ok(Self::Ignore),
            "Strict" => Ok(Self::Strict),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            ))),
        }
    }
}

/// Options every write takes.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: Option<String>,
    /// `status`, `scale`, `finalize` or None for the main resource.
    pub subresource: Option<String>,
    /// A write by the server itself that sets status along with everything else (never set
    /// for client requests, which must use `/status`).
    pub system: bool,
    /// The object comes from server-side apply and already carries its managedFields.
    pub applied: bool,
    /// Server-side apply's `force`: take ownership of conflicting fields.
    pub force: bool,
    /// The new object came whole from the client (PUT): its resourceVersion, if any, is a
    /// precondition even when it equals the stored one.
    pub pin_resource_version: bool,
    /// Who asks (admission sees it); `None`: the server itself.
    pub user: Option<Arc<UserInfo>>,
}

/// Field manager of writes that name none (and of the server's own writes).
pub const DEFAULT_MANAGER: &str = "kplex";

/// Records the fields a write sets for its manager (an `Update` operation in
/// `metadata.managedFields`), as kube-apiserver does for every create, update and patch.
fn record_update(
    desc: &ResourceDesc,
    old: Option<&Value>,
    new: &Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let schema = desc.validation_schema();
    let ti: &dyn kplex_ssa::TypeInfo = match &schema {
        Some(s) => s.as_ref(),
        None => &kplex_ssa::DEDUCED,
    };
    let manager = opts
        .field_manager
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(DEFAULT_MANAGER);
    let sub = opts.subresource.as_deref().unwrap_or("");
    match kplex_ssa::update(
        old,
        new,
        ti,
        manager,
        &desc.api_version(),
        sub,
        &meta::now_rfc3339(),
    ) {
        Ok(v) => Ok(v),
        // Unreadable managedFields on the stored object: start over, as kube does.
        Err(kplex_ssa::Error::ManagedFields(_)) | Err(kplex_ssa::Error::FieldsV1(_)) => {
            let mut clean = new.clone();
            meta::remove(&mut clean, "managedFields");
            let mut clean_old = old.cloned();
            if let Some(o) = clean_old.as_mut() {
                meta::remove(o, "managedFields");
            }
            kplex_ssa::update(
                clean_old.as_ref(),
                &clean,
                ti,
                manager,
                &desc.api_version(),
                sub,
                &meta::now_rfc3339(),
            )
            .map_err(|e| ApiError::bad_request(e.to_string()))
        }
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

/// A successful write: the object as stored (with its resourceVersion), whether it was
/// created, and warnings for the `Warning` header.
#[derive(Debug)]
pub struct WriteResult {
    pub object: Value,
    pub created: bool,
    pub warnings: Vec<String>,
}

/// The patch formats of PATCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    /// Server-side apply.
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }

    /// A PATCH's format from its content type; 415 when it names none.
    pub fn of_request(content_type: Option<&str>) -> Result<Self, ApiError> {
        content_type
            .and_then(Self::from_content_type)
            .ok_or_else(|| {
                ApiError::unsupported_media_type(&[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                ])
            })
    }

    /// Applies a patch with no schema (strategic merge as on an untyped object), for the
    /// subresources and views that patch outside [`Registry::patch`]; apply is refused.
    pub fn apply_untyped(self, current: &Value, patch: &[u8]) -> Result<Value, ApiError> {
        match self {
            Self::Json => patch::json_patch(current, patch),
            Self::Merge => patch::merge_patch(current, patch),
            Self::Apply => Err(ApiError::unsupported_media_type(&[
                "application/json-patch+json",
                "application/merge-patch+json",
            ])),
            Self::Strategic => {
                patch::strategic_merge_patch(current, patch, patch_schema::untyped())
            }
        }
    }
}

/// DeleteOptions from the body or query.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    /// Who asks (admission sees it); `None`: the server itself.
    pub user: Option<Arc<UserInfo>>,
}

/// What a DELETE did.
#[derive(Debug)]
pub enum DeleteOutcome {
    /// Gone; the last state of the object.
    Deleted(Value),
    /// Marked for deletion, waiting on finalizers.
    Pending(Value),
}

/// Metadata fields the server owns on create.
const SYSTEM_FIELDS: &[&str] = &[
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
];

/// Conflict retries for read-modify-write verbs before giving up (each retry re-reads).
const MAX_RETRIES: usize = 32;

impl Registry {
    pub async fn create(
        &self,
        scope: &Scope,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<WriteResult, ApiError> {
        let desc = &scope.desc;
        let cluster = scope.cluster.clone().ok_or_else(|| wildcard_write(desc))?;
        check_type(desc, &mut obj)?;
        set_namespace(scope, &mut obj)?;
        if desc.namespaced {
            self.check_namespace_accepts_content(
                &cluster,
                meta::namespace(&obj).unwrap_or(""),
                desc,
                meta::name(&obj).unwrap_or(""),
            )
            .await?;
        }
        for f in SYSTEM_FIELDS {
            meta::remove(&mut obj, f);
        }
        if !opts.applied {
            meta::remove(&mut obj, "managedFields");
        }
        if meta::name(&obj).unwrap_or("").is_empty()
            && let Some(prefix) = meta::generate_name(&obj).filter(|p| !p.is_empty())
        {
            let generated = names::generate_name(prefix);
            meta::set_name(&mut obj, &generated);
        }
        meta::set_uid(&mut obj, &uuid::Uuid::new_v4().to_string());
        meta::set_creation_timestamp(&mut obj, &meta::now_rfc3339());
        if desc.generation {
            meta::set_generation(&mut obj, 1);
        }
        stamp_cluster(&mut obj, &cluster);
        if desc.status
            && !opts.system
            && !desc.strategy.status_on_create()
            && let Some(map) = obj.as_object_mut()
        {
            map.retain(|k, _| k != "status");
        }
        desc.strategy.prepare_create(&mut obj)?;
        desc.strategy.apply_defaults(&mut obj);
        self.admit_mutating(scope, Operation::Create, opts, &mut obj, None)
            .await?;
        // A mutating webhook may have rewritten it too.
        stamp_cluster(&mut obj, &cluster);
        let warnings = apply_schema(desc, &mut obj, opts.field_validation)?;
        validate(desc, &obj, None)?;
        self.admit_validating(scope, Operation::Create, opts, &obj, None)
            .await?;
        if !opts.applied {
            obj = record_update(desc, None, &obj, opts)?;
        }
        let name = meta::name(&obj).unwrap_or("").to_string();
        let key = scope.key(&name)?;
        if scope.shared(&name).is_some() {
            // It exists in every workspace already; an apply means to change it.
            return Err(match opts.applied {
                true => scope.missing(&name),
                false => ApiError::already_exists(&desc.group, &desc.plural, &name),
            });
        }
        if let Some(quota) = &self.quota {
            quota
                .admit_cluster(self.store.as_ref(), scope, &name)
                .await?;
            quota.admit_namespace(self, scope, &name).await?;
        }
        if opts.dry_run {
            // A dry run answers as the write would: the name must be free.
            if let Some(current) = self.store.get(&key).await.map_err(store_error)? {
                return Err(name_taken(desc, &name, &current.value));
            }
            return Ok(WriteResult {
                object: obj,
                created: true,
                warnings,
            });
        }
        let stored = object::encode(&desc.storage_form(&obj))?;
        match self.store.create(&key, stored).await.map_err(store_error)? {
            TxnOutcome::Succeeded { revision, .. } => {
                self.counted(scope, revision, true);
                object::set_resource_version(&mut obj, revision);
                Ok(WriteResult {
                    object: obj,
                    created: true,
                    warnings,
                })
            }
            TxnOutcome::Failed { current } => Err(name_taken(
                desc,
                &name,
                current.as_ref().map_or(&[][..], |kv| &kv.value[..]),
            )),
        }
    }

    /// PUT: replace the object (or, with `subresource`, that part of it).
    pub async fn update(
        &self,
        scope: &Scope,
        name: &str,
        new: Value,
        opts: &WriteOptions,
    ) -> Result<WriteResult, ApiError> {
        // Custom resources allow no unconditional update (kube's customResourceStrategy):
        // a PUT names the version it replaces.
        if scope.desc.is_custom() && meta::resource_version(&new).is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                &scope.desc.group,
                &scope.desc.kind,
                name,
                vec![StatusCause {
                    reason: "FieldValueInvalid".into(),
                    message: "Invalid value: 0x0: must be specified for an update".into(),
                    field: "metadata.resourceVersion".into(),
                }],
            ));
        }
        self.update_with(
            scope,
            name,
            &WriteOptions {
                pin_resource_version: true,
                ..opts.clone()
            },
            |_, _| Ok(new.clone()),
        )
        .await
    }

    pub async fn patch(
        &self,
        scope: &Scope,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteResult, ApiError> {
        if kind == PatchKind::Apply {
            return self.apply(scope, name, body, opts).await;
        }
        let desc = scope.desc.clone();
        let schema: Option<&'static dyn PatchSchema> = match kind {
            PatchKind::Strategic if !desc.strategic_patch() => {
                return Err(ApiError::unsupported_media_type(&[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                ]));
            }
            PatchKind::Strategic => Some(
                patch_schema::builtin_patch_schema(&desc.group, &desc.kind)
                    .unwrap_or(patch_schema::untyped()),
            ),
            _ => None,
        };
        self.update_with(scope, name, opts, |current, _| match (kind, schema) {
            (PatchKind::Json, _) => patch::json_patch(current, body),
            (PatchKind::Merge, _) => patch::merge_patch(current, body),
            (PatchKind::Strategic, Some(s)) => {
                let patched = patch::strategic_merge_patch(current, body, s)?;
                check_restorable(body, &patched)?;
                Ok(patched)
            }
            (PatchKind::Strategic, None) | (PatchKind::Apply, _) => {
                Err(ApiError::internal("no patch schema"))
            }
        })
        .await
    }

    /// The update loop: read, compute the new object, apply the rules, compare-and-swap;
    /// on a lost race re-read and try again (unless the client named a resourceVersion).
    pub async fn update_with(
        &self,
        scope: &Scope,
        name: &str,
        opts: &WriteOptions,
        mut compute: impl FnMut(&Value, i64) -> Result<Value, ApiError>,
    ) -> Result<WriteResult, ApiError> {
        let desc = scope.desc.clone();
        let key = scope.key(name)?;
        for _ in 0..MAX_RETRIES {
            let current = self
                .store
                .get(&key)
                .await
                .map_err(store_error)?
                .ok_or_else(|| scope.missing(name))?;
            let old = Stored {
                bytes: current.value.clone(),
                resource_version: current.mod_revision,
            }
            .decode_as(&desc)?;
            let mut new = compute(&old, current.mod_revision)?;
            check_type(&desc, &mut new)?;
            if meta::name(&new).is_some_and(|n| n != name) {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&new).unwrap_or("")
                )));
            }
            set_namespace(scope, &mut new)?;
            // A PUT body's uid is a precondition too: an object deleted and re-created under
            // the same name is not overwritten by a client that read the old one.
            if opts.pin_resource_version
                && let Some(uid) = meta::uid(&new).filter(|u| !u.is_empty())
                && Some(uid) != meta::uid(&old)
            {
                return Err(uid_precondition_failed(&desc, name, uid, &old));
            }
            // A resourceVersion the client chose is a precondition: no retry on a lost race.
            // One merely carried over from the stored object (a patch that does not set it,
            // an apply) is not: the loop re-reads and recomputes, like kube's GuaranteedUpdate.
            // "0" asks for no precondition, as an empty one does, where unconditional
            // updates are allowed (kube's AllowUnconditionalUpdate: built-ins, not custom
            // resources, whose "0" can never match and so conflicts).
            let pinned = meta::resource_version(&new)
                .filter(|rv| !rv.is_empty() && (*rv != "0" || desc.is_custom()))
                .filter(|rv| opts.pin_resource_version || *rv != current.mod_revision.to_string())
                .map(str::to_string);
            if let Some(rv) = &pinned
                && rv != &current.mod_revision.to_string()
            {
                return Err(ApiError::optimistic_lock_conflict(
                    &desc.group,
                    &desc.plural,
                    name,
                ));
            }
            // Apply computed the managed fields for this very write: keep them whatever part
            // of the object the endpoint lets change.
            let applied_fields = if opts.applied {
                new.pointer("/metadata/managedFields").cloned()
            } else {
                None
            };
            let mut new = if opts.system {
                new
            } else {
                merge_for_subresource(&desc, &old, new, opts.subresource.as_deref())?
            };
            keep_system_fields(&old, &mut new);
            if let (Some(fields), Some(m)) = (applied_fields, meta::meta_mut(&mut new)) {
                m.insert("managedFields".into(), fields);
            }
            self.admit_mutating(scope, Operation::Update, opts, &mut new, Some(&old))
                .await?;
            if let Some(cluster) = scope.cluster.as_deref() {
                stamp_cluster(&mut new, cluster);
            }
            let warnings = apply_schema(&desc, &mut new, opts.field_validation)?;
            desc.strategy.prepare_update(&old, &mut new)?;
            desc.strategy.apply_defaults(&mut new);
            validate(&desc, &new, Some((&old, opts.subresource.as_deref())))?;
            self.admit_validating(scope, Operation::Update, opts, &new, Some(&old))
                .await?;
            if desc.generation
                && (spec_changed(&old, &new, desc.status)
                    || desc.strategy.bumps_generation(&old, &new))
            {
                meta::set_generation(&mut new, meta::generation(&old) + 1);
            }
            object::set_resource_version(&mut new, current.mod_revision);
            if !opts.applied {
                new = record_update(&desc, Some(&old), &new, opts)?;
            }
            if new == old {
                // Nothing changed: no write, no new resourceVersion (as kube-apiserver).
                return Ok(WriteResult {
                    object: new,
                    created: false,
                    warnings,
                });
            }
            if meta::deletion_timestamp(&new).is_some() && desc.strategy.finalizers_done(&new) {
                if !opts.dry_run {
                    let outcome = self
                        .store
                        .delete(&key, Precondition::ModRevision(current.mod_revision))
                        .await
                        .map_err(store_error)?;
                    let TxnOutcome::Succeeded { revision, .. } = outcome else {
                        continue;
                    };
                    self.counted(scope, revision, false);
                }
                return Ok(WriteResult {
                    object: new,
                    created: false,
                    warnings,
                });
            }
            if opts.dry_run {
                return Ok(WriteResult {
                    object: new,
                    created: false,
                    warnings,
                });
            }
            let stored = object::encode(&desc.storage_form(&new))?;
            match self
                .store
                .update(&key, stored, current.mod_revision)
                .await
                .map_err(store_error)?
            {
                TxnOutcome::Succeeded { revision, .. } => {
                    object::set_resource_version(&mut new, revision);
                    return Ok(WriteResult {
                        object: new,
                        created: false,
                        warnings,
                    });
                }
                TxnOutcome::Failed { .. } if pinned.is_some() => {
                    return Err(ApiError::optimistic_lock_conflict(
                        &desc.group,
                        &desc.plural,
                        name,
                    ));
                }
                TxnOutcome::Failed { current: None } => return Err(scope.not_found(name)),
                TxnOutcome::Failed { .. } => continue,
            }
        }
        Err(ApiError::conflict(
            &desc.group,
            &desc.plural,
            name,
            "too many concurrent writers, try again",
        ))
    }

    pub async fn delete(
        &self,
        scope: &Scope,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError> {
        let desc = scope.desc.clone();
        let key = scope.key(name)?;
        for _ in 0..MAX_RETRIES {
            let current = self
                .store
                .get(&key)
                .await
                .map_err(store_error)?
                .ok_or_else(|| scope.missing(name))?;
            let mut obj = object::decode(&current.value, current.mod_revision)?;
            check_preconditions(&desc, name, &obj, current.mod_revision, opts)?;
            self.admit_delete(scope, opts, &obj).await?;
            let mut finalizers = meta::finalizers(&obj);
            let policy = opts.propagation_policy.as_deref().unwrap_or("");
            let marker = match policy {
                "Orphan" => Some("orphan"),
                "Foreground" => Some("foregroundDeletion"),
                "Background" | "" => None,
                other => {
                    return Err(ApiError::invalid(
                        "meta.k8s.io",
                        "DeleteOptions",
                        "",
                        vec![StatusCause::not_supported(
                            "propagationPolicy",
                            kplex_apimachinery::status::BadValue::Str(other),
                            &["Foreground", "Background", "Orphan"],
                        )],
                    ));
                }
            };
            // An explicit policy decides the garbage collector's finalizer: the other one
            // goes (kube's deletionFinalizersForGarbageCollection).
            if !policy.is_empty() {
                finalizers.retain(|f| f == marker.unwrap_or("") || !is_gc_finalizer(f));
            }
            if let Some(m) = marker
                && !finalizers.iter().any(|f| f == m)
            {
                finalizers.push(m.to_string());
            }
            let pending = !finalizers.is_empty() || !desc.strategy.finalizers_done(&obj);
            if pending {
                if meta::deletion_timestamp(&obj).is_some() && finalizers == meta::finalizers(&obj)
                {
                    return Ok(DeleteOutcome::Pending(obj));
                }
                meta::set_finalizers(&mut obj, &finalizers);
                if meta::deletion_timestamp(&obj).is_none() {
                    meta::set_deletion_timestamp(&mut obj, &meta::now_rfc3339());
                    if let Some(m) = meta::meta_mut(&mut obj) {
                        m.insert("deletionGracePeriodSeconds".into(), Value::from(0));
                    }
                    if desc.generation {
                        let next = meta::generation(&obj) + 1;
                        meta::set_generation(&mut obj, next);
                    }
                }
                desc.strategy.prepare_delete(&mut obj);
                if opts.dry_run {
                    return Ok(DeleteOutcome::Pending(obj));
                }
                match self
                    .store
                    .update(
                        &key,
                        object::encode(&desc.storage_form(&obj))?,
                        current.mod_revision,
                    )
                    .await
                    .map_err(store_error)?
                {
                    TxnOutcome::Succeeded { revision, .. } => {
                        object::set_resource_version(&mut obj, revision);
                        return Ok(DeleteOutcome::Pending(obj));
                    }
                    TxnOutcome::Failed { .. } => continue,
                }
            }
            if opts.dry_run {
                return Ok(DeleteOutcome::Deleted(obj));
            }
            match self
                .store
                .delete(&key, Precondition::ModRevision(current.mod_revision))
                .await
                .map_err(store_error)?
            {
                TxnOutcome::Succeeded { revision, .. } => {
                    self.counted(scope, revision, false);
                    object::set_resource_version(&mut obj, revision);
                    return Ok(DeleteOutcome::Deleted(obj));
                }
                TxnOutcome::Failed { current: None } => return Err(scope.not_found(name)),
                TxnOutcome::Failed { .. } => continue,
            }
        }
        Err(ApiError::conflict(
            &desc.group,
            &desc.plural,
            name,
            "too many concurrent writers, try again",
        ))
    }

    /// Writes `status` (through the status subresource) unless it is already the object's.
    pub async fn set_status(
        &self,
        scope: &Scope,
        obj: &Value,
        status: Value,
    ) -> Result<(), ApiError> {
        if obj.get("status") == Some(&status) {
            return Ok(());
        }
        let name = meta::name(obj).unwrap_or("").to_string();
        let opts = WriteOptions {
            subresource: Some("status".into()),
            ..Default::default()
        };
        self.update_with(scope, &name, &opts, move |cur, _| {
            let mut next = cur.clone();
            next["status"] = status.clone();
            Ok(next)
        })
        .await
        .map(|_| ())
    }

    /// Keeps the object count of a capped logical cluster (see `quota`).
    fn counted(&self, scope: &Scope, revision: i64, created: bool) {
        if let (Some(quota), Some(cluster)) = (&self.quota, scope.cluster.as_deref()) {
            quota.counted(cluster, revision, created);
        }
    }

    /// Deletes every object `scope` sees (honouring finalizers); returns how many are still
    /// there, waiting on finalizers. Namespace, CRD, garbage and workspace cleanup share it.
    pub async fn delete_all(&self, scope: &Scope) -> Result<usize, ApiError> {
        let list = self.list(scope, &super::ListOptions::default()).await?;
        let mut remaining = 0;
        for item in list.items {
            let obj = item.decode()?;
            if scope.is_shared_item(meta::name(&obj).unwrap_or(""), &item) {
                continue;
            }
            let item_scope = Scope {
                namespace: meta::namespace(&obj).map(String::from),
                ..scope.clone()
            };
            match self
                .delete(
                    &item_scope,
                    meta::name(&obj).unwrap_or(""),
                    &DeleteOptions::default(),
                )
                .await
            {
                Ok(DeleteOutcome::Pending(_)) => remaining += 1,
                Ok(DeleteOutcome::Deleted(_)) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(remaining)
    }

    /// Drops `finalizer` from an object (gone already: nothing to do).
    pub async fn remove_finalizer(
        &self,
        scope: &Scope,
        name: &str,
        finalizer: &str,
    ) -> Result<(), ApiError> {
        let result = self
            .update_with(scope, name, &WriteOptions::default(), |cur, _| {
                let mut next = cur.clone();
                let fs: Vec<String> = meta::finalizers(cur)
                    .into_iter()
                    .filter(|f| f != finalizer)
                    .collect();
                meta::set_finalizers(&mut next, &fs);
                Ok(next)
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Namespaced content needs its namespace to exist and not be terminating.
    pub async fn check_namespace_accepts_content(
        &self,
        cluster: &str,
        namespace: &str,
        desc: &ResourceDesc,
        name: &str,
    ) -> Result<(), ApiError> {
        let key = object::keys::object("", "namespaces", cluster, None, namespace);
        // Parsed once per version of the namespace, not on every create in it.
        let Some(ns) = self.parsed_key(&key).await? else {
            return Err(ApiError::not_found("", "namespaces", namespace));
        };
        if meta::deletion_timestamp(&ns).is_some() {
            // NamespaceLifecycle's admission.NewForbidden: names the object being created.
            let mut err = ApiError::forbidden(
                &desc.group,
                &desc.plural,
                name,
                &format!(
                    "unable to create new content in namespace {namespace} because it is being terminated"
                ),
            );
            if let Some(d) = err.details.as_mut() {
                d.causes.push(StatusCause {
                    reason: "NamespaceTerminating".into(),
                    message: format!("namespace {namespace} is being terminated"),
                    field: "metadata.namespace".into(),
                });
            }
            return Err(err);
        }
        Ok(())
    }
}

/// 409 AlreadyExists for a create; kube says why when the name's holder is being deleted.
fn name_taken(desc: &ResourceDesc, name: &str, holder: &[u8]) -> ApiError {
    let mut err = ApiError::already_exists(&desc.group, &desc.plural, name);
    if memchr::memmem::find(holder, b"\"deletionTimestamp\"").is_some() {
        err.message = format!("object is being deleted: {}", err.message);
    }
    err
}

fn wildcard_write(desc: &ResourceDesc) -> ApiError {
    ApiError::method_not_supported(&desc.group, &desc.plural, "create")
}

/// apiVersion/kind must match the endpoint; missing ones are filled in.
fn check_type(desc: &ResourceDesc, obj: &mut Value) -> Result<(), ApiError> {
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body of the request must be a JSON object"))?;
    let want_api = desc.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {}
        Some(v) if v == want_api => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want_api})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {}
        Some(k) if k == desc.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                desc.kind
            )));
        }
    }
    let metadata = map
        .remove("metadata")
        .unwrap_or_else(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    if let Some(message) = meta::type_error(&metadata) {
        return Err(ApiError::bad_request(message));
    }
    let mut ordered = Map::new();
    ordered.insert("apiVersion".into(), Value::String(want_api));
    ordered.insert("kind".into(), Value::String(desc.kind.clone()));
    ordered.insert("metadata".into(), metadata);
    for (k, v) in std::mem::take(map) {
        if k != "apiVersion" && k != "kind" {
            ordered.insert(k, v);
        }
    }
    *map = ordered;
    Ok(())
}

/// kube applies a strategic merge patch to a map and converts the map to the typed object;
/// metadata of the wrong type fails that conversion with 422 on the field `patch`, quoting
/// the patch as Go prints it (kubectl's own tests look for "cannot restore map from string").
fn check_restorable(patch: &[u8], patched: &Value) -> Result<(), ApiError> {
    let Some(detail) = patched.get("metadata").and_then(meta::restore_error) else {
        return Ok(());
    };
    let patch: Value = serde_json::from_slice(patch).unwrap_or(Value::Null);
    Err(ApiError::invalid(
        "",
        "",
        "",
        vec![StatusCause::invalid(
            "patch",
            BadValue::Str(&meta::go_format(&patch)),
            &detail,
        )],
    ))
}

fn set_namespace(scope: &Scope, obj: &mut Value) -> Result<(), ApiError> {
    if !scope.desc.namespaced {
        meta::remove(obj, "namespace");
        return Ok(());
    }
    let ns = scope.namespace.as_deref().unwrap_or("");
    match meta::namespace(obj) {
        Some(body) if !body.is_empty() && body != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            meta::set_namespace(obj, ns);
            Ok(())
        }
    }
}

/// A built-in kind's times as kube returns them: its Go types parse RFC 3339 and marshal
/// UTC (`metav1.Time` at whole seconds, `MicroTime` at microseconds), so
/// `2026-01-02T05:04:05.25+02:00` comes back as `2026-01-02T03:04:05Z`.
fn normalize_times(desc: &ResourceDesc, obj: &mut Value) {
    let fields = kplex_openapi::time_fields(&desc.group, &desc.version, &desc.kind);
    for field in fields.iter() {
        for_each_at(obj, &field.path, &mut |v| {
            if let Value::String(s) = v
                && let Some(normal) = kplex_gocompat::normalize_time(s, field.micro)
            {
                *s = normal;
            }
        });
    }
}

/// Calls `f` on every value at `path` (through every element of arrays and maps on `Each`).
fn for_each_at(v: &mut Value, path: &[kplex_openapi::Step], f: &mut impl FnMut(&mut Value)) {
    let Some((step, rest)) = path.split_first() else {
        f(v);
        return;
    };
    match (step, v) {
        (kplex_openapi::Step::Field(name), Value::Object(map)) => {
            if let Some(child) = map.get_mut(name) {
                for_each_at(child, rest, f);
            }
        }
        (kplex_openapi::Step::Each, Value::Array(items)) => {
            for item in items {
                for_each_at(item, rest, f);
            }
        }
        (kplex_openapi::Step::Each, Value::Object(map)) => {
            for item in map.values_mut() {
                for_each_at(item, rest, f);
            }
        }
        _ => {}
    }
}

/// Prunes unknown fields (per `fieldValidation`), applies defaults, validates against the
/// resource's schema. Returns warnings.
fn apply_schema(
    desc: &ResourceDesc,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let Some(schema) = desc.validation_schema() else {
        return Ok(vec![]);
    };
    let unknown = schema.prune(obj);
    let messages: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field \"{}\"", p.trim_start_matches('.')))
        .collect();
    if validation == FieldValidation::Strict && !messages.is_empty() {
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            messages.join(", ")
        )));
    }
    schema.default(obj);
    if desc.origin == crate::catalog::Origin::Builtin {
        normalize_times(desc, obj);
    }
    let errors = schema.validate(obj);
    if !errors.is_empty() {
        let causes = errors
            .into_iter()
            .map(|e| StatusCause {
                reason: e.reason().to_string(),
                message: e.error_body(),
                field: e.field.clone(),
            })
            .collect();
        return Err(ApiError::invalid(
            &desc.group,
            &desc.kind,
            meta::name(obj).unwrap_or(""),
            causes,
        ));
    }
    Ok(if validation == FieldValidation::Warn {
        messages
    } else {
        vec![]
    })
}

/// Metadata validation plus the kind's own rules.
/// `old`: the stored object and the subresource an update writes through.
fn validate(
    desc: &ResourceDesc,
    obj: &Value,
    update: Option<(&Value, Option<&str>)>,
) -> Result<(), ApiError> {
    if let Some((old, subresource)) = update {
        desc.strategy.check_update(old, obj, subresource)?;
    }
    let old = update.map(|(old, _)| old);
    let metadata = obj.get("metadata").cloned().unwrap_or(Value::Null);
    let validator = desc.strategy.name_validator();
    let mut causes = names::validate_object_meta(&metadata, desc.namespaced, validator);
    if let Some(old) = old
        && meta::deletion_timestamp(old).is_some()
    {
        let before = meta::finalizers(old);
        for f in meta::finalizers(obj) {
            if !before.contains(&f) {
                causes.push(StatusCause::forbidden(
                    "metadata.finalizers",
                    &format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{f}\"}}"),
                ));
            }
        }
    }
    causes.extend(desc.strategy.validate(obj, old));
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &desc.group,
            &desc.kind,
            meta::name(obj).unwrap_or(""),
            causes,
        ))
    }
}

/// What each endpoint may change: the main resource keeps the stored status (when there is
/// a status subresource); `/status` changes only status; the kind's own subresources (a
/// namespace's `/finalize`) what its strategy says.
fn merge_for_subresource(
    desc: &ResourceDesc,
    old: &Value,
    new: Value,
    sub: Option<&str>,
) -> Result<Value, ApiError> {
    match sub {
        None if desc.status => Ok(with_field(new, "status", old.get("status"))),
        None => Ok(new),
        Some("status") if desc.status => {
            // kube's status strategies keep metadata from the stored object.
            let mut out = with_field(old.clone(), "status", new.get("status"));
            if let Some(rv) = meta::resource_version(&new) {
                meta::set_resource_version(&mut out, rv);
            } else {
                meta::remove(&mut out, "resourceVersion");
            }
            Ok(out)
        }
        Some(other) => desc
            .strategy
            .update_subresource(other, old, new)
            .unwrap_or_else(|| {
                Err(ApiError::not_found(
                    &desc.group,
                    &format!("{}/{other}", desc.plural),
                    "",
                ))
            }),
    }
}

fn with_field(mut obj: Value, field: &str, value: Option<&Value>) -> Value {
    if let Some(map) = obj.as_object_mut() {
        match value {
            Some(v) => {
                map.insert(field.to_string(), v.clone());
            }
            None => map.retain(|k, _| k != field),
        }
    }
    obj
}

/// Sets [`CLUSTER_ANNOTATION`] to the cluster the object is stored in, whatever the body said.
fn stamp_cluster(obj: &mut Value, cluster: &str) {
    if meta::annotation(obj, CLUSTER_ANNOTATION) == Some(cluster) {
        return;
    }
    let mut annotations = meta::annotations(obj);
    annotations.insert(
        CLUSTER_ANNOTATION.into(),
        Value::String(cluster.to_string()),
    );
    meta::set_annotations(obj, annotations);
}

/// uid, creationTimestamp, deletion state and generation are the server's.
fn keep_system_fields(old: &Value, new: &mut Value) {
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "selfLink",
    ] {
        match old.get("metadata").and_then(|m| m.get(f)) {
            Some(v) => {
                if let Some(m) = meta::meta_mut(new) {
                    m.insert(f.to_string(), v.clone());
                }
            }
            None => meta::remove(new, f),
        }
    }
}

fn is_gc_finalizer(f: &str) -> bool {
    f == "orphan" || f == "foregroundDeletion"
}

/// Whether anything outside metadata (and status, when it has its own subresource) changed:
/// the rule for generation.
fn spec_changed(old: &Value, new: &Value, status_apart: bool) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.retain(|k, _| k != "metadata" && !(status_apart && k == "status"));
        }
        v
    };
    strip(old) != strip(new)
}

/// 409 for a uid precondition the stored object does not meet.
fn uid_precondition_failed(desc: &ResourceDesc, name: &str, want: &str, obj: &Value) -> ApiError {
    ApiError::conflict(
        &desc.group,
        &desc.plural,
        name,
        &format!(
            "Precondition failed: UID in precondition: {want}, UID in object meta: {}",
            meta::uid(obj).unwrap_or("")
        ),
    )
}

fn check_preconditions(
    desc: &ResourceDesc,
    name: &str,
    obj: &Value,
    rv: i64,
    opts: &DeleteOptions,
) -> Result<(), ApiError> {
    if let Some(uid) = &opts.precondition_uid
        && Some(uid.as_str()) != meta::uid(obj)
    {
        return Err(uid_precondition_failed(desc, name, uid, obj));
    }
    if let Some(want) = &opts.precondition_resource_version
        && want != &rv.to_string()
    {
        return Err(ApiError::conflict(
            &desc.group,
            &desc.plural,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
            ),
        ));
    }
    Ok(())
}
