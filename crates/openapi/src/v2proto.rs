//! The Swagger 2.0 document as protobuf: the `openapi.v2.Document` message of
//! google/gnostic (`openapiv2/OpenAPIv2.proto`, the `openapi_v2` Go package
//! kube-openapi and client-go use). kube-apiserver answers `/openapi/v2` with
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` with
//! the plain bytes of that message (no envelope) and content type
//! `application/com.github.proto-openapi.spec.v2.v1.0+protobuf` (dotted:
//! Go's MIME parser rejects the `@`), and kubectl 1.33 accepts
//! only that form for `kind: List` validation and
//! `kubectl explain --output=plaintext-openapiv2`.
//!
//! The encoder walks the JSON document and writes the proto3 wire format
//! directly (varints, length-delimited strings and submessages, little-endian
//! `double`s). Scalars equal to their proto3 default (empty string, `false`,
//! `0`) are left out, as Go's `proto.Marshal` does; message-typed fields are
//! written whenever their JSON key is present, even when empty (kube-openapi
//! tells `properties: {}` from no `properties`). Values of the wrong JSON type
//! are skipped, never a panic. Map keys starting with `x-` become
//! `vendor_extension` entries (`NamedAny{name, Any{yaml}}`); `Any.yaml` holds
//! the value as flow-style YAML (JSON with YAML-safe escapes), which
//! kube-openapi reads back with a YAML parser. Other unknown keys are ignored.
//!
//! Messages and fields covered (field numbers as in the .proto):
//!
//! - `Document`: `swagger` 1, `info` 2, `host` 3, `base_path` 4, `schemes` 5,
//!   `consumes` 6, `produces` 7, `paths` 8, `definitions` 9, `parameters` 10,
//!   `responses` 11, `security` 12, `security_definitions` 13, `tags` 14,
//!   `external_docs` 15, `vendor_extension` 16.
//! - `Info` (1-7) with `Contact` and `License`; `ExternalDocs`; `Tag`.
//! - `Paths` (`vendor_extension` 1, `path` 2 as `NamedPathItem`), `PathItem`
//!   (`_ref` 1, `get`..`patch` 2-8, `parameters` 9, `vendor_extension` 10).
//! - `Operation`: all fields 1-13.
//! - `ParametersItem`: `parameter` 1 (`Parameter`: `body_parameter` 1 or
//!   `non_body_parameter` 2), `json_reference` 2 (for `$ref`).
//!   `BodyParameter` 1-6; `NonBodyParameter` by `in`: `header` 1,
//!   `formData` 2, `query` 3, `path` 4, each sub-schema with all its fields;
//!   `PrimitivesItems` for their `items`.
//! - `Responses` (`response_code` 1 as `NamedResponseValue`,
//!   `vendor_extension` 2), `ResponseValue` (`response` 1 or
//!   `json_reference` 2), `Response` 1-5 with `SchemaItem` (`schema` 1, or
//!   `file_schema` 2 for `type: file`), `Headers`/`Header`, `Examples`.
//! - `Definitions`/`NamedSchema`, `Schema`: all fields 1-31 — `_ref`,
//!   `format`, `title`, `description`, `default` (`Any`), the numeric
//!   validations, `required`, `enum` (`repeated Any`),
//!   `additional_properties` (`AdditionalPropertiesItem`: `schema` 1 or
//!   `boolean` 2), `type` (`TypeItem{repeated string value}`, from a string or
//!   an array), `items` (`ItemsItem{repeated Schema}`, from an object or an
//!   array), `all_of`, `properties` (`Properties{repeated NamedSchema}`),
//!   `discriminator`, `read_only`, `xml` (`Xml`), `external_docs`, `example`,
//!   `vendor_extension` (e.g. `x-kubernetes-group-version-kind`,
//!   `x-kubernetes-patch-merge-key`, `x-kubernetes-list-map-keys`).
//! - `ParameterDefinitions`/`NamedParameter`,
//!   `ResponseDefinitions`/`NamedResponse`.
//! - `SecurityRequirement` (`NamedStringArray`/`StringArray`),
//!   `SecurityDefinitions`/`SecurityDefinitionsItem` by `type` (and `flow`
//!   for `oauth2`): basic 1, apiKey 2, oauth2 implicit 3, password 4,
//!   application 5, accessCode 6, with `Oauth2Scopes`/`NamedString`.
//!
//! Not covered: `Any.value` (a `google.protobuf.Any`; kube-openapi reads only
//! `yaml`), and the unused wrapper messages `Default` and `VendorExtension`.

use serde_json::{Map, Value};

/// Nesting beyond this is dropped rather than recursed into (the Rust stack
/// is the limit otherwise; serde_json's parser stops at 128).
const MAX_DEPTH: usize = 128;

/// See [`crate::v2_protobuf`].
pub(crate) fn document(doc: &Value) -> Vec<u8> {
    let mut w = Writer::default();
    if let Value::Object(o) = doc {
        write_document(&mut w, o);
    }
    w.buf
}

/// A protobuf message being written.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from((field << 3) | wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, LEN);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// A submessage, written even if empty.
    fn message(&mut self, field: u32, fill: impl FnOnce(&mut Writer)) {
        let mut sub = Writer::default();
        fill(&mut sub);
        self.bytes(field, &sub.buf);
    }

    // Implicit-presence scalars: defaults are not written.

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, VARINT);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, i: i64) {
        if i != 0 {
            self.key(field, VARINT);
            self.varint(i as u64);
        }
    }

    fn double(&mut self, field: u32, d: f64) {
        if d.to_bits() != 0 {
            self.key(field, FIXED64);
            self.buf.extend_from_slice(&d.to_le_bytes());
        }
    }

    // JSON-sourced fields: a missing key or a value of the wrong type writes
    // nothing.

    fn str_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(Value::String(s)) = o.get(key) {
            self.string(field, s);
        }
    }

    fn bool_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(Value::Bool(b)) = o.get(key) {
            self.boolean(field, *b);
        }
    }

    fn int_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(Value::Number(n)) = o.get(key) {
            let i = n
                .as_i64()
                .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64));
            if let Some(i) = i {
                self.int64(field, i);
            }
        }
    }

    fn double_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(d) = o.get(key).and_then(Value::as_f64) {
            self.double(field, d);
        }
    }

    /// `repeated string`: from an array (non-strings skipped) or one string.
    fn strings_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        match o.get(key) {
            Some(Value::String(s)) => self.bytes(field, s.as_bytes()),
            Some(Value::Array(a)) => {
                for s in a.iter().filter_map(Value::as_str) {
                    self.bytes(field, s.as_bytes());
                }
            }
            _ => {}
        }
    }

    /// An `Any` field (`yaml` = 2).
    fn any(&mut self, field: u32, v: &Value) {
        self.message(field, |w| w.string(2, &yaml(v)));
    }

    fn any_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(v) = o.get(key) {
            self.any(field, v);
        }
    }

    /// `repeated Any`, e.g. `enum`.
    fn anys_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(Value::Array(a)) = o.get(key) {
            for v in a {
                self.any(field, v);
            }
        }
    }

    /// `repeated NamedAny vendor_extension`: the `x-` keys.
    fn vendor(&mut self, field: u32, o: &Map<String, Value>) {
        for (k, v) in o {
            if k.starts_with("x-") {
                self.message(field, |w| {
                    w.string(1, k);
                    w.any(2, v);
                });
            }
        }
    }

    /// A submessage from a JSON object under `key`.
    fn object_of(
        &mut self,
        field: u32,
        o: &Map<String, Value>,
        key: &str,
        fill: impl FnOnce(&mut Writer, &Map<String, Value>),
    ) {
        if let Some(Value::Object(sub)) = o.get(key) {
            self.message(field, |w| fill(w, sub));
        }
    }

    /// A map message (`repeated NamedX additional_properties = 1` and the
    /// like): one `{name = 1, value = 2}` entry per object member, `filter`
    /// choosing the members.
    fn named(
        &mut self,
        field: u32,
        o: &Map<String, Value>,
        filter: impl Fn(&str) -> bool,
        mut value: impl FnMut(&mut Writer, &Value),
    ) {
        for (k, v) in o {
            if filter(k) {
                self.message(field, |w| {
                    w.string(1, k);
                    w.message(2, |w| value(w, v));
                });
            }
        }
    }
}

fn all(_: &str) -> bool {
    true
}

fn not_vendor(k: &str) -> bool {
    !k.starts_with("x-")
}

fn write_document(w: &mut Writer, o: &Map<String, Value>) {
    w.str_of(1, o, "swagger");
    w.object_of(2, o, "info", write_info);
    w.str_of(3, o, "host");
    w.str_of(4, o, "basePath");
    w.strings_of(5, o, "schemes");
    w.strings_of(6, o, "consumes");
    w.strings_of(7, o, "produces");
    w.object_of(8, o, "paths", |w, paths| {
        w.vendor(1, paths);
        w.named(2, paths, not_vendor, |w, item| {
            if let Value::Object(item) = item {
                write_path_item(w, item);
            }
        });
    });
    w.object_of(9, o, "definitions", |w, defs| {
        w.named(1, defs, all, |w, s| write_schema(w, s, 0));
    });
    w.object_of(10, o, "parameters", |w, params| {
        w.named(1, params, all, |w, p| {
            if let Value::Object(p) = p {
                write_parameter(w, p);
            }
        });
    });
    w.object_of(11, o, "responses", |w, rs| {
        w.named(1, rs, all, |w, r| {
            if let Value::Object(r) = r {
                write_response(w, r);
            }
        });
    });
    write_security(w, 12, o);
    w.object_of(13, o, "securityDefinitions", |w, defs| {
        w.named(1, defs, all, |w, d| {
            if let Value::Object(d) = d {
                write_security_definition(w, d);
            }
        });
    });
    if let Some(Value::Array(tags)) = o.get("tags") {
        for t in tags {
            if let Value::Object(t) = t {
                w.message(14, |w| {
                    w.str_of(1, t, "name");
                    w.str_of(2, t, "description");
                    w.object_of(3, t, "externalDocs", write_external_docs);
                    w.vendor(4, t);
                });
            }
        }
    }
    w.object_of(15, o, "externalDocs", write_external_docs);
    w.vendor(16, o);
}

fn write_info(w: &mut Writer, o: &Map<String, Value>) {
    w.str_of(1, o, "title");
    w.str_of(2, o, "version");
    w.str_of(3, o, "description");
    w.str_of(4, o, "termsOfService");
    w.object_of(5, o, "contact", |w, c| {
        w.str_of(1, c, "name");
        w.str_of(2, c, "url");
        w.str_of(3, c, "email");
        w.vendor(4, c);
    });
    w.object_of(6, o, "license", |w, l| {
        w.str_of(1, l, "name");
        w.str_of(2, l, "url");
        w.vendor(3, l);
    });
    w.vendor(7, o);
}

fn write_external_docs(w: &mut Writer, o: &Map<String, Value>) {
    w.str_of(1, o, "description");
    w.str_of(2, o, "url");
    w.vendor(3, o);
}

/// `repeated SecurityRequirement` under `security`.
fn write_security(w: &mut Writer, field: u32, o: &Map<String, Value>) {
    if let Some(Value::Array(reqs)) = o.get("security") {
        for r in reqs {
            if let Value::Object(r) = r {
                w.message(field, |w| {
                    for (name, scopes) in r {
                        w.message(1, |w| {
                            w.string(1, name);
                            w.message(2, |w| {
                                if let Value::Array(a) = scopes {
                                    for s in a.iter().filter_map(Value::as_str) {
                                        w.bytes(1, s.as_bytes());
                                    }
                                }
                            });
                        });
                    }
                });
            }
        }
    }
}

fn write_security_definition(w: &mut Writer, o: &Map<String, Value>) {
    let scopes = |w: &mut Writer| {
        w.object_of(3, o, "scopes", |w, s| {
            for (k, v) in s {
                w.message(1, |w| {
                    w.string(1, k);
                    if let Value::String(v) = v {
                        w.string(2, v);
                    }
                });
            }
        });
    };
    let ty = o.get("type").and_then(Value::as_str).unwrap_or_default();
    let flow = o.get("flow").and_then(Value::as_str).unwrap_or_default();
    match (ty, flow) {
        ("basic", _) => w.message(1, |w| {
            w.str_of(1, o, "type");
            w.str_of(2, o, "description");
            w.vendor(3, o);
        }),
        ("apiKey", _) => w.message(2, |w| {
            w.str_of(1, o, "type");
            w.str_of(2, o, "name");
            w.str_of(3, o, "in");
            w.str_of(4, o, "description");
            w.vendor(5, o);
        }),
        ("oauth2", "implicit") => w.message(3, |w| {
            w.str_of(1, o, "type");
            w.str_of(2, o, "flow");
            scopes(w);
            w.str_of(4, o, "authorizationUrl");
            w.str_of(5, o, "description");
            w.vendor(6, o);
        }),
        ("oauth2", "password" | "application") => {
            w.message(if flow == "password" { 4 } else { 5 }, |w| {
                w.str_of(1, o, "type");
                w.str_of(2, o, "flow");
                scopes(w);
                w.str_of(4, o, "tokenUrl");
                w.str_of(5, o, "description");
                w.vendor(6, o);
            })
        }
        ("oauth2", "accessCode") => w.message(6, |w| {
            w.str_of(1, o, "type");
            w.str_of(2, o, "flow");
            scopes(w);
            w.str_of(4, o, "authorizationUrl");
            w.str_of(5, o, "tokenUrl");
            w.str_of(6, o, "description");
            w.vendor(7, o);
        }),
        _ => {}
    }
}

fn write_path_item(w: &mut Writer, o: &Map<String, Value>) {
    w.str_of(1, o, "$ref");
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        w.object_of(field, o, method, write_operation);
    }
    write_parameters_items(w, 9, o);
    w.vendor(10, o);
}

fn write_operation(w: &mut Writer, o: &Map<String, Value>) {
    w.strings_of(1, o, "tags");
    w.str_of(2, o, "summary");
    w.str_of(3, o, "description");
    w.object_of(4, o, "externalDocs", write_external_docs);
    w.str_of(5, o, "operationId");
    w.strings_of(6, o, "produces");
    w.strings_of(7, o, "consumes");
    write_parameters_items(w, 8, o);
    w.object_of(9, o, "responses", |w, rs| {
        w.named(1, rs, not_vendor, |w, r| {
            if let Value::Object(r) = r {
                if let Some(Value::String(_)) = r.get("$ref") {
                    w.message(2, |w| write_json_reference(w, r));
                } else {
                    w.message(1, |w| write_response(w, r));
                }
            }
        });
        w.vendor(2, rs);
    });
    w.strings_of(10, o, "schemes");
    w.bool_of(11, o, "deprecated");
    write_security(w, 12, o);
    w.vendor(13, o);
}

fn write_json_reference(w: &mut Writer, o: &Map<String, Value>) {
    w.str_of(1, o, "$ref");
    w.str_of(2, o, "description");
}

/// `repeated ParametersItem` under `parameters`.
fn write_parameters_items(w: &mut Writer, field: u32, o: &Map<String, Value>) {
    if let Some(Value::Array(ps)) = o.get("parameters") {
        for p in ps {
            if let Value::Object(p) = p {
                w.message(field, |w| {
                    if let Some(Value::String(_)) = p.get("$ref") {
                        w.message(2, |w| write_json_reference(w, p));
                    } else {
                        w.message(1, |w| write_parameter(w, p));
                    }
                });
            }
        }
    }
}

/// `Parameter`: body or one of the non-body kinds by `in`.
fn write_parameter(w: &mut Writer, o: &Map<String, Value>) {
    let location = o.get("in").and_then(Value::as_str).unwrap_or_default();
    if location == "body" {
        w.message(1, |w| {
            w.str_of(1, o, "description");
            w.str_of(2, o, "name");
            w.str_of(3, o, "in");
            w.bool_of(4, o, "required");
            if let Some(s) = o.get("schema") {
                w.message(5, |w| write_schema(w, s, 0));
            }
            w.vendor(6, o);
        });
        return;
    }
    // Header and path sub-schemas share a layout; query and formData add
    // `allow_empty_value = 5` and shift the rest by one.
    let (kind, shift) = match location {
        "header" => (1, 0),
        "formData" => (2, 1),
        "query" => (3, 1),
        "path" => (4, 0),
        _ => return,
    };
    w.message(2, |w| {
        w.message(kind, |w| {
            w.bool_of(1, o, "required");
            w.str_of(2, o, "in");
            w.str_of(3, o, "description");
            w.str_of(4, o, "name");
            if shift == 1 {
                w.bool_of(5, o, "allowEmptyValue");
            }
            write_primitive(w, 5 + shift, o, 0);
            w.vendor(22 + shift, o);
        });
    });
}

/// The fields `PrimitivesItems`, `Header` and the non-body parameters share,
/// in this order from `base`: type, format, items, collectionFormat, default,
/// maximum, exclusiveMaximum, minimum, exclusiveMinimum, maxLength,
/// minLength, pattern, maxItems, minItems, uniqueItems, enum, multipleOf.
fn write_primitive(w: &mut Writer, base: u32, o: &Map<String, Value>, depth: usize) {
    w.str_of(base, o, "type");
    w.str_of(base + 1, o, "format");
    if depth < MAX_DEPTH {
        w.object_of(base + 2, o, "items", |w, items| {
            write_primitive(w, 1, items, depth + 1);
            w.vendor(18, items);
        });
    }
    w.str_of(base + 3, o, "collectionFormat");
    w.any_of(base + 4, o, "default");
    w.double_of(base + 5, o, "maximum");
    w.bool_of(base + 6, o, "exclusiveMaximum");
    w.double_of(base + 7, o, "minimum");
    w.bool_of(base + 8, o, "exclusiveMinimum");
    w.int_of(base + 9, o, "maxLength");
    w.int_of(base + 10, o, "minLength");
    w.str_of(base + 11, o, "pattern");
    w.int_of(base + 12, o, "maxItems");
    w.int_of(base + 13, o, "minItems");
    w.bool_of(base + 14, o, "uniqueItems");
    w.anys_of(base + 15, o, "enum");
    w.double_of(base + 16, o, "multipleOf");
}

fn write_response(w: &mut Writer, o: &Map<String, Value>) {
    w.str_of(1, o, "description");
    if let Some(Value::Object(s)) = o.get("schema") {
        w.message(2, |w| {
            if s.get("type").and_then(Value::as_str) == Some("file") {
                w.message(2, |w| {
                    w.str_of(1, s, "format");
                    w.str_of(2, s, "title");
                    w.str_of(3, s, "description");
                    w.any_of(4, s, "default");
                    w.strings_of(5, s, "required");
                    w.str_of(6, s, "type");
                    w.bool_of(7, s, "readOnly");
                    w.object_of(8, s, "externalDocs", write_external_docs);
                    w.any_of(9, s, "example");
                    w.vendor(10, s);
                });
            } else {
                w.message(1, |w| write_schema_object(w, s, 0));
            }
        });
    }
    w.object_of(3, o, "headers", |w, hs| {
        w.named(1, hs, all, |w, h| {
            if let Value::Object(h) = h {
                write_primitive(w, 1, h, 0);
                w.str_of(18, h, "description");
                w.vendor(19, h);
            }
        });
    });
    w.object_of(4, o, "examples", |w, ex| {
        for (k, v) in ex {
            w.message(1, |w| {
                w.string(1, k);
                w.any(2, v);
            });
        }
    });
    w.vendor(5, o);
}

/// The body of a `Schema` message; non-objects give an empty schema.
fn write_schema(w: &mut Writer, s: &Value, depth: usize) {
    if let Value::Object(o) = s {
        write_schema_object(w, o, depth);
    }
}

fn write_schema_object(w: &mut Writer, o: &Map<String, Value>, depth: usize) {
    let nested = depth < MAX_DEPTH;
    w.str_of(1, o, "$ref");
    w.str_of(2, o, "format");
    w.str_of(3, o, "title");
    w.str_of(4, o, "description");
    w.any_of(5, o, "default");
    w.double_of(6, o, "multipleOf");
    w.double_of(7, o, "maximum");
    w.bool_of(8, o, "exclusiveMaximum");
    w.double_of(9, o, "minimum");
    w.bool_of(10, o, "exclusiveMinimum");
    w.int_of(11, o, "maxLength");
    w.int_of(12, o, "minLength");
    w.str_of(13, o, "pattern");
    w.int_of(14, o, "maxItems");
    w.int_of(15, o, "minItems");
    w.bool_of(16, o, "uniqueItems");
    w.int_of(17, o, "maxProperties");
    w.int_of(18, o, "minProperties");
    w.strings_of(19, o, "required");
    w.anys_of(20, o, "enum");
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => w.message(21, |w| {
            // A oneof member: written even when false.
            w.key(2, VARINT);
            w.varint(u64::from(*b));
        }),
        Some(s @ Value::Object(_)) if nested => {
            w.message(21, |w| w.message(1, |w| write_schema(w, s, depth + 1)));
        }
        _ => {}
    }
    if matches!(o.get("type"), Some(Value::String(_) | Value::Array(_))) {
        w.message(22, |w| w.strings_of(1, o, "type"));
    }
    if nested {
        match o.get("items") {
            Some(s @ Value::Object(_)) => {
                w.message(23, |w| w.message(1, |w| write_schema(w, s, depth + 1)));
            }
            Some(Value::Array(a)) => w.message(23, |w| {
                for s in a {
                    w.message(1, |w| write_schema(w, s, depth + 1));
                }
            }),
            _ => {}
        }
        if let Some(Value::Array(a)) = o.get("allOf") {
            for s in a {
                w.message(24, |w| write_schema(w, s, depth + 1));
            }
        }
        w.object_of(25, o, "properties", |w, props| {
            w.named(1, props, all, |w, s| write_schema(w, s, depth + 1));
        });
    }
    w.str_of(26, o, "discriminator");
    w.bool_of(27, o, "readOnly");
    w.object_of(28, o, "xml", |w, x| {
        w.str_of(1, x, "name");
        w.str_of(2, x, "namespace");
        w.str_of(3, x, "prefix");
        w.bool_of(4, x, "attribute");
        w.bool_of(5, x, "wrapped");
        w.vendor(6, x);
    });
    w.object_of(29, o, "externalDocs", write_external_docs);
    w.any_of(30, o, "example");
    w.vendor(31, o);
}

/// A JSON value as flow-style YAML: JSON with `", "`/`": "` separators (some
/// YAML 1.1 parsers want the space after `:`) and strings escaped for YAML
/// double quotes (control, C1, line/paragraph separator and BOM characters as
/// `\uXXXX`).
fn yaml(v: &Value) -> String {
    let mut out = String::new();
    yaml_into(&mut out, v, 0);
    out
}

fn yaml_into(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => yaml_string(out, s),
        Value::Array(a) if depth < MAX_DEPTH => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                yaml_into(out, x, depth + 1);
            }
            out.push(']');
        }
        Value::Object(o) if depth < MAX_DEPTH => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                yaml_string(out, k);
                out.push_str(": ");
                yaml_into(out, x, depth + 1);
            }
            out.push('}');
        }
        Value::Array(_) | Value::Object(_) => out.push_str("null"),
    }
}

fn yaml_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{feff}'
            | '\u{fffe}'
            | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn varints_and_scalars() {
        let mut w = Writer::default();
        w.varint(300);
        assert_eq!(w.buf, [0xac, 0x02]);
        let mut w = Writer::default();
        w.int64(1, -1);
        assert_eq!(w.buf.len(), 11);
        let mut w = Writer::default();
        w.string(1, "");
        w.boolean(2, false);
        w.int64(3, 0);
        w.double(4, 0.0);
        assert!(w.buf.is_empty());
        let mut w = Writer::default();
        w.double(1, 1.5);
        assert_eq!(w.buf[0], 0x09);
        assert_eq!(&w.buf[1..], &1.5f64.to_le_bytes());
    }

    #[test]
    fn yaml_flow() {
        assert_eq!(
            yaml(&json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])),
            r#"[{"group": "apps", "kind": "Deployment", "version": "v1"}]"#
        );
        assert_eq!(
            yaml(&json!("a\"b\\c\n\u{85}\u{1}é")),
            "\"a\\\"b\\\\c\\n\\u0085\\u0001é\""
        );
        assert_eq!(yaml(&json!({})), "{}");
        assert_eq!(yaml(&json!(1.5)), "1.5");
        assert_eq!(yaml(&json!(null)), "null");
    }

    #[test]
    fn odd_documents_do_not_panic() {
        let odd = [
            json!(null),
            json!(1),
            json!("swagger"),
            json!([1, 2]),
            json!({"swagger": 2, "info": "x", "paths": [], "definitions": 3}),
            json!({"paths": {"/a": 1, "/b": {"get": "x", "parameters": 5}, "/c": {
                "get": {"parameters": [1, {"in": 3}, {"in": "body", "schema": 4},
                    {"in": "query", "items": {"items": []}, "enum": 7, "maxLength": "x"},
                    {"$ref": 9}, {"in": "cookie"}],
                    "responses": {"200": 1, "201": {"schema": {"type": "file"}}, "x-a": 1}}}}}),
            json!({"definitions": {"a": 1, "b": {"type": 3, "items": 4, "properties": [],
                "additionalProperties": "no", "required": "x", "enum": {}, "maximum": "y",
                "maxLength": 1e300, "minLength": -5, "allOf": {}, "xml": true}}}),
            json!({"security": [1, {"a": 2}], "securityDefinitions": {"a": 1, "b": {"type": 2},
                "c": {"type": "oauth2", "flow": "accessCode", "scopes": {"s": 1}}},
                "tags": [1, {"name": 2}], "parameters": {"p": 1}, "responses": {"r": []}}),
        ];
        for doc in &odd {
            let _ = document(doc);
        }
        // Deeper than MAX_DEPTH.
        let mut deep = json!({"type": "string"});
        let mut list = json!(1);
        for _ in 0..1000 {
            deep = json!({"type": "array", "items": deep});
            list = json!([list]);
        }
        let _ = document(&json!({"definitions": {"deep": deep, "list": {"x-a": list}}}));
    }
}
