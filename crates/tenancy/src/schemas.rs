//! OpenAPI schemas of the tenancy.kcp.io and core.kcp.io kinds, as kcp's API types describe
//! them (kplex's own description of that public API). They drive validation, pruning,
//! `kubectl explain` and the OpenAPI documents, as a CRD's schema would.

use serde_json::{Value, json};

pub fn s(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn type_reference(description: &str) -> Value {
    json!({"type": "object", "description": description, "required": ["name"], "properties": {
        "name": s("name is the name of the WorkspaceType (lower-case)."),
        "path": s("path is an absolute reference to the workspace that owns this type, e.g. root:org."),
    }})
}

/// `status.conditions` as kcp's kinds have it.
pub fn conditions() -> Value {
    json!({"type": "array", "description": "Current state of the object.", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
    "items": {"type": "object", "required": ["type", "status"], "properties": {
        "type": s("Type of condition."), "status": s("True, False or Unknown."),
        "severity": s("Severity of a False condition."),
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "reason": s("Machine-readable reason."), "message": s("Human-readable message."),
    }}})
}

pub fn strings(description: &str) -> Value {
    json!({"type": "array", "description": description, "items": {"type": "string"}})
}

pub fn workspace() -> Value {
    json!({"type": "object", "description": "Workspace defines a generic Kubernetes-cluster-like endpoint, with standard Kubernetes discovery, OpenAPI and resource API endpoints. A workspace is a logical cluster with its own objects, CRDs and RBAC.",
    "properties": {
        "apiVersion": s("APIVersion defines the versioned schema of this representation of an object."),
        "kind": s("Kind is a string value representing the REST resource this object represents."),
        "metadata": {"type": "object"},
        "spec": {"type": "object", "description": "WorkspaceSpec holds the desired state of the Workspace.", "properties": {
            "type": type_reference("type defines properties of the workspace both on creation (e.g. initial resources and initially installed APIs) and during runtime (e.g. permissions). If no type is provided, the parent's default child type is used. Immutable."),
            "location": {"type": "object", "description": "location constrains where this workspace can be scheduled to.", "properties": {
                "selector": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "description": "selector is a label selector that filters workspace scheduling targets."}}},
            "cluster": s("cluster is the name of the logical cluster this workspace is stored under. Set by the system."),
            "URL": s("URL is the address under which the Kubernetes-cluster-like endpoint can be found. Set by the system."),
            "mount": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "description": "mount is a reference to an object implementing a mounting feature."},
        }},
        "status": {"type": "object", "description": "WorkspaceStatus communicates the observed state of the Workspace.", "properties": {
            "phase": s("Phase of the workspace (Scheduling, Initializing, Ready, Terminating)."),
            "conditions": conditions(),
            "initializers": strings("initializers must be cleared by a controller before the workspace is ready."),
            "terminators": strings("terminators must be cleared by a controller before the workspace is deleted."),
        }},
    }})
}

fn type_list(description: &str) -> Value {
    json!({"type": "object", "description": description, "properties": {
        "none": {"type": "boolean", "description": "none means that no type matches."},
        "types": {"type": "array", "items": type_reference("A WorkspaceType.")},
    }})
}

pub fn workspace_type() -> Value {
    json!({"type": "object", "description": "WorkspaceType specifies behaviour of workspaces of this type.",
    "properties": {
        "apiVersion": s("APIVersion defines the versioned schema of this representation of an object."),
        "kind": s("Kind is a string value representing the REST resource this object represents."),
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "initializer": {"type": "boolean", "description": "initializer determines if this WorkspaceType has an associated initializing controller. Workspaces of this type stay Initializing until it removes itself."},
            "terminator": {"type": "boolean", "description": "terminator determines if this WorkspaceType has an associated terminating controller."},
            "extend": {"type": "object", "description": "extend is a list of other WorkspaceTypes whose initializers and limitAllowedChildren and limitAllowedParents this WorkspaceType is inheriting.", "properties": {
                "with": {"type": "array", "items": type_reference("A WorkspaceType to extend.")}}},
            "additionalWorkspaceLabels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Labels added to workspaces of this type."},
            "defaultChildWorkspaceType": type_reference("defaultChildWorkspaceType is the type used for child workspaces that do not name one."),
            "limitAllowedChildren": type_list("limitAllowedChildren specifies constraints for sub-workspaces created in workspaces of this type."),
            "limitAllowedParents": type_list("limitAllowedParents specifies constraints for the parent workspace that workspaces of this type are created in."),
            "defaultAPIBindings": {"type": "array", "description": "defaultAPIBindings are the APIs to bind during initialization of workspaces of this type.", "items": {"type": "object", "properties": {
                "path": s("path of the workspace holding the APIExport."), "export": s("name of the APIExport.")}}},
            "defaultAPIBindingLifecycle": s("InitializeOnly or Maintain."),
        }},
        "status": {"type": "object", "properties": {
            "conditions": conditions(),
            "virtualWorkspaces": {"type": "array", "items": {"type": "object", "properties": {"url": s("URL of the virtual workspace."), "type": s("initializing or terminating.")}}},
        }},
    }})
}

pub fn logical_cluster() -> Value {
    json!({"type": "object", "description": "LogicalCluster describes the current logical cluster. It is a singleton named \"cluster\"; its existence defines the logical cluster.",
    "properties": {
        "apiVersion": s("APIVersion defines the versioned schema of this representation of an object."),
        "kind": s("Kind is a string value representing the REST resource this object represents."),
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "directlyDeletable": {"type": "boolean", "description": "DirectlyDeletable indicates that this logical cluster can be directly deleted by the user."},
            "owner": {"type": "object", "description": "owner is the object (usually a Workspace) whose deletion deletes this logical cluster.", "properties": {
                "apiVersion": s("API version of the owner."), "resource": s("resource of the owner."), "name": s("name of the owner."),
                "namespace": s("namespace of the owner."), "cluster": s("logical cluster of the owner."), "uid": s("UID of the owner.")}},
            "initializers": strings("initializers are set on creation by the system and copied to status."),
            "terminators": strings("terminators are set on creation by the system and copied to status."),
        }},
        "status": {"type": "object", "properties": {
            "URL": s("URL is the address under which the logical cluster can be reached."),
            "phase": s("Phase of the logical cluster (Scheduling, Initializing, Ready, Terminating, Deleting)."),
            "conditions": conditions(),
            "initializers": strings("initializers still to clear before the logical cluster is Ready."),
            "terminators": strings("terminators still to clear before the logical cluster is deleted."),
        }},
    }})
}
