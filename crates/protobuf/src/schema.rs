//! The wire schema: a compact text table (`schema.txt`) parsed once into
//! message descriptors that the codec walks.
//!
//! Table format, one message per line: `<name>[[]] <field>...`, where a field
//! is `<number>:[^]<json name>:[*|%]<type>`. `^` marks a Go-embedded struct
//! whose fields appear inline in JSON, `*` a repeated field, `%` a
//! `map<string, type>`; a `[]` after the name marks a Go named-slice wrapper
//! (JSON renders it as a bare array). Types are the scalar codes of
//! [`Scalar::from_code`] or a message name.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::Error;

const TABLE: &str = include_str!("schema.txt");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    Float,
}

impl Scalar {
    fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "s" => Self::String,
            "y" => Self::Bytes,
            "b" => Self::Bool,
            "i" => Self::Int32,
            "l" => Self::Int64,
            "d" => Self::Double,
            "f" => Self::Float,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Scalar(Scalar),
    Msg(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    Single,
    Repeated,
    Map,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub num: u32,
    pub json: &'static str,
    pub ty: Ty,
    pub card: Card,
    pub inline: bool,
}

/// Messages whose JSON form is not a plain object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    None,
    /// meta/v1 Time: RFC 3339 with seconds precision.
    Time,
    /// meta/v1 MicroTime: RFC 3339 with microseconds.
    MicroTime,
    /// meta/v1 Duration: a Go duration string.
    Duration,
    /// resource.Quantity: its canonical string.
    Quantity,
    /// intstr.IntOrString: a JSON number or string.
    IntOrString,
    /// runtime.RawExtension, meta/v1 FieldsV1: embedded JSON bytes.
    RawJson,
    /// A Go named slice (ExtraValue, Verbs): a bare JSON array.
    Wrapper,
}

#[derive(Debug)]
pub(crate) struct Message {
    pub name: &'static str,
    pub special: Special,
    pub fields: Vec<Field>,
}

#[derive(Debug)]
pub(crate) struct Schema {
    pub messages: Vec<Message>,
    pub by_name: HashMap<&'static str, usize>,
}

impl Schema {
    pub fn msg(&self, idx: usize) -> Result<&Message, Error> {
        self.messages
            .get(idx)
            .ok_or_else(|| Error::Schema(format!("message index {idx}")))
    }
}

/// The parsed table; an error here is a bug in `schema.txt`, reported
/// instead of panicking so a bad table cannot take the server down.
pub(crate) fn schema() -> Result<&'static Schema, Error> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| parse(TABLE))
        .as_ref()
        .map_err(|e| Error::Schema(e.clone()))
}

fn special_for(name: &str, wrapper: bool) -> Special {
    if wrapper {
        return Special::Wrapper;
    }
    match name {
        "meta.v1.Time" => Special::Time,
        "meta.v1.MicroTime" => Special::MicroTime,
        "meta.v1.Duration" => Special::Duration,
        "resource.Quantity" | "resource.QuantityValue" => Special::Quantity,
        "intstr.IntOrString" => Special::IntOrString,
        "runtime.RawExtension" | "meta.v1.FieldsV1" => Special::RawJson,
        _ => Special::None,
    }
}

fn parse(table: &'static str) -> Result<Schema, String> {
    // Two passes: names first so that fields can refer to any message.
    let mut by_name = HashMap::new();
    let lines: Vec<&'static str> = table.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, line) in lines.iter().enumerate() {
        let head = line.split_whitespace().next().unwrap_or_default();
        by_name.insert(head.trim_end_matches("[]"), i);
    }
    let mut messages = Vec::with_capacity(lines.len());
    for line in lines {
        let mut parts = line.split_whitespace();
        let head = parts.next().unwrap_or_default();
        let name = head.trim_end_matches("[]");
        let mut fields = Vec::new();
        for f in parts {
            let mut it = f.splitn(3, ':');
            let (Some(num), Some(json), Some(ty)) = (it.next(), it.next(), it.next()) else {
                return Err(format!("{name}: bad field {f}"));
            };
            let num: u32 = num.parse().map_err(|_| format!("{name}: bad number {f}"))?;
            let (inline, json) = match json.strip_prefix('^') {
                Some(j) => (true, j),
                None => (false, json),
            };
            let (card, ty) = if let Some(t) = ty.strip_prefix('*') {
                (Card::Repeated, t)
            } else if let Some(t) = ty.strip_prefix('%') {
                (Card::Map, t)
            } else {
                (Card::Single, ty)
            };
            let ty = match Scalar::from_code(ty) {
                Some(s) => Ty::Scalar(s),
                None => Ty::Msg(
                    *by_name
                        .get(ty)
                        .ok_or_else(|| format!("{name}.{json}: unknown type {ty}"))?,
                ),
            };
            fields.push(Field {
                num,
                json,
                ty,
                card,
                inline,
            });
        }
        fields.sort_by_key(|f| f.num);
        messages.push(Message {
            name,
            special: special_for(name, head.ends_with("[]")),
            fields,
        });
    }
    Ok(Schema { messages, by_name })
}

/// API group/version → table package prefix.
const PACKAGES: &[(&str, &str)] = &[
    ("v1", "core.v1"),
    ("apps/v1", "apps.v1"),
    ("batch/v1", "batch.v1"),
    ("rbac.authorization.k8s.io/v1", "rbac.v1"),
    ("authentication.k8s.io/v1", "authentication.v1"),
    ("authorization.k8s.io/v1", "authorization.v1"),
    ("autoscaling/v1", "autoscaling.v1"),
    ("autoscaling/v2", "autoscaling.v2"),
    ("policy/v1", "policy.v1"),
    ("networking.k8s.io/v1", "networking.v1"),
    ("scheduling.k8s.io/v1", "scheduling.v1"),
    ("coordination.k8s.io/v1", "coordination.v1"),
    ("certificates.k8s.io/v1", "certificates.v1"),
    ("events.k8s.io/v1", "events.v1"),
    ("discovery.k8s.io/v1", "discovery.v1"),
    ("storage.k8s.io/v1", "storage.v1"),
    (
        "admissionregistration.k8s.io/v1",
        "admissionregistration.v1",
    ),
    ("node.k8s.io/v1", "node.v1"),
    ("flowcontrol.apiserver.k8s.io/v1", "flowcontrol.v1"),
    ("apiregistration.k8s.io/v1", "apiregistration.v1"),
    ("meta.k8s.io/v1", "meta.v1"),
];

/// meta/v1 kinds that Kubernetes registers in every group version
/// (AddToGroupVersion), so a body may carry any apiVersion with them.
const META_KINDS: &[&str] = &[
    "Status",
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "GetOptions",
    "ListOptions",
    "WatchEvent",
];

/// The message for an (apiVersion, kind), if it is a kind served here:
/// a meta/v1 options or Status kind, or a message of a known package whose
/// first field is `metadata` (objects and lists, not their parts).
pub(crate) fn lookup(schema: &Schema, api_version: &str, kind: &str) -> Option<usize> {
    if META_KINDS.contains(&kind) {
        return schema
            .by_name
            .get(format!("meta.v1.{kind}").as_str())
            .copied();
    }
    let pkg = PACKAGES.iter().find(|(gv, _)| *gv == api_version)?.1;
    let idx = *schema.by_name.get(format!("{pkg}.{kind}").as_str())?;
    let msg = schema.messages.get(idx)?;
    let first = msg.fields.first()?;
    (first.num == 1 && first.json == "metadata").then_some(idx)
}
