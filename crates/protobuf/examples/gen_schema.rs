//! Regenerates `src/schema.txt`, the wire-schema table of kplex-protobuf,
//! from the crates.io sources of `k8s-pb` and `k8s-openapi` as cargo
//! downloaded them (located with `cargo metadata`; nothing is compiled
//! against them):
//!
//! ```text
//! cargo run -p kplex-protobuf --example gen_schema --features gen-schema
//! ```
//!
//! - Messages, field numbers and wire types come from k8s-pb's prost code
//!   (`#[prost(string, optional, tag = "1")]`, `#[prost(message, repeated,
//!   tag = "2")]`, `#[prost(btree_map = "string, bytes", tag = "3")]`, …),
//!   message types from the Rust path of the field's type; a doc comment
//!   with `+protobuf.nullable=true` marks a Go named-slice wrapper.
//! - JSON names come from k8s-openapi's serde `Deserialize` impls (the
//!   `"binaryData" => Field::Key_binary_data` arms), matched to the prost
//!   field by Rust name, else by name without case and underscores (prost
//!   spells `uID` as `u_id`). A singular message field of a k8s-openapi
//!   object with no JSON name of its own is a Go-embedded struct rendered
//!   inline (checked: all the embedded message's JSON names are the outer
//!   object's). Messages that k8s-openapi does not describe as a JSON object
//!   (Time, Quantity, RawExtension, options kinds, …) keep prost's name in
//!   lowerCamelCase.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The k8s-pb module paths (also k8s-openapi's) of the packages kplex
/// serves over protobuf, in table order.
const PACKAGES: &[&str] = &[
    "api/core/v1",
    "api/apps/v1",
    "api/batch/v1",
    "api/rbac/v1",
    "api/authentication/v1",
    "api/authorization/v1",
    "api/autoscaling/v1",
    "api/autoscaling/v2",
    "api/policy/v1",
    "api/networking/v1",
    "api/scheduling/v1",
    "api/coordination/v1",
    "api/certificates/v1",
    "api/events/v1",
    "api/discovery/v1",
    "api/storage/v1",
    "api/admissionregistration/v1",
    "api/node/v1",
    "api/flowcontrol/v1",
    "kube_aggregator/pkg/apis/apiregistration/v1",
    "apimachinery/pkg/apis/meta/v1",
    "apimachinery/pkg/api/resource",
    "apimachinery/pkg/util/intstr",
    "apimachinery/pkg/runtime",
];

/// The crates.io packages read, by name and version prefix.
const K8S_PB: (&str, &str) = ("k8s-pb", "0.9.");
const K8S_OPENAPI: (&str, &str) = ("k8s-openapi", "0.29.");
/// The k8s-openapi module of the Kubernetes minor that k8s-pb 0.9 was
/// generated from (1.35: it has PodSpec.workloadRef).
const K8S_OPENAPI_VERSION: &str = "v1_35";

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_schema: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Res<()> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (pb_src, openapi_src) = crate_sources(manifest_dir)?;
    let openapi_src = openapi_src.join(K8S_OPENAPI_VERSION);

    let mut messages: Vec<Msg> = Vec::new();
    for pkg in PACKAGES {
        let path = pb_src.join(pkg).join("mod.rs");
        let text = read(&path)?;
        messages.extend(parse_prost(&text, pkg).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    let (mut objects, mut types) = (HashMap::new(), Vec::new());
    for pkg in PACKAGES {
        read_openapi_dir(&openapi_src.join(pkg), pkg, &mut objects, &mut types)?;
    }
    restore_type_names(&mut messages, &types);

    let by_name: HashMap<String, &Msg> = messages.iter().map(|m| (m.name.clone(), m)).collect();
    borrow_embedded_names(&messages, &mut objects);
    let mut out = String::new();
    let mut loose = Vec::new();
    for msg in &messages {
        let json = objects.get(&msg.name);
        let mut fields: Vec<&ProstField> = msg.fields.iter().collect();
        fields.sort_by_key(|f| f.num);
        let mut parts = Vec::new();
        for f in fields {
            let ty = match &f.ty {
                FieldTy::Scalar(code) => (*code).to_owned(),
                FieldTy::Msg(name) => {
                    if !by_name.contains_key(name) {
                        return Err(format!(
                            "{}.{}: type {name} is not in the table",
                            msg.name, f.name
                        ));
                    }
                    name.clone()
                }
            };
            let card = match f.card {
                Card::Single => "",
                Card::Repeated => "*",
                Card::Map => "%",
            };
            let (inline, name) = match json {
                None => (false, fallback_name(f)),
                Some(obj) => match json_name(obj, &f.name) {
                    Some((name, exact)) => {
                        if !exact {
                            loose.push(format!("{}.{} -> {name}", msg.name, f.name));
                        }
                        (false, name)
                    }
                    None => {
                        check_inline(msg, f, obj, &by_name, &objects)?;
                        (true, fallback_name(f))
                    }
                },
            };
            parts.push(format!(
                "{}:{}{name}:{card}{ty}",
                f.num,
                if inline { "^" } else { "" }
            ));
        }
        let wrapper = if msg.wrapper { "[]" } else { "" };
        // An empty message keeps its trailing space, as the table always had.
        let _ = writeln!(out, "{}{wrapper} {}", msg.name, parts.join(" "));
    }

    let dest = manifest_dir.join("src/schema.txt");
    std::fs::write(&dest, &out).map_err(|e| format!("{}: {e}", dest.display()))?;
    eprintln!(
        "wrote {} messages to {}; JSON names matched without case/underscores: {}",
        messages.len(),
        dest.display(),
        if loose.is_empty() {
            "none".to_owned()
        } else {
            loose.join(", ")
        }
    );
    Ok(())
}

fn read(path: &Path) -> Res<String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The `src` directories of k8s-pb and k8s-openapi, from `cargo metadata`.
fn crate_sources(manifest_dir: &Path) -> Res<(PathBuf, PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--features",
            "gen-schema",
            "--manifest-path",
        ])
        .arg(manifest_dir.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    let find = |(name, version): (&str, &str)| -> Res<PathBuf> {
        let pkg = packages
            .iter()
            .find(|p| {
                p["name"] == name
                    && p["version"]
                        .as_str()
                        .is_some_and(|v| v.starts_with(version))
            })
            .ok_or_else(|| format!("cargo metadata: no package {name} {version}x"))?;
        let manifest = pkg["manifest_path"]
            .as_str()
            .ok_or("cargo metadata: no manifest_path")?;
        let dir = Path::new(manifest)
            .parent()
            .ok_or("cargo metadata: bad manifest_path")?;
        Ok(dir.join("src"))
    };
    Ok((find(K8S_PB)?, find(K8S_OPENAPI)?))
}

/// A package's table prefix: `api/core/v1` → `core.v1`.
fn short(pkg: &str) -> String {
    let mut p = pkg;
    for pre in [
        "api/",
        "apimachinery/pkg/apis/",
        "apimachinery/pkg/api/",
        "apimachinery/pkg/util/",
        "apimachinery/pkg/",
        "kube_aggregator/pkg/apis/",
    ] {
        if let Some(rest) = pkg.strip_prefix(pre) {
            p = rest;
            break;
        }
    }
    p.replace('/', ".")
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn squash(name: &str) -> String {
    name.replace('_', "").to_lowercase()
}

#[derive(Debug, Clone, Copy)]
enum Card {
    Single,
    Repeated,
    Map,
}

#[derive(Debug)]
enum FieldTy {
    Scalar(&'static str),
    /// A table message name, e.g. `meta.v1.ObjectMeta`.
    Msg(String),
}

#[derive(Debug)]
struct ProstField {
    num: u32,
    /// The prost (snake_case) field name, without `r#`.
    name: String,
    /// The first word of its doc comment (Go's convention: the field's name).
    doc_word: Option<String>,
    ty: FieldTy,
    card: Card,
}

#[derive(Debug)]
struct Msg {
    /// The table name, e.g. `core.v1.Pod`.
    name: String,
    /// The first word of its doc comment (Go's convention: the type's name).
    doc_word: Option<String>,
    wrapper: bool,
    fields: Vec<ProstField>,
}

/// The messages of one prost-generated module, in file order.
fn parse_prost(text: &str, pkg: &str) -> Res<Vec<Msg>> {
    let mut msgs = Vec::new();
    let mut docs: Vec<&str> = Vec::new();
    let mut cur: Option<Msg> = None;
    let mut attr: Option<String> = None;
    let mut attr_open = false;
    let mut field_doc = None;
    let mut decl: Option<String> = None;
    for line in text.lines() {
        let s = line.trim();
        if let Some(d) = decl.as_mut() {
            d.push(' ');
            d.push_str(s);
        } else if let (true, Some(a)) = (attr_open, attr.as_mut()) {
            a.push_str(s);
            attr_open = !s.ends_with(")]");
            continue;
        } else if let Some(doc) = s.strip_prefix("///") {
            docs.push(doc);
            continue;
        } else if let Some(rest) = s.strip_prefix("pub struct ") {
            if cur.is_some() {
                return Err(format!("nested struct: {s}"));
            }
            let name = rest.trim_end_matches(['{', '}', ' ']);
            let msg = Msg {
                name: format!("{}.{name}", short(pkg)),
                doc_word: first_word(&docs),
                wrapper: docs.iter().any(|d| d.contains("+protobuf.nullable=true")),
                fields: Vec::new(),
            };
            if rest.ends_with("{}") {
                msgs.push(msg);
            } else {
                cur = Some(msg);
            }
        } else if cur.is_some() && s.starts_with("#[prost(") {
            attr = Some(s.to_owned());
            attr_open = !s.ends_with(")]");
            field_doc = first_word(&docs);
            continue;
        } else if cur.is_some() && s.starts_with("pub ") {
            decl = Some(s.to_owned());
        } else if s == "}" {
            if let Some(m) = cur.take() {
                msgs.push(m);
            }
        } else if cur.is_some() && !s.is_empty() {
            return Err(format!("unparsed line in struct: {s}"));
        }
        if !s.starts_with("///") && !s.starts_with("#[") {
            docs.clear();
        }
        // A declaration may span lines (`BTreeMap<\n String,\n Quantity,\n>,`).
        let complete =
            |d: &String| d.ends_with(',') && d.matches('<').count() == d.matches('>').count();
        if decl.as_ref().is_some_and(complete) {
            let (a, d) = (attr.take(), decl.take());
            let (Some(a), Some(d), Some(m)) = (a, d, cur.as_mut()) else {
                return Err(format!("field without #[prost]: {s}"));
            };
            let mut f = parse_field(&a, &d, pkg)?;
            f.doc_word = field_doc.take();
            m.fields.push(f);
        }
    }
    if cur.is_some() {
        return Err("unterminated struct".to_owned());
    }
    Ok(msgs)
}

fn first_word(docs: &[&str]) -> Option<String> {
    let word = docs.first()?.split_whitespace().next()?;
    Some(word.to_owned())
}

/// One field from its `#[prost(...)]` attribute and `pub name: Type,`.
fn parse_field(attr: &str, decl: &str, pkg: &str) -> Res<ProstField> {
    let err = || format!("unsupported field: {attr} {decl}");
    let inner = attr
        .strip_prefix("#[prost(")
        .and_then(|a| a.strip_suffix(")]"))
        .ok_or_else(err)?;
    let (name, rust_ty) = decl
        .strip_prefix("pub ")
        .and_then(|d| d.strip_suffix(','))
        .and_then(|d| d.split_once(':'))
        .ok_or_else(err)?;
    let name = name.trim().trim_start_matches("r#").to_owned();
    let rust_ty = rust_ty.trim();
    let mut num = None;
    let mut kind = None;
    let mut map = None;
    let mut repeated = false;
    // Split on commas outside quotes: `btree_map = "string, message"`.
    let mut items = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in inner.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    for item in items.iter().map(|i| i.trim()) {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (item, None),
        };
        match (key, value) {
            ("tag", Some(v)) => num = Some(v.parse::<u32>().map_err(|_| err())?),
            ("optional" | "boxed", None) | ("packed", Some("false")) => {}
            ("repeated", None) => repeated = true,
            ("btree_map" | "map", Some(v)) => map = Some(v.to_owned()),
            ("bytes", Some("vec")) => kind = Some("bytes".to_owned()),
            (k, None) => kind = Some(k.to_owned()),
            _ => return Err(err()),
        }
    }
    let num = num.ok_or_else(err)?;
    let (kind, card) = match (map, kind) {
        (Some(m), None) => {
            let (k, v) = m.split_once(',').ok_or_else(err)?;
            if k.trim() != "string" {
                return Err(err());
            }
            (v.trim().to_owned(), Card::Map)
        }
        (None, Some(k)) => (
            k,
            if repeated {
                Card::Repeated
            } else {
                Card::Single
            },
        ),
        _ => return Err(err()),
    };
    let ty = match kind.as_str() {
        "message" => FieldTy::Msg(message_type(rust_ty, pkg).ok_or_else(err)?),
        "string" => FieldTy::Scalar("s"),
        "bytes" => FieldTy::Scalar("y"),
        "bool" => FieldTy::Scalar("b"),
        "int32" => FieldTy::Scalar("i"),
        "int64" => FieldTy::Scalar("l"),
        "double" => FieldTy::Scalar("d"),
        "float" => FieldTy::Scalar("f"),
        _ => return Err(err()),
    };
    Ok(ProstField {
        num,
        name,
        doc_word: None,
        ty,
        card,
    })
}

/// The table name of a field's message type: the innermost type argument
/// (`Option<…>`, `Vec<…>`, `Box<…>`, a map's value) resolved against the
/// module `pkg` (`super::…`, `crate::…`).
fn message_type(rust_ty: &str, pkg: &str) -> Option<String> {
    let compact: String = rust_ty.chars().filter(|c| !c.is_whitespace()).collect();
    let compact = compact.replace(",>", ">");
    let inner = compact.trim_end_matches('>');
    let inner = inner.rsplit(['<', ',']).next()?.trim();
    let mut path: Vec<&str> = pkg.split('/').collect();
    let segments: Vec<&str> = inner.split("::").filter(|s| !s.is_empty()).collect();
    let (ty, modules) = segments.split_last()?;
    for seg in modules {
        match *seg {
            "super" => {
                path.pop()?;
            }
            "crate" => path.clear(),
            m => path.push(m),
        }
    }
    Some(format!("{}.{ty}", short(&path.join("/"))))
}

/// A JSON object type of k8s-openapi: Rust field name → JSON name.
type Object = BTreeMap<String, String>;

/// Reads the JSON names of the object types defined in one k8s-openapi
/// module directory, keyed by table name.
fn read_openapi_dir(
    dir: &Path,
    pkg: &str,
    objects: &mut HashMap<String, Object>,
    types: &mut Vec<String>,
) -> Res<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs") && !p.ends_with("mod.rs"))
        .collect();
    files.sort();
    for file in files {
        let text = read(&file)?;
        let Some(name) = text.lines().find_map(|l| {
            let rest = l
                .strip_prefix("pub struct ")
                .or_else(|| l.strip_prefix("pub enum "))?;
            rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
        }) else {
            continue;
        };
        types.push(format!("{}.{name}", short(pkg)));
        // The first `"json" => Field::Key_rust,` block is the type's own
        // field identifier (later blocks belong to helper types).
        let mut obj = Object::new();
        let mut seen = false;
        for line in text.lines().map(str::trim) {
            if let Some((json, key)) = line
                .strip_prefix('"')
                .and_then(|l| l.split_once("\" => Field::Key_"))
            {
                obj.insert(key.trim_end_matches(',').to_owned(), json.to_owned());
                seen = true;
            } else if seen {
                break;
            }
        }
        if seen {
            objects.insert(format!("{}.{name}", short(pkg)), obj);
        }
    }
    Ok(())
}

/// Kubernetes' own message names, which prost re-cases
/// (`AWSElasticBlockStoreVolumeSource` → `AwsElasticBlockStoreVolumeSource`):
/// k8s-openapi's type of the same name up to case, else the first word of
/// the doc comment if it is the same name up to case.
fn restore_type_names(messages: &mut [Msg], types: &[String]) {
    let mut rename = HashMap::new();
    for m in messages.iter() {
        let Some((pkg, prost)) = m.name.rsplit_once('.') else {
            continue;
        };
        let go = types
            .iter()
            .find(|t| t.eq_ignore_ascii_case(&m.name))
            .cloned()
            .or_else(|| {
                let w = m.doc_word.as_deref()?;
                (squash(w) == squash(prost)).then(|| format!("{pkg}.{w}"))
            });
        if let Some(go) = go.filter(|go| *go != m.name) {
            rename.insert(m.name.clone(), go);
        }
    }
    for m in messages.iter_mut() {
        if let Some(go) = rename.get(&m.name) {
            m.name.clone_from(go);
        }
        for f in &mut m.fields {
            if let FieldTy::Msg(ty) = &mut f.ty
                && let Some(go) = rename.get(ty.as_str())
            {
                ty.clone_from(go);
            }
        }
    }
}

/// The JSON name of a field that k8s-openapi does not name: the first word
/// of its doc comment if it is the field's name up to case and starts in
/// lower case (`insecureSkipTLSVerifyBackend`), else prost's name in
/// lowerCamelCase.
fn fallback_name(f: &ProstField) -> String {
    match &f.doc_word {
        Some(w)
            if squash(w) == squash(&f.name) && w.starts_with(|c: char| c.is_ascii_lowercase()) =>
        {
            w.clone()
        }
        _ => lower_camel(&f.name),
    }
}

/// The JSON name of prost field `field` in `obj`, and whether it matched
/// by Rust name (else by name without case and underscores).
fn json_name(obj: &Object, field: &str) -> Option<(String, bool)> {
    let exact = obj
        .iter()
        .find(|(rust, _)| rust.trim_end_matches('_') == field)
        .map(|(_, json)| (json.clone(), true));
    exact.or_else(|| {
        let want = squash(field);
        let mut hits = obj.values().filter(|json| squash(json) == want);
        match (hits.next(), hits.next()) {
            (Some(json), None) => Some((json.clone(), false)),
            _ => None,
        }
    })
}

/// Go-embedded messages that k8s-openapi does not define on their own
/// (PersistentVolumeSource, VolumeSource, ProbeHandler, …) take their JSON
/// names from the object they are inlined into, where k8s-openapi lists
/// them (`scaleIO`, not prost's `scale_io`).
fn borrow_embedded_names(messages: &[Msg], objects: &mut HashMap<String, Object>) {
    loop {
        let mut found = Vec::new();
        for msg in messages {
            let Some(obj) = objects.get(&msg.name) else {
                continue;
            };
            for f in &msg.fields {
                let (Card::Single, FieldTy::Msg(ty)) = (f.card, &f.ty) else {
                    continue;
                };
                if objects.contains_key(ty) || json_name(obj, &f.name).is_some() {
                    continue;
                }
                let Some(embedded) = messages.iter().find(|m| &m.name == ty) else {
                    continue;
                };
                let names: Object = embedded
                    .fields
                    .iter()
                    .filter_map(|g| Some((g.name.clone(), json_name(obj, &g.name)?.0)))
                    .collect();
                if names.len() == embedded.fields.len() {
                    found.push((ty.clone(), names));
                }
            }
        }
        if found.is_empty() {
            return;
        }
        objects.extend(found);
    }
}

/// A field without a JSON name must be a singular embedded message whose
/// JSON names all appear in the outer object.
fn check_inline(
    msg: &Msg,
    f: &ProstField,
    obj: &Object,
    by_name: &HashMap<String, &Msg>,
    objects: &HashMap<String, Object>,
) -> Res<()> {
    let err = |why: &str| {
        format!(
            "{}.{}: no JSON name in k8s-openapi and {why}",
            msg.name, f.name
        )
    };
    let (Card::Single, FieldTy::Msg(ty)) = (f.card, &f.ty) else {
        return Err(err("not an embeddable message"));
    };
    let embedded = by_name.get(ty).ok_or_else(|| err("unknown type"))?;
    let names: Vec<String> = match objects.get(ty) {
        Some(o) => o.values().cloned().collect(),
        None => embedded.fields.iter().map(fallback_name).collect(),
    };
    let outer: Vec<&String> = obj.values().collect();
    match names.iter().find(|n| !outer.contains(n)) {
        None => Ok(()),
        Some(n) => Err(err(&format!("embedded {ty}'s {n} is not inline there"))),
    }
}
