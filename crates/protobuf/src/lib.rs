//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`) to and
//! from the Kubernetes JSON form that kplex stores and processes.
//!
//! client-go's typed clients (so kubectl's `create`, `auth can-i`, `auth
//! whoami`, …) send protobuf with no JSON fallback, and accept it in answers.
//! The body is the magic `k8s\0` followed by a `runtime.Unknown` message
//! (typeMeta, raw = the object's own message, contentEncoding, contentType).
//!
//! # Approach
//!
//! A small schema-driven codec: the `schema` module parses a compact table of the
//! Kubernetes messages (field number, JSON name, type; `src/schema.txt`,
//! about 560 messages of the core, apps, batch, rbac, authentication,
//! authorization, autoscaling, policy, networking, scheduling, coordination,
//! certificates, events, discovery, storage, admissionregistration, node,
//! flowcontrol, apiregistration and meta packages, all at v1/v2), and one
//! generic walker turns wire bytes into `serde_json::Value` and back,
//! special-casing the types whose JSON is not an object of their fields
//! (Time, MicroTime, Duration, Quantity, IntOrString, RawExtension, FieldsV1,
//! named-slice wrappers, Go-embedded structs rendered inline).
//!
//! Why not use the crates.io options directly: `k8s-pb` 0.9 carries prost
//! structs only: no descriptors, no serde, and prost keeps only snake_case
//! Rust names, so the JSON names (`volumeID`, `uid`, inline embeds) are
//! lost and every type would need a hand-written JSON conversion;
//! `prost-reflect` would still need the descriptors and its JSON mapping is
//! proto3's, not Kubernetes'. Build cost: no new dependencies (serde_json,
//! thiserror, base64 are already in the workspace); the table is parsed
//! once, lazily. k8s-pb and prost are dev-dependencies only: the tests
//! encode and decode through k8s-pb's compiled prost types as an oracle
//! (about 20 s of build).
//!
//! # The schema table
//!
//! `src/schema.txt` is generated, from crates.io sources only, by
//! `examples/gen_schema.rs`, which reads (never compiles against) the
//! package sources that cargo downloaded for `k8s-pb` 0.9 and `k8s-openapi`
//! 0.29, found with `cargo metadata`:
//!
//! - messages, their order, field numbers, wire types, repeated/map and
//!   message types: k8s-pb's prost attributes and field types
//!   (`#[prost(string, optional, tag = "1")]`, `#[prost(btree_map =
//!   "string, bytes", tag = "3")]`, `super::…::meta::v1::ObjectMeta`);
//!   named-slice wrappers (`ExtraValue`, `Verbs`): the
//!   `+protobuf.nullable=true` tag in k8s-pb's doc comments;
//! - JSON names: k8s-openapi's serde `Deserialize` impls (`"binaryData" =>
//!   Field::Key_binary_data`) of the Kubernetes version k8s-pb was built
//!   from (`v1_35`), matched by Rust name (or up to case and underscores:
//!   prost's `u_id` is `uid`); a singular message field with no JSON name is
//!   a Go-embedded struct (`^`, inline), checked against the outer object's
//!   names; embedded messages that k8s-openapi lacks (VolumeSource,
//!   ProbeHandler, …) take their names from the embedding object, other
//!   messages it lacks (options kinds, Time, …) from the leading word of
//!   the Go doc comment when it is the field's name (`insecureSkipTLSVerifyBackend`),
//!   else prost's name in lowerCamelCase;
//! - message names: k8s-openapi's type of the same name up to case, else the
//!   doc comment's leading word (prost re-cases `AWSElastic…` to `AwsElastic…`).
//!
//! Regenerate (rewrites `src/schema.txt`; the `gen-schema` feature only
//! makes cargo fetch k8s-openapi):
//!
//! ```text
//! cargo run -p kplex-protobuf --example gen_schema --features gen-schema
//! ```
//!
//! # JSON rendering
//!
//! Go's protobuf encoder writes non-pointer fields even when zero, so a
//! decoded body carries `stdin: false`, `generation: 0`, `namespace: ""`, …
//! that Go's JSON omits (`omitempty`). `src/omitempty.txt` lists, per message,
//! the fields that are plain Go values with `omitempty` (generated from the Go
//! struct tags of k8s.io/api and k8s.io/apimachinery by
//! `examples/gen_omitempty.rs`, whose docs say how); their zeros are dropped,
//! while zeros of pointer fields (`replicas: 0`, `readOnlyRootFilesystem:
//! false`), which a client set, are kept. Messages the table does not list
//! fall back to dropping empty strings only (but `storageClassName`). Empty
//! Time messages (Go's zero time) are dropped too. Keys come in field-number
//! order, which is Go's struct order for all but later-added fields.
//!
//! Untrusted input: lengths are checked against the remaining bytes before
//! use, nesting (including objects enveloped inside RawExtensions) is
//! bounded at 64 levels, groups and bad wire types are errors; the only
//! amplification is that of `serde_json::Value` itself, so callers should
//! bound body sizes as they do for JSON.

mod fmt;
mod schema;
mod wire;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use schema::{Card, Scalar, Schema, Special, Ty};
use wire::{FIXED32, FIXED64, LEN, Reader, VARINT, put_bytes, put_key, put_varint};

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The media type of a protobuf watch stream (see [`encode_watch_event`]).
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";
/// The 4 bytes that start every enveloped body: "k8s\0".
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// Bounds message nesting (and embedded objects) so that an untrusted body
/// cannot exhaust the stack; real objects nest about 15 deep.
const MAX_DEPTH: usize = 64;

/// Singular strings whose empty value means something (an explicitly empty
/// storage class disables dynamic provisioning).
const KEEP_EMPTY: &[&str] = &["storageClassName"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("body does not start with the Kubernetes protobuf magic k8s\\0")]
    BadMagic,
    #[error("truncated protobuf data")]
    Truncated,
    #[error("malformed protobuf varint")]
    BadVarint,
    #[error("malformed protobuf field key")]
    BadKey,
    #[error("field {field}: unexpected wire type {wire}")]
    WireType { field: String, wire: u8 },
    #[error("protobuf is not supported for kind {kind:?} of apiVersion {api_version:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    #[error("unsupported content encoding {0:?}")]
    ContentEncoding(String),
    #[error("field {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("protobuf schema table: {0}")]
    Schema(String),
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Whether (apiVersion, kind) can be decoded and encoded here.
pub fn supports(api_version: &str, kind: &str) -> bool {
    schema::schema().is_ok_and(|s| schema::lookup(s, api_version, kind).is_some())
}

/// An enveloped protobuf body → the object's Kubernetes JSON.
pub fn decode(body: &[u8]) -> Result<Value, Error> {
    decode_enveloped(body, 0)
}

/// A Kubernetes JSON object (with `apiVersion` and `kind`) → an enveloped
/// protobuf body.
pub fn encode(obj: &Value) -> Result<Vec<u8>, Error> {
    let s = schema::schema()?;
    let field_str = |name: &str| {
        obj.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(name, "missing or not a string"))
    };
    let (api_version, kind) = (field_str("apiVersion")?, field_str("kind")?);
    let idx = schema::lookup(s, api_version, kind).ok_or_else(|| Error::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    })?;
    let mut raw = Vec::new();
    encode_msg(s, idx, obj, 1, &mut raw)?;
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(&MAGIC);
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, &raw);
    // Go writes the empty contentEncoding and contentType too.
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// One frame of a protobuf watch stream: a 4-byte big-endian length, then
/// a meta/v1 WatchEvent without envelope whose object is the enveloped
/// encoding of `obj` (what client-go's protobuf watch decoder reads).
pub fn encode_watch_event(event_type: &str, obj: &Value) -> Result<Vec<u8>, Error> {
    let object = encode(obj)?;
    let mut raw_ext = Vec::new();
    put_bytes(&mut raw_ext, 1, &object);
    let mut event = Vec::new();
    put_bytes(&mut event, 1, event_type.as_bytes());
    put_bytes(&mut event, 2, &raw_ext);
    let len = u32::try_from(event.len()).map_err(|_| invalid("object", "too large"))?;
    let mut out = Vec::with_capacity(event.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&event);
    Ok(out)
}

fn decode_enveloped(body: &[u8], depth: usize) -> Result<Value, Error> {
    let rest = body.strip_prefix(&MAGIC).ok_or(Error::BadMagic)?;
    let (mut api_version, mut kind, mut raw, mut encoding) = ("", "", &[][..], "");
    let mut r = Reader::new(rest);
    while !r.is_empty() {
        match r.key()? {
            (1, LEN) => {
                let mut t = Reader::new(r.bytes()?);
                while !t.is_empty() {
                    match t.key()? {
                        (1, LEN) => api_version = utf8(t.bytes()?, "apiVersion")?,
                        (2, LEN) => kind = utf8(t.bytes()?, "kind")?,
                        (_, w) => t.skip(w)?,
                    }
                }
            }
            (2, LEN) => raw = r.bytes()?,
            (3, LEN) => encoding = utf8(r.bytes()?, "contentEncoding")?,
            (n @ 1..=3, w) => {
                return Err(Error::WireType {
                    field: format!("runtime.Unknown.{n}"),
                    wire: w,
                });
            }
            (_, w) => r.skip(w)?,
        }
    }
    if !encoding.is_empty() {
        return Err(Error::ContentEncoding(encoding.to_owned()));
    }
    let s = schema::schema()?;
    let idx = schema::lookup(s, api_version, kind).ok_or_else(|| Error::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    })?;
    let Value::Object(fields) = decode_msg(s, idx, raw, depth + 1)? else {
        return Err(Error::Schema(format!("{kind} is not an object")));
    };
    let mut out = Map::with_capacity(fields.len() + 2);
    out.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    out.insert("kind".into(), Value::String(kind.to_owned()));
    out.extend(fields);
    Ok(Value::Object(out))
}

fn utf8<'a>(b: &'a [u8], field: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(b).map_err(|_| invalid(field, "not UTF-8"))
}

fn wire_err(msg: &str, field: &str, wire: u8) -> Error {
    Error::WireType {
        field: format!("{msg}.{field}"),
        wire,
    }
}

fn decode_msg(s: &Schema, idx: usize, data: &[u8], depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep(MAX_DEPTH));
    }
    let msg = s.msg(idx)?;
    if !matches!(msg.special, Special::None | Special::Wrapper) {
        return decode_special(msg.special, msg.name, data, depth);
    }
    let mut slots: Vec<Option<Value>> = vec![None; msg.fields.len()];
    let mut r = Reader::new(data);
    while !r.is_empty() {
        let (num, wire) = r.key()?;
        let Ok(pos) = msg.fields.binary_search_by_key(&num, |f| f.num) else {
            r.skip(wire)?;
            continue;
        };
        let (Some(f), Some(slot)) = (msg.fields.get(pos), slots.get_mut(pos)) else {
            return Err(Error::Schema(format!("{}: field {num}", msg.name)));
        };
        match f.card {
            Card::Single => {
                let v = read_one(s, f.ty, wire, &mut r, depth, msg.name, f.json)?;
                let unset = match &v {
                    Value::Null => true,
                    // Go always writes plain values; its JSON drops the omitempty ones
                    // when zero, and so does the decoded object.
                    _ if msg.tags_known => {
                        f.omit_zero && matches!(f.ty, Ty::Scalar(_)) && is_zero(&v)
                    }
                    Value::String(st) => {
                        st.is_empty()
                            && f.ty == Ty::Scalar(Scalar::String)
                            && !KEEP_EMPTY.contains(&f.json)
                    }
                    _ => false,
                };
                *slot = if unset { None } else { Some(v) };
            }
            Card::Repeated => {
                let Value::Array(items) = slot.get_or_insert_with(|| Value::Array(Vec::new()))
                else {
                    return Err(Error::Schema(format!("{}.{}", msg.name, f.json)));
                };
                match f.ty {
                    // proto2 repeated numbers may arrive packed or not.
                    Ty::Scalar(sc)
                        if wire == LEN && !matches!(sc, Scalar::String | Scalar::Bytes) =>
                    {
                        let packed_wire = match sc {
                            Scalar::Double => FIXED64,
                            Scalar::Float => FIXED32,
                            _ => VARINT,
                        };
                        let mut pr = Reader::new(r.bytes()?);
                        while !pr.is_empty() {
                            items.push(read_one(
                                s,
                                f.ty,
                                packed_wire,
                                &mut pr,
                                depth,
                                msg.name,
                                f.json,
                            )?);
                        }
                    }
                    _ => items.push(read_one(s, f.ty, wire, &mut r, depth, msg.name, f.json)?),
                }
            }
            Card::Map => {
                if wire != LEN {
                    return Err(wire_err(msg.name, f.json, wire));
                }
                let mut er = Reader::new(r.bytes()?);
                let (mut key, mut val) = (String::new(), None);
                while !er.is_empty() {
                    match er.key()? {
                        (1, LEN) => key = String::from_utf8_lossy(er.bytes()?).into_owned(),
                        (1, w) => return Err(wire_err(msg.name, f.json, w)),
                        (2, w) => {
                            val = Some(read_one(s, f.ty, w, &mut er, depth, msg.name, f.json)?)
                        }
                        (_, w) => er.skip(w)?,
                    }
                }
                let val = match val {
                    Some(v) => v,
                    None => default_of(s, f.ty, depth)?,
                };
                let Value::Object(m) = slot.get_or_insert_with(|| Value::Object(Map::new())) else {
                    return Err(Error::Schema(format!("{}.{}", msg.name, f.json)));
                };
                m.insert(key, val);
            }
        }
    }
    if msg.special == Special::Wrapper {
        return Ok(slots
            .into_iter()
            .next()
            .flatten()
            .unwrap_or(Value::Array(Vec::new())));
    }
    let mut out = Map::new();
    for (f, slot) in msg.fields.iter().zip(slots) {
        match slot {
            Some(Value::Object(inner)) if f.inline => out.extend(inner),
            Some(v) => {
                out.insert(f.json.to_owned(), v);
            }
            None => {}
        }
    }
    Ok(Value::Object(out))
}

/// `false`, `0` or `""`: a scalar's zero value.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// The value a map entry without a value field stands for.
fn default_of(s: &Schema, ty: Ty, depth: usize) -> Result<Value, Error> {
    Ok(match ty {
        Ty::Scalar(Scalar::String | Scalar::Bytes) => Value::String(String::new()),
        Ty::Scalar(Scalar::Bool) => Value::Bool(false),
        Ty::Scalar(Scalar::Double | Scalar::Float | Scalar::Int32 | Scalar::Int64) => {
            Value::from(0)
        }
        Ty::Msg(i) => decode_msg(s, i, &[], depth + 1)?,
    })
}

fn read_one(
    s: &Schema,
    ty: Ty,
    wire: u8,
    r: &mut Reader<'_>,
    depth: usize,
    msg: &str,
    field: &str,
) -> Result<Value, Error> {
    let want = match ty {
        Ty::Scalar(Scalar::Bool | Scalar::Int32 | Scalar::Int64) => VARINT,
        Ty::Scalar(Scalar::Double) => FIXED64,
        Ty::Scalar(Scalar::Float) => FIXED32,
        _ => LEN,
    };
    if wire != want {
        return Err(wire_err(msg, field, wire));
    }
    Ok(match ty {
        // Go's JSON encoder replaces invalid UTF-8 the same way.
        Ty::Scalar(Scalar::String) => {
            Value::String(String::from_utf8_lossy(r.bytes()?).into_owned())
        }
        Ty::Scalar(Scalar::Bytes) => Value::String(BASE64.encode(r.bytes()?)),
        Ty::Scalar(Scalar::Bool) => Value::Bool(r.varint()? != 0),
        // Truncation to 32 bits is what Go's decoder does.
        Ty::Scalar(Scalar::Int32) => Value::from(r.varint()? as i32),
        Ty::Scalar(Scalar::Int64) => Value::from(r.varint()? as i64),
        Ty::Scalar(Scalar::Double) => float(f64::from_bits(r.fixed64()?), msg, field)?,
        Ty::Scalar(Scalar::Float) => float(f64::from(f32::from_bits(r.fixed32()?)), msg, field)?,
        Ty::Msg(i) => decode_msg(s, i, r.bytes()?, depth + 1)?,
    })
}

fn float(v: f64, msg: &str, field: &str) -> Result<Value, Error> {
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| invalid(&format!("{msg}.{field}"), "not a finite number"))
}

/// The scalar fields 1..=3 of a small special message, by number.
#[derive(Default)]
struct Small<'a> {
    ints: [Option<u64>; 3],
    bytes: [Option<&'a [u8]>; 3],
}

fn read_small<'a>(data: &'a [u8], name: &str) -> Result<Small<'a>, Error> {
    let mut out = Small::default();
    let mut r = Reader::new(data);
    while !r.is_empty() {
        let (num, wire) = r.key()?;
        let i = num as usize;
        match wire {
            VARINT if (1..=3).contains(&i) => {
                let v = r.varint()?;
                if let Some(slot) = out.ints.get_mut(i - 1) {
                    *slot = Some(v);
                }
            }
            LEN if (1..=3).contains(&i) => {
                let v = r.bytes()?;
                if let Some(slot) = out.bytes.get_mut(i - 1) {
                    *slot = Some(v);
                }
            }
            w if (1..=3).contains(&i) => return Err(wire_err(name, &num.to_string(), w)),
            w => r.skip(w)?,
        }
    }
    Ok(out)
}

fn decode_special(special: Special, name: &str, data: &[u8], depth: usize) -> Result<Value, Error> {
    let m = read_small(data, name)?;
    let [i1, i2, _] = m.ints;
    let [b1, _, b3] = m.bytes;
    Ok(match special {
        // Go's zero time is encoded as an empty message and renders as null.
        Special::Time | Special::MicroTime if data.is_empty() => Value::Null,
        Special::Time => {
            // Go drops the nanoseconds of a Time on decode.
            let secs = i1.unwrap_or(0) as i64;
            Value::String(
                fmt::format_time(secs, None).ok_or_else(|| invalid(name, "time out of range"))?,
            )
        }
        Special::MicroTime => {
            let secs = i1.unwrap_or(0) as i64;
            let nanos = i2.unwrap_or(0) as i32;
            let micros = u32::try_from(nanos / 1000)
                .ok()
                .filter(|_| (0..1_000_000_000).contains(&nanos))
                .ok_or_else(|| invalid(name, "nanos out of range"))?;
            Value::String(
                fmt::format_time(secs, Some(micros))
                    .ok_or_else(|| invalid(name, "time out of range"))?,
            )
        }
        Special::Duration => Value::String(kplex_gocompat::format_duration(i1.unwrap_or(0) as i64)),
        Special::Quantity => {
            Value::String(String::from_utf8_lossy(b1.unwrap_or_default()).into_owned())
        }
        Special::IntOrString => {
            if i1 == Some(1) {
                Value::String(String::from_utf8_lossy(b3.unwrap_or_default()).into_owned())
            } else {
                Value::from(i2.unwrap_or(0) as i32)
            }
        }
        Special::RawJson => match b1 {
            None | Some([]) => Value::Null,
            // Objects nested in protobuf (List items, watch events) are
            // themselves enveloped.
            Some(raw) if raw.starts_with(&MAGIC) => decode_enveloped(raw, depth)?,
            Some(raw) => serde_json::from_slice(raw).map_err(|e| invalid(name, e.to_string()))?,
        },
        Special::None | Special::Wrapper => {
            return Err(Error::Schema(format!("{name} is not special")));
        }
    })
}

fn encode_msg(
    s: &Schema,
    idx: usize,
    v: &Value,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep(MAX_DEPTH));
    }
    let msg = s.msg(idx)?;
    match msg.special {
        Special::None => {}
        Special::Wrapper => {
            let f = msg
                .fields
                .first()
                .ok_or_else(|| Error::Schema(msg.name.to_owned()))?;
            let items = v
                .as_array()
                .ok_or_else(|| invalid(msg.name, "expected an array"))?;
            for item in items {
                write_one(s, f.num, f.ty, item, depth, out, msg.name, f.json)?;
            }
            return Ok(());
        }
        sp => return encode_special(sp, msg.name, v, out),
    }
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(msg.name, "expected an object"))?;
    for f in &msg.fields {
        if f.inline {
            // A Go-embedded struct takes its fields from the same object.
            let mut inner = Vec::new();
            if let Ty::Msg(i) = f.ty {
                encode_msg(s, i, v, depth + 1, &mut inner)?;
            }
            put_bytes(out, f.num, &inner);
            continue;
        }
        let Some(val) = obj.get(f.json).filter(|v| !v.is_null()) else {
            continue;
        };
        match f.card {
            Card::Single => write_one(s, f.num, f.ty, val, depth, out, msg.name, f.json)?,
            Card::Repeated => {
                let items = val.as_array().ok_or_else(|| {
                    invalid(&format!("{}.{}", msg.name, f.json), "expected an array")
                })?;
                for item in items {
                    write_one(s, f.num, f.ty, item, depth, out, msg.name, f.json)?;
                }
            }
            Card::Map => {
                let entries = val.as_object().ok_or_else(|| {
                    invalid(&format!("{}.{}", msg.name, f.json), "expected an object")
                })?;
                for (k, ev) in entries {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, k.as_bytes());
                    write_one(s, 2, f.ty, ev, depth, &mut entry, msg.name, f.json)?;
                    put_bytes(out, f.num, &entry);
                }
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_one(
    s: &Schema,
    num: u32,
    ty: Ty,
    v: &Value,
    depth: usize,
    out: &mut Vec<u8>,
    msg: &str,
    field: &str,
) -> Result<(), Error> {
    let bad = |what: &str| invalid(&format!("{msg}.{field}"), format!("expected {what}"));
    let int = |lo: i64, hi: i64| {
        v.as_i64()
            .filter(|i| (lo..=hi).contains(i))
            .ok_or_else(|| bad("an integer in range"))
    };
    match ty {
        Ty::Scalar(Scalar::String) => put_bytes(
            out,
            num,
            v.as_str().ok_or_else(|| bad("a string"))?.as_bytes(),
        ),
        Ty::Scalar(Scalar::Bytes) => {
            let text = v.as_str().ok_or_else(|| bad("a base64 string"))?;
            let raw = BASE64.decode(text).map_err(|_| bad("a base64 string"))?;
            put_bytes(out, num, &raw);
        }
        Ty::Scalar(Scalar::Bool) => {
            put_key(out, num, VARINT);
            put_varint(out, u64::from(v.as_bool().ok_or_else(|| bad("a boolean"))?));
        }
        Ty::Scalar(Scalar::Int32) => {
            let i = int(i64::from(i32::MIN), i64::from(i32::MAX))?;
            put_key(out, num, VARINT);
            put_varint(out, i as u64);
        }
        Ty::Scalar(Scalar::Int64) => {
            let i = int(i64::MIN, i64::MAX)?;
            put_key(out, num, VARINT);
            put_varint(out, i as u64);
        }
        Ty::Scalar(Scalar::Double) => {
            put_key(out, num, FIXED64);
            out.extend_from_slice(&v.as_f64().ok_or_else(|| bad("a number"))?.to_le_bytes());
        }
        Ty::Scalar(Scalar::Float) => {
            put_key(out, num, FIXED32);
            out.extend_from_slice(
                &(v.as_f64().ok_or_else(|| bad("a number"))? as f32).to_le_bytes(),
            );
        }
        Ty::Msg(i) => {
            let mut inner = Vec::new();
            // JSON null inside a list or map stands for the zero value.
            if !v.is_null() {
                encode_msg(s, i, v, depth + 1, &mut inner)?;
            }
            put_bytes(out, num, &inner);
        }
    }
    Ok(())
}

fn encode_special(special: Special, name: &str, v: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    let text = || v.as_str().ok_or_else(|| invalid(name, "expected a string"));
    match special {
        Special::Time | Special::MicroTime => {
            let (secs, nanos) = fmt::parse_time(text()?)
                .ok_or_else(|| invalid(name, "expected an RFC 3339 time"))?;
            put_key(out, 1, VARINT);
            put_varint(out, secs as u64);
            // Time keeps seconds only, as Go's ProtoTime does.
            let nanos = if special == Special::MicroTime {
                nanos / 1000 * 1000
            } else {
                0
            };
            put_key(out, 2, VARINT);
            put_varint(out, u64::from(nanos));
        }
        Special::Duration => {
            let d = kplex_gocompat::parse_duration(text()?)
                .ok_or_else(|| invalid(name, "expected a Go duration"))?;
            put_key(out, 1, VARINT);
            put_varint(out, d as u64);
        }
        Special::Quantity => {
            // JSON clients may write a bare number for a quantity.
            let q = match v {
                Value::Number(n) => n.to_string(),
                _ => text()?.to_owned(),
            };
            put_bytes(out, 1, q.as_bytes());
        }
        Special::IntOrString => {
            let (kind, int, string) = match v {
                Value::String(st) => (1u64, 0i64, st.as_str()),
                _ => {
                    let i = v
                        .as_i64()
                        .filter(|i| i32::try_from(*i).is_ok())
                        .ok_or_else(|| invalid(name, "expected a string or a 32-bit integer"))?;
                    (0, i, "")
                }
            };
            put_key(out, 1, VARINT);
            put_varint(out, kind);
            put_key(out, 2, VARINT);
            put_varint(out, int as u64);
            put_bytes(out, 3, string.as_bytes());
        }
        Special::RawJson => {
            let raw = serde_json::to_vec(v).map_err(|e| invalid(name, e.to_string()))?;
            put_bytes(out, 1, &raw);
        }
        Special::None | Special::Wrapper => {
            return Err(Error::Schema(format!("{name} is not special")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
