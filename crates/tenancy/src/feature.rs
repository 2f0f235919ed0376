//! What tenancy hands the server (see `kplex_feature`).

use std::sync::Arc;

use kplex_feature::{Context, Feature, Plugin};

use crate::admission::TenancyAdmission;
use crate::controllers::Lifecycle;
use crate::home::{HomeWorkspace, HomeWorkspaceAccess};
use crate::initializing::InitializingWorkspaces;
use crate::lifecycle::{ScheduleAtCreation, Tenancy};
use crate::lookup::StoreLookup;

pub const PLUGIN: Plugin = Plugin {
    name: "tenancy",
    kinds: crate::resources,
    build,
};

fn build(ctx: &Context) -> Feature {
    let tenancy = Tenancy {
        registry: ctx.registry.clone(),
        served: ctx.served.clone(),
        base_url: ctx.base_url.clone(),
        scheduling: Default::default(),
    };
    Feature {
        admission: vec![Arc::new(TenancyAdmission {
            registry: ctx.registry.clone(),
            served: ctx.served.clone(),
            authz: ctx.authz.clone(),
        })],
        virtual_resources: vec![Arc::new(HomeWorkspace(tenancy.clone()))],
        virtual_workspaces: vec![Arc::new(InitializingWorkspaces(tenancy.clone()))],
        authorization_hooks: vec![Arc::new(HomeWorkspaceAccess)],
        create_hooks: vec![Arc::new(ScheduleAtCreation(tenancy.clone()))],
        cluster_lookups: vec![Arc::new(StoreLookup(tenancy.clone()))],
        controllers: vec![Arc::new(Lifecycle::new(tenancy))],
    }
}
