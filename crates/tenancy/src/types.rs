//! WorkspaceTypes: references, the built-in types, resolution and the parent/child rules.

use std::collections::HashSet;
use std::sync::Arc;

use kplex_apimachinery::ApiError;
use serde_json::{Value, json};

use super::{TENANCY, VERSION};
use crate::ROOT_CLUSTER;
use crate::registry::{Registry, Scope};
use crate::served::Served;

/// `{name, path}`: a WorkspaceType named `name` in the workspace at `path`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TypeRef {
    pub name: String,
    pub path: String,
}

impl TypeRef {
    pub fn new(path: &str, name: &str) -> Self {
        Self {
            name: name.to_ascii_lowercase(),
            path: path.to_string(),
        }
    }

    /// The pseudo-type of the root workspace.
    pub fn root() -> Self {
        Self::new(ROOT_CLUSTER, "root")
    }

    pub fn universal() -> Self {
        Self::new(ROOT_CLUSTER, "universal")
    }

    /// `root:universal`: how kcp prints a type (and names its initializer).
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.path, self.name)
    }

    /// Parses `root:org:team` (path + name).
    pub fn parse_qualified(s: &str) -> Option<Self> {
        let (path, name) = s.rsplit_once(':')?;
        Some(Self::new(path, name))
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        let name = v.get("name")?.as_str().filter(|n| !n.is_empty())?;
        Some(Self::new(
            v.get("path").and_then(Value::as_str).unwrap_or(""),
            name,
        ))
    }

    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "path": self.path})
    }
}

fn reference(name: &str) -> Value {
    json!({"name": name, "path": ROOT_CLUSTER})
}

fn workspace_type(name: &str, spec: Value) -> Value {
    json!({"apiVersion": format!("{TENANCY}/{VERSION}"), "kind": "WorkspaceType", "metadata": {"name": name}, "spec": spec})
}

/// The types kcp ships in root (its `workspace-types` battery).
pub fn builtin_types() -> Vec<Value> {
    vec![
        workspace_type(
            "root",
            json!({"defaultChildWorkspaceType": reference("organization"), "limitAllowedParents": {"none": true}}),
        ),
        workspace_type("universal", json!({})),
        workspace_type(
            "organization",
            json!({
                "defaultChildWorkspaceType": reference("universal"),
                "limitAllowedParents": {"types": [reference("root")]},
            }),
        ),
        workspace_type(
            "team",
            json!({
                "defaultChildWorkspaceType": reference("universal"),
                "limitAllowedParents": {"types": [reference("organization")]},
            }),
        ),
    ]
}

/// The WorkspaceType object `r` names, if it exists.
pub async fn get(
    registry: &Registry,
    served: &Served,
    r: &TypeRef,
) -> Result<Option<Arc<Value>>, ApiError> {
    let Some(cluster) = served.resolve(&r.path) else {
        return Ok(None);
    };
    let Some(desc) = served.lookup(Some(&cluster), TENANCY, VERSION, "workspacetypes") else {
        return Ok(None);
    };
    let scope = Scope {
        cluster: Some(cluster),
        desc,
        namespace: None,
    };
    match registry.get_parsed(&scope, &r.name).await {
        Ok(obj) => Ok(Some(obj)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Finds a type named `name` for a workspace whose parent is at `parent_path`: the parent's
/// own types first, then each ancestor's, then root's.
pub async fn find(
    registry: &Registry,
    served: &Served,
    parent_path: &str,
    name: &str,
) -> Result<Option<TypeRef>, ApiError> {
    let mut path = parent_path.to_string();
    loop {
        let candidate = TypeRef::new(&path, name);
        if get(registry, served, &candidate).await?.is_some() {
            return Ok(Some(candidate));
        }
        match path.rsplit_once(':') {
            Some((parent, _)) => path = parent.to_string(),
            None if path != ROOT_CLUSTER => path = ROOT_CLUSTER.to_string(),
            None => return Ok(None),
        }
    }
}

/// A type plus everything it extends (transitively): what it "counts as".
async fn lineage(
    registry: &Registry,
    served: &Served,
    r: &TypeRef,
) -> Result<Vec<(TypeRef, Arc<Value>)>, ApiError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut todo = vec![r.clone()];
    while let Some(t) = todo.pop() {
        if !seen.insert(t.clone()) || seen.len() > 32 {
            continue;
        }
        let Some(obj) = get(registry, served, &t).await? else {
            return Err(ApiError::invalid(
                TENANCY,
                "Workspace",
                "",
                vec![kplex_apimachinery::StatusCause::invalid(
                    "spec.type",
                    kplex_apimachinery::status::BadValue::Str(&t.qualified()),
                    &format!("workspace type {} does not exist", t.qualified()),
                )],
            ));
        };
        for ext in obj
            .pointer("/spec/extend/with")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(e) = TypeRef::from_json(ext) {
                todo.push(e);
            }
        }
        out.push((t, obj));
    }
    Ok(out)
}

fn refs(v: Option<&Value>) -> Option<(bool, Vec<TypeRef>)> {
    let v = v?;
    let none = v.get("none").and_then(Value::as_bool).unwrap_or(false);
    let types = v
        .get("types")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(TypeRef::from_json)
        .collect();
    Some((none, types))
}

/// Checks that a workspace of type `child` may live in a workspace of type `parent`: both
/// sides' limits must allow it. Returns the child's initializers.
pub async fn admit_child(
    registry: &Registry,
    served: &Served,
    parent: &TypeRef,
    child: &TypeRef,
    workspace: &str,
) -> Result<Vec<String>, ApiError> {
    let child_lineage = lineage(registry, served, child).await?;
    let parent_lineage =
        if *parent == TypeRef::root() && get(registry, served, parent).await?.is_none() {
            vec![]
        } else {
            lineage(registry, served, parent).await?
        };
    let child_set: HashSet<&TypeRef> = child_lineage.iter().map(|(t, _)| t).collect();
    let parent_set: HashSet<&TypeRef> = parent_lineage.iter().map(|(t, _)| t).collect();
    let deny = |msg: String| {
        ApiError::invalid(
            TENANCY,
            "Workspace",
            workspace,
            vec![kplex_apimachinery::StatusCause::invalid(
                "spec.type",
                kplex_apimachinery::status::BadValue::Str(&child.qualified()),
                &msg,
            )],
        )
    };
    for (t, obj) in &parent_lineage {
        if let Some((none, types)) = refs(obj.pointer("/spec/limitAllowedChildren")) {
            if none {
                return Err(deny(format!(
                    "workspace type {} does not allow child workspaces",
                    t.qualified()
                )));
            }
            if !types.is_empty() && !types.iter().any(|t| child_set.contains(t)) {
                let allowed: Vec<String> = types.iter().map(TypeRef::qualified).collect();
                return Err(deny(format!(
                    "workspace type {} only allows [{}] child workspaces",
                    t.qualified(),
                    allowed.join(" ")
                )));
            }
        }
    }
    for (t, obj) in &child_lineage {
        if let Some((none, types)) = refs(obj.pointer("/spec/limitAllowedParents")) {
            if none {
                return Err(deny(format!(
                    "workspace type {} cannot be the type of a child workspace",
                    t.qualified()
                )));
            }
            if !types.is_empty() && !types.iter().any(|t| parent_set.contains(t)) {
                let allowed: Vec<String> = types.iter().map(TypeRef::qualified).collect();
                return Err(deny(format!(
                    "workspace type {} only allows [{}] parent workspaces",
                    t.qualified(),
                    allowed.join(" ")
                )));
            }
        }
    }
    Ok(child_lineage
        .iter()
        .filter(|(_, obj)| obj.pointer("/spec/initializer").and_then(Value::as_bool) == Some(true))
        .map(|(t, _)| t.qualified())
        .collect())
}

/// The terminators of a type and what it extends.
pub async fn terminators(
    registry: &Registry,
    served: &Served,
    t: &TypeRef,
) -> Result<Vec<String>, ApiError> {
    Ok(lineage(registry, served, t)
        .await?
        .iter()
        .filter(|(_, obj)| obj.pointer("/spec/terminator").and_then(Value::as_bool) == Some(true))
        .map(|(t, _)| t.qualified())
        .collect())
}

/// The APIExports (path, name) a type and what it extends bind in new workspaces.
pub async fn default_api_bindings(
    registry: &Registry,
    served: &Served,
    t: &TypeRef,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for (_, obj) in lineage(registry, served, t).await? {
        for b in obj
            .pointer("/spec/defaultAPIBindings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = |f: &str| b.get(f).and_then(Value::as_str).unwrap_or("").to_string();
            let entry = (s("path"), s("export"));
            if !entry.1.is_empty() && !out.contains(&entry) {
                out.push(entry);
            }
        }
    }
    Ok(out)
}

/// The parent type's default for children, or universal.
pub async fn default_child(
    registry: &Registry,
    served: &Served,
    parent: &TypeRef,
) -> Result<TypeRef, ApiError> {
    let obj = get(registry, served, parent).await?;
    Ok(obj
        .as_ref()
        .and_then(|o| o.pointer("/spec/defaultChildWorkspaceType"))
        .and_then(TypeRef::from_json)
        .map(|mut t| {
            if t.path.is_empty() {
                t.path = ROOT_CLUSTER.into();
            }
            t
        })
        .unwrap_or_else(TypeRef::universal))
}
