//! Per group-version OpenAPI 3.0 documents, shaped like kube-apiserver's
//! `/openapi/v3/apis/<group>/<version>`.

use serde_json::{Map, Value, json};

use crate::ResourceSpec;
use crate::builtin::{
    DELETE_OPTIONS, LIST_META, OBJECT_META, PATCH, REF_PREFIX, SCALE, STATUS, add_gvk, builtin,
    closure,
};

const API_VERSION_DESC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DESC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

const RESPONSE_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{name}")})
}

fn described_ref(name: &str, description: &str) -> Value {
    json!({"description": description, "allOf": [schema_ref(name)]})
}

/// kube's schema name prefix for a group: `com.example` for CRD group
/// `example.com`; `io.k8s.api.rbac` for built-in groups without built-in data.
fn schema_prefix(group: &str) -> String {
    if group.is_empty() {
        return "io.k8s.api.core".into();
    }
    if !group.contains('.') {
        return format!("io.k8s.api.{group}");
    }
    if let Some(g) = group.strip_suffix(".k8s.io") {
        let first = g.split('.').next().unwrap_or(g);
        return format!("io.k8s.api.{first}");
    }
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

/// The kind's schema name and, for CRDs, the schema itself.
pub(crate) fn kind_schema(r: &ResourceSpec) -> (String, Option<Value>) {
    if r.schema.is_none()
        && let Some(k) = builtin().kind(&r.group, &r.version, &r.kind)
    {
        return (k.schema.clone(), None);
    }
    let name = format!("{}.{}.{}", schema_prefix(&r.group), r.version, r.kind);
    (name, Some(custom_schema(r)))
}

/// A CRD's `openAPIV3Schema` as kube publishes it: `metadata` is ObjectMeta,
/// `apiVersion`/`kind` described, and tagged with its GVK.
fn custom_schema(r: &ResourceSpec) -> Value {
    let mut s = match &r.schema {
        Some(Value::Object(o)) => o.clone(),
        // No schema at all: anything goes, like a CRD with preserve-unknown-fields.
        _ => {
            let mut o = Map::new();
            o.insert("type".into(), "object".into());
            o.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
            o
        }
    };
    s.entry("type").or_insert_with(|| "object".into());
    let props = s
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(props) = props {
        props.insert(
            "apiVersion".into(),
            json!({"description": API_VERSION_DESC, "type": "string"}),
        );
        props.insert(
            "kind".into(),
            json!({"description": KIND_DESC, "type": "string"}),
        );
        props.insert("metadata".into(), described_ref(OBJECT_META, METADATA_DESC));
    }
    add_gvk(&mut s, &r.group, &r.version, &r.kind);
    Value::Object(s)
}

fn list_schema(r: &ResourceSpec, item: &str) -> Value {
    let mut s = json!({
        "description": format!("{}List is a list of {}.", r.kind, r.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESC, "type": "string"},
            "items": {
                "description": format!("List of {}.", r.plural),
                "type": "array",
                "items": {"default": {}, "allOf": [schema_ref(item)]},
            },
            "kind": {"description": KIND_DESC, "type": "string"},
            "metadata": described_ref(LIST_META, LIST_METADATA_DESC),
        },
    });
    if let Value::Object(o) = &mut s {
        add_gvk(o, &r.group, &r.version, &format!("{}List", r.kind));
    }
    s
}

/// `appsV1`, `coreV1`, `networkingV1`: kube's tag / operationId infix.
fn tag(group: &str, version: &str) -> String {
    let g = if group.is_empty() {
        "core".to_string()
    } else {
        // networking.k8s.io → networking; example.com → exampleCom.
        let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
        camel(trimmed)
    };
    format!("{g}{}", upper_first(version))
}

fn camel(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split(['.', '-']).enumerate() {
        if i == 0 {
            out.push_str(part);
        } else {
            out.push_str(&upper_first(part));
        }
    }
    out
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub(crate) fn path_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

fn query(name: &str, description: &str, ty: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": ty, "uniqueItems": true},
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

fn dry_run() -> Value {
    query(
        "dryRun",
        "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        "string",
    )
}

fn field_manager() -> Value {
    query(
        "fieldManager",
        "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
        "string",
    )
}

fn field_validation() -> Value {
    query(
        "fieldValidation",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present.",
        "string",
    )
}

fn force() -> Value {
    query(
        "force",
        "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
        "boolean",
    )
}

fn list_params() -> Vec<Value> {
    vec![
        query(
            "allowWatchBookmarks",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
            "boolean",
        ),
        query(
            "continue",
            "The continue option should be set when retrieving more results from the server.",
            "string",
        ),
        query(
            "fieldSelector",
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
            "string",
        ),
        query(
            "labelSelector",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
            "string",
        ),
        query(
            "limit",
            "limit is a maximum number of responses to return for a list call.",
            "integer",
        ),
        query(
            "resourceVersion",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
            "string",
        ),
        query(
            "resourceVersionMatch",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
            "string",
        ),
        query(
            "sendInitialEvents",
            "`sendInitialEvents=true` may be set together with `watch=true`.",
            "boolean",
        ),
        query(
            "timeoutSeconds",
            "Timeout for the list/watch call.",
            "integer",
        ),
        query(
            "watch",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
            "boolean",
        ),
    ]
}

fn content(schema_name: &str, types: &[&str]) -> Value {
    let mut c = Map::new();
    for t in types {
        c.insert((*t).into(), json!({"schema": schema_ref(schema_name)}));
    }
    Value::Object(c)
}

fn responses(schema_name: &str, codes: &[&str]) -> Value {
    let mut r = Map::new();
    for code in codes {
        let desc = match *code {
            "201" => "Created",
            "202" => "Accepted",
            _ => "OK",
        };
        r.insert(
            (*code).into(),
            json!({"description": desc, "content": content(schema_name, RESPONSE_TYPES)}),
        );
    }
    r.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(r)
}

fn write_params(apply: bool) -> Vec<Value> {
    let mut p = vec![dry_run(), field_manager(), field_validation()];
    if apply {
        p.push(force());
    }
    p
}

fn patch_body(strategic: bool) -> Value {
    let mut types = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if strategic {
        types.push("application/strategic-merge-patch+json");
    }
    types.push("application/apply-patch+yaml");
    json!({"content": content(PATCH, &types), "required": true})
}

fn json_body(schema_name: &str) -> Value {
    json!({"content": content(schema_name, &["*/*"]), "required": true})
}

fn resource_paths(
    paths: &mut Map<String, Value>,
    r: &ResourceSpec,
    kind_name: &str,
    list_name: &str,
) {
    let gv_tag = tag(&r.group, &r.version);
    let prefix = path_prefix(&r.group, &r.version);
    let gvk = json!({"group": r.group, "kind": r.kind, "version": r.version});
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let id_infix = upper_first(&gv_tag);
    let base = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let mut common = vec![];
    if r.namespaced {
        common.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let pretty = query(
        "pretty",
        "If 'true', then the output is pretty printed.",
        "string",
    );
    let name_param = path_param("name", &format!("name of the {}", r.kind));

    // Collection: list, create, deletecollection.
    let mut coll = Map::new();
    let op = |verb: &str, action: &'static str, suffix: &str, desc: String| {
        let mut o = Map::new();
        o.insert("tags".into(), json!([gv_tag]));
        o.insert("description".into(), desc.into());
        o.insert(
            "operationId".into(),
            format!("{verb}{id_infix}{scope}{}{suffix}", r.kind).into(),
        );
        o.insert("x-kubernetes-action".into(), action.into());
        o.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
        o
    };
    let finish =
        |mut o: Map<String, Value>, params: Vec<Value>, body: Option<Value>, resp: Value| {
            if !params.is_empty() {
                o.insert("parameters".into(), Value::Array(params));
            }
            if let Some(b) = body {
                o.insert("requestBody".into(), b);
            }
            o.insert("responses".into(), resp);
            // Keep kube's key order: extensions last.
            for k in ["x-kubernetes-action", "x-kubernetes-group-version-kind"] {
                if let Some(v) = o.remove(k) {
                    o.insert(k.into(), v);
                }
            }
            Value::Object(o)
        };
    coll.insert(
        "get".into(),
        finish(
            op(
                "list",
                "list",
                "",
                format!("list or watch objects of kind {}", r.kind),
            ),
            list_params(),
            None,
            responses(list_name, &["200"]),
        ),
    );
    coll.insert(
        "post".into(),
        finish(
            op("create", "post", "", format!("create a {}", r.kind)),
            write_params(false),
            Some(json_body(kind_name)),
            responses(kind_name, &["200", "201", "202"]),
        ),
    );
    let mut dc_params = vec![dry_run()];
    dc_params.extend(list_params());
    coll.insert(
        "delete".into(),
        finish(
            op(
                "deletecollection",
                "deletecollection",
                "",
                format!("delete collection of {}", r.kind),
            ),
            dc_params,
            Some(json_body(DELETE_OPTIONS)),
            responses(STATUS, &["200"]),
        ),
    );
    let mut params = common.clone();
    params.push(pretty.clone());
    coll.insert("parameters".into(), Value::Array(params));
    paths.insert(base.clone(), Value::Object(coll));

    // Item: read, replace, patch, delete.
    let mut item = Map::new();
    let sub_op = |verb: &str, action: &'static str, suffix: &str, desc: String| {
        op(verb, action, suffix, desc)
    };
    let item_verbs = |item: &mut Map<String, Value>,
                      suffix: &str,
                      schema: &str,
                      what: &str,
                      strategic: bool,
                      gvk_override: Option<Value>| {
        let with_gvk = |mut o: Map<String, Value>| {
            if let Some(g) = &gvk_override {
                o.insert("x-kubernetes-group-version-kind".into(), g.clone());
            }
            o
        };
        item.insert(
            "get".into(),
            finish(
                with_gvk(sub_op(
                    "read",
                    "get",
                    suffix,
                    format!("read {what} of the specified {}", r.kind),
                )),
                vec![],
                None,
                responses(schema, &["200"]),
            ),
        );
        item.insert(
            "put".into(),
            finish(
                with_gvk(sub_op(
                    "replace",
                    "put",
                    suffix,
                    format!("replace {what} of the specified {}", r.kind),
                )),
                write_params(false),
                Some(json_body(schema)),
                responses(schema, &["200", "201"]),
            ),
        );
        item.insert(
            "patch".into(),
            finish(
                with_gvk(sub_op(
                    "patch",
                    "patch",
                    suffix,
                    format!("partially update {what} of the specified {}", r.kind),
                )),
                write_params(true),
                Some(patch_body(strategic)),
                responses(schema, &["200", "201"]),
            ),
        );
    };
    item_verbs(
        &mut item,
        "",
        kind_name,
        "the object",
        r.strategic_patch,
        None,
    );
    item.insert(
        "delete".into(),
        finish(
            op("delete", "delete", "", format!("delete a {}", r.kind)),
            vec![
                dry_run(),
                query("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"),
                query("ignoreStoreReadErrorWithClusterBreakingPotential", "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.", "boolean"),
                query("propagationPolicy", "Whether and how garbage collection will be performed.", "string"),
            ],
            Some(json_body(DELETE_OPTIONS)),
            responses(STATUS, &["200", "202"]),
        ),
    );
    let mut item_params = vec![name_param.clone()];
    item_params.extend(common.clone());
    item_params.push(pretty.clone());
    item.insert("parameters".into(), Value::Array(item_params.clone()));
    paths.insert(format!("{base}/{{name}}"), Value::Object(item));

    if r.status {
        let mut st = Map::new();
        item_verbs(
            &mut st,
            "Status",
            kind_name,
            "status",
            r.strategic_patch,
            None,
        );
        st.insert("parameters".into(), Value::Array(item_params.clone()));
        paths.insert(format!("{base}/{{name}}/status"), Value::Object(st));
    }
    if r.scale {
        let mut sc = Map::new();
        let scale_gvk = json!({"group": "autoscaling", "kind": "Scale", "version": "v1"});
        item_verbs(
            &mut sc,
            "Scale",
            SCALE,
            "scale",
            r.strategic_patch,
            Some(scale_gvk),
        );
        sc.insert("parameters".into(), Value::Array(item_params));
        paths.insert(format!("{base}/{{name}}/scale"), Value::Object(sc));
    }

    if r.namespaced {
        let mut all = Map::new();
        let mut o = op(
            "list",
            "list",
            "ForAllNamespaces",
            format!("list or watch objects of kind {}", r.kind),
        );
        // Cluster-wide list has no namespace in its operation id.
        o.insert(
            "operationId".into(),
            format!("list{id_infix}{}ForAllNamespaces", r.kind).into(),
        );
        all.insert(
            "get".into(),
            finish(o, vec![], None, responses(list_name, &["200"])),
        );
        let mut p = list_params();
        p.push(pretty);
        all.insert("parameters".into(), Value::Array(p));
        paths.insert(format!("{prefix}/{}", r.plural), Value::Object(all));
    }
}

/// See [`crate::group_version_document`].
pub(crate) fn document(group: &str, version: &str, resources: &[ResourceSpec]) -> Value {
    let mut paths = Map::new();
    let mut own: Map<String, Value> = Map::new();
    let mut roots: Vec<String> = vec![STATUS.into(), DELETE_OPTIONS.into(), PATCH.into()];
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let (kind_name, custom) = kind_schema(r);
        let list_name = format!("{kind_name}List");
        resource_paths(&mut paths, r, &kind_name, &list_name);
        own.insert(list_name.clone(), list_schema(r, &kind_name));
        roots.push(list_name);
        if let Some(s) = custom {
            own.insert(kind_name.clone(), s);
        }
        roots.push(kind_name);
        if r.scale {
            roots.push(SCALE.into());
        }
    }
    let lib = &builtin().schemas;
    let names = closure(&roots, |n| own.get(n).or_else(|| lib.get(n)));
    let mut schemas = Map::new();
    for n in names {
        if let Some(s) = own.get(&n).or_else(|| lib.get(&n)) {
            schemas.insert(n, s.clone());
        }
    }
    let title = "Kubernetes";
    json!({
        "openapi": "3.0.0",
        "info": {"title": title, "version": "unversioned"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert_eq!(schema_prefix("example.com"), "com.example");
        assert_eq!(schema_prefix("stable.example.com"), "com.example.stable");
        assert_eq!(schema_prefix(""), "io.k8s.api.core");
        assert_eq!(schema_prefix("apps"), "io.k8s.api.apps");
        assert_eq!(schema_prefix("storage.k8s.io"), "io.k8s.api.storage");
        assert_eq!(tag("networking.k8s.io", "v1"), "networkingV1");
        assert_eq!(tag("", "v1"), "coreV1");
        assert_eq!(tag("example.com", "v1alpha1"), "exampleComV1alpha1");
    }
}
