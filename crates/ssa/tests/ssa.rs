//! Behaviour of apply/update against kube's field-management semantics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kplex_schema::Schema;
use kplex_ssa::{
    ApplyError, Deduced, FieldSet, Operation, apply, decode_managed_fields, encode_managed_fields,
    update,
};
use serde_json::{Value, json};

const T0: &str = "2024-01-01T00:00:00Z";
const T1: &str = "2024-01-01T00:01:00Z";

fn deployment_schema() -> Schema {
    let raw = kplex_openapi::builtin_schema("apps", "v1", "Deployment").expect("deployment schema");
    Schema::compile(&raw).expect("compiles")
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image}]}
            }
        }
    })
}

fn fields_of(obj: &Value, manager: &str) -> Option<FieldSet> {
    decode_managed_fields(obj)
        .unwrap()
        .into_iter()
        .find(|e| e.manager == manager)
        .map(|e| e.fields)
}

fn paths(s: &FieldSet) -> Vec<String> {
    s.iter().map(|p| p.to_string()).collect()
}

#[test]
fn fields_v1_round_trip() {
    let raw = json!({
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:containers": {
                "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:ports": {
                    "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}
                }}
            },
            "f:finalizers": {"v:\"a\"": {}, "v:1": {}},
            "f:args": {"i:0": {}}
        }
    });
    let set = FieldSet::from_fields_v1(&raw).unwrap();
    assert_eq!(set.to_fields_v1(), raw);
    assert_eq!(
        paths(&set),
        vec![
            ".metadata.labels",
            ".metadata.labels.app",
            ".spec.args[0]",
            ".spec.containers[name=\"nginx\"]",
            ".spec.containers[name=\"nginx\"].image",
            ".spec.containers[name=\"nginx\"].ports[containerPort=80,protocol=\"TCP\"]",
            ".spec.containers[name=\"nginx\"].ports[containerPort=80,protocol=\"TCP\"].containerPort",
            ".spec.finalizers[=1]",
            ".spec.finalizers[=\"a\"]",
        ]
    );
    // Key fields are normalized to name order.
    let unsorted = json!({"k:{\"protocol\":\"TCP\",\"containerPort\":80}": {}});
    assert_eq!(
        FieldSet::from_fields_v1(&unsorted).unwrap().to_fields_v1(),
        json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {}})
    );
}

#[test]
fn set_algebra() {
    let a = FieldSet::from_fields_v1(&json!({"f:a": {}, "f:b": {".": {}, "f:c": {}}})).unwrap();
    let b = FieldSet::from_fields_v1(&json!({"f:b": {"f:c": {}}, "f:d": {}})).unwrap();
    assert_eq!(paths(&a.union(&b)), vec![".a", ".b", ".b.c", ".d"]);
    assert_eq!(paths(&a.difference(&b)), vec![".a", ".b"]);
    assert_eq!(paths(&a.intersection(&b)), vec![".b.c"]);
    assert!(a.difference(&a).is_empty());
}

#[test]
fn malformed_input_is_an_error() {
    for bad in [
        json!([]),
        json!({"x:y": {}}),
        json!({"f:a": 1}),
        json!({"k:notjson": {}}),
        json!({"k:[1]": {}}),
        json!({"i:x": {}}),
        json!({"v:{": {}}),
    ] {
        assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
    }
    // Deep nesting is refused, not a stack overflow.
    let mut deep = json!({});
    for _ in 0..300 {
        deep = json!({ "f:a": deep });
    }
    assert!(FieldSet::from_fields_v1(&deep).is_err());

    for mf in [
        json!("x"),
        json!([1]),
        json!([{"manager": "m", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {}}]),
        json!([{"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2", "fieldsV1": {}}]),
        json!([{"manager": "m", "operation": "Update", "apiVersion": "v1"}]),
        json!([{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {}}]),
        json!([{"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"bad": {}}}]),
    ] {
        let obj = json!({"metadata": {"managedFields": mf}});
        assert!(decode_managed_fields(&obj).is_err(), "{mf}");
        let r = apply(
            Some(&obj),
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            &Deduced,
            "m",
            "v1",
            "",
            false,
            T0,
        );
        assert!(matches!(r, Err(ApplyError::Invalid(_))), "{mf}");
    }
}

#[test]
fn managed_fields_encoding() {
    let obj = json!({"metadata": {"managedFields": [
        {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:y": {}}}},
        {"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}, "subresource": "status"}
    ]}});
    let entries = decode_managed_fields(&obj).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].operation, Operation::Apply);
    assert_eq!(entries[1].subresource, "status");
    let enc = encode_managed_fields(&entries);
    // Apply sorts before Update; subresource omitted when empty.
    assert_eq!(enc[0]["manager"], "a");
    assert_eq!(enc[1]["manager"], "b");
    assert!(enc[1].get("subresource").is_none());
    assert_eq!(enc[1]["fieldsType"], "FieldsV1");
}

#[test]
fn from_object_matches_kube() {
    let ti = deployment_schema();
    let set = FieldSet::from_object(&deployment(3, "nginx:1"), &ti).unwrap();
    let got = set.to_fields_v1();
    assert_eq!(
        got["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}})
    );
    // Map entries (labels) are members, struct fields are not.
    assert_eq!(
        got["f:spec"]["f:template"]["f:metadata"],
        json!({"f:labels": {"f:app": {}}})
    );
    assert_eq!(got["f:spec"]["f:replicas"], json!({}));
}

fn apply_ok(live: Option<&Value>, cfg: &Value, ti: &Schema, mgr: &str, force: bool) -> Value {
    let r = apply(live, cfg, ti, mgr, "apps/v1", "", force, T0).unwrap();
    assert!(r.changed);
    r.object
}

#[test]
fn disjoint_appliers_conflicts_and_force() {
    let ti = deployment_schema();
    let a_cfg = deployment(3, "nginx:1");
    let obj = apply_ok(None, &a_cfg, &ti, "a", false);
    assert_eq!(obj["spec"]["replicas"], 3);
    let a = fields_of(&obj, "a").unwrap().to_fields_v1();
    assert!(a.get("f:apiVersion").is_none());
    assert_eq!(a["f:metadata"], Value::Null);
    assert_eq!(a["f:spec"]["f:replicas"], json!({}));

    // b manages only a label: no conflict, both entries kept.
    let b_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "x"}}});
    let obj = apply_ok(Some(&obj), &b_cfg, &ti, "b", false);
    assert_eq!(obj["metadata"]["labels"]["team"], "x");
    assert_eq!(obj["spec"]["replicas"], 3);
    assert!(fields_of(&obj, "a").is_some());
    assert_eq!(
        paths(&fields_of(&obj, "b").unwrap()),
        vec![".metadata.labels.team"]
    );

    // b changing replicas conflicts with a.
    let mut b2 = b_cfg.clone();
    b2["spec"] = json!({"replicas": 5});
    let err = apply(Some(&obj), &b2, &ti, "b", "apps/v1", "", false, T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas"
    );
    let ApplyError::Conflicts(cs) = &err else {
        panic!()
    };
    assert_eq!(cs[0].manager, "a");
    assert_eq!(cs[0].field, ".spec.replicas");
    assert_eq!(cs[0].message, "conflict with \"a\"");

    // Same value: shared ownership, no conflict.
    let mut b3 = b_cfg.clone();
    b3["spec"] = json!({"replicas": 3});
    let shared = apply(Some(&obj), &b3, &ti, "b", "apps/v1", "", false, T1).unwrap();
    assert!(fields_of(&shared.object, "a").unwrap().contains(&[
        kplex_ssa::PathElement::Field("spec".into()),
        kplex_ssa::PathElement::Field("replicas".into())
    ]));

    // Forcing moves ownership.
    let forced = apply_ok(Some(&obj), &b2, &ti, "b", true);
    assert_eq!(forced["spec"]["replicas"], 5);
    assert!(!paths(&fields_of(&forced, "a").unwrap()).contains(&".spec.replicas".to_string()));
    assert!(paths(&fields_of(&forced, "b").unwrap()).contains(&".spec.replicas".to_string()));

    // a now conflicts with b when re-applying 3.
    let err = apply(Some(&forced), &a_cfg, &ti, "a", "apps/v1", "", false, T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"b\": .spec.replicas"
    );
}

#[test]
fn update_manager_conflict_message_and_plural() {
    let ti = Deduced;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1", "y": "2", "z": "3"}});
    let obj = update(None, &cm, &ti, "kubectl-edit", "v1", "", T0).unwrap();
    let mf = fields_of(&obj, "kubectl-edit").unwrap().to_fields_v1();
    assert_eq!(
        mf,
        json!({"f:data": {".": {}, "f:x": {}, "f:y": {}, "f:z": {}}})
    );
    // another updater takes z
    let mut cm2 = obj.clone();
    cm2["data"]["z"] = json!("9");
    let obj = update(Some(&obj), &cm2, &ti, "ctrl", "v1", "status", T1).unwrap();
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "a", "z": "b"}});
    let err = apply(Some(&obj), &cfg, &ti, "me", "v1", "", false, T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"ctrl\" with subresource \"status\" using v1:\n- .data.z\nconflicts with \"kubectl-edit\" using v1:\n- .data.x"
    );
    let single = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "a"}});
    let err = apply(Some(&obj), &single, &ti, "me", "v1", "", false, T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.x"
    );
}

#[test]
fn removing_a_field_from_config() {
    let raw = kplex_openapi::builtin_schema("", "v1", "ConfigMap").unwrap();
    let ti = Schema::compile(&raw).unwrap();
    let base = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    let obj = apply(
        None,
        &base(json!({"a": "1", "b": "2"})),
        &ti,
        "one",
        "v1",
        "",
        false,
        T0,
    )
    .unwrap()
    .object;
    let obj = apply(
        Some(&obj),
        &base(json!({"b": "2"})),
        &ti,
        "two",
        "v1",
        "",
        false,
        T0,
    )
    .unwrap()
    .object;
    // one drops both: a goes (only one owned it), b stays (two owns it too).
    let bare = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let out = apply(Some(&obj), &bare, &ti, "one", "v1", "", false, T1).unwrap();
    assert_eq!(out.object["data"], json!({"b": "2"}));
    assert!(fields_of(&out.object, "one").is_none());
    // two drops b: now the data map empties and goes away.
    let out = apply(
        Some(&out.object),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        &ti,
        "two",
        "v1",
        "",
        false,
        T1,
    )
    .unwrap();
    assert!(out.object.get("data").is_none(), "{}", out.object);
    // A field set by an Update is not pruned by an applier that stops applying it.
    let obj = apply(
        None,
        &base(json!({"a": "1"})),
        &ti,
        "one",
        "v1",
        "",
        false,
        T0,
    )
    .unwrap()
    .object;
    let mut edited = obj.clone();
    edited["data"]["a"] = json!("2");
    let obj = update(Some(&obj), &edited, &ti, "editor", "v1", "", T1).unwrap();
    let out = apply(Some(&obj), &bare, &ti, "one", "v1", "", false, T1).unwrap();
    assert_eq!(out.object["data"]["a"], "2");
}

#[test]
fn list_map_merge_by_keys() {
    let ti = deployment_schema();
    let mut a = deployment(1, "nginx:1");
    a["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}
    ]);
    let obj = apply_ok(None, &a, &ti, "a", false);
    let fa = fields_of(&obj, "a").unwrap();
    let ps = paths(&fa);
    // protocol defaults to TCP in the key when omitted.
    assert!(ps.contains(&".spec.template.spec.containers[name=\"nginx\"].ports[containerPort=80,protocol=\"TCP\"]".to_string()), "{ps:?}");
    assert!(ps.contains(&".spec.template.spec.containers[name=\"nginx\"].ports[containerPort=53,protocol=\"UDP\"].protocol".to_string()));

    // b adds a sidecar and a port on nginx; items merge by key.
    let b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "envoy"},
        {"name": "nginx", "ports": [{"containerPort": 443}]}
    ]}}}});
    let obj = apply_ok(Some(&obj), &b, &ti, "b", false);
    let cs = &obj["spec"]["template"]["spec"]["containers"];
    assert_eq!(cs.as_array().unwrap().len(), 2);
    let nginx = cs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "nginx")
        .unwrap();
    assert_eq!(nginx["image"], "nginx:1");
    assert_eq!(nginx["ports"].as_array().unwrap().len(), 3);

    // a drops its UDP port: removed; b's port and sidecar untouched.
    a["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80}]);
    let obj = apply_ok(Some(&obj), &a, &ti, "a", false);
    let cs = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .clone();
    let nginx = cs.iter().find(|c| c["name"] == "nginx").unwrap();
    let ports: Vec<i64> = nginx["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_i64().unwrap())
        .collect();
    assert!(
        ports.contains(&80) && ports.contains(&443) && !ports.contains(&53),
        "{ports:?}"
    );
    assert!(cs.iter().any(|c| c["name"] == "sidecar"));

    // Missing key field and duplicate keys are invalid.
    let mut bad = deployment(1, "x");
    bad["spec"]["template"]["spec"]["containers"] = json!([{"image": "x"}]);
    assert!(matches!(
        apply(None, &bad, &ti, "a", "apps/v1", "", false, T0),
        Err(ApplyError::Invalid(_))
    ));
    bad["spec"]["template"]["spec"]["containers"] = json!([{"name": "x"}, {"name": "x"}]);
    assert!(matches!(
        apply(None, &bad, &ti, "a", "apps/v1", "", false, T0),
        Err(ApplyError::Invalid(_))
    ));
}

fn crd_schema() -> Schema {
    Schema::compile(&json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                    "items": {"type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "integer"}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
                "sel": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}}
            }}
        }
    }))
    .unwrap()
}

fn widget(spec: Value) -> Value {
    json!({"apiVersion": "x.io/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})
}

#[test]
fn crd_list_map_set_and_atomic() {
    let ti = crd_schema();
    let ap = |live: Option<&Value>, spec: Value, mgr: &str| {
        apply(live, &widget(spec), &ti, mgr, "x.io/v1", "", true, T0)
            .unwrap()
            .object
    };
    let obj = ap(
        None,
        json!({"items": [{"id": "a", "v": 1}], "tags": ["x", "y"], "args": ["1", "2"], "sel": {"k": "1"}}),
        "m1",
    );
    let obj = ap(
        Some(&obj),
        json!({"items": [{"id": "b", "v": 2}], "tags": ["z"], "args": ["3"], "sel": {"j": "2"}}),
        "m2",
    );
    // Conflicts: atomic list and atomic map owned by m1 change.
    let err = apply(
        Some(&obj),
        &widget(json!({"args": ["4"]})),
        &ti,
        "m3",
        "x.io/v1",
        "",
        false,
        T0,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"m2\": .spec.args"
    );
    assert_eq!(
        obj["spec"]["items"],
        json!([{"id": "a", "v": 1}, {"id": "b", "v": 2}])
    );
    assert_eq!(obj["spec"]["tags"], json!(["x", "y", "z"]));
    assert_eq!(obj["spec"]["args"], json!(["3"]));
    assert_eq!(obj["spec"]["sel"], json!({"j": "2"}));
    let f2 = fields_of(&obj, "m2").unwrap().to_fields_v1();
    assert_eq!(
        f2["f:spec"]["f:items"],
        json!({"k:{\"id\":\"b\"}": {".": {}, "f:id": {}, "f:v": {}}})
    );
    assert_eq!(f2["f:spec"]["f:tags"], json!({"v:\"z\"": {}}));
    assert_eq!(f2["f:spec"]["f:args"], json!({}));
    // m1 lost the atomic fields to m2.
    let f1 = fields_of(&obj, "m1").unwrap().to_fields_v1();
    assert!(f1["f:spec"].get("f:args").is_none() && f1["f:spec"].get("f:sel").is_none());
    // Set items dropped by m1 go away.
    let obj = ap(
        Some(&obj),
        json!({"items": [{"id": "a", "v": 1}], "tags": ["x"]}),
        "m1",
    );
    assert_eq!(obj["spec"]["tags"], json!(["x", "z"]));
}

#[test]
fn no_op_apply_is_unchanged() {
    let ti = deployment_schema();
    let cfg = deployment(2, "nginx:1");
    let obj = apply_ok(None, &cfg, &ti, "a", false);
    let r = apply(Some(&obj), &cfg, &ti, "a", "apps/v1", "", false, T1).unwrap();
    assert!(!r.changed);
    assert_eq!(r.object, obj);
    let r = apply(
        Some(&obj),
        &deployment(4, "nginx:1"),
        &ti,
        "a",
        "apps/v1",
        "",
        false,
        T1,
    )
    .unwrap();
    assert!(r.changed);
    assert_eq!(
        decode_managed_fields(&r.object).unwrap()[0].time.as_deref(),
        Some(T1)
    );
}

#[test]
fn update_records_changes_and_takes_fields_from_others() {
    let ti = deployment_schema();
    let obj = apply_ok(None, &deployment(2, "nginx:1"), &ti, "a", false);
    let mut edited = obj.clone();
    edited["spec"]["replicas"] = json!(7);
    edited["metadata"]["labels"] = json!({"x": "y"});
    let out = update(Some(&obj), &edited, &ti, "kubectl-edit", "apps/v1", "", T1).unwrap();
    let e = fields_of(&out, "kubectl-edit").unwrap().to_fields_v1();
    assert_eq!(
        e,
        json!({"f:metadata": {"f:labels": {".": {}, "f:x": {}}}, "f:spec": {"f:replicas": {}}})
    );
    assert!(!paths(&fields_of(&out, "a").unwrap()).contains(&".spec.replicas".into()));
    // An update that changes nothing leaves managedFields alone.
    let same = update(Some(&out), &out, &ti, "other", "apps/v1", "", T1).unwrap();
    assert_eq!(same, out);
    // Client-rewritten managedFields are taken as given.
    let mut rewritten = out.clone();
    rewritten["metadata"]["managedFields"] = json!([{"manager": "z", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
    let out2 = update(Some(&out), &rewritten, &ti, "csa", "apps/v1", "", T1).unwrap();
    let mf = decode_managed_fields(&out2).unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager, "z");
    // [{}] clears them.
    let mut cleared = out.clone();
    cleared["metadata"]["managedFields"] = json!([{}]);
    let out3 = update(Some(&out), &cleared, &ti, "csa", "apps/v1", "", T1).unwrap();
    assert!(out3["metadata"].get("managedFields").is_none());
}

#[test]
fn client_side_apply_upgrade() {
    let ti = deployment_schema();
    // kubectl client-side apply: create with the annotation, manager Update.
    let mut cfg = deployment(2, "nginx:1");
    let mut created = cfg.clone();
    created["metadata"]["annotations"] = json!({
        kplex_ssa::LAST_APPLIED_ANNOTATION: serde_json::to_string(&cfg).unwrap()
    });
    let obj = update(
        None,
        &created,
        &ti,
        "kubectl-client-side-apply",
        "apps/v1",
        "",
        T0,
    )
    .unwrap();
    // Server-side apply by "kubectl" changing replicas: conflict allowed by last-applied.
    cfg["spec"]["replicas"] = json!(3);
    let r = apply(Some(&obj), &cfg, &ti, "kubectl", "apps/v1", "", false, T1).unwrap();
    assert_eq!(r.object["spec"]["replicas"], 3);
    assert!(paths(&fields_of(&r.object, "kubectl").unwrap()).contains(&".spec.replicas".into()));
    assert!(
        !paths(&fields_of(&r.object, "kubectl-client-side-apply").unwrap())
            .contains(&".spec.replicas".into())
    );
    let la: Value = serde_json::from_str(
        r.object["metadata"]["annotations"][kplex_ssa::LAST_APPLIED_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(la["spec"]["replicas"], 3);
    // Any other manager name still conflicts.
    let err = apply(Some(&obj), &cfg, &ti, "other", "apps/v1", "", false, T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn bad_apply_configs() {
    let ti = Deduced;
    for cfg in [
        json!([]),
        json!({"kind": "ConfigMap", "metadata": {"name": "x"}}),
        json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "managedFields": []}}),
    ] {
        assert!(
            matches!(
                apply(None, &cfg, &ti, "m", "v1", "", false, T0),
                Err(ApplyError::Invalid(_))
            ),
            "{cfg}"
        );
    }
    let mut deep = json!("x");
    for _ in 0..300 {
        deep = json!({ "a": deep });
    }
    let cfg =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": deep});
    assert!(apply(None, &cfg, &ti, "m", "v1", "", false, T0).is_err());
}

#[test]
fn update_on_create_records_all_fields() {
    let ti = deployment_schema();
    let obj = update(
        None,
        &deployment(1, "nginx:1"),
        &ti,
        "kubectl-create",
        "apps/v1",
        "",
        T0,
    )
    .unwrap();
    let f = fields_of(&obj, "kubectl-create").unwrap().to_fields_v1();
    assert!(f.get("f:metadata").is_none(), "{f}");
    // Kube compares against the typed zero object, where spec, template and
    // containers already exist; from `{}` they are recorded as added ("."),
    // which only adds ownership of those nodes.
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"],
        json!({".": {}, "f:image": {}, "f:name": {}})
    );
    assert_eq!(
        f["f:spec"]["f:template"]["f:metadata"]["f:labels"],
        json!({".": {}, "f:app": {}})
    );
}

#[test]
fn no_op_apply_that_would_reorder_managers_is_unchanged() {
    let ti = deployment_schema();
    // Both apply at T0, stored sorted by manager: a, z.
    let obj = apply_ok(None, &deployment(2, "nginx:1"), &ti, "z", false);
    let label = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"team": "a"}}
    });
    let obj = apply_ok(Some(&obj), &label, &ti, "a", false);
    // a re-applies later: a newer time would sort it after z, yet nothing changed.
    let r = apply(Some(&obj), &label, &ti, "a", "apps/v1", "", false, T1).unwrap();
    assert!(!r.changed);
    assert_eq!(r.object, obj);
}
