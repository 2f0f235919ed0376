//! Apply and update: the field-manager workflows.

use serde_json::{Map, Value};

use crate::managed::{ManagedFieldsEntry, Operation, decode_entries, encode_managed_fields};
use crate::path::{FieldSet, PathElement};
use crate::typeinfo::{Root, TypeInfo};
use crate::walk::{compare, ensure_named_fields_are_members, merge, remove_items, to_field_set};
use crate::{ApplyError, Conflict, Error};

/// kubectl's client-side apply annotation.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Kube keeps at most this many Update entries; older ones merge into "ancient-changes".
const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT_CHANGES: &str = "ancient-changes";

/// The only manager whose applies upgrade from client-side apply (kube's rule).
const KUBECTL: &str = "kubectl";

/// Result of [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyResult {
    /// The object to persist, with updated `metadata.managedFields`.
    pub object: Value,
    /// False when the apply changes nothing but timestamps: nothing to write.
    pub changed: bool,
}

fn strip_set() -> &'static FieldSet {
    static STRIP: std::sync::OnceLock<FieldSet> = std::sync::OnceLock::new();
    STRIP.get_or_init(build_strip_set)
}

fn build_strip_set() -> FieldSet {
    // Fields the server owns or that identify the object: never recorded
    // for a manager (apimachinery's stripMeta, plus deletionTimestamp).
    let mut s = FieldSet::new();
    let f = |n: &str| PathElement::Field(n.to_string());
    s.insert(&[f("apiVersion")]);
    s.insert(&[f("kind")]);
    s.insert(&[f("metadata")]);
    for n in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
    ] {
        s.insert(&[f("metadata"), f(n)]);
    }
    s
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

fn set_managed_fields(obj: &mut Value, entries: &[ManagedFieldsEntry]) {
    let enc = encode_managed_fields(entries);
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Some(m) = meta.as_object_mut() {
        if enc.as_array().is_some_and(Vec::is_empty) {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), enc);
        }
    }
}

/// Equality ignoring managedFields timestamps (kube's
/// IgnoreManagedFieldsTimestampsTransformer): such writes are no-ops. Entries are stored
/// sorted by time, so a new timestamp can also reorder them: compare them as a set.
fn equal_ignoring_times(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(mf) = v
            .get_mut("metadata")
            .and_then(|m| m.get_mut("managedFields"))
            .and_then(Value::as_array_mut)
        {
            for e in mf.iter_mut() {
                if let Some(e) = e.as_object_mut() {
                    e.remove("time");
                }
            }
            mf.sort_by_cached_key(Value::to_string);
        }
        v
    };
    strip(a) == strip(b)
}

/// Merges the oldest Update entries into per-version "ancient-changes" buckets.
fn cap_update_managers(entries: &mut Vec<ManagedFieldsEntry>) {
    let count = |es: &[ManagedFieldsEntry]| {
        es.iter()
            .filter(|e| e.operation == Operation::Update)
            .count()
    };
    if count(entries) <= MAX_UPDATE_MANAGERS {
        return;
    }
    let mut updaters: Vec<ManagedFieldsEntry> = Vec::new();
    entries.retain(|e| {
        if e.operation == Operation::Update {
            updaters.push(e.clone());
            false
        } else {
            true
        }
    });
    updaters.sort_by(|p, q| {
        p.time
            .as_deref()
            .unwrap_or("")
            .cmp(q.time.as_deref().unwrap_or(""))
            .then_with(|| p.identifier().cmp(&q.identifier()))
    });
    let mut remaining = updaters.len();
    let mut kept: Vec<ManagedFieldsEntry> = Vec::new();
    for e in updaters {
        if remaining <= MAX_UPDATE_MANAGERS {
            kept.push(e);
            continue;
        }
        // The first entry of a version becomes (or joins) the bucket; each
        // further one merges into it, shrinking the count by one.
        match kept.iter_mut().position(|k| k.api_version == e.api_version) {
            Some(i) => {
                let b = &mut kept[i];
                b.manager = ANCIENT_CHANGES.to_string();
                b.subresource.clear();
                b.fields = b.fields.union(&e.fields);
                b.time = e.time.clone();
                remaining -= 1;
            }
            None => kept.push(e),
        }
    }
    entries.extend(kept);
}

/// Applies `config` (a server-side apply configuration) for `manager`.
///
/// `live` is the stored object with its managedFields (`None` creates).
/// `now` is the RFC 3339 timestamp recorded for the manager.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    ti: &dyn TypeInfo,
    manager: &str,
    api_version: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<ApplyResult, ApplyError> {
    let Value::Object(cfg) = config else {
        return Err(ApplyError::Invalid(
            "applied configuration must be an object".into(),
        ));
    };
    let cfg_version = cfg.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if cfg_version.is_empty()
        || cfg
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
    {
        return Err(ApplyError::Invalid(
            "apiVersion and kind must be set in the applied configuration".into(),
        ));
    }
    if cfg_version != api_version {
        return Err(ApplyError::Invalid(format!(
            "Incorrect version specified in apply patch. Specified patch version: {cfg_version}, expected: {api_version}"
        )));
    }
    let meta = cfg.get("metadata").and_then(Value::as_object);
    if meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ApplyError::Invalid("metadata.name must be set".into()));
    }
    if meta
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::Invalid(
            "metadata.managedFields must be nil".into(),
        ));
    }

    let empty = Value::Object(Map::new());
    let live_full = live.unwrap_or(&empty);
    let managers = crate::decode_managed_fields(live_full)?;
    let live_obj = without_managed_fields(live_full);
    let root = Root(ti);

    let attempt = |force: bool| {
        apply_once(
            &live_obj,
            config,
            &root,
            managers.clone(),
            manager,
            api_version,
            subresource,
            force,
        )
    };
    let (mut object, mut entries) = match attempt(force) {
        Err(ApplyError::Conflicts(conflicts)) if manager == KUBECTL => {
            // Upgrading from client-side apply: conflicts on fields that the
            // last-applied annotation holds with their live values are ours.
            let allowed = allowed_from_last_applied(&live_obj, &root)?;
            let remaining: Vec<Conflict> = conflicts
                .iter()
                .filter(|c| !allowed.contains(&c.field))
                .cloned()
                .collect();
            if !remaining.is_empty() {
                return Err(ApplyError::Conflicts(remaining));
            }
            attempt(true)?
        }
        other => other?,
    };

    if manager == KUBECTL && last_applied(&object).is_some() {
        set_last_applied(&mut object, config);
    }

    for e in &mut entries {
        if e.manager == manager && e.operation == Operation::Apply && e.subresource == subresource {
            e.time = Some(now.to_string());
        }
    }
    cap_update_managers(&mut entries);
    set_managed_fields(&mut object, &entries);
    if let Some(live) = live
        && equal_ignoring_times(live, &object)
    {
        return Ok(ApplyResult {
            object: live.clone(),
            changed: false,
        });
    }
    Ok(ApplyResult {
        object,
        changed: true,
    })
}

#[allow(clippy::too_many_arguments)]
fn apply_once(
    live: &Value,
    config: &Value,
    root: &Root<'_>,
    mut managers: Vec<ManagedFieldsEntry>,
    manager: &str,
    api_version: &str,
    subresource: &str,
    force: bool,
) -> Result<(Value, Vec<ManagedFieldsEntry>), ApplyError> {
    let merged =
        merge(Some(live), Some(config), root, 0)?.unwrap_or_else(|| Value::Object(Map::new()));
    let me = ManagedFieldsEntry {
        manager: manager.to_string(),
        operation: Operation::Apply,
        api_version: api_version.to_string(),
        time: None,
        fields: to_field_set(config, root, 0)?,
        subresource: subresource.to_string(),
    };
    let (me_idx, last) = match managers.iter().position(|e| e.same_manager(&me)) {
        Some(i) => {
            let old = std::mem::replace(&mut managers[i], me);
            managers[i].time = old.time;
            (i, Some(old.fields))
        }
        None => {
            managers.push(me);
            (managers.len() - 1, None)
        }
    };
    let object = match &last {
        Some(last) if !last.is_empty() => prune(&merged, &managers, last, root)?,
        _ => merged,
    };

    // Other managers lose fields this apply changes (conflicts unless forced)
    // and fields it removed.
    let cmp = compare(live, &object, root)?;
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts: Vec<(String, Conflict)> = Vec::new();
    for (i, e) in managers.iter().enumerate() {
        if i == me_idx {
            continue;
        }
        for p in e.fields.intersection(&changed).iter() {
            conflicts.push((
                e.identifier(),
                Conflict {
                    manager: e.manager.clone(),
                    field: p.to_string(),
                    message: format!("conflict with {}", e.describe()),
                },
            ));
        }
    }
    if !force && !conflicts.is_empty() {
        // Stable order: by manager identifier, then path order.
        conflicts.sort_by(|a, b| a.0.cmp(&b.0));
        return Err(ApplyError::Conflicts(
            conflicts.into_iter().map(|c| c.1).collect(),
        ));
    }
    let strip = strip_set();
    for (i, e) in managers.iter_mut().enumerate() {
        if i == me_idx {
            e.fields = e.fields.difference(strip);
        } else {
            e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        }
    }
    managers.retain(|e| !e.fields.is_empty());
    Ok((object, managers))
}

/// Removes what `last` (this manager's previous apply) held and nobody,
/// including this apply, manages any more (structured-merge-diff's prune).
fn prune(
    merged: &Value,
    managers: &[ManagedFieldsEntry],
    last: &FieldSet,
    root: &Root<'_>,
) -> Result<Value, Error> {
    let ens = |s: &FieldSet| ensure_named_fields_are_members(s, root, 0);
    let empty = || Value::Object(Map::new());
    let last = ens(last)?;
    let pruned = remove_items(merged, &last, root, 0)?.unwrap_or_else(empty);

    // Add back what any manager (or the new config) owns.
    let managed = managers
        .iter()
        .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
    let merged_set = ens(&to_field_set(merged, root, 0)?)?;
    let pruned_set = ens(&to_field_set(&pruned, root, 0)?)?;
    let drop = merged_set.difference(&pruned_set.union(&ens(&managed)?));
    let pruned = remove_items(merged, &drop, root, 0)?.unwrap_or_else(empty);

    // Only remove what this manager owned before.
    let pruned_set = ens(&to_field_set(&pruned, root, 0)?)?;
    let drop = merged_set.difference(&pruned_set).intersection(&last);
    Ok(remove_items(merged, &drop, root, 0)?.unwrap_or_else(empty))
}

fn last_applied(obj: &Value) -> Option<&str> {
    obj.get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// Fields recorded in the last-applied annotation that still hold those values live.
fn allowed_from_last_applied(live: &Value, root: &Root<'_>) -> Result<Vec<String>, ApplyError> {
    let Some(raw) = last_applied(live) else {
        return Ok(Vec::new());
    };
    let Ok(la) = serde_json::from_str::<Value>(raw) else {
        return Ok(Vec::new());
    };
    if !la.is_object() {
        return Ok(Vec::new());
    }
    let set = to_field_set(&la, root, 0)?;
    let cmp = compare(&la, live, root)?;
    let ok = set
        .difference(&cmp.modified)
        .difference(&cmp.added)
        .difference(&cmp.removed);
    Ok(ok.iter().map(|p| p.to_string()).collect())
}

fn sort_keys(v: &Value, depth: usize) -> Value {
    match v {
        Value::Object(m) if depth < crate::MAX_DEPTH => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .filter_map(|k| m.get(k).map(|c| (k.clone(), sort_keys(c, depth + 1))))
                    .collect(),
            )
        }
        Value::Array(l) if depth < crate::MAX_DEPTH => {
            Value::Array(l.iter().map(|c| sort_keys(c, depth + 1)).collect())
        }
        other => other.clone(),
    }
}

/// Keeps kubectl's client-side annotation in sync with server-side applies.
fn set_last_applied(obj: &mut Value, config: &Value) {
    let mut cfg = config.clone();
    if let Some(meta) = cfg.get_mut("metadata").and_then(Value::as_object_mut) {
        let now_empty = meta
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
            .map(|a| {
                a.remove(LAST_APPLIED_ANNOTATION);
                a.is_empty()
            })
            .unwrap_or(false);
        if now_empty {
            meta.remove("annotations");
        }
    }
    let text = sort_keys(&cfg, 0).to_string();
    if let Some(a) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        a.insert(LAST_APPLIED_ANNOTATION.into(), Value::String(text));
    }
}

/// Records the changes of a create/update/patch for `manager` (operation
/// Update) and returns `new` with updated `metadata.managedFields`.
///
/// Managed fields sent in `new` are taken as the starting point (clients may
/// rewrite them); when absent or empty, live's are kept. `[{}]` clears them.
pub fn update(
    live: Option<&Value>,
    new: &Value,
    ti: &dyn TypeInfo,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
) -> Result<Value, Error> {
    let empty = Value::Object(Map::new());
    let live_full = live.unwrap_or(&empty);
    let incoming = new.get("metadata").and_then(|m| m.get("managedFields"));
    let reset = incoming
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty));
    let mut managers = if reset && subresource.is_empty() {
        Vec::new()
    } else {
        match incoming.map(decode_entries) {
            Some(Ok(es)) if !es.is_empty() && subresource.is_empty() => es,
            _ => crate::decode_managed_fields(live_full)?,
        }
    };
    let root = Root(ti);
    let live_obj = without_managed_fields(live_full);
    let mut object = without_managed_fields(new);
    let cmp = compare(&live_obj, &object, &root)?;
    let changed = cmp.modified.union(&cmp.added);
    for e in &mut managers {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }
    let mine = changed.difference(&cmp.removed).difference(strip_set());
    if !mine.is_empty() {
        let me = ManagedFieldsEntry {
            manager: manager.to_string(),
            operation: Operation::Update,
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            fields: mine,
            subresource: subresource.to_string(),
        };
        match managers.iter_mut().find(|e| e.same_manager(&me)) {
            Some(e) => {
                e.fields = e.fields.union(&me.fields);
                e.time = me.time;
            }
            None => managers.push(me),
        }
    }
    managers.retain(|e| !e.fields.is_empty());
    cap_update_managers(&mut managers);
    set_managed_fields(&mut object, &managers);
    if let Some(live) = live
        && equal_ignoring_times(live, &object)
    {
        // Nothing but timestamps changed: keep live's managedFields as they are.
        set_managed_fields(&mut object, &crate::decode_managed_fields(live)?);
    }
    Ok(object)
}
