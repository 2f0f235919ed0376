//! OpenAPI schemas of the `apis.kcp.io` kinds, as kcp's API types describe them (kplex's own
//! description of that public API). They drive pruning, defaulting, `kubectl explain` and the
//! OpenAPI documents.

use serde_json::{Value, json};

use crate::tenancy::schemas::{conditions, s, strings};

fn free(description: &str) -> Value {
    json!({"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": true})
}

fn object(description: &str, spec: Value, status: Value) -> Value {
    json!({"type": "object", "description": description, "properties": {
        "apiVersion": s("APIVersion defines the versioned schema of this representation of an object."),
        "kind": s("Kind is a string value representing the REST resource this object represents."),
        "metadata": {"type": "object"},
        "spec": spec,
        "status": status,
    }})
}

fn export_reference() -> Value {
    json!({"type": "object", "description": "A reference to an APIExport by workspace path and name.", "required": ["name"], "properties": {
        "path": s("path is a logical cluster path where the APIExport is defined. If empty, the APIExport is in the same workspace."),
        "name": s("name is the name of the APIExport."),
    }})
}

pub fn api_resource_schema() -> Value {
    let version = json!({"type": "object", "required": ["name", "served", "storage", "schema"], "properties": {
        "name": s("name is the version name, e.g. v1, v2beta1."),
        "served": {"type": "boolean", "description": "served is whether this version is served via REST APIs."},
        "storage": {"type": "boolean", "description": "storage indicates this version is the one objects are persisted in. Exactly one version has storage=true."},
        "deprecated": {"type": "boolean"},
        "deprecationWarning": s("deprecationWarning overrides the default warning returned to API clients."),
        "schema": free("schema describes the structural schema used for validation, pruning, and defaulting of this version (an OpenAPI v3 schema)."),
        "subresources": free("subresources specify what subresources this version of the defined custom resource have."),
        "additionalPrinterColumns": {"type": "array", "items": free("A printer column (name, type, jsonPath, …).")},
        "selectableFields": {"type": "array", "items": free("A selectable field (jsonPath).")},
    }});
    object(
        "APIResourceSchema describes a resource, identified by (group, version, resource, schema). Its spec is immutable.",
        json!({"type": "object", "required": ["group", "names", "scope", "versions"], "properties": {
            "group": s("group is the API group of the defined custom resource."),
            "names": {"type": "object", "description": "names specify the resource and kind names.", "required": ["plural", "kind"], "properties": {
                "plural": s("plural is the plural name of the resource."), "singular": s("singular is the singular name."),
                "kind": s("kind is the serialized kind of the resource."), "listKind": s("listKind is the serialized kind of the list."),
                "shortNames": strings("shortNames are short names for the resource."), "categories": strings("categories the resource belongs to."),
            }},
            "scope": s("scope indicates whether the defined custom resource is cluster- or namespace-scoped: Cluster or Namespaced."),
            "nameValidation": s("nameValidation can be used to configure name validation for bound APIs: DNS1123Subdomain or PathSegmentName."),
            "versions": {"type": "array", "items": version},
            "conversion": free("conversion defines conversion settings for the defined custom resource."),
        }}),
        json!({"type": "object"}),
    )
}

fn claim_v1() -> Value {
    json!({"type": "object", "required": ["resource"], "properties": {
        "group": s("group is the name of an API group. For core groups this is the empty string."),
        "resource": s("resource is the name of the resource."),
        "identityHash": s("identityHash is the identity for a given APIExport that the APIResourceSchema belongs to."),
        "all": {"type": "boolean", "description": "all claims all resources for the given group/resource."},
        "resourceSelector": {"type": "array", "items": {"type": "object", "properties": {"name": s("name of an object."), "namespace": s("namespace of an object.")}}},
        "state": s("state indicates if the claim is Accepted or Rejected."),
    }})
}

fn claim_v2() -> Value {
    json!({"type": "object", "required": ["resource", "verbs"], "properties": {
        "group": s("group is the name of an API group. For core groups this is the empty string."),
        "resource": s("resource is the name of the resource."),
        "identityHash": s("identityHash is the identity for a given APIExport that the APIResourceSchema belongs to."),
        "verbs": strings("verbs is a list of supported API operation types (this includes but is not limited to get, list, watch, create, update, patch, delete, deletecollection, and proxy). \"*\" means all."),
        "selector": {"type": "object", "description": "selector limits the objects the claim applies to.", "properties": {
            "matchAll": {"type": "boolean", "description": "matchAll selects all objects."},
            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
            "matchExpressions": {"type": "array", "items": free("A label selector requirement.")},
        }},
        "state": s("state indicates if the claim is Accepted or Rejected."),
    }})
}

fn export_common(resources: (&str, Value), claim: Value) -> Value {
    let mut spec = json!({"type": "object", "properties": {
        "identity": {"type": "object", "description": "identity points to a secret that contains the API identity in the 'key' file. The API identity determines an unique etcd prefix for objects stored via this APIExport.", "properties": {
            "secretRef": {"type": "object", "properties": {"namespace": s("namespace of the secret."), "name": s("name of the secret.")}}}},
        "maximalPermissionPolicy": {"type": "object", "description": "maximalPermissionPolicy will allow for a service provider to set an upper bound on what is allowed for a consumer of this API.", "properties": {
            "local": {"type": "object", "description": "local is the policy that is defined in the same workspace as the API Export."}}},
        "permissionClaims": {"type": "array", "description": "permissionClaims make resources available in the APIExport's virtual workspace that are not part of the actual APIExport resources.", "items": claim},
    }});
    spec["properties"][resources.0] = resources.1;
    object(
        "APIExport registers an API and implementation to allow consumption by others through APIBindings.",
        spec,
        json!({"type": "object", "properties": {
            "identityHash": s("identityHash is the hash of the API identity that this APIExport represents."),
            "conditions": conditions(),
            "virtualWorkspaces": {"type": "array", "items": {"type": "object", "properties": {"url": s("url is the URL of the virtual workspace.")}}},
        }}),
    )
}

pub fn api_export_v1() -> Value {
    export_common(
        (
            "latestResourceSchemas",
            strings(
                "latestResourceSchemas records the latest APIResourceSchemas that are exposed with this APIExport.",
            ),
        ),
        claim_v1(),
    )
}

pub fn api_export_v2() -> Value {
    export_common(
        (
            "resources",
            json!({"type": "array", "description": "resources are the resources exported by this APIExport.", "items": {"type": "object", "required": ["name", "group", "schema"], "properties": {
                "name": s("name is the plural name of the resource."),
                "group": s("group is the API group of the resource."),
                "schema": s("schema is the name of the APIResourceSchema (in the APIExport's workspace)."),
                "storage": free("storage defines how objects of this resource are stored (crd: {})."),
            }}}),
        ),
        claim_v2(),
    )
}

pub fn api_binding(claim: Value) -> Value {
    object(
        "APIBinding enables a set of resources and their behaviour through an external service provider in this workspace.",
        json!({"type": "object", "required": ["reference"], "properties": {
            "reference": {"type": "object", "description": "reference uniquely identifies an API to bind to. Immutable.", "properties": {"export": export_reference()}},
            "permissionClaims": {"type": "array", "description": "permissionClaims records decisions about permission claims requested by the API service provider.", "items": claim.clone()},
        }}),
        json!({"type": "object", "properties": {
            "apiExportClusterName": s("APIExportClusterName records the name (not path) of the logical cluster that contains the APIExport."),
            "boundResources": {"type": "array", "items": {"type": "object", "properties": {
                "group": s("group is the group of the bound API."), "resource": s("resource is the resource of the bound API."),
                "schema": {"type": "object", "properties": {"name": s("name is the bound APIResourceSchema name."), "UID": s("UID is the UID of the bound APIResourceSchema."), "identityHash": s("identityHash is the hash of the API identity.")}},
                "storageVersions": strings("storageVersions lists all versions of a resource that were ever persisted."),
            }}},
            "phase": s("phase is the current phase of the APIBinding: Binding or Bound."),
            "conditions": conditions(),
            "appliedPermissionClaims": {"type": "array", "items": claim.clone()},
            "exportPermissionClaims": {"type": "array", "items": claim},
        }}),
    )
}

pub fn api_binding_v1() -> Value {
    api_binding(claim_v1())
}

pub fn api_binding_v2() -> Value {
    api_binding(claim_v2())
}

pub fn endpoint_slice() -> Value {
    object(
        "APIExportEndpointSlice is a sink for the endpoints of an APIExport: the URLs of the virtual workspaces that serve its content.",
        json!({"type": "object", "required": ["export"], "properties": {
            "export": export_reference(),
            "partition": s("partition (optional) points to a partition that is used for filtering the endpoints."),
        }}),
        json!({"type": "object", "properties": {
            "conditions": conditions(),
            "endpoints": {"type": "array", "items": {"type": "object", "required": ["url"], "properties": {"url": s("url of the endpoint.")}}},
            "shardSelector": s("shardSelector is the selector of the shards the endpoints are on."),
        }}),
    )
}
