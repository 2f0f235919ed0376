//! What the built-in kinds hand the server (see `kplex_feature`): their kinds and their
//! controllers and kube's namespace lifecycle admission; the rest of their rules are the
//! kinds' strategies.

use std::sync::Arc;

use kplex_feature::{Context, Feature, Plugin};

use crate::controllers::{BuiltinWriters, Builtins};

pub const PLUGIN: Plugin = Plugin {
    name: "builtins",
    kinds: crate::all,
    build,
};

fn build(ctx: &Context) -> Feature {
    Feature {
        admission: vec![
            Arc::new(crate::admission::NamespaceLifecycle),
            Arc::new(crate::admission::CsrRequester),
        ],
        virtual_resources: vec![
            Arc::new(crate::pods::PodRequests {
                registry: ctx.registry.clone(),
                served: ctx.served.clone(),
            }),
            crate::component_status::ComponentStatuses::new(ctx.registry.clone()),
        ],
        controllers: {
            let builtins = Arc::new(Builtins::new(
                ctx.registry.clone(),
                ctx.served.clone(),
                ctx.legacy_tokens.clone(),
            ));
            vec![builtins.clone(), Arc::new(BuiltinWriters(builtins))]
        },
        ..Default::default()
    }
}
