//! Field paths, field sets and the FieldsV1 wire format.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::{Error, MAX_DEPTH};

/// One step of a field path.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A struct field or a map key (`f:name`).
    Field(String),
    /// A list-map item, identified by its key fields sorted by name (`k:{...}`).
    Key(Vec<(String, Value)>),
    /// A set item, identified by its value (`v:...`).
    Value(Value),
    /// A list item by position (`i:N`), only found in old or foreign FieldsV1.
    Index(i64),
}

fn rank(v: &Value) -> u8 {
    // structured-merge-diff's total order across kinds: numbers, strings, bools, lists, maps, null.
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// A total order on JSON values (numbers compare numerically).
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = compare_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for (p, q) in xs.iter().zip(&ys) {
                let c = p.0.cmp(q.0).then_with(|| compare_values(p.1, q.1));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

impl PathElement {
    fn kind(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The FieldsV1 key for this element (`f:name`, `k:{...}`, `v:...`, `i:N`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(n) => format!("f:{n}"),
            PathElement::Key(k) => {
                let m: Map<String, Value> = k.iter().cloned().collect();
                format!("k:{}", Value::Object(m))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses one FieldsV1 key (not `.`).
    pub fn from_fields_v1_key(s: &str) -> Result<PathElement, Error> {
        let bad = |why: &str| Error::FieldsV1(format!("invalid path element {s:?}: {why}"));
        if let Some(name) = s.strip_prefix("f:") {
            return Ok(PathElement::Field(name.to_string()));
        }
        if let Some(json) = s.strip_prefix("k:") {
            let v: Value = serde_json::from_str(json).map_err(|e| bad(&e.to_string()))?;
            let Value::Object(m) = v else {
                return Err(bad("key must be a JSON object"));
            };
            if m.is_empty() {
                return Err(bad("key must not be empty"));
            }
            return Ok(PathElement::Key(sorted_key(m.into_iter().collect())));
        }
        if let Some(json) = s.strip_prefix("v:") {
            let v: Value = serde_json::from_str(json).map_err(|e| bad(&e.to_string()))?;
            return Ok(PathElement::Value(v));
        }
        if let Some(idx) = s.strip_prefix("i:") {
            let i: i64 = idx.parse().map_err(|_| bad("index must be an integer"))?;
            return Ok(PathElement::Index(i));
        }
        Err(bad("unknown prefix"))
    }
}

/// Key fields are kept sorted by name so equal keys compare and print equally.
pub(crate) fn sorted_key(mut k: Vec<(String, Value)>) -> Vec<(String, Value)> {
    k.sort_by(|a, b| a.0.cmp(&b.0));
    k
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for (p, q) in a.iter().zip(b) {
                    let c = p.0.cmp(&q.0).then_with(|| compare_values(&p.1, &q.1));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.kind().cmp(&other.kind()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(n) => write!(f, ".{n}"),
            PathElement::Key(k) => {
                f.write_str("[")?;
                for (i, (n, v)) in k.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{n}={v}")?;
                }
                f.write_str("]")
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A field path; displays as kube prints it, e.g. `.spec.containers[name="nginx"].image`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    /// The path ending here is itself in the set.
    member: bool,
    children: FieldSet,
}

/// A set of field paths, stored as a trie (structured-merge-diff's `fieldpath.Set`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    nodes: BTreeMap<PathElement, Node>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set has no paths.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.nodes
            .values()
            .map(|n| usize::from(n.member) + n.children.len())
            .sum()
    }

    /// Adds a path (the empty path is ignored: the root is never a member).
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.nodes.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.member = true;
        } else {
            node.children.insert(rest);
        }
    }

    /// Whether the path is in the set.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        match self.nodes.get(first) {
            Some(n) if rest.is_empty() => n.member,
            Some(n) => n.children.contains(rest),
            None => false,
        }
    }

    /// Whether the one-element path `pe` is a member.
    pub(crate) fn has_member(&self, pe: &PathElement) -> bool {
        self.nodes.get(pe).is_some_and(|n| n.member)
    }

    /// The paths below `pe`, relative to it.
    pub(crate) fn children_of(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.nodes
            .get(pe)
            .map(|n| &n.children)
            .filter(|c| !c.is_empty())
    }

    /// Top-level elements with their membership and non-empty children.
    pub(crate) fn top_level(&self) -> Vec<(&PathElement, bool, Option<&FieldSet>)> {
        self.nodes
            .iter()
            .map(|(pe, n)| {
                let c = (!n.children.is_empty()).then_some(&n.children);
                (pe, n.member, c)
            })
            .collect()
    }

    pub(crate) fn set_member(&mut self, pe: PathElement, children: FieldSet) {
        let n = self.nodes.entry(pe).or_default();
        n.member = true;
        n.children.union_in_place(&children);
    }

    pub(crate) fn set_children(&mut self, pe: PathElement, children: FieldSet) {
        if children.is_empty() {
            return;
        }
        self.nodes
            .entry(pe)
            .or_default()
            .children
            .union_in_place(&children);
    }

    fn union_in_place(&mut self, other: &FieldSet) {
        for (pe, on) in &other.nodes {
            let n = self.nodes.entry(pe.clone()).or_default();
            n.member |= on.member;
            n.children.union_in_place(&on.children);
        }
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_in_place(other);
        out
    }

    /// Paths in `self` but not in `other` (exact paths: removing a parent keeps its children).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, n) in &self.nodes {
            let (member, children) = match other.nodes.get(pe) {
                Some(o) => (n.member && !o.member, n.children.difference(&o.children)),
                None => (n.member, n.children.clone()),
            };
            if member || !children.is_empty() {
                out.nodes.insert(pe.clone(), Node { member, children });
            }
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, n) in &self.nodes {
            if let Some(o) = other.nodes.get(pe) {
                let member = n.member && o.member;
                let children = n.children.intersection(&o.children);
                if member || !children.is_empty() {
                    out.nodes.insert(pe.clone(), Node { member, children });
                }
            }
        }
        out
    }

    /// All paths, in set order (fields, then keys, values, indices at each level).
    pub fn iter(&self) -> impl Iterator<Item = Path> + '_ {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect(&mut prefix, &mut out);
        out.into_iter()
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for (pe, n) in &self.nodes {
            prefix.push(pe.clone());
            if n.member {
                out.push(Path(prefix.clone()));
            }
            n.children.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Parses Kubernetes' FieldsV1 JSON.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, Error> {
        let (_, set) = Self::parse_v1(v, 0)?;
        Ok(set)
    }

    fn parse_v1(v: &Value, depth: usize) -> Result<(bool, FieldSet), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        let Value::Object(m) = v else {
            return Err(Error::FieldsV1(format!("expected an object, got {v}")));
        };
        let mut set = FieldSet::new();
        let mut dot = false;
        for (k, child) in m {
            if k == "." {
                dot = true;
                continue;
            }
            let pe = PathElement::from_fields_v1_key(k)?;
            let (member, children) = Self::parse_v1(child, depth + 1)?;
            // An empty object marks a leaf member; "." marks a member that also has children.
            let member = member || children.is_empty();
            let n = set.nodes.entry(pe).or_default();
            n.member |= member;
            n.children.union_in_place(&children);
        }
        Ok((dot, set))
    }

    /// Renders Kubernetes' FieldsV1 JSON.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit_v1(false))
    }

    fn emit_v1(&self, include_self: bool) -> Map<String, Value> {
        let mut m = Map::new();
        if include_self && !self.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (pe, n) in &self.nodes {
            m.insert(
                pe.to_fields_v1_key(),
                Value::Object(n.children.emit_v1(n.member)),
            );
        }
        m
    }
}

impl fmt::Display for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
