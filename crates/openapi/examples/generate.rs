//! Regenerates `data/builtin.json` from the `k8s-openapi` crate's schemas:
//!
//! ```sh
//! cargo run -p kplex-openapi --example generate --features generate
//! ```
//!
//! The data file holds the built-in kinds (group, version, kind, plural,
//! scope, schema name) and every schema they reach, named as kube names them
//! (`io.k8s.api.apps.v1.Deployment`), in OpenAPI 3 form (`$ref`s to
//! `#/components/schemas/…`, described references wrapped in `allOf`).
//! Patch and list extensions are not in it: the library adds them at first
//! use from `kplex_apimachinery::patch_schema`, the single source of truth.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = kplex_openapi::generate::builtin_data()?;
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/builtin.json").into());
    std::fs::write(&out, data)?;
    eprintln!("wrote {out}");
    Ok(())
}
