//! Generates the snapshot messages from the schema in the repository's `proto/` directory
//! (needs `protoc`, as the etcd client already does).

fn main() -> std::io::Result<()> {
    let proto = "../../proto/kplex/snapshot/v1/snapshot.proto";
    println!("cargo:rerun-if-changed={proto}");
    prost_build::compile_protos(&[proto], &["../../proto"])
}
