//! What placement hands the server (see `kplex_feature`): its kinds, the scheduling
//! controllers, the state-label admission and the syncer virtual workspace.

use std::sync::Arc;

use kplex_feature::{Context, Feature, Plugin};

use crate::admission::{LocationPermission, StateLabels};
use crate::scheduling::{Scheduling, Tenants, Workload};
use crate::syncer_view::SyncerView;

pub const PLUGIN: Plugin = Plugin {
    name: "workload",
    kinds: crate::resources,
    build,
};

fn build(ctx: &Context) -> Feature {
    let workload = Workload {
        registry: ctx.registry.clone(),
        served: ctx.served.clone(),
        base_url: ctx.base_url.clone(),
    };
    let tenants = Tenants::default();
    Feature {
        admission: vec![
            Arc::new(StateLabels {
                tenants: tenants.clone(),
                registry: ctx.registry.clone(),
                served: ctx.served.clone(),
            }),
            Arc::new(LocationPermission {
                served: ctx.served.clone(),
                authz: ctx.authz.clone(),
            }),
        ],
        virtual_workspaces: vec![Arc::new(SyncerView {
            registry: ctx.registry.clone(),
            served: ctx.served.clone(),
            authz: ctx.authz.clone(),
        })],
        controllers: vec![Arc::new(Scheduling::new(workload, tenants))],
        ..Default::default()
    }
}
