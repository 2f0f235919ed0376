//! Kubernetes protobuf bodies: `kplex_protobuf::decode` of an enveloped body (magic `k8s\0`,
//! runtime.Unknown) into Kubernetes JSON, then `encode` of what was decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = kplex_protobuf::decode(data) else {
        return;
    };
    assert!(value.is_object(), "decoded a non-object: {value}");
    // What was decoded encodes again, and that encoding decodes to the same JSON.
    if let Ok(body) = kplex_protobuf::encode(&value) {
        let again = kplex_protobuf::decode(&body).expect("re-encoded body decodes");
        assert_eq!(again, value, "protobuf round trip changed the object");
    }
});
