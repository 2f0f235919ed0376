use super::*;
use crate::patch_schema::builtin_patch_schema;
use serde_json::json;

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}, "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                        {"name": "sidecar", "image": "side:1"}
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "a", "operator": "Exists"}]
                }
            }
        }
    })
}

fn smp(doc: &Value, patch: Value) -> Result<Value, PatchError> {
    let schema = builtin_patch_schema("apps", "Deployment")
        .ok_or_else(|| PatchError::internal("no schema"))?;
    strategic_merge(doc, &patch, schema)
}

fn containers(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]["containers"]
}

#[test]
fn change_image_and_add_env() {
    let out = smp(
        &deployment(),
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]}
        ]}}}}),
    );
    let out = out.unwrap_or_default();
    let c = containers(&out);
    assert_eq!(c[0]["image"], "app:2");
    // Without $setElementOrder kube puts elements new to the list first.
    assert_eq!(
        c[0]["env"],
        json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
    );
    assert_eq!(
        c[0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(c[1], json!({"name": "sidecar", "image": "side:1"}));
}

#[test]
fn delete_container_and_add_port() {
    let out = smp(
        &deployment(),
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "$patch": "delete"},
            {"name": "app", "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
             "ports": [{"containerPort": 443, "protocol": "TCP"}]}
        ]}}}}),
    )
    .unwrap_or_default();
    let c = containers(&out);
    assert_eq!(c.as_array().map(Vec::len), Some(1));
    assert_eq!(
        c[0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}])
    );
}

#[test]
fn set_element_order_reorders() {
    let out = smp(
        &deployment(),
        json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
            "containers": [{"name": "app", "image": "app:3"}]
        }}}}),
    )
    .unwrap_or_default();
    let names: Vec<&Value> = containers(&out)
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, vec!["sidecar", "app"]);
    assert_eq!(containers(&out)[1]["image"], "app:3");
    let bad = smp(
        &deployment(),
        json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}],
            "containers": [{"name": "other"}]
        }}}}),
    );
    assert_eq!(bad.map_err(|e| e.kind), Err(PatchErrorKind::Internal));
}

#[test]
fn null_removes_and_maps_merge() {
    let out = smp(
        &deployment(),
        json!({"metadata": {"labels": {"tier": null, "new": "x"}}, "spec": {"replicas": 3}}),
    )
    .unwrap_or_default();
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "x"}));
    assert_eq!(out["spec"]["replicas"], 3);
    assert_eq!(out["spec"]["strategy"]["type"], "RollingUpdate");
}

#[test]
fn retain_keys_switches_volume_source() {
    let out = smp(
        &deployment(),
        json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "data", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}}
        ]}}}}),
    )
    .unwrap_or_default();
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cm"}}])
    );
    // Deployment strategy: switching to Recreate drops rollingUpdate.
    let out = smp(
        &deployment(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    )
    .unwrap_or_default();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    let bad = smp(
        &deployment(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "x": 1}}}),
    );
    assert_eq!(bad, Err(PatchError::bad_request(ERR_RETAIN_KEYS)));
}

#[test]
fn primitive_lists() {
    let doc = deployment();
    let out = smp(&doc, json!({"metadata": {"finalizers": ["c", "a"]}})).unwrap_or_default();
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let out = smp(
        &doc,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    )
    .unwrap_or_default();
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    let out = smp(
        &doc,
        json!({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}}),
    )
    .unwrap_or_default();
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
    let bad = smp(
        &doc,
        json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
    );
    assert_eq!(bad, Err(PatchError::bad_request(ERR_PRIMITIVE_LIST)));
}

#[test]
fn atomic_lists_and_directives() {
    let doc = deployment();
    let out = smp(
        &doc,
        json!({"spec": {"template": {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}}}),
    )
    .unwrap_or_default();
    assert_eq!(
        out["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
    let out = smp(
        &doc,
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}}),
    )
    .unwrap_or_default();
    assert_eq!(containers(&out), &json!([{"name": "only", "image": "x"}]));
    let out = smp(
        &doc,
        json!({"metadata": {"labels": {"$patch": "replace", "z": "1"}}}),
    )
    .unwrap_or_default();
    assert_eq!(out["metadata"]["labels"], json!({"z": "1"}));
    let out = smp(&doc, json!({"spec": {"strategy": {"$patch": "delete"}}})).unwrap_or_default();
    assert_eq!(out["spec"]["strategy"], json!({}));
    let bad = smp(&doc, json!({"spec": {"strategy": {"$patch": "merge"}}}));
    assert_eq!(
        bad.map_err(|e| e.message.starts_with("unknown patch type: merge in map:")),
        Err(true)
    );
    let bad = smp(
        &doc,
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}}),
    );
    assert!(bad.is_err());
    let bad = smp(
        &doc,
        json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
    );
    assert!(bad.is_err_and(|e| {
        e.message
            .contains("does not contain declared merge key: name")
    }));
    let empty = json!({"metadata": {"finalizers": []}});
    let lol = smp(&empty, json!({"metadata": {"finalizers": [["x"]]}}));
    assert_eq!(lol.map_err(|e| ApiError::from(e).code), Err(422));
}

#[test]
fn new_fields_are_cleaned() {
    let doc = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
    let schema = builtin_patch_schema("", "Pod").ok_or_else(|| PatchError::internal("none"));
    let out = schema.and_then(|s| {
        strategic_merge(
            &doc,
            &json!({"metadata": {"labels": {"a": "1", "b": null}}, "spec": {"volumes": [{"name": "v", "x": null}]}}),
            s,
        )
    });
    assert_eq!(
        out,
        Ok(json!({"metadata": {"name": "p", "labels": {"a": "1"}},
                  "spec": {"containers": [{"name": "a"}], "volumes": [{"name": "v"}]}}))
    );
}

#[test]
fn service_ports_merge_by_port() {
    let doc = json!({"spec": {"ports": [{"port": 80, "name": "http"}], "selector": {"app": "a"}}});
    let schema = builtin_patch_schema("", "Service").ok_or_else(|| PatchError::internal("none"));
    let out = schema.and_then(|s| {
        strategic_merge(
            &doc,
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}),
            s,
        )
    });
    assert_eq!(
        out.map(|v| v["spec"]["ports"].clone()),
        Ok(json!([{"port": 80, "name": "http", "targetPort": 8080}, {"port": 443}]))
    );
}

#[test]
fn byte_entry_points() {
    let doc = json!({"a": 1, "b": {"c": 2}});
    assert_eq!(
        merge_patch(&doc, br#"{"b": {"c": null, "d": 3}}"#),
        Ok(json!({"a": 1, "b": {"d": 3}}))
    );
    for bad in [&b"null"[..], b"5", b"{"] {
        assert_eq!(
            merge_patch(&doc, bad).map_err(|e| (e.code, e.message)),
            Err((400, "Invalid JSON Patch".into()))
        );
    }
    assert_eq!(
        json_patch(&doc, br#"[{"op": "replace", "path": "/a", "value": 2}]"#),
        Ok(json!({"a": 2, "b": {"c": 2}}))
    );
    let e = json_patch(&doc, br#"[{"op": "remove", "path": "/zzz"}]"#).err();
    assert_eq!(
        e.as_ref().map(|e| (e.code, e.reason.as_str())),
        Some((422, "Invalid"))
    );
    assert_eq!(
        e.map(|e| e.message),
        Some("the server rejected our request due to an error in our request".into())
    );
    let e = json_patch(&doc, br#"[{"op": "bogus", "path": "/a"}]"#).err();
    assert_eq!(e.map(|e| e.code), Some(422));
    // Found by fuzz/fuzz_targets/patch.rs: a failure after moving a value into its own parent
    // made json_patch::patch's undo panic; it is a plain 422.
    let e = json_patch(
        &doc,
        br#"[{"op": "move", "from": "/b/c", "path": "/b"}, {"op": "remove", "path": "/zzz"}]"#,
    )
    .err();
    assert_eq!(e.map(|e| e.code), Some(422));
    assert_eq!(json_patch(&doc, b"{}").err().map(|e| e.code), Some(400));
    assert_eq!(json_patch(&doc, b"[").err().map(|e| e.code), Some(400));
    let many = format!(
        "[{}]",
        vec![r#"{"op":"test","path":"/a","value":1}"#; 10_001].join(",")
    );
    assert_eq!(
        json_patch(&doc, many.as_bytes()).err().map(|e| e.code),
        Some(413)
    );
    let schema = crate::patch_schema::untyped();
    assert_eq!(
        strategic_merge_patch(&doc, b"[1]", schema)
            .err()
            .map(|e| e.code),
        Some(400)
    );
    assert_eq!(
        strategic_merge_patch(&doc, b"null", schema),
        Ok(doc.clone())
    );
}

#[test]
fn hostile_inputs_do_not_panic() {
    let schema = builtin_patch_schema("", "Pod");
    let docs = [
        json!({}),
        json!({"spec": {"containers": "x"}}),
        json!({"spec": {"containers": [1, {"name": "a"}]}}),
    ];
    let patches = [
        json!({"spec": {"containers": [{"name": "a"}, 3]}}),
        json!({"spec": {"$setElementOrder/containers": "x"}}),
        json!({"spec": {"$setElementOrder/containers": [1, 2], "containers": [{"name": "a"}]}}),
        json!({"spec": {"$retainKeys": "x"}}),
        json!({"spec": {"$patch": 5}}),
        json!({"spec": {"containers": [{"$patch": null, "name": "a"}]}}),
        json!({"$deleteFromPrimitiveList/spec": [1]}),
        json!({"spec": {"containers": [null]}}),
    ];
    for d in &docs {
        for p in &patches {
            if let Some(s) = schema {
                let _ = strategic_merge(d, p, s);
            }
        }
    }
}

#[test]
fn field_order_is_kept() {
    let doc: Value =
        serde_json::from_str(r#"{"z": {"b": 1, "a": 2}, "m": [1], "a": 1}"#).unwrap_or_default();
    let patch = json!({"z": {"b": 3}, "m": [2], "a": null, "n": 1});
    let out = strategic_merge(&doc, &patch, crate::patch_schema::untyped()).unwrap_or_default();
    assert_eq!(
        serde_json::to_string(&out).unwrap_or_default(),
        r#"{"z":{"b":3,"a":2},"m":[2],"n":1}"#
    );
}
