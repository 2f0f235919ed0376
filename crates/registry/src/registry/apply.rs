//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): merge the applied
//! configuration by schema, with field ownership, conflicts and `force`, creating the object
//! when it does not exist.

use kplex_apimachinery::{ApiError, StatusCause, meta};
use serde_json::Value;

use super::write::{WriteOptions, WriteResult};
use super::{Registry, Scope};
use crate::catalog::ResourceDesc;

fn conflict_error(desc: &ResourceDesc, name: &str, conflicts: &[kplex_ssa::Conflict]) -> ApiError {
    let mut err = ApiError::conflict(&desc.group, &desc.plural, name, "");
    err.message = kplex_ssa::conflicts_message(conflicts);
    if let Some(d) = err.details.as_mut() {
        d.causes = conflicts
            .iter()
            .map(|c| StatusCause {
                reason: "FieldManagerConflict".into(),
                message: c.message.clone(),
                field: c.field.clone(),
            })
            .collect();
    }
    err
}

/// Checks the applied configuration against the endpoint, as kube-apiserver does.
fn check_config(
    desc: &ResourceDesc,
    scope: &Scope,
    name: &str,
    config: &mut Value,
) -> Result<(), ApiError> {
    let map = config
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the applied configuration must be an object"))?;
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != desc.api_version() || kind != desc.kind {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({}), or the kind in the data ({kind}) does not match the expected kind ({})",
            desc.api_version(),
            desc.kind
        )));
    }
    match meta::name(config) {
        Some(n) if n == name => {}
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        None => {
            return Err(ApiError::invalid(
                &desc.group,
                &desc.kind,
                name,
                vec![StatusCause::required(
                    "metadata.name",
                    "name is required in an applied configuration",
                )],
            ));
        }
    }
    if desc.namespaced
        && let Some(ns) = scope.namespace.as_deref()
    {
        match meta::namespace(config) {
            Some(body) if body != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            Some(_) => {}
            None => meta::set_namespace(config, ns),
        }
    }
    Ok(())
}

/// Applies already computed to change nothing, by (key, resourceVersion, manager, body hash,
/// force, subresource, field validation). Apply is a pure function of the stored object and
/// the request, so a GitOps tool re-applying an unchanged manifest is answered at the cost of
/// a read instead of a full structured merge.
#[derive(Default)]
pub struct NoopApplies {
    seen: std::sync::Mutex<std::collections::HashSet<NoopKey>>,
}

type NoopKey = (String, i64, String, u64, bool, String, String);

/// Bound on remembered no-op applies (the set is simply cleared when full).
const NOOP_CAPACITY: usize = 16_384;

impl NoopApplies {
    fn contains(&self, key: &NoopKey) -> bool {
        self.seen.lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    fn insert(&self, key: NoopKey) {
        if let Ok(mut s) = self.seen.lock() {
            if s.len() >= NOOP_CAPACITY {
                s.clear();
            }
            s.insert(key);
        }
    }
}

fn body_hash(body: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

fn noop_key(store_key: &str, rv: i64, manager: &str, body: &[u8], opts: &WriteOptions) -> NoopKey {
    (
        store_key.to_string(),
        rv,
        manager.to_string(),
        body_hash(body),
        opts.force,
        opts.subresource.clone().unwrap_or_default(),
        format!("{:?}", opts.field_validation),
    )
}

impl Registry {
    /// The stored object, if this exact apply is known to change nothing at its current
    /// resourceVersion — answered without parsing or merging anything.
    pub async fn cached_noop_apply(
        &self,
        scope: &Scope,
        name: &str,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<Option<super::Stored>, ApiError> {
        let Some(manager) = opts.field_manager.as_deref().filter(|m| !m.is_empty()) else {
            return Ok(None);
        };
        let store_key = scope.key(name)?;
        let Some(kv) = self
            .store
            .get(&store_key)
            .await
            .map_err(super::store_error)?
        else {
            return Ok(None);
        };
        if !self
            .noop_applies
            .contains(&noop_key(&store_key, kv.mod_revision, manager, body, opts))
        {
            return Ok(None);
        }
        Ok(Some(super::Stored {
            bytes: kv.value,
            resource_version: kv.mod_revision,
        }))
    }

    pub async fn apply(
        &self,
        scope: &Scope,
        name: &str,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteResult, ApiError> {
        let force = opts.force;
        let desc = scope.desc.clone();
        let manager = opts
            .field_manager
            .clone()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"))?;
        if let Some(stored) = self.cached_noop_apply(scope, name, body, opts).await? {
            let object = stored.decode_as(&desc)?;
            return Ok(WriteResult {
                object,
                created: false,
                warnings: vec![],
            });
        }
        let store_key = scope.key(name)?;
        let noop_key = |rv: i64| noop_key(&store_key, rv, &manager, body, opts);
        let mut config = crate::codec::decode_yaml(body)?;
        check_config(&desc, scope, name, &mut config)?;
        let schema = desc.validation_schema();
        let ti: &(dyn kplex_ssa::TypeInfo + Sync) = match &schema {
            Some(s) => s.as_ref(),
            None => &kplex_ssa::DEDUCED,
        };
        let sub = opts.subresource.clone().unwrap_or_default();
        let applied = WriteOptions {
            applied: true,
            ..opts.clone()
        };
        let api_version = desc.api_version();
        let run = |live: Option<&Value>| -> Result<Value, ApiError> {
            match kplex_ssa::apply(
                live,
                &config,
                ti,
                &manager,
                &api_version,
                &sub,
                force,
                &meta::now_rfc3339(),
            ) {
                Ok(r) => Ok(r.object),
                Err(kplex_ssa::ApplyError::Conflicts(c)) => Err(conflict_error(&desc, name, &c)),
                Err(kplex_ssa::ApplyError::Invalid(msg)) => Err(ApiError::invalid(
                    &desc.group,
                    &desc.kind,
                    name,
                    vec![StatusCause {
                        reason: "FieldValueInvalid".into(),
                        message: msg,
                        field: String::new(),
                    }],
                )),
            }
        };
        for _ in 0..4 {
            let mut read_at = 0;
            match self
                .update_with(scope, name, &applied, |cur, rv| {
                    read_at = rv;
                    run(Some(cur))
                })
                .await
            {
                Err(e) if e.is_not_found() => {}
                Ok(result) => {
                    let written = meta::resource_version(&result.object)
                        .and_then(|rv| rv.parse::<i64>().ok());
                    if written == Some(read_at) && !opts.dry_run {
                        self.noop_applies.insert(noop_key(read_at));
                    }
                    return Ok(result);
                }
                other => return other,
            }
            // Create-on-apply: the object does not exist yet.
            let created = run(None)?;
            match self.create(scope, created, &applied).await {
                Err(e) if e.is_already_exists() => continue,
                other => return other,
            }
        }
        Err(ApiError::conflict(
            &desc.group,
            &desc.plural,
            name,
            "the object kept changing, try again",
        ))
    }
}
