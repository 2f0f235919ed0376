//! `kubectl kplex crd snapshot`: turns CustomResourceDefinitions into APIResourceSchemas
//! (`apis.kcp.io/v1alpha1`), the immutable API descriptions an APIExport serves.
//!
//! The schema is named `<prefix>.<plural>.<group>`; its spec carries the CRD's group, names,
//! scope and conversion, and one entry per CRD version in which `schema` is the version's
//! `schema.openAPIV3Schema` itself (not wrapped).

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

const CRD_API_VERSION: &str = "apiextensions.k8s.io/v1";
const CRD_KIND: &str = "CustomResourceDefinition";

/// Output format of the generated schemas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Yaml,
    Json,
}

impl Format {
    /// `-o yaml|json`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "yaml" | "yml" => Ok(Format::Yaml),
            "json" => Ok(Format::Json),
            other => Err(Error::msg(format!(
                "unable to match a printer suitable for the output format {other:?}, allowed formats are: json,yaml"
            ))),
        }
    }
}

/// The objects of a YAML (multi-document, `---`) or JSON (one or more concatenated values)
/// input. Empty documents are skipped; `kind: List` documents contribute their items.
pub fn parse_documents(input: &str) -> Result<Vec<Value>> {
    let trimmed = input.trim_start();
    let docs: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::Deserializer::from_str(trimmed)
            .into_iter::<Value>()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::msg(format!("error parsing JSON input: {e}")))?
    } else {
        serde_saphyr::from_multiple::<Value>(input)
            .map_err(|e| Error::msg(format!("error parsing YAML input: {e}")))?
    };
    let mut out = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Array(items) => out.extend(items.into_iter().filter(|v| !v.is_null())),
            Value::Object(ref o)
                if o.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k == "List" || k.ends_with("List"))
                    && o.get("items").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(items)) = doc.get("items") {
                    out.extend(items.iter().filter(|v| !v.is_null()).cloned());
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Whether `name` is a lowercase RFC 1123 subdomain (what object names must be).
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty()
                && b.first().is_some_and(alnum)
                && b.last().is_some_and(alnum)
                && b.iter().all(|c| alnum(c) || *c == b'-')
        })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The APIResourceSchema for one CRD; `index` (1-based) only names the document in errors.
pub fn snapshot(crd: &Value, prefix: &str, index: usize) -> Result<Value> {
    let what = |msg: String| Error::msg(format!("document {index}: {msg}"));
    let api_version = crd
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = crd.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind != CRD_KIND || api_version != CRD_API_VERSION {
        let found = match (api_version, kind) {
            ("", "") => "an object without apiVersion and kind".to_string(),
            (a, k) => format!("a {a}/{k}"),
        };
        let hint = if kind == CRD_KIND && api_version.starts_with("apiextensions.k8s.io/") {
            " (convert it to apiextensions.k8s.io/v1 first)"
        } else {
            ""
        };
        return Err(what(format!(
            "expected an {CRD_API_VERSION} {CRD_KIND}, found {found}{hint}"
        )));
    }
    let crd_name = str_at(crd, &["metadata", "name"]).unwrap_or("<unnamed>");
    let spec = crd
        .get("spec")
        .filter(|s| s.is_object())
        .ok_or_else(|| what(format!("CustomResourceDefinition {crd_name:?} has no spec")))?;
    let missing = |field: &str| {
        what(format!(
            "CustomResourceDefinition {crd_name:?} has no spec.{field}"
        ))
    };
    let group = str_at(spec, &["group"]).ok_or_else(|| missing("group"))?;
    let plural = str_at(spec, &["names", "plural"]).ok_or_else(|| missing("names.plural"))?;
    let scope = spec.get("scope").ok_or_else(|| missing("scope"))?;
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("versions"))?;

    let name = format!("{prefix}.{plural}.{group}");
    if !is_dns_subdomain(&name) {
        return Err(Error::msg(format!(
            "invalid prefix {prefix:?}: the APIResourceSchema name {name:?} must be a lowercase RFC 1123 subdomain"
        )));
    }

    let mut out_versions = Vec::with_capacity(versions.len());
    for (i, v) in versions.iter().enumerate() {
        let vname = str_at(v, &["name"]).ok_or_else(|| missing(&format!("versions[{i}].name")))?;
        let mut ov = Map::new();
        ov.insert("name".into(), Value::String(vname.to_string()));
        for key in ["served", "storage", "deprecated", "deprecationWarning"] {
            if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
                ov.insert(key.into(), x.clone());
            }
        }
        if let Some(schema) = v
            .get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .filter(|s| !s.is_null())
        {
            ov.insert("schema".into(), schema.clone());
        }
        for key in [
            "subresources",
            "additionalPrinterColumns",
            "selectableFields",
        ] {
            if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
                ov.insert(key.into(), x.clone());
            }
        }
        out_versions.push(Value::Object(ov));
    }

    let mut out_spec = Map::new();
    out_spec.insert("group".into(), Value::String(group.to_string()));
    out_spec.insert(
        "names".into(),
        spec.get("names").cloned().unwrap_or(Value::Null),
    );
    out_spec.insert("scope".into(), scope.clone());
    out_spec.insert("versions".into(), Value::Array(out_versions));
    if let Some(conversion) = spec.get("conversion").filter(|c| !c.is_null()) {
        out_spec.insert("conversion".into(), conversion.clone());
    }
    Ok(json!({
        "apiVersion": "apis.kcp.io/v1alpha1",
        "kind": "APIResourceSchema",
        "metadata": {"name": name},
        "spec": Value::Object(out_spec),
    }))
}

/// The APIResourceSchemas of every CRD in `input` (YAML or JSON), in input order.
pub fn snapshot_all(input: &str, prefix: &str) -> Result<Vec<Value>> {
    if prefix.is_empty() {
        return Err(Error::msg("--prefix must not be empty"));
    }
    let docs = parse_documents(input)?;
    if docs.is_empty() {
        return Err(Error::msg("no CustomResourceDefinition found in the input"));
    }
    docs.iter()
        .enumerate()
        .map(|(i, d)| snapshot(d, prefix, i + 1))
        .collect()
}

/// YAML documents separated by `---`, or JSON (one object, or a `v1` List of several),
/// ending with a newline.
pub fn render(schemas: &[Value], format: Format) -> Result<String> {
    match format {
        Format::Yaml => serde_saphyr::to_string_multiple(schemas)
            .map_err(|e| Error::msg(format!("encoding YAML: {e}"))),
        Format::Json => {
            let value = match schemas {
                [one] => one.clone(),
                many => json!({"apiVersion": "v1", "kind": "List", "items": many}),
            };
            // kubectl's -o json indents by four spaces.
            let mut buf = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
            serde::Serialize::serialize(&value, &mut ser)
                .map_err(|e| Error::msg(format!("encoding JSON: {e}")))?;
            let mut s = String::from_utf8_lossy(&buf).into_owned();
            s.push('\n');
            Ok(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.dev
  annotations:
    controller-gen.kubebuilder.io/version: v0.16.0
spec:
  group: example.dev
  names:
    kind: Widget
    listKind: WidgetList
    plural: widgets
    singular: widget
    shortNames: [wd]
  scope: Namespaced
  conversion:
    strategy: None
  versions:
  - name: v1alpha1
    served: true
    storage: false
    deprecated: true
    deprecationWarning: "example.dev/v1alpha1 Widget is deprecated"
    schema:
      openAPIV3Schema:
        type: object
        description: |
          A widget.
          Second line: with "quotes" and a colon.
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: integer
                default: 3
              mode:
                type: string
                enum: ["on", "off", "yes", "1.0", "true"]
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.size
        statusReplicasPath: .status.size
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    selectableFields:
    - jsonPath: .spec.mode
---
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.other.example.dev
spec:
  group: other.example.dev
  names: {kind: Gadget, listKind: GadgetList, plural: gadgets, singular: gadget}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object}
"#;

    #[test]
    fn multi_version_multi_document() {
        let out = snapshot_all(CRDS, "v250101").unwrap();
        assert_eq!(out.len(), 2);
        let w = &out[0];
        assert_eq!(w["apiVersion"], "apis.kcp.io/v1alpha1");
        assert_eq!(w["kind"], "APIResourceSchema");
        assert_eq!(
            w["metadata"],
            json!({"name": "v250101.widgets.example.dev"})
        );
        let spec = &w["spec"];
        assert_eq!(
            spec.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["group", "names", "scope", "versions", "conversion"]
        );
        assert_eq!(spec["group"], "example.dev");
        assert_eq!(spec["scope"], "Namespaced");
        assert_eq!(spec["names"]["shortNames"], json!(["wd"]));
        assert_eq!(spec["conversion"], json!({"strategy": "None"}));
        let v = spec["versions"].as_array().unwrap();
        assert_eq!(v.len(), 2);
        // v1alpha1: deprecated, no subresources or columns.
        assert_eq!(
            v[0].as_object().unwrap().keys().collect::<Vec<_>>(),
            [
                "name",
                "served",
                "storage",
                "deprecated",
                "deprecationWarning",
                "schema"
            ]
        );
        assert_eq!(v[0]["schema"]["type"], "object");
        assert!(v[0]["schema"].get("openAPIV3Schema").is_none());
        assert_eq!(
            v[0]["schema"]["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        // v1: schema unwrapped, subresources, printer columns and selectable fields kept.
        assert_eq!(v[1]["name"], "v1");
        assert_eq!(v[1]["storage"], true);
        assert_eq!(
            v[1]["schema"]["properties"]["spec"]["properties"]["size"]["default"],
            3
        );
        assert_eq!(v[1]["subresources"]["status"], json!({}));
        let cols = v[1]["additionalPrinterColumns"].as_array().unwrap();
        assert_eq!(cols.len(), 2);
        assert_eq!(
            cols[0],
            json!({"name": "Size", "type": "integer", "jsonPath": ".spec.size"})
        );
        assert_eq!(
            v[1]["selectableFields"],
            json!([{"jsonPath": ".spec.mode"}])
        );

        let g = &out[1];
        assert_eq!(g["metadata"]["name"], "v250101.gadgets.other.example.dev");
        assert_eq!(g["spec"]["scope"], "Cluster");
        assert!(g["spec"].get("conversion").is_none());
    }

    #[test]
    fn yaml_and_json_output_round_trip() {
        let out = snapshot_all(CRDS, "p").unwrap();
        let yaml = render(&out, Format::Yaml).unwrap();
        assert!(yaml.starts_with("apiVersion: apis.kcp.io/v1alpha1\n"));
        assert_eq!(yaml.matches("\n---\n").count(), 1);
        assert_eq!(parse_documents(&yaml).unwrap(), out);
        // YAML 1.1 readers (kubectl's) must still read these enum values as strings.
        for s in ["on", "off", "yes", "1.0", "true"] {
            let s = format!("- \"{s}\"\n");
            assert!(yaml.contains(&s), "{s} not quoted in\n{yaml}");
        }

        let one = render(&out[..1], Format::Json).unwrap();
        let v: Value = serde_json::from_str(&one).unwrap();
        assert_eq!(v, out[0]);
        assert!(one.contains("\n    \"kind\": \"APIResourceSchema\""));
        let list: Value = serde_json::from_str(&render(&out, Format::Json).unwrap()).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn json_input() {
        let crd = serde_json::to_string(&parse_documents(CRDS).unwrap()[1]).unwrap();
        let out = snapshot_all(&crd, "x").unwrap();
        assert_eq!(out[0]["metadata"]["name"], "x.gadgets.other.example.dev");
        let list = format!(r#"{{"apiVersion":"v1","kind":"List","items":[{crd},{crd}]}}"#);
        assert_eq!(snapshot_all(&list, "x").unwrap().len(), 2);
    }

    #[test]
    fn errors() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";
        assert_eq!(
            snapshot_all(cm, "p").unwrap_err().to_string(),
            "document 1: expected an apiextensions.k8s.io/v1 CustomResourceDefinition, found a v1/ConfigMap"
        );
        let beta = "apiVersion: apiextensions.k8s.io/v1beta1\nkind: CustomResourceDefinition\n";
        assert!(
            snapshot_all(beta, "p")
                .unwrap_err()
                .to_string()
                .contains("convert it to apiextensions.k8s.io/v1 first")
        );
        assert_eq!(
            snapshot_all("", "p").unwrap_err().to_string(),
            "no CustomResourceDefinition found in the input"
        );
        assert_eq!(
            snapshot_all(CRDS, "").unwrap_err().to_string(),
            "--prefix must not be empty"
        );
        assert!(
            snapshot_all(CRDS, "Bad_Prefix")
                .unwrap_err()
                .to_string()
                .starts_with("invalid prefix \"Bad_Prefix\"")
        );
        let no_versions = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.b.c}\nspec: {group: b.c, names: {plural: a}, scope: Cluster}\n";
        assert_eq!(
            snapshot_all(no_versions, "p").unwrap_err().to_string(),
            "document 1: CustomResourceDefinition \"a.b.c\" has no spec.versions"
        );
        assert!(
            snapshot_all("a: [", "p")
                .unwrap_err()
                .to_string()
                .starts_with("error parsing YAML input")
        );
        assert!(Format::parse("wide").is_err());
        assert_eq!(Format::parse("json").unwrap(), Format::Json);
    }
}
