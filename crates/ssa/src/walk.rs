//! Schema-directed walks over JSON values: field sets, comparison, merge and removal.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::path::{FieldSet, PathElement, sorted_key};
use crate::typeinfo::{DEDUCED, ListType, MapType, TypeInfo};
use crate::{Error, MAX_DEPTH};

fn depth_check(depth: usize) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        Err(Error::TooDeep)
    } else {
        Ok(())
    }
}

fn child_type<'a>(ti: &'a dyn TypeInfo, name: &str) -> &'a dyn TypeInfo {
    // Unknown fields fall back to deduced semantics instead of failing:
    // validation, not field management, is where they are rejected.
    ti.child(name).unwrap_or(&DEDUCED)
}

fn item_type(ti: &dyn TypeInfo) -> &dyn TypeInfo {
    ti.items().unwrap_or(&DEDUCED)
}

fn is_declared(ti: &dyn TypeInfo, name: &str) -> bool {
    ti.field(name).is_some()
}

/// The path element identifying a list item.
pub(crate) fn item_element(
    ti: &dyn TypeInfo,
    lt: &ListType,
    index: usize,
    item: &Value,
) -> Result<PathElement, Error> {
    match lt {
        ListType::Atomic => Ok(PathElement::Index(i64::try_from(index).unwrap_or(i64::MAX))),
        ListType::Set => match item {
            Value::Object(_) | Value::Array(_) => Err(Error::Invalid(
                "associative list without keys has an element that's a map or list type".into(),
            )),
            v => Ok(PathElement::Value(v.clone())),
        },
        ListType::Map(keys) => {
            let Value::Object(m) = item else {
                return Err(Error::Invalid(
                    "associative list with keys may not have non-map elements".into(),
                ));
            };
            let it = item_type(ti);
            let mut key = Vec::with_capacity(keys.len());
            for k in keys {
                let v = match m.get(k).filter(|v| !v.is_null()) {
                    Some(v) => v.clone(),
                    None => match it.field(k).and_then(|f| f.default_value()) {
                        Some(d) => d.clone(),
                        // Built-in port lists key on protocol, which Kubernetes
                        // defaults to TCP; the built-in schemas here omit defaults.
                        None if k == "protocol" => Value::String("TCP".into()),
                        None => {
                            return Err(Error::Invalid(format!(
                                "associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                            )));
                        }
                    },
                };
                key.push((k.clone(), v));
            }
            Ok(PathElement::Key(sorted_key(key)))
        }
    }
}

/// Path elements of a list's items, in order.
fn elements_of(
    ti: &dyn TypeInfo,
    lt: &ListType,
    list: &[Value],
) -> Result<Vec<PathElement>, Error> {
    list.iter()
        .enumerate()
        .map(|(i, v)| item_element(ti, lt, i, v))
        .collect()
}

fn nonempty_obj(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object).filter(|m| !m.is_empty())
}

fn nonempty_list(v: Option<&Value>) -> Option<&Vec<Value>> {
    v.and_then(Value::as_array).filter(|l| !l.is_empty())
}

fn index_items<'v>(
    ti: &dyn TypeInfo,
    lt: &ListType,
    list: Option<&'v Vec<Value>>,
) -> Result<Vec<(PathElement, &'v Value)>, Error> {
    let list: &[Value] = list.map(Vec::as_slice).unwrap_or(&[]);
    Ok(elements_of(ti, lt, list)?.into_iter().zip(list).collect())
}

/// Whether both sides are maps (or absent / null), with at least one map.
fn map_pair(l: Option<&Value>, r: Option<&Value>) -> bool {
    let ok = |v: Option<&Value>| matches!(v, None | Some(Value::Null) | Some(Value::Object(_)));
    ok(l) && ok(r) && (l.is_some_and(Value::is_object) || r.is_some_and(Value::is_object))
}

fn list_pair(l: Option<&Value>, r: Option<&Value>) -> bool {
    let ok = |v: Option<&Value>| matches!(v, None | Some(Value::Null) | Some(Value::Array(_)));
    ok(l) && ok(r) && (l.is_some_and(Value::is_array) || r.is_some_and(Value::is_array))
}

/// The fields an object sets (structured-merge-diff's `ToFieldSet`).
pub(crate) fn to_field_set(v: &Value, ti: &dyn TypeInfo, depth: usize) -> Result<FieldSet, Error> {
    depth_check(depth)?;
    let mut set = FieldSet::new();
    match v {
        Value::Object(m) => {
            if ti.map_type() == MapType::Atomic {
                return Ok(set);
            }
            for (k, child) in m {
                let ct = child_type(ti, k);
                let children = to_field_set(child, ct, depth + 1)?;
                let leaf = is_leaf(child, ct);
                let empty_map = child.as_object().is_some_and(Map::is_empty);
                let pe = PathElement::Field(k.clone());
                if leaf || child.is_null() || empty_map || !is_declared(ti, k) {
                    set.set_member(pe, children);
                } else {
                    set.set_children(pe, children);
                }
            }
        }
        Value::Array(l) => {
            let lt = ti.list_type();
            if lt == ListType::Atomic {
                return Ok(set);
            }
            let it = item_type(ti);
            for (i, item) in l.iter().enumerate() {
                let pe = item_element(ti, &lt, i, item)?;
                let children = to_field_set(item, it, depth + 1)?;
                set.set_member(pe, children);
            }
        }
        _ => {}
    }
    Ok(set)
}

/// Whether a value is owned as a whole at its own path.
fn is_leaf(v: &Value, ti: &dyn TypeInfo) -> bool {
    match v {
        Value::Object(_) => ti.map_type() == MapType::Atomic,
        Value::Array(_) => ti.list_type() == ListType::Atomic,
        _ => true,
    }
}

/// Differences between two versions of an object.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

pub(crate) fn compare(l: &Value, r: &Value, ti: &dyn TypeInfo) -> Result<Comparison, Error> {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    compare_node(Some(l), Some(r), ti, &mut path, &mut c)?;
    Ok(c)
}

fn compare_node(
    l: Option<&Value>,
    r: Option<&Value>,
    ti: &dyn TypeInfo,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) -> Result<(), Error> {
    depth_check(path.len())?;
    if l.is_none() && r.is_none() {
        return Ok(());
    }
    let mut leaf = true;
    if map_pair(l, r) {
        let (lm, rm) = (nonempty_obj(l), nonempty_obj(r));
        if ti.map_type() == MapType::Granular && (lm.is_some() || rm.is_some()) {
            leaf = false;
            if let Some(lm) = lm {
                for (k, lv) in lm {
                    path.push(PathElement::Field(k.clone()));
                    compare_node(
                        Some(lv),
                        rm.and_then(|m| m.get(k)),
                        child_type(ti, k),
                        path,
                        c,
                    )?;
                    path.pop();
                }
            }
            if let Some(rm) = rm {
                for (k, rv) in rm {
                    if lm.is_some_and(|m| m.contains_key(k)) {
                        continue;
                    }
                    path.push(PathElement::Field(k.clone()));
                    compare_node(None, Some(rv), child_type(ti, k), path, c)?;
                    path.pop();
                }
            }
        }
    } else if list_pair(l, r) {
        let (ll, rl) = (nonempty_list(l), nonempty_list(r));
        let lt = ti.list_type();
        if lt != ListType::Atomic && (ll.is_some() || rl.is_some()) {
            leaf = false;
            let it = item_type(ti);
            let lix = index_items(ti, &lt, ll)?;
            let rix = index_items(ti, &lt, rl)?;
            let mut rmap: BTreeMap<&PathElement, &Value> = BTreeMap::new();
            for (pe, v) in &rix {
                rmap.entry(pe).or_insert(v);
            }
            let mut seen = BTreeSet::new();
            for (pe, lv) in &lix {
                if !seen.insert(pe) {
                    continue;
                }
                path.push(pe.clone());
                compare_node(Some(lv), rmap.get(pe).copied(), it, path, c)?;
                path.pop();
            }
            for (pe, rv) in &rix {
                if !seen.insert(pe) {
                    continue;
                }
                path.push(pe.clone());
                compare_node(None, Some(rv), it, path, c)?;
                path.pop();
            }
        }
    }
    match (l, r) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        (Some(a), Some(b)) if leaf && a != b => c.modified.insert(path),
        _ => {}
    }
    Ok(())
}

/// Merges `r` (applied configuration) into `l` (live) by schema.
pub(crate) fn merge(
    l: Option<&Value>,
    r: Option<&Value>,
    ti: &dyn TypeInfo,
    depth: usize,
) -> Result<Option<Value>, Error> {
    depth_check(depth)?;
    if map_pair(l, r) && ti.map_type() == MapType::Granular {
        let (lm, rm) = (nonempty_obj(l), nonempty_obj(r));
        if lm.is_some() || rm.is_some() {
            let mut out = Map::new();
            if let Some(lm) = lm {
                for (k, lv) in lm {
                    let rv = rm.and_then(|m| m.get(k));
                    if let Some(v) = merge(Some(lv), rv, child_type(ti, k), depth + 1)? {
                        out.insert(k.clone(), v);
                    }
                }
            }
            if let Some(rm) = rm {
                for (k, rv) in rm {
                    if lm.is_some_and(|m| m.contains_key(k)) {
                        continue;
                    }
                    if let Some(v) = merge(None, Some(rv), child_type(ti, k), depth + 1)? {
                        out.insert(k.clone(), v);
                    }
                }
            }
            return Ok(Some(Value::Object(out)));
        }
    } else if list_pair(l, r) {
        let lt = ti.list_type();
        let (ll, rl) = (nonempty_list(l), nonempty_list(r));
        if lt != ListType::Atomic && (ll.is_some() || rl.is_some()) {
            return merge_list(
                ll.map(Vec::as_slice).unwrap_or(&[]),
                rl.map(Vec::as_slice).unwrap_or(&[]),
                ti,
                &lt,
                depth,
            )
            .map(Some);
        }
    }
    Ok(r.or(l).cloned())
}

/// Merges associative lists: the result follows the applied order for the
/// applied items, with live-only items kept at their place relative to them.
fn merge_list(
    l: &[Value],
    r: &[Value],
    ti: &dyn TypeInfo,
    lt: &ListType,
    depth: usize,
) -> Result<Value, Error> {
    let it = item_type(ti);
    let lpes = elements_of(ti, lt, l)?;
    let rpes = elements_of(ti, lt, r)?;
    let mut rmap: BTreeMap<&PathElement, &Value> = BTreeMap::new();
    for (pe, v) in rpes.iter().zip(r) {
        if rmap.insert(pe, v).is_some() {
            return Err(Error::Invalid(format!("duplicate entries for key {pe}")));
        }
    }
    let mut lmap: BTreeMap<&PathElement, &Value> = BTreeMap::new();
    for (pe, v) in lpes.iter().zip(l) {
        lmap.entry(pe).or_insert(v);
    }
    // Applied items that also exist live, in applied order: live items are
    // consumed in this order so shared items never move backwards.
    let shared: Vec<&PathElement> = rpes.iter().filter(|pe| lmap.contains_key(pe)).collect();
    let mut next_shared = 0usize;
    let mut done: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(l.len() + r.len());
    let (mut li, mut ri) = (0usize, 0usize);
    while li < lpes.len() || ri < rpes.len() {
        if li < lpes.len() {
            let pe = &lpes[li];
            if done.contains(pe) {
                li += 1;
                continue;
            }
            if !rmap.contains_key(pe) {
                if let Some(v) = merge(Some(&l[li]), None, it, depth + 1)? {
                    out.push(v);
                }
                li += 1;
                continue;
            }
            if ri < rpes.len() && rpes[ri] == *pe {
                done.insert(pe);
                if let Some(v) = merge(lmap.get(pe).copied(), rmap.get(pe).copied(), it, depth + 1)?
                {
                    out.push(v);
                }
                li += 1;
                ri += 1;
                if shared.get(next_shared) == Some(&pe) {
                    next_shared += 1;
                }
                continue;
            }
            if shared.get(next_shared) != Some(&pe) {
                // A shared item that comes later in the applied order: wait for it there.
                li += 1;
                continue;
            }
        }
        if ri < rpes.len() {
            let pe = &rpes[ri];
            done.insert(pe);
            if let Some(v) = merge(lmap.get(pe).copied(), rmap.get(pe).copied(), it, depth + 1)? {
                out.push(v);
            }
            ri += 1;
            if shared.get(next_shared) == Some(&pe) {
                next_shared += 1;
            }
        } else {
            li += 1;
        }
    }
    Ok(Value::Array(out))
}

/// Removes the paths in `set` from `v` (structured-merge-diff's `RemoveItems`).
/// `None` when everything was removed.
pub(crate) fn remove_items(
    v: &Value,
    set: &FieldSet,
    ti: &dyn TypeInfo,
    depth: usize,
) -> Result<Option<Value>, Error> {
    depth_check(depth)?;
    match v {
        Value::Object(m) if !m.is_empty() && ti.map_type() == MapType::Granular => {
            let mut out = Map::new();
            for (k, child) in m {
                let pe = PathElement::Field(k.clone());
                if set.has_member(&pe) {
                    continue;
                }
                match set.children_of(&pe) {
                    Some(sub) => {
                        if let Some(c) = remove_items(child, sub, child_type(ti, k), depth + 1)? {
                            out.insert(k.clone(), c);
                        }
                    }
                    None => {
                        out.insert(k.clone(), child.clone());
                    }
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        Value::Array(l) if !l.is_empty() && ti.list_type() != ListType::Atomic => {
            let lt = ti.list_type();
            let it = item_type(ti);
            let mut out = Vec::with_capacity(l.len());
            for (i, item) in l.iter().enumerate() {
                let pe = item_element(ti, &lt, i, item)?;
                if set.has_member(&pe) {
                    continue;
                }
                match set.children_of(&pe) {
                    Some(sub) => {
                        if let Some(c) = remove_items(item, sub, it, depth + 1)? {
                            out.push(c);
                        }
                    }
                    None => out.push(item.clone()),
                }
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
        _ => Ok(Some(v.clone())),
    }
}

/// Adds declared fields that have owned children as members themselves, so
/// that removing them removes the (now empty) struct too.
pub(crate) fn ensure_named_fields_are_members(
    set: &FieldSet,
    ti: &dyn TypeInfo,
    depth: usize,
) -> Result<FieldSet, Error> {
    depth_check(depth)?;
    let mut out = FieldSet::new();
    for p in set_top(set) {
        let (pe, member, children) = p;
        let ct = match pe {
            PathElement::Field(n) => child_type(ti, n),
            _ => item_type(ti),
        };
        let children = match children {
            Some(c) => ensure_named_fields_are_members(c, ct, depth + 1)?,
            None => FieldSet::new(),
        };
        let named =
            matches!(pe, PathElement::Field(n) if is_declared(ti, n)) && !children.is_empty();
        if member || named {
            out.set_member(pe.clone(), children);
        } else {
            out.set_children(pe.clone(), children);
        }
    }
    Ok(out)
}

fn set_top(set: &FieldSet) -> Vec<(&PathElement, bool, Option<&FieldSet>)> {
    set.top_level()
}
