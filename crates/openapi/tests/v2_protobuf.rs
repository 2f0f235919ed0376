//! `v2_protobuf` read back with a minimal protobuf decoder, following the
//! field numbers of gnostic's `openapi.v2` messages the way kube-openapi reads
//! them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kplex_openapi::{ResourceSpec, v2_document, v2_protobuf};
use serde_json::{Value, json};

/// One decoded field value.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = buf[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
    }
    panic!("varint too long");
}

/// Decodes one message level; panics on malformed wire data.
fn fields(buf: &[u8]) -> Vec<(u32, Wire<'_>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos);
        let field = u32::try_from(key >> 3).unwrap();
        assert!(field > 0, "field 0");
        let value = match key & 7 {
            0 => Wire::Varint(varint(buf, &mut pos)),
            1 => {
                let b: [u8; 8] = buf[pos..pos + 8].try_into().unwrap();
                pos += 8;
                Wire::Fixed64(u64::from_le_bytes(b))
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)).unwrap();
                let b = &buf[pos..pos + len];
                pos += len;
                Wire::Bytes(b)
            }
            5 => {
                assert!(pos + 4 <= buf.len(), "truncated fixed32");
                pos += 4;
                Wire::Fixed32
            }
            w => panic!("wire type {w}"),
        };
        out.push((field, value));
    }
    out
}

fn all_bytes(buf: &[u8], n: u32) -> Vec<&[u8]> {
    fields(buf)
        .into_iter()
        .filter_map(|(f, v)| match (f == n, v) {
            (true, Wire::Bytes(b)) => Some(b),
            (true, other) => panic!("field {n}: {other:?}"),
            _ => None,
        })
        .collect()
}

fn msg(buf: &[u8], n: u32) -> Option<&[u8]> {
    all_bytes(buf, n).pop()
}

fn string(buf: &[u8], n: u32) -> String {
    msg(buf, n)
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .unwrap_or_default()
}

fn strings(buf: &[u8], n: u32) -> Vec<String> {
    all_bytes(buf, n)
        .into_iter()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .collect()
}

fn varint_field(buf: &[u8], n: u32) -> Option<u64> {
    fields(buf)
        .into_iter()
        .find_map(|(f, v)| match (f == n, v) {
            (true, Wire::Varint(x)) => Some(x),
            _ => None,
        })
}

fn double_field(buf: &[u8], n: u32) -> Option<f64> {
    fields(buf)
        .into_iter()
        .find_map(|(f, v)| match (f == n, v) {
            (true, Wire::Fixed64(x)) => Some(f64::from_bits(x)),
            _ => None,
        })
}

/// Entries of a map message (`{name = 1, value = 2}` repeated as `field`).
fn named(buf: &[u8], field: u32) -> Vec<(String, &[u8])> {
    all_bytes(buf, field)
        .into_iter()
        .map(|e| (string(e, 1), msg(e, 2).unwrap_or_default()))
        .collect()
}

fn lookup<'a>(buf: &'a [u8], field: u32, name: &str) -> Option<&'a [u8]> {
    named(buf, field)
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// A vendor extension's `Any.yaml`, parsed (our YAML is JSON-compatible).
fn extension(buf: &[u8], field: u32, name: &str) -> Option<Value> {
    let any = lookup(buf, field, name)?;
    Some(serde_json::from_str(&string(any, 2)).unwrap())
}

// Schema fields.
const S_REF: u32 = 1;
const S_FORMAT: u32 = 2;
const S_DESCRIPTION: u32 = 4;
const S_REQUIRED: u32 = 19;
const S_ENUM: u32 = 20;
const S_ADDITIONAL: u32 = 21;
const S_TYPE: u32 = 22;
const S_ITEMS: u32 = 23;
const S_PROPERTIES: u32 = 25;
const S_VENDOR: u32 = 31;

fn schema_type(s: &[u8]) -> Vec<String> {
    msg(s, S_TYPE).map(|t| strings(t, 1)).unwrap_or_default()
}

fn property<'a>(s: &'a [u8], name: &str) -> Option<&'a [u8]> {
    lookup(msg(s, S_PROPERTIES)?, 1, name)
}

fn builtin(group: &str, version: &str, kind: &str, plural: &str) -> ResourceSpec {
    ResourceSpec {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced: true,
        status: kind == "Deployment",
        scale: kind == "Deployment",
        strategic_patch: true,
        schema: None,
    }
}

fn widget() -> ResourceSpec {
    ResourceSpec {
        group: "example.com".into(),
        version: "v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
        namespaced: true,
        status: true,
        scale: false,
        strategic_patch: false,
        schema: Some(json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "description": "Widget spec.", "required": ["size"], "properties": {
                    "size": {"type": "integer", "format": "int64", "description": "How big.", "minimum": 1.5},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                }},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        })),
    }
}

fn encoded() -> (Value, Vec<u8>) {
    let doc = v2_document(&[
        builtin("", "v1", "ConfigMap", "configmaps"),
        builtin("apps", "v1", "Deployment", "deployments"),
        widget(),
    ]);
    let bytes = v2_protobuf(&doc);
    (doc, bytes)
}

#[test]
fn document_header_and_definitions() {
    let (doc, pb) = encoded();
    assert_eq!(string(&pb, 1), "2.0");
    let info = msg(&pb, 2).expect("info");
    assert_eq!(string(info, 1), "Kubernetes");
    assert_eq!(string(info, 2), "unversioned");

    let defs = named(msg(&pb, 9).expect("definitions"), 1);
    let json_defs = doc["definitions"].as_object().unwrap();
    assert_eq!(defs.len(), json_defs.len());
    for ((name, _), json_name) in defs.iter().zip(json_defs.keys()) {
        assert_eq!(name, json_name);
    }
    let defs_msg = msg(&pb, 9).unwrap();
    let def = |name: &str| lookup(defs_msg, 1, name).unwrap_or_else(|| panic!("{name}"));

    // Deployment: GVK extension, type, a described $ref.
    let deployment = def("io.k8s.api.apps.v1.Deployment");
    assert_eq!(
        extension(deployment, S_VENDOR, "x-kubernetes-group-version-kind"),
        Some(json!([{"group": "apps", "kind": "Deployment", "version": "v1"}]))
    );
    assert_eq!(
        Some(&extension(deployment, S_VENDOR, "x-kubernetes-group-version-kind").unwrap()),
        json_defs["io.k8s.api.apps.v1.Deployment"].get("x-kubernetes-group-version-kind")
    );
    assert_eq!(schema_type(deployment), ["object"]);
    assert!(!string(deployment, S_DESCRIPTION).is_empty());
    let spec = property(deployment, "spec").expect("spec");
    assert_eq!(
        string(spec, S_REF),
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert_eq!(
        string(spec, S_DESCRIPTION),
        json_defs["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["description"]
            .as_str()
            .unwrap()
    );
    assert!(schema_type(spec).is_empty(), "a $ref has no type");

    // DeploymentSpec: required, integer format, patch extensions on lists.
    let dspec = def("io.k8s.api.apps.v1.DeploymentSpec");
    assert!(strings(dspec, S_REQUIRED).contains(&"selector".to_string()));
    let replicas = property(dspec, "replicas").expect("replicas");
    assert_eq!(schema_type(replicas), ["integer"]);
    assert_eq!(string(replicas, S_FORMAT), "int32");
    let pod_spec = def("io.k8s.api.core.v1.PodSpec");
    let containers = property(pod_spec, "containers").expect("containers");
    assert_eq!(schema_type(containers), ["array"]);
    let items = msg(containers, S_ITEMS).expect("items");
    let item_schemas = all_bytes(items, 1);
    assert_eq!(item_schemas.len(), 1);
    assert_eq!(
        string(item_schemas[0], S_REF),
        "#/definitions/io.k8s.api.core.v1.Container"
    );
    assert_eq!(
        extension(containers, S_VENDOR, "x-kubernetes-patch-merge-key"),
        Some(json!("name"))
    );
    assert_eq!(
        extension(containers, S_VENDOR, "x-kubernetes-patch-strategy"),
        Some(json!("merge"))
    );
    let json_containers = &json_defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    for key in ["x-kubernetes-list-type", "x-kubernetes-list-map-keys"] {
        assert_eq!(
            extension(containers, S_VENDOR, key).as_ref(),
            json_containers.get(key),
            "{key}"
        );
    }

    // ConfigMap.data: a map via additionalProperties.
    let config_map = def("io.k8s.api.core.v1.ConfigMap");
    assert_eq!(
        extension(config_map, S_VENDOR, "x-kubernetes-group-version-kind"),
        Some(json!([{"group": "", "kind": "ConfigMap", "version": "v1"}]))
    );
    let data = property(config_map, "data").expect("data");
    assert_eq!(schema_type(data), ["object"]);
    let additional = msg(data, S_ADDITIONAL).expect("additionalProperties");
    assert_eq!(schema_type(msg(additional, 1).expect("schema")), ["string"]);

    // The CRD.
    let widget = def("com.example.v1.Widget");
    assert_eq!(
        extension(widget, S_VENDOR, "x-kubernetes-group-version-kind"),
        Some(json!([{"group": "example.com", "kind": "Widget", "version": "v1"}]))
    );
    let wspec = property(widget, "spec").expect("spec");
    assert_eq!(string(wspec, S_DESCRIPTION), "Widget spec.");
    assert_eq!(strings(wspec, S_REQUIRED), ["size"]);
    let size = property(wspec, "size").expect("size");
    assert_eq!(string(size, S_DESCRIPTION), "How big.");
    assert_eq!(schema_type(size), ["integer"]);
    assert_eq!(string(size, S_FORMAT), "int64");
    assert_eq!(double_field(size, 9), Some(1.5));
    let color = property(wspec, "color").expect("color");
    let enums: Vec<Value> = all_bytes(color, S_ENUM)
        .into_iter()
        .map(|a| serde_json::from_str(&string(a, 2)).unwrap())
        .collect();
    assert_eq!(enums, [json!("red"), json!("blue")]);
    let tags = property(wspec, "tags").expect("tags");
    assert_eq!(
        schema_type(all_bytes(msg(tags, S_ITEMS).unwrap(), 1)[0]),
        ["string"]
    );
    let status = property(widget, "status").expect("status");
    assert_eq!(
        extension(status, S_VENDOR, "x-kubernetes-preserve-unknown-fields"),
        Some(json!(true))
    );

    // Every $ref in the encoding names a definition.
    fn refs(buf: &[u8], out: &mut Vec<String>) {
        if let Some(r) = msg(buf, S_REF) {
            out.push(String::from_utf8(r.to_vec()).unwrap());
        }
        if let Some(p) = msg(buf, S_PROPERTIES) {
            for (_, s) in named(p, 1) {
                refs(s, out);
            }
        }
        if let Some(i) = msg(buf, S_ITEMS) {
            for s in all_bytes(i, 1) {
                refs(s, out);
            }
        }
        if let Some(s) = msg(buf, S_ADDITIONAL).and_then(|a| msg(a, 1)) {
            refs(s, out);
        }
    }
    let mut all = Vec::new();
    for (_, s) in &defs {
        refs(s, &mut all);
    }
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/definitions/").expect("prefix");
        assert!(json_defs.contains_key(name), "{r}");
    }
}

#[test]
fn paths_operations_and_parameters() {
    let (doc, pb) = encoded();
    let paths = msg(&pb, 8).expect("paths");
    let items = named(paths, 2);
    assert_eq!(items.len(), doc["paths"].as_object().unwrap().len());
    let list = lookup(paths, 2, "/api/v1/namespaces/{namespace}/configmaps").expect("path");

    // Path-level parameters: `namespace` in path (NonBodyParameter.path = 4).
    let path_params = all_bytes(list, 9);
    let namespace = path_params
        .iter()
        .filter_map(|p| msg(msg(msg(p, 1)?, 2)?, 4))
        .find(|p| string(p, 4) == "namespace")
        .expect("namespace path parameter");
    assert_eq!(string(namespace, 2), "path");
    assert_eq!(varint_field(namespace, 1), Some(1), "required");
    assert_eq!(string(namespace, 5), "string");

    // POST: a body parameter with a $ref schema, query parameters, responses.
    let post = msg(list, 4).expect("post");
    let json_post = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps"]["post"];
    assert_eq!(string(post, 5), json_post["operationId"].as_str().unwrap());
    assert_eq!(
        extension(post, 13, "x-kubernetes-group-version-kind"),
        Some(json!({"group": "", "kind": "ConfigMap", "version": "v1"}))
    );
    assert!(strings(post, 6).contains(&"application/json".to_string()));
    let params: Vec<&[u8]> = all_bytes(post, 8)
        .into_iter()
        .map(|p| msg(p, 1).expect("parameter"))
        .collect();
    let body = params
        .iter()
        .find_map(|p| msg(p, 1))
        .expect("body parameter");
    assert_eq!(string(body, 2), "body");
    assert_eq!(string(body, 3), "body");
    assert_eq!(
        string(msg(body, 5).unwrap(), S_REF),
        "#/definitions/io.k8s.api.core.v1.ConfigMap"
    );
    let queries: Vec<String> = params
        .iter()
        .filter_map(|p| msg(msg(p, 2)?, 3))
        .map(|q| string(q, 4))
        .collect();
    assert!(
        queries.contains(&"fieldValidation".to_string()),
        "{queries:?}"
    );
    let responses = msg(post, 9).expect("responses");
    let ok = lookup(responses, 1, "200").expect("200");
    let response = msg(ok, 1).expect("response");
    assert!(!string(response, 1).is_empty());
    let schema = msg(msg(response, 2).unwrap(), 1).expect("schema");
    assert_eq!(
        string(schema, S_REF),
        "#/definitions/io.k8s.api.core.v1.ConfigMap"
    );

    // The bearer token security definition (ApiKeySecurity = 2).
    let sec = msg(&pb, 13).expect("securityDefinitions");
    let bearer = lookup(sec, 1, "BearerToken").expect("BearerToken");
    let api_key = msg(bearer, 2).expect("apiKey");
    assert_eq!(string(api_key, 1), "apiKey");
    assert_eq!(string(api_key, 3), "header");
    let req = msg(&pb, 12).expect("security");
    assert_eq!(named(req, 1)[0].0, "BearerToken");
}

#[test]
fn odd_input_encodes_what_fits() {
    let doc = json!({
        "swagger": "2.0",
        "definitions": {
            "a": {"type": ["string", "null"], "items": [{"type": "string"}, {"type": "integer"}],
                  "additionalProperties": false, "maxLength": 3, "minLength": -1, "properties": {}},
            "b": "not an object",
            "c": {"type": 7, "required": [1, "x"], "description": 5},
        },
        "paths": {"x-ext": {"k": "v"}, "/p": {"get": {"parameters": [
            {"$ref": "#/parameters/p"}, {"in": "header", "name": "h", "type": "string"}]}}},
    });
    let pb = v2_protobuf(&doc);
    let defs = msg(&pb, 9).unwrap();
    let a = lookup(defs, 1, "a").unwrap();
    assert_eq!(schema_type(a), ["string", "null"]);
    assert_eq!(all_bytes(msg(a, S_ITEMS).unwrap(), 1).len(), 2);
    // A oneof bool: present even when false.
    assert_eq!(varint_field(msg(a, S_ADDITIONAL).unwrap(), 2), Some(0));
    assert_eq!(varint_field(a, 11), Some(3));
    assert_eq!(varint_field(a, 12), Some(u64::MAX), "int64 -1");
    // Present but empty properties stay present.
    assert!(msg(a, S_PROPERTIES).is_some());
    assert!(lookup(defs, 1, "b").unwrap().is_empty());
    let c = lookup(defs, 1, "c").unwrap();
    assert!(msg(c, S_TYPE).is_none());
    assert_eq!(strings(c, S_REQUIRED), ["x"]);
    assert_eq!(string(c, S_DESCRIPTION), "");

    let paths = msg(&pb, 8).unwrap();
    assert_eq!(
        extension(paths, 1, "x-ext"),
        Some(json!({"k": "v"})),
        "path vendor extension"
    );
    let get = msg(lookup(paths, 2, "/p").unwrap(), 2).unwrap();
    let params = all_bytes(get, 8);
    assert_eq!(
        string(msg(params[0], 2).unwrap(), 1),
        "#/parameters/p",
        "json_reference"
    );
    let header = msg(msg(msg(params[1], 1).unwrap(), 2).unwrap(), 1).unwrap();
    assert_eq!(string(header, 4), "h");
    assert_eq!(string(header, 5), "string");

    for odd in [
        json!(null),
        json!([]),
        json!({"definitions": [], "paths": 1}),
    ] {
        let pb = v2_protobuf(&odd);
        let _ = fields(&pb);
    }
}
