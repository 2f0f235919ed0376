//! OpenAPI schemas of SyncTarget, Location and Placement, as kcp v0.11's API types describe
//! them. They drive validation, pruning, `kubectl explain` and the OpenAPI documents.

use kplex_tenancy::schemas::{conditions, s, strings};
use serde_json::{Value, json};

fn object(description: &str, spec: Value, status: Value) -> Value {
    json!({"type": "object", "description": description, "properties": {
        "apiVersion": s("APIVersion defines the versioned schema of this representation of an object."),
        "kind": s("Kind is a string value representing the REST resource this object represents."),
        "metadata": {"type": "object"},
        "spec": spec,
        "status": status,
    }})
}

fn label_selector(description: &str) -> Value {
    json!({"type": "object", "description": description, "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array", "items": {"type": "object", "required": ["key", "operator"], "properties": {
            "key": s("The label key."), "operator": s("In, NotIn, Exists or DoesNotExist."),
            "values": strings("The values (In, NotIn)."),
        }}},
    }})
}

fn group_resource(description: &str) -> Value {
    json!({"type": "object", "description": description, "required": ["resource"], "properties": {
        "group": s("The API group (empty for the core group)."),
        "version": s("The API version."),
        "resource": s("The resource (plural)."),
    }})
}

pub fn sync_target() -> Value {
    object(
        "SyncTarget describes a cluster that workloads are synced to: a physical or virtual cluster with a `kplex syncer` agent.",
        json!({"type": "object", "properties": {
            "unschedulable": {"type": "boolean", "description": "Unschedulable stops new placements onto the target (kubectl kplex workload cordon)."},
            "evictAfter": {"type": "string", "format": "date-time", "description": "EvictAfter moves every workload off the target after this time (kubectl kplex workload drain)."},
            "supportedAPIExports": {"type": "array", "description": "The APIExports whose resources the target runs.", "items": {"type": "object", "properties": {
                "path": s("The workspace path of the export."), "export": s("The export's name."),
            }}},
            "cells": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Labels of the cells the target belongs to."},
        }}),
        json!({"type": "object", "properties": {
            "allocatable": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "capacity": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "conditions": conditions(),
            "syncedResources": {"type": "array", "description": "The resources the syncer syncs.", "items": {"type": "object", "properties": {
                "group": s("The API group."), "resource": s("The resource."), "versions": strings("The versions."),
                "identityHash": s("The identity of a bound resource."), "state": s("Pending, Accepted or Incompatible."),
            }}},
            "lastSyncerHeartbeatTime": {"type": "string", "format": "date-time", "description": "When the syncer last reported."},
            "virtualWorkspaces": {"type": "array", "description": "Where the syncer reads and writes.", "items": {"type": "object", "properties": {
                "syncerURL": s("The syncer virtual workspace's URL."), "upsyncerURL": s("The upsyncer virtual workspace's URL."),
            }}},
        }}),
    )
}

pub fn location() -> Value {
    object(
        "Location is a set of SyncTargets in a compute workspace that Placements select.",
        json!({"type": "object", "required": ["resource"], "properties": {
            "resource": group_resource("The kind of instances: workload.kcp.io v1alpha1 synctargets."),
            "description": s("A human-readable description."),
            "availableSelectorLabels": {"type": "array", "items": {"type": "object", "required": ["key", "values"], "properties": {
                "key": s("A label key."), "values": strings("Its values."), "description": s("What it means."),
            }}},
            "instanceSelector": label_selector("Which SyncTargets belong to the location (empty: all)."),
        }}),
        json!({"type": "object", "properties": {
            "instances": {"type": "integer", "format": "int32", "description": "SyncTargets in the location."},
            "availableInstances": {"type": "integer", "format": "int32", "description": "Ready, schedulable SyncTargets in the location."},
        }}),
    )
}

pub fn placement() -> Value {
    object(
        "Placement puts the namespaces it selects onto a SyncTarget of a Location it selects.",
        json!({"type": "object", "properties": {
            "locationSelectors": {"type": "array", "description": "Locations to choose from (ORed; none: every location).", "items": label_selector("A location selector.")},
            "locationResource": group_resource("The kind of location instances."),
            "namespaceSelector": label_selector("The namespaces to place (empty: all; absent: none)."),
            "locationWorkspace": s("The workspace (path) of the locations; default: this workspace."),
        }}),
        json!({"type": "object", "properties": {
            "phase": s("Pending, Unbound or Bound."),
            "selectedLocation": {"type": "object", "properties": {
                "path": s("The location's workspace."), "locationName": s("The location."),
            }},
            "conditions": conditions(),
        }}),
    )
}
