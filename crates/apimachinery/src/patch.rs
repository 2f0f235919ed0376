//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7396) and
//! strategic merge patch, with kube-apiserver's error codes and messages.
//!
//! Strategic merge patch follows k8s.io/apimachinery/pkg/util/strategicpatch
//! (with MergeParallelList and IgnoreUnmatchedNulls, as the apiserver uses).
//! Two deliberate differences, both because we store JSON rather than
//! decoding into Go structs that drop unknown keys:
//! - values added where the original had nothing (or a different type) are
//!   merged against an empty value, so nulls and `$` directives inside them
//!   are resolved instead of being stored;
//! - fields missing from the schema are treated as untyped (maps merge, lists
//!   replace) instead of failing with "unable to find api field".

use crate::meta::go_json_type;
use crate::patch_schema::{FieldPatch, PatchSchema, PatchStrategy};
use crate::status::{ApiError, StatusDetails};
use serde_json::{Map, Value};

/// kube-apiserver's cap on JSON patch operations.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PRIMITIVE_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ORDER_PREFIX: &str = "$setElementOrder";

/// How the apiserver reports a patch failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchErrorKind {
    /// 400 BadRequest with the message.
    BadRequest,
    /// 422 Invalid with kube's generic message.
    Invalid,
    /// A malformed patch kube does not classify (it answers 500): kplex answers 400
    /// BadRequest with the same message, since the fault is the client's.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatchError {
    pub kind: PatchErrorKind,
    pub message: String,
}

impl PatchError {
    fn bad_request(msg: &str) -> Self {
        PatchError {
            kind: PatchErrorKind::BadRequest,
            message: msg.into(),
        }
    }

    fn internal(msg: impl Into<String>) -> Self {
        PatchError {
            kind: PatchErrorKind::Internal,
            message: msg.into(),
        }
    }
}

impl From<PatchError> for ApiError {
    fn from(e: PatchError) -> Self {
        match e.kind {
            PatchErrorKind::BadRequest => ApiError::bad_request(e.message),
            PatchErrorKind::Invalid => unprocessable(),
            PatchErrorKind::Internal => ApiError::bad_request(e.message),
        }
    }
}

/// NewGenericServerResponse(422, ...): kube hides the underlying error.
fn unprocessable() -> ApiError {
    ApiError {
        details: Some(StatusDetails::default()),
        ..ApiError::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        )
    }
}

const ERR_BAD_JSON_DOC: &str = "invalid JSON document";
const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";
const ERR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_SET_ORDER: &str = "invalid patch format of setElementOrder list";

/// Applies an RFC 6902 patch. Undecodable patches are 400, more than
/// 10000 operations 413, and operations that fail 422, as in kube.
pub fn json_patch(doc: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let raw: Value =
        serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let Value::Array(ops) = raw else {
        return Err(ApiError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            go_json_type(&raw)
        )));
    };
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(ApiError::request_entity_too_large(&format!(
            "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
            ops.len()
        )));
    }
    // Unknown operations only fail when applied in kube, hence 422 here.
    let ops: Vec<json_patch::PatchOperation> = ops
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(|_| unprocessable())?;
    // patch_unsafe: `out` is a copy thrown away on failure, so there is nothing to undo, and
    // json_patch::patch's undo panics when it cannot reverse a move of a value into its own
    // parent (`move /a/b to /a` followed by a failing operation).
    let mut out = doc.clone();
    json_patch::patch_unsafe(&mut out, &ops).map_err(|_| unprocessable())?;
    Ok(out)
}

/// Applies an RFC 7396 merge patch given as bytes, like evanphx/json-patch's
/// MergePatch: a non-object, non-array patch is 400 "Invalid JSON Patch"; an
/// array replaces the document.
pub fn merge_patch(doc: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let bad = || ApiError::bad_request("Invalid JSON Patch");
    let patch: Value = serde_json::from_slice(patch).map_err(|_| bad())?;
    match patch {
        Value::Object(_) => Ok(merge_patch_value(doc, &patch)),
        Value::Array(mut items) => {
            items.iter_mut().for_each(prune_nulls);
            Ok(Value::Array(items))
        }
        _ => Err(bad()),
    }
}

/// RFC 7396 merge of an already-decoded patch.
pub fn merge_patch_value(doc: &Value, patch: &Value) -> Value {
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    out
}

fn prune_nulls(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, v| !v.is_null());
        m.values_mut().for_each(prune_nulls);
    }
}

/// Decodes a strategic merge patch body and applies it, mapping errors to
/// kube-apiserver's responses.
pub fn strategic_merge_patch(
    doc: &Value,
    patch: &[u8],
    schema: &dyn PatchSchema,
) -> Result<Value, ApiError> {
    let patch: Value =
        serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(e.to_string()))?;
    match patch {
        Value::Object(_) | Value::Null => Ok(strategic_merge(doc, &patch, schema)?),
        other => Err(ApiError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_json_type(&other)
        ))),
    }
}

/// Applies a strategic merge patch to `original` (both JSON objects).
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    schema: &dyn PatchSchema,
) -> Result<Value, PatchError> {
    let (Value::Object(orig), patch) = (original, patch) else {
        return Err(PatchError::bad_request(ERR_BAD_JSON_DOC));
    };
    let patch = match patch {
        Value::Null => return Ok(original.clone()),
        Value::Object(p) => p,
        _ => return Err(PatchError::bad_request(ERR_BAD_JSON_DOC)),
    };
    merge_map(orig.clone(), patch.clone(), schema).map(Value::Object)
}

type Obj = Map<String, Value>;
type PResult<T> = Result<T, PatchError>;

fn merge_map(mut original: Obj, mut patch: Obj, schema: &dyn PatchSchema) -> PResult<Obj> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                remove_ordered(&mut patch, DIRECTIVE);
                merge_map(Obj::new(), patch, schema)
            }
            Some("delete") => Ok(Obj::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    apply_set_element_order(&mut original, &mut patch, schema)?;
    for (key, value) in patch {
        merge_field(&mut original, key, value, schema)?;
    }
    Ok(original)
}

fn bad_patch_type(directive: &Value, patch: &Obj) -> PatchError {
    PatchError::internal(format!(
        "unknown patch type: {} in map: {}",
        go_fmt(directive),
        go_fmt(&Value::Object(patch.clone()))
    ))
}

/// `$retainKeys`: drop original fields not listed; every non-null patch
/// field must be listed.
fn apply_retain_keys(original: &mut Obj, patch: &mut Obj) -> PResult<()> {
    let Some(retain) = remove_ordered(patch, RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::bad_request(ERR_RETAIN_KEYS));
    };
    let listed = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    let unlisted = patch.iter().any(|(k, v)| {
        !v.is_null()
            && !k.starts_with(DELETE_PRIMITIVE_PREFIX)
            && !k.starts_with(SET_ORDER_PREFIX)
            && !listed(k)
    });
    if unlisted {
        return Err(PatchError::bad_request(ERR_RETAIN_KEYS));
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merge the field's list now and order it by
/// the directive, then by the live object.
fn apply_set_element_order(
    original: &mut Obj,
    patch: &mut Obj,
    schema: &dyn PatchSchema,
) -> PResult<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ORDER_PREFIX))
        .cloned()
        .collect();
    for key in keys {
        let order = remove_ordered(patch, &key).unwrap_or(Value::Null);
        let Value::Array(order) = order else {
            return Err(bad_arg_type("slice", &order));
        };
        let field = extract_key(&key, SET_ORDER_PREFIX, ERR_SET_ORDER)?;
        // Taken in place so the field keeps its position when rewritten below.
        let orig_list = as_list(original.get_mut(&field).map(std::mem::take))?;
        let patch_list = as_list(remove_ordered(patch, &field))?;
        let fp = schema.lookup(&field);
        validate_set_order(patch_list.as_deref().unwrap_or(&[]), &order, fp.merge_key)?;
        let server_order = orig_list.clone().unwrap_or_default();
        let merged = match (orig_list, patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => p,
            (Some(o), Some(p)) => merge_slice_handler(o, p, fp, false)?,
            (None, None) => continue,
        };
        let Some(kind) = element_kind(&[&server_order, &merged])? else {
            original.insert(field, Value::Array(merged));
            continue;
        };
        let key = effective_key(fp.merge_key, kind);
        let (in_patch, server_only) = partition(merged, &order, key)?;
        let both = normalize_element_order(in_patch, server_only, &order, &server_order, key)?;
        original.insert(field, Value::Array(both));
    }
    Ok(())
}

/// Maps are matched by merge key; scalars by value.
fn effective_key(merge_key: &str, kind: Kind) -> Option<&str> {
    (kind == Kind::Object).then_some(merge_key)
}

/// Removes a key without reordering the others (serde_json's `remove`
/// swaps the last key in when objects preserve order).
fn remove_ordered(m: &mut Obj, key: &str) -> Option<Value> {
    let v = m.get(key).cloned();
    if v.is_some() {
        m.retain(|k, _| k != key);
    }
    v
}

fn as_list(v: Option<Value>) -> PResult<Option<Vec<Value>>> {
    match v {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(other) => Err(bad_arg_type("slice", &other)),
    }
}

fn extract_key(key: &str, prefix: &str, err: &str) -> PResult<String> {
    match key.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest.to_string()),
        _ => Err(PatchError::bad_request(err)),
    }
}

/// The patch list must follow the directive's relative order.
fn validate_set_order(patch_list: &[Value], order: &[Value], merge_key: &str) -> PResult<()> {
    if patch_list.is_empty() || order.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = if merge_key.is_empty() {
        patch_list.iter().collect()
    } else {
        let mut kept = Vec::new();
        for v in patch_list {
            let m = v.as_object().ok_or_else(|| bad_arg_type("map", v))?;
            if m.get(DIRECTIVE).and_then(Value::as_str) != Some("delete") {
                kept.push(v);
            }
        }
        kept
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        if items[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        if merge_key_equal(items[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() {
        return Err(PatchError::internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ORDER_PREFIX} list:\n{}\n",
            go_fmt(&Value::Array(patch_list.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_equal(a: &Value, b: &Value, merge_key: &str) -> PResult<bool> {
    if merge_key.is_empty() {
        return Ok(json_eq(a, b));
    }
    Ok(json_eq(key_of(a, merge_key)?, key_of(b, merge_key)?))
}

fn key_of<'a>(v: &'a Value, merge_key: &str) -> PResult<&'a Value> {
    let m = v.as_object().ok_or_else(|| bad_arg_type("map", v))?;
    m.get(merge_key).ok_or_else(|| no_merge_key(v, merge_key))
}

fn merge_field(
    original: &mut Obj,
    key: String,
    value: Value,
    schema: &dyn PatchSchema,
) -> PResult<()> {
    let (key, delete_list) = if key.starts_with(DELETE_PRIMITIVE_PREFIX) {
        (
            extract_key(&key, DELETE_PRIMITIVE_PREFIX, ERR_PRIMITIVE_LIST)?,
            true,
        )
    } else {
        (key, false)
    };
    if value.is_null() {
        remove_ordered(original, &key);
        return Ok(());
    }
    let fp = schema.lookup(&key);
    // Taking the value in place keeps the field's position on reinsertion.
    let existing = original.get_mut(&key).map(std::mem::take);
    let merged = match (existing, value) {
        (Some(Value::Object(o)), Value::Object(p)) if !fp.strategy.replace => {
            Value::Object(merge_map(o, p, fp.schema)?)
        }
        (Some(Value::Array(o)), Value::Array(p)) => {
            Value::Array(merge_slice_handler(o, p, fp, delete_list)?)
        }
        // A delete list never adds anything; keep what was there.
        (Some(existing), _) if delete_list => existing,
        (None, _) if delete_list => return Ok(()),
        (_, v) => fresh(v, fp)?,
    };
    original.insert(key, merged);
    Ok(())
}

/// A patch value with nothing to merge into: resolve it against emptiness.
fn fresh(value: Value, fp: FieldPatch<'_>) -> PResult<Value> {
    match value {
        Value::Object(m) if fp.strategy.replace => {
            let mut v = Value::Object(m);
            prune_nulls(&mut v);
            Ok(v)
        }
        Value::Object(m) => merge_map(Obj::new(), m, fp.schema).map(Value::Object),
        Value::Array(a) => merge_slice_handler(Vec::new(), a, fp, false).map(Value::Array),
        v => Ok(v),
    }
}

fn element_patch(schema: &dyn PatchSchema) -> FieldPatch<'_> {
    FieldPatch {
        strategy: PatchStrategy::default(),
        merge_key: "",
        schema,
    }
}

fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    fp: FieldPatch<'_>,
    delete_list: bool,
) -> PResult<Vec<Value>> {
    if fp.strategy.merge || delete_list {
        return merge_slice(original, patch, fp, delete_list);
    }
    patch
        .into_iter()
        .filter(|v| !v.is_null())
        .map(|v| fresh(v, element_patch(fp.schema)))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Scalar(&'static str),
}

/// All elements must share one JSON type, which may not be a list.
fn element_kind(lists: &[&[Value]]) -> PResult<Option<Kind>> {
    let mut kind: Option<&'static str> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = go_json_type(v);
        match kind {
            None if k == "array" => return Err(no_list_of_lists()),
            None => kind = Some(k),
            Some(prev) if prev != k => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(PatchError::internal(format!(
                    "list element types are not identical: {}",
                    go_fmt(&Value::Array(all))
                )));
            }
            Some(_) => {}
        }
    }
    Ok(kind.map(|k| {
        if k == "object" {
            Kind::Object
        } else {
            Kind::Scalar(k)
        }
    }))
}

fn no_list_of_lists() -> PatchError {
    PatchError {
        kind: PatchErrorKind::Invalid,
        message: ERR_NO_LIST_OF_LISTS.into(),
    }
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    fp: FieldPatch<'_>,
    delete_list: bool,
) -> PResult<Vec<Value>> {
    let Some(kind) = element_kind(&[&original, &patch])? else {
        return Ok(original);
    };
    if kind != Kind::Object {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !contains(&patch, v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !contains(&merged, v) {
                merged.push(v.clone());
            }
        }
        let (in_patch, server_only) = partition(merged, &patch, None)?;
        return normalize_element_order(in_patch, server_only, &patch, &original, None);
    }
    if fp.merge_key.is_empty() {
        return Err(PatchError::internal("cannot merge lists without merge key"));
    }
    let (original, patch) = split_special_elements(original, patch, fp.merge_key)?;
    let merged = merge_by_key(original.clone(), &patch, fp)?;
    let key = Some(fp.merge_key);
    let (in_patch, server_only) = partition(merged, &patch, key)?;
    normalize_element_order(in_patch, server_only, &patch, &original, key)
}

fn contains(list: &[Value], v: &Value) -> bool {
    list.iter().any(|x| json_eq(x, v))
}

/// Applies `$patch: delete|replace` elements; returns the live list to merge
/// into and the remaining patch elements.
fn split_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> PResult<(Vec<Value>, Vec<Value>)> {
    let mut rest = Vec::new();
    let mut replace = false;
    for v in patch {
        let Some(directive) = v.get(DIRECTIVE) else {
            rest.push(v);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let target = key_of(&v, merge_key)?;
                original.retain(|o| !o.get(merge_key).is_some_and(|k| json_eq(k, target)));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::internal(
                    "merging lists cannot yet be specified in the patch",
                ));
            }
            _ => {
                let m = v.as_object().cloned().unwrap_or_default();
                return Err(bad_patch_type(directive, &m));
            }
        }
    }
    if replace {
        return Ok((rest, Vec::new()));
    }
    Ok((original, rest))
}

/// Merges each patch element into the live element with the same key, or
/// appends it.
fn merge_by_key(
    mut original: Vec<Value>,
    patch: &[Value],
    fp: FieldPatch<'_>,
) -> PResult<Vec<Value>> {
    for p in patch {
        let target = key_of(p, fp.merge_key)?;
        let found = original
            .iter()
            .position(|o| o.get(fp.merge_key).is_some_and(|k| json_eq(k, target)));
        let p_obj = p.as_object().cloned().unwrap_or_default();
        match found {
            Some(i) => {
                let o = std::mem::take(&mut original[i]);
                let o = o.as_object().cloned().unwrap_or_default();
                original[i] = Value::Object(merge_map(o, p_obj, fp.schema)?);
            }
            None => original.push(Value::Object(merge_map(Obj::new(), p_obj, fp.schema)?)),
        }
    }
    Ok(original)
}

/// Splits `items` into those present in `by` and the rest (server-only).
fn partition(
    items: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> PResult<(Vec<Value>, Vec<Value>)> {
    let (mut present, mut absent) = (Vec::new(), Vec::new());
    for v in items {
        let found = match key {
            None => contains(by, &v),
            Some(k) => {
                let want = key_of(&v, k)?;
                by.iter()
                    .any(|b| b.get(k).is_some_and(|x| json_eq(x, want)))
            }
        };
        if found {
            present.push(v);
        } else {
            absent.push(v);
        }
    }
    Ok((present, absent))
}

/// Orders patch items by the patch (or directive) order and server-only
/// items by the live order, then interleaves them by the live order.
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> PResult<Vec<Value>> {
    let patch = normalize_slice_order(patch, patch_order, key)?;
    let server_only = normalize_slice_order(server_only, server_order, key)?;
    Ok(merge_sorted(server_only, patch, server_order, key))
}

fn index_of(list: &[Value], v: &Value, key: Option<&str>) -> Option<usize> {
    let val = |x: &Value| match key {
        Some(k) => x.get(k).cloned().unwrap_or(Value::Null),
        None => x.clone(),
    };
    let want = val(v);
    list.iter().position(|x| json_eq(&val(x), &want))
}

fn normalize_slice_order(
    items: Vec<Value>,
    order: &[Value],
    key: Option<&str>,
) -> PResult<Vec<Value>> {
    let mut deletes = Vec::new();
    let mut keep = Vec::new();
    if let Some(k) = key {
        for v in items.iter().chain(order.iter()) {
            key_of(v, k)?;
        }
        for v in items {
            if v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                deletes.push(v);
            } else {
                keep.push(v);
            }
        }
    } else {
        keep = items;
    }
    keep.sort_by_key(|v| index_of(order, v, key).unwrap_or(usize::MAX));
    keep.extend(deletes);
    Ok(keep)
}

/// Takes from `right` (patch items) unless the next `left` (server-only)
/// item comes earlier in the live list. Items new to the live list thus go
/// first, which is why kube prepends patch-added elements unless the patch
/// carries `$setElementOrder`.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => return out,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index_of(server_order, l, key), index_of(server_order, r, key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
}

/// Go's `==` on decoded JSON: numbers compare as float64.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    let actual = match actual {
        Value::Object(_) => "map",
        Value::Array(_) => "slice",
        Value::String(_) => "string",
        Value::Number(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Null => "invalid",
    };
    PatchError::internal(format!("expected a {expected}, but received a {actual}"))
}

fn no_merge_key(v: &Value, key: &str) -> PatchError {
    PatchError::internal(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(v)
    ))
}

/// Go's `%v` of decoded JSON, for error messages.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

#[cfg(test)]
mod tests;
