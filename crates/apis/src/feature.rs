//! What APIs as a service hands the server (see `kplex_feature`).

use std::sync::Arc;

use kplex_feature::{Context, Feature, Plugin};

use crate::Apis;
use crate::admission::ApisAdmission;
use crate::controllers::{ApisControllers, ApisWriters};
use crate::policy::MaximalPermissionPolicy;
use crate::virtual_workspace::ExportVirtualWorkspace;

pub const PLUGIN: Plugin = Plugin {
    name: "apis",
    kinds: crate::resources,
    build,
};

fn build(ctx: &Context) -> Feature {
    let apis = Apis {
        registry: ctx.registry.clone(),
        served: ctx.served.clone(),
        base_url: ctx.base_url.clone(),
        exports: Arc::default(),
        leading: Arc::default(),
        skipped: Arc::default(),
    };
    let controllers = Arc::new(ApisControllers::new(apis.clone()));
    Feature {
        admission: vec![Arc::new(ApisAdmission {
            registry: ctx.registry.clone(),
            served: ctx.served.clone(),
            authz: ctx.authz.clone(),
        })],
        virtual_workspaces: vec![Arc::new(ExportVirtualWorkspace {
            apis: apis.clone(),
            authz: ctx.authz.clone(),
        })],
        authorization_hooks: vec![Arc::new(MaximalPermissionPolicy(ctx.authz.clone()))],
        controllers: vec![controllers.clone(), Arc::new(ApisWriters(controllers))],
        ..Default::default()
    }
}
