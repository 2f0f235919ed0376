//! A kind's own rules: Kubernetes' Create/Update/Delete strategies
//! (`apiserver/pkg/registry/rest`). The generic registry calls them at fixed points of every
//! write; a kind overrides only what it needs, and the feature that owns the kind attaches its
//! strategy to the kind's [`ResourceDesc`](crate::catalog::ResourceDesc). The registry itself
//! never matches on a group or resource name.

use std::fmt::Debug;
use std::sync::Arc;

use kplex_apimachinery::names::{self, NameValidator};
use kplex_apimachinery::{ApiError, StatusCause, meta};
use serde_json::Value;

/// Every method has the generic behaviour as its default.
pub trait Strategy: Debug + Send + Sync + 'static {
    /// How `metadata.name` is validated.
    fn name_validator(&self) -> NameValidator {
        names::dns_subdomain_name
    }

    /// kube's defaulting functions: fields users leave out, filled on every create and
    /// update (kube runs them on every decode).
    fn apply_defaults(&self, _obj: &mut Value) {}

    /// Whether `/metrics` counts the kind's objects by `status.phase`
    /// (`kplex_objects_by_phase`): kinds whose phase an operator watches across every
    /// workspace (workspaces, logical clusters, bindings).
    fn counted_by_phase(&self) -> bool {
        false
    }

    /// Whether the kind's objects are part of one workspace's snapshot (`kubectl ws
    /// snapshot`, restore, fork). Not so for kinds that name other logical clusters (child
    /// Workspaces), the workspace's own identity (its LogicalCluster), or who runs what at
    /// the moment (Leases): a restore into another workspace must not copy them.
    fn in_workspace_snapshot(&self) -> bool {
        true
    }

    /// Whether a client's create may set `status` although the kind has a status
    /// subresource (kube's Nodes: a kubelet registers its node with its status).
    fn status_on_create(&self) -> bool {
        false
    }

    /// Defaults and derived fields of a new object (after the server's metadata, before
    /// mutating admission and the schema).
    fn prepare_create(&self, _obj: &mut Value) -> Result<(), ApiError> {
        Ok(())
    }

    /// Defaults and derived fields on every update.
    fn prepare_update(&self, _old: &Value, _obj: &mut Value) -> Result<(), ApiError> {
        Ok(())
    }

    /// Checks that answer with an error of their own, before field validation (an update's
    /// immutable fields, for instance). `subresource`: the endpoint written through (`None`
    /// for the main resource); the server's own writes name theirs too (a pod's `binding`).
    fn check_update(
        &self,
        _old: &Value,
        _obj: &Value,
        _subresource: Option<&str>,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// The kind's field validation beyond its schema and ObjectMeta's rules.
    fn validate(&self, _obj: &Value, _old: Option<&Value>) -> Vec<StatusCause> {
        Vec::new()
    }

    /// Reasons beyond a changed spec to bump `metadata.generation` on an update (a
    /// Deployment's annotations, which its controller copies to ReplicaSets).
    fn bumps_generation(&self, _old: &Value, _new: &Value) -> bool {
        false
    }

    /// What a deletion that must wait (finalizers) changes besides deletionTimestamp.
    fn prepare_delete(&self, _obj: &mut Value) {}

    /// Whether nothing keeps the object any more (kinds may have finalizers beyond
    /// `metadata.finalizers`).
    fn finalizers_done(&self, obj: &Value) -> bool {
        meta::finalizers(obj).is_empty()
    }

    /// Subresources of the kind's own beyond `status` and `scale` (a namespace's
    /// `finalize`), written through [`Strategy::update_subresource`].
    fn subresources(&self) -> &'static [&'static str] {
        &[]
    }

    /// A write through a subresource of the kind's own beyond `status` (e.g. a namespace's
    /// `finalize`): the object to store, from the stored one and the client's. `None`: the
    /// kind has no such subresource.
    fn update_subresource(
        &self,
        _subresource: &str,
        _old: &Value,
        _new: Value,
    ) -> Option<Result<Value, ApiError>> {
        None
    }
}

/// The strategy of kinds with no rules of their own.
#[derive(Debug)]
pub struct Generic;

impl Strategy for Generic {}

pub fn generic() -> Arc<dyn Strategy> {
    Arc::new(Generic)
}
