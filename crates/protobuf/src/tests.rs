use serde_json::json;

use super::*;

/// A hand-rolled protobuf writer, independent of the codec under test, that
/// lays out bodies the way Go's generated marshallers do.
#[derive(Default, Clone)]
struct B(Vec<u8>);

impl B {
    fn new() -> Self {
        Self::default()
    }
    fn key(mut self, n: u32, w: u8) -> Self {
        put_key(&mut self.0, n, w);
        self
    }
    fn v(self, n: u32, x: u64) -> Self {
        let mut b = self.key(n, 0);
        put_varint(&mut b.0, x);
        b
    }
    fn y(mut self, n: u32, x: &[u8]) -> Self {
        put_bytes(&mut self.0, n, x);
        self
    }
    fn s(self, n: u32, x: &str) -> Self {
        self.y(n, x.as_bytes())
    }
    fn m(self, n: u32, x: B) -> Self {
        self.y(n, &x.0)
    }
    fn kv(self, n: u32, k: &str, v: &[u8]) -> Self {
        self.m(n, B::new().s(1, k).y(2, v))
    }
    fn km(self, n: u32, k: &str, v: B) -> Self {
        self.m(n, B::new().s(1, k).m(2, v))
    }
}

fn envelope(api_version: &str, kind: &str, raw: B) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(
        B::new()
            .m(1, B::new().s(1, api_version).s(2, kind))
            .m(2, raw)
            .s(3, "")
            .s(4, "")
            .0,
    );
    out
}

/// ObjectMeta as Go writes it for a new object: every non-pointer field,
/// zero or not, and an empty creationTimestamp.
fn meta(name: &str, namespace: &str) -> B {
    B::new()
        .s(1, name)
        .s(2, "")
        .s(3, namespace)
        .s(4, "")
        .s(5, "")
        .s(6, "")
        .v(7, 0)
        .m(8, B::new())
}

fn roundtrip(expected: &Value) {
    let body = match encode(expected) {
        Ok(b) => b,
        Err(e) => panic!("encode: {e}"),
    };
    match decode(&body) {
        Ok(v) => assert_eq!(&v, expected),
        Err(e) => panic!("decode: {e}"),
    }
}

fn dec(body: &[u8]) -> Value {
    match decode(body) {
        Ok(v) => v,
        Err(e) => panic!("decode: {e}"),
    }
}

#[test]
fn schema_table_parses() {
    let s = match schema::schema() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert!(s.messages.len() > 400);
}

#[test]
fn configmap() {
    let raw = B::new()
        .m(
            1,
            meta("cm1", "default")
                .km(11, "app", B::new())
                .kv(11, "tier", b"web"),
        )
        .kv(2, "k1", b"v1")
        .kv(2, "empty", b"")
        .kv(3, "bin", &[0, 1, 2, 255])
        .v(4, 1);
    let expected = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cm1",
            "namespace": "default",
            "labels": {"app": "", "tier": "web"}
        },
        "data": {"k1": "v1", "empty": ""},
        "binaryData": {"bin": "AAEC/w=="},
        "immutable": true
    });
    assert_eq!(dec(&envelope("v1", "ConfigMap", raw)), expected);
    roundtrip(&expected);
}

#[test]
fn secret_and_namespace() {
    let raw = B::new()
        .m(1, meta("s", "ns"))
        .kv(2, "password", b"hunter2")
        .s(3, "Opaque");
    let expected = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "ns"},
        "data": {"password": "aHVudGVyMg=="},
        "type": "Opaque"
    });
    assert_eq!(dec(&envelope("v1", "Secret", raw)), expected);
    roundtrip(&expected);

    let raw = B::new()
        .m(1, meta("team-a", "").m(8, B::new().v(1, 1_700_000_000)))
        .m(2, B::new())
        .m(3, B::new());
    let expected = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "creationTimestamp": "2023-11-14T22:13:20Z"},
        "spec": {},
        "status": {}
    });
    assert_eq!(dec(&envelope("v1", "Namespace", raw)), expected);
    roundtrip(&expected);
}

#[test]
fn deployment() {
    let intstr_str = |s: &str| B::new().v(1, 1).v(2, 0).s(3, s);
    let intstr_int = |i: u64| B::new().v(1, 0).v(2, i).s(3, "");
    let container = B::new()
        .s(1, "web")
        .s(2, "nginx:1.27")
        .s(3, "nginx")
        .s(3, "-g")
        .m(6, B::new().s(1, "http").v(2, 0).v(3, 80).s(4, "TCP"))
        .m(7, B::new().s(1, "MODE").s(2, "prod"))
        .m(
            7,
            B::new().s(1, "FROM_CM").s(2, "").m(
                3,
                B::new().m(3, B::new().m(1, B::new().s(1, "cfg")).s(2, "key")),
            ),
        )
        .m(
            8,
            B::new()
                .km(1, "cpu", B::new().s(1, "500m"))
                .km(1, "memory", B::new().s(1, "128Mi")),
        )
        .s(14, "IfNotPresent")
        .v(16, 0);
    let raw = B::new().m(1, meta("web", "default")).m(
        2,
        B::new()
            .v(1, 3)
            .m(2, B::new().kv(1, "app", b"web"))
            .m(
                3,
                B::new()
                    .m(1, B::new().kv(11, "app", b"web"))
                    .m(2, B::new().m(2, container)),
            )
            .m(
                4,
                B::new()
                    .s(1, "RollingUpdate")
                    .m(2, B::new().m(1, intstr_int(0)).m(2, intstr_str("25%"))),
            ),
    );
    let expected = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "nginx:1.27",
                    "command": ["nginx", "-g"],
                    "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                    "env": [
                        {"name": "MODE", "value": "prod"},
                        {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "key"}}}
                    ],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                    "imagePullPolicy": "IfNotPresent"
                }]}
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
        }
    });
    assert_eq!(dec(&envelope("apps/v1", "Deployment", raw)), expected);
    roundtrip(&expected);
}

#[test]
fn self_subject_access_review() {
    let raw = B::new().m(1, meta("", "")).m(
        2,
        B::new().m(
            1,
            B::new()
                .s(1, "default")
                .s(2, "create")
                .s(3, "apps")
                .s(4, "")
                .s(5, "deployments"),
        ),
    );
    let expected = json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {"resourceAttributes": {
            "namespace": "default", "verb": "create", "group": "apps", "resource": "deployments"
        }}
    });
    assert_eq!(
        dec(&envelope(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            raw
        )),
        expected
    );
    // The answer, with a status whose `allowed: false` must survive.
    let mut answer = expected.clone();
    answer["status"] = json!({"allowed": false, "reason": "no RBAC rule"});
    roundtrip(&answer);
}

#[test]
fn more_kinds_roundtrip() {
    for obj in [
        json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
               "message": "not found", "reason": "NotFound",
               "details": {"name": "x", "kind": "pods"}, "code": 404}),
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
               "propagationPolicy": "Foreground", "dryRun": ["All"]}),
        json!({"apiVersion": "v1", "kind": "ConfigMapList",
               "metadata": {"resourceVersion": "12", "continue": "abc"},
               "items": [{"metadata": {"name": "a"}, "data": {"x": "y"}}]}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "l", "namespace": "kube-system"},
               "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15,
                        "renewTime": "2024-05-06T07:08:09.123456Z"}}),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
               "metadata": {"creationTimestamp": "2024-05-06T07:08:09Z"},
               "status": {"userInfo": {"username": "admin", "groups": ["system:masters"],
                          "extra": {"scopes": ["a", "b"]}}}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "i",
                        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5}}],
                        "volumes": [{"name": "v", "configMap": {"name": "cm", "defaultMode": 420}}],
                        "securityContext": {"supplementalGroups": [1, 2]}}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
               "spec": {"minAvailable": "50%", "selector": {"matchExpressions":
                        [{"key": "a", "operator": "In", "values": ["b"]}]}}}),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
               "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"},
                        "minReplicas": 1, "maxReplicas": 5,
                        "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                     "target": {"type": "Utilization", "averageUtilization": 80}}}]}}),
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
               "eventTime": "2024-05-06T07:08:09.000001Z", "reason": "Created",
               "regarding": {"kind": "Pod", "name": "p"}}),
        // A plain Go int32 with omitempty: zero is written on the wire and dropped in JSON,
        // as kube-apiserver returns `spec: {}` for a Scale to zero.
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "d"},
               "spec": {}, "status": {"replicas": 2, "selector": "app=x"}}),
        json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
               "data": {"spec": {"x": [1, 2]}}, "revision": 3}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
               "spec": {"storageClassName": "", "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": "w"},
               "webhooks": [{"name": "w.example.com",
                   "clientConfig": {"service": {"namespace": "ns", "name": "svc", "port": 443}, "caBundle": "AAE="},
                   "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                              "resources": ["pods"], "scope": "*"}],
                   "sideEffects": "None", "admissionReviewVersions": ["v1"]}]}),
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.x.io"},
               "spec": {"service": {"namespace": "ns", "name": "s", "port": 443}, "group": "x.io",
                        "version": "v1", "insecureSkipTLSVerify": true, "groupPriorityMinimum": 100,
                        "versionPriority": 10}}),
    ] {
        roundtrip(&obj);
    }
}

#[test]
fn supports_kinds() {
    for (av, kind) in [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Namespace"),
        ("v1", "ServiceAccount"),
        ("v1", "ResourceQuota"),
        ("v1", "Service"),
        ("v1", "Pod"),
        ("v1", "Endpoints"),
        ("v1", "Event"),
        ("v1", "LimitRange"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "Status"),
        ("v1", "DeleteOptions"),
        ("apps/v1", "DeleteOptions"),
        ("v1", "PodList"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "DeploymentList"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("policy/v1", "PodDisruptionBudget"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("networking.k8s.io/v1", "Ingress"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("authentication.k8s.io/v1", "TokenReview"),
        ("authentication.k8s.io/v1", "SelfSubjectReview"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("authorization.k8s.io/v1", "SubjectAccessReview"),
        ("autoscaling/v1", "HorizontalPodAutoscaler"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("autoscaling/v1", "Scale"),
        ("coordination.k8s.io/v1", "Lease"),
        ("certificates.k8s.io/v1", "CertificateSigningRequest"),
        ("events.k8s.io/v1", "Event"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        (
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
        ),
        ("node.k8s.io/v1", "RuntimeClass"),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("meta.k8s.io/v1", "PartialObjectMetadataList"),
    ] {
        assert!(supports(av, kind), "{av} {kind}");
    }
    assert!(!supports("v1", "Container"));
    assert!(!supports("v1", "Deployment"));
    assert!(!supports("example.com/v1", "Widget"));
}

#[test]
fn watch_event_frame() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    let frame = match encode_watch_event("ADDED", &obj) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    let (len, event) = frame.split_at(4);
    assert_eq!(
        u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize,
        event.len()
    );
    let mut r = Reader::new(event);
    assert_eq!(r.key().ok(), Some((1, LEN)));
    assert_eq!(r.bytes().ok(), Some(&b"ADDED"[..]));
    assert_eq!(r.key().ok(), Some((2, LEN)));
    let mut ext = Reader::new(r.bytes().unwrap_or_default());
    assert_eq!(ext.key().ok(), Some((1, LEN)));
    assert_eq!(decode(ext.bytes().unwrap_or_default()).ok(), Some(obj));
}

fn is_err(body: &[u8]) -> bool {
    decode(body).is_err()
}

#[test]
fn malformed_inputs_are_errors() {
    let good = envelope(
        "v1",
        "ConfigMap",
        B::new().m(1, meta("a", "b")).kv(2, "k", b"v"),
    );
    assert!(decode(&good).is_ok());
    // Wrong magic, empty body, JSON.
    assert!(matches!(decode(b"k8s\x01abc"), Err(Error::BadMagic)));
    assert!(is_err(b""));
    assert!(is_err(b"{\"kind\":\"ConfigMap\"}"));
    // Every truncation of a valid body fails cleanly.
    for n in 4..good.len() {
        let _ = decode(&good[..n]);
    }
    // Truncated and overlong varints.
    assert!(matches!(decode(b"k8s\0\x0a\x80"), Err(Error::Truncated)));
    assert!(matches!(decode(b"k8s\0\x08"), Err(Error::WireType { .. })));
    let mut overlong = MAGIC.to_vec();
    overlong.push(0x28);
    overlong.extend([0xff; 11]);
    assert!(matches!(decode(&overlong), Err(Error::BadVarint)));
    // Huge length prefix.
    let mut huge = MAGIC.to_vec();
    huge.push(0x12);
    huge.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(decode(&huge), Err(Error::Truncated)));
    // Wrong wire type for a string field (metadata.name as varint).
    let bad = envelope("v1", "ConfigMap", B::new().m(1, B::new().v(1, 5)));
    assert!(matches!(decode(&bad), Err(Error::WireType { .. })));
    // Wrong wire type for a message field.
    let bad = envelope("v1", "ConfigMap", B::new().v(1, 5));
    assert!(matches!(decode(&bad), Err(Error::WireType { .. })));
    // Field number zero and groups.
    assert!(is_err(&envelope("v1", "ConfigMap", B::new().v(0, 1))));
    assert!(is_err(&envelope("v1", "ConfigMap", B::new().key(9, 3))));
    // Unknown kinds.
    assert!(matches!(
        decode(&envelope("v1", "Nope", B::new())),
        Err(Error::UnknownKind { .. })
    ));
    assert!(matches!(
        decode(&envelope("example.com/v1", "Widget", B::new())),
        Err(Error::UnknownKind { .. })
    ));
    // Compressed content.
    let mut gz = MAGIC.to_vec();
    gz.extend(
        B::new()
            .m(1, B::new().s(1, "v1").s(2, "ConfigMap"))
            .s(3, "gzip")
            .0,
    );
    assert!(matches!(decode(&gz), Err(Error::ContentEncoding(_))));
    // Bad embedded JSON in a RawExtension.
    let bad = envelope(
        "apps/v1",
        "ControllerRevision",
        B::new().m(2, B::new().s(1, "{")),
    );
    assert!(matches!(decode(&bad), Err(Error::Invalid { .. })));
    // Out-of-range time.
    let bad = envelope(
        "v1",
        "ConfigMap",
        B::new().m(1, B::new().m(8, B::new().v(1, u64::MAX >> 1))),
    );
    assert!(matches!(decode(&bad), Err(Error::Invalid { .. })));
}

#[test]
fn embedded_json_numbers_survive_a_round_trip() {
    // Found by the protobuf fuzz target: a long decimal in a RawExtension parsed to one f64,
    // printed, and parsed again to its neighbour. Parsing must round correctly, so what a
    // client sent decodes to the same value however often it is re-encoded.
    let digits = "5555553500000000000000000000000000000000001753901854881509";
    let body = envelope(
        "apps/v1",
        "ControllerRevision",
        B::new()
            .m(1, B::new().s(1, "r"))
            .m(2, B::new().s(1, digits)),
    );
    let value = dec(&body);
    let again = dec(&encode(&value).expect("encodes"));
    assert_eq!(again, value);
}

#[test]
fn deep_nesting_is_refused() {
    // JSONSchemaProps-like recursion does not exist in the table, but a
    // RawExtension may hold an enveloped object holding a RawExtension…
    let mut body = envelope(
        "apps/v1",
        "ControllerRevision",
        B::new().m(2, B::new().s(1, "{}")),
    );
    for _ in 0..200 {
        body = envelope(
            "apps/v1",
            "ControllerRevision",
            B::new().m(2, B::new().y(1, &body)),
        );
    }
    assert!(matches!(decode(&body), Err(Error::TooDeep(_))));
    // Deeply nested JSON inside a RawExtension hits serde_json's limit.
    let deep = "[".repeat(10_000);
    let bad = envelope(
        "apps/v1",
        "ControllerRevision",
        B::new().m(2, B::new().s(1, &deep)),
    );
    assert!(is_err(&bad));
    // Encoding refuses the same depth.
    let mut obj = json!({});
    for _ in 0..200 {
        obj = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "data": obj});
    }
    assert!(encode(&obj).is_ok(), "RawExtension content is opaque JSON");
}

#[test]
fn encode_rejects_bad_json() {
    for obj in [
        json!({"kind": "ConfigMap"}),
        json!({"apiVersion": "v1", "kind": "Widget"}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": []}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 1}}),
        json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "not base64!"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1.5}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 4_294_967_296_i64}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"creationTimestamp": "yesterday"}}),
    ] {
        assert!(encode(&obj).is_err(), "{obj}");
    }
}

use kplex_testing::Rng;

#[test]
fn fuzz_random_and_mutated_bodies_never_panic() {
    let seeds: Vec<Vec<u8>> = [
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "y"}},
               "data": {"k": "v"}, "binaryData": {"b": "AAE="}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c",
               "resources": {"limits": {"cpu": "1"}}, "ports": [{"containerPort": 80}]}]}},
               "strategy": {"rollingUpdate": {"maxSurge": 1}}}}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
               "spec": {"renewTime": "2024-05-06T07:08:09.123456Z"}}),
    ]
    .iter()
    .filter_map(|v| encode(v).ok())
    .collect();
    assert_eq!(seeds.len(), 3);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..20_000 {
        let mut body = match seeds.get(i % seeds.len()) {
            Some(s) => s.clone(),
            None => continue,
        };
        if i % 10 == 0 {
            // Pure noise after the magic.
            body.truncate(4);
            let n = rng.below(64);
            body.extend(rng.bytes(n));
        } else {
            for _ in 0..=rng.below(4) {
                let at = 4 + rng.below(body.len() - 4);
                match rng.below(3) {
                    0 => body[at] = rng.next_u64() as u8,
                    1 => body.insert(at, rng.next_u64() as u8),
                    _ => {
                        body.remove(at);
                    }
                }
                if body.len() <= 4 {
                    break;
                }
            }
        }
        if let Ok(v) = decode(&body) {
            // Whatever decodes must encode again.
            assert!(encode(&v).is_ok(), "{v}");
        }
    }
}

/// Cross-checks the table against k8s-pb's compiled prost types (the
/// generator only parses their source text, so this also checks that
/// reading): our encoding must decode there, and prost's re-encoding of it
/// must decode here to the same JSON.
fn oracle<M: prost::Message + Default>(obj: &Value) {
    let body = match encode(obj) {
        Ok(b) => b,
        Err(e) => panic!("encode: {e}"),
    };
    let unknown =
        match <k8s_pb::apimachinery::pkg::runtime::Unknown as prost::Message>::decode(&body[4..]) {
            Ok(u) => u,
            Err(e) => panic!("envelope: {e}"),
        };
    let typed = match M::decode(unknown.raw.clone().unwrap_or_default().as_slice()) {
        Ok(m) => m,
        Err(e) => panic!("prost decode: {e}"),
    };
    let again = k8s_pb::apimachinery::pkg::runtime::Unknown {
        raw: Some(typed.encode_to_vec()),
        ..unknown
    };
    let mut body = MAGIC.to_vec();
    body.extend(prost::Message::encode_to_vec(&again));
    assert_eq!(&dec(&body), obj);
}

#[test]
fn prost_oracle_agrees() {
    use k8s_pb::api;
    oracle::<api::apps::v1::Deployment>(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"a": "b"},
                     "creationTimestamp": "2024-01-02T03:04:05Z",
                     "managedFields": [{"manager": "kubectl", "operation": "Update",
                                        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
          "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "containers": [{"name": "web", "image": "nginx",
              "ports": [{"containerPort": 80, "protocol": "TCP"}],
              "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": false}}}],
              "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "1Gi"}},
              "livenessProbe": {"tcpSocket": {"port": 8080}, "failureThreshold": 3},
              "securityContext": {"runAsNonRoot": true, "runAsUser": -1}}],
            "volumes": [{"name": "v", "secret": {"secretName": "s", "defaultMode": 420}}],
            "securityContext": {"supplementalGroups": [1, 2]}}},
          "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}}
    }));
    oracle::<api::core::v1::Secret>(&json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"a": "AAEC"}, "stringData": {"b": "c"}, "type": "Opaque", "immutable": false
    }));
    oracle::<api::core::v1::Service>(&json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}], "type": "ClusterIP",
                 "selector": {"app": "x"}}
    }));
    oracle::<api::coordination::v1::Lease>(&json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
        "spec": {"holderIdentity": "me", "renewTime": "2024-05-06T07:08:09.123456Z"}
    }));
    oracle::<api::batch::v1::CronJob>(&json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"backoffLimit": 0,
                 "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}}
    }));
    oracle::<api::rbac::v1::ClusterRole>(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"},
        "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}
    }));
    oracle::<api::authentication::v1::TokenRequest>(&json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {"name": "sa"},
        "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600,
                 "boundObjectRef": {"kind": "Pod", "name": "p"}},
        "status": {"token": "t", "expirationTimestamp": "2030-01-01T00:00:00Z"}
    }));
    oracle::<api::networking::v1::Ingress>(&json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
        "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}
    }));
    oracle::<k8s_pb::apimachinery::pkg::apis::meta::v1::Status>(&json!({
        "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "code": 409,
        "reason": "AlreadyExists", "details": {"name": "x", "causes": [{"reason": "r", "field": "f"}]}
    }));
}

#[test]
fn zeros_go_drops_are_dropped_and_pointer_zeros_kept() {
    // As `kubectl create deployment` sends it: Go writes every plain field, zero or not.
    let container = B::new()
        .s(1, "web")
        .s(2, "nginx")
        .v(16, 0)
        .v(17, 0)
        .v(18, 0);
    let template = B::new()
        .m(1, B::new().v(7, 0))
        .m(2, B::new().m(2, container).v(11, 0).v(12, 0).v(13, 0));
    let spec = B::new().v(1, 0).m(3, template).v(5, 0).v(7, 0);
    let raw = B::new().m(1, meta("web", "default")).m(2, spec);
    let got = dec(&envelope("apps/v1", "Deployment", raw));
    // `replicas` is a pointer: a zero there was set by the client.
    assert_eq!(got["spec"]["replicas"], 0, "{got}");
    for gone in ["minReadySeconds", "paused"] {
        assert!(got["spec"].get(gone).is_none(), "{gone}: {got}");
    }
    let pod = &got["spec"]["template"]["spec"];
    assert!(pod.get("hostIPC").is_none(), "{got}");
    assert!(pod["containers"][0].get("stdin").is_none(), "{got}");
    assert!(
        got["spec"]["template"]["metadata"]
            .get("generation")
            .is_none(),
        "{got}"
    );
    assert!(got["metadata"].get("generation").is_none(), "{got}");
}
