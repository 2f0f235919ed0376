//! The plugin interface: what a feature (built-in kinds, tenancy, APIs as a service, next
//! workload placement) hands the server.
//!
//! A feature is a crate with one [`Plugin`]: its kinds, known before anything runs (every
//! logical cluster serves them), and a constructor that builds its [`Feature`] from the
//! server's shared parts ([`Context`]). The server lists the plugins in one place and wires
//! each part where it belongs: kinds into the served index, admission plugins into the
//! registry's chain (in the order the plugins are listed, before the webhooks), virtual
//! resources and workspaces and hooks into the request chain, and controllers onto the one
//! store watch. Adding a feature is a new crate and one line in that list.

use std::sync::Arc;

use kplex_auth::authz::{AuthorizationHook, Authorizer};
use kplex_auth::serviceaccount::LegacyTokens;
use kplex_registry::catalog::ResourceDesc;
use kplex_registry::clusters::ClusterLookup;
use kplex_registry::registry::Registry;
use kplex_registry::registry::admission::AdmissionPlugin;
use kplex_registry::registry::create_hook::CreateHook;
use kplex_registry::served::Served;
use kplex_registry::virtual_resource::VirtualResource;
use kplex_registry::virtual_workspace::VirtualWorkspace;
use kplex_runtime::ControllerSet;

/// A feature as the server lists it.
#[derive(Clone, Copy)]
pub struct Plugin {
    pub name: &'static str,
    /// The kinds every logical cluster serves because of this feature.
    pub kinds: fn() -> Vec<ResourceDesc>,
    /// Builds the feature's parts.
    pub build: fn(&Context) -> Feature,
}

/// The server's shared parts a feature builds on.
#[derive(Clone)]
pub struct Context {
    /// The generic registry (its admission chain is every feature's plugins).
    pub registry: Registry,
    /// What each logical cluster serves.
    pub served: Arc<Served>,
    /// RBAC of the workspaces.
    pub authz: Authorizer,
    /// `https://host:port`: the base of the URLs the server writes into objects.
    pub base_url: String,
    /// Signs legacy service-account token Secrets (`None`: none are issued).
    pub legacy_tokens: Option<Arc<LegacyTokens>>,
}

/// A feature's parts; every list may be empty.
#[derive(Default)]
pub struct Feature {
    pub admission: Vec<Arc<dyn AdmissionPlugin>>,
    /// Resources answered without being stored (reviews, `workspaces/~`).
    pub virtual_resources: Vec<Arc<dyn VirtualResource>>,
    /// Views under `/services/<name>/…`.
    pub virtual_workspaces: Vec<Arc<dyn VirtualWorkspace>>,
    pub authorization_hooks: Vec<Arc<dyn AuthorizationHook>>,
    pub create_hooks: Vec<Arc<dyn CreateHook>>,
    pub controllers: Vec<Arc<dyn ControllerSet>>,
    /// Where a logical cluster missing from the index is looked for before a 404.
    pub cluster_lookups: Vec<Arc<dyn ClusterLookup>>,
}

impl Feature {
    /// Appends `other`'s parts after this one's.
    pub fn merge(mut self, other: Feature) -> Feature {
        self.admission.extend(other.admission);
        self.virtual_resources.extend(other.virtual_resources);
        self.virtual_workspaces.extend(other.virtual_workspaces);
        self.authorization_hooks.extend(other.authorization_hooks);
        self.create_hooks.extend(other.create_hooks);
        self.controllers.extend(other.controllers);
        self.cluster_lookups.extend(other.cluster_lookups);
        self
    }
}
