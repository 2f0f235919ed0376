//! What one pass sees: every object of the simulated kinds, listed once at the start of
//! the pass. Each component decides from this snapshot; what it writes is seen by the next
//! pass (the write's watch event triggers it), as kube's level-triggered controllers do.

use futures::try_join;
use kube::api::ApiResource;
use serde_json::Value;

use crate::Error;
use crate::client::{self, Cluster};

#[derive(Debug, Default)]
pub struct World {
    pub nodes: Vec<Value>,
    pub pods: Vec<Value>,
    pub deployments: Vec<Value>,
    pub replica_sets: Vec<Value>,
    pub stateful_sets: Vec<Value>,
    pub daemon_sets: Vec<Value>,
    pub jobs: Vec<Value>,
    pub services: Vec<Value>,
    pub endpoints: Vec<Value>,
    /// Empty when the server does not serve EndpointSlices.
    pub endpoint_slices: Vec<Value>,
}

/// A kind's objects; none when the server does not serve it (a kind kube always serves may
/// be missing from a minimal API server, and the rest of the simulation still works).
async fn list(c: &Cluster, ar: ApiResource) -> Result<Vec<Value>, Error> {
    match c.list(&ar).await {
        Ok(items) => Ok(items),
        Err(Error::Api(kube::Error::Api(e))) if e.code == 404 => Ok(vec![]),
        Err(e) => Err(e),
    }
}

impl World {
    pub async fn observe(c: &Cluster, slices: bool) -> Result<Self, Error> {
        let (nodes, pods, deployments, replica_sets, stateful_sets) = try_join!(
            list(c, client::nodes()),
            list(c, client::pods()),
            list(c, client::deployments()),
            list(c, client::replica_sets()),
            list(c, client::stateful_sets()),
        )?;
        let (daemon_sets, jobs, services, endpoints) = try_join!(
            list(c, client::daemon_sets()),
            list(c, client::jobs()),
            list(c, client::services()),
            list(c, client::endpoints()),
        )?;
        let endpoint_slices = if slices {
            list(c, client::endpoint_slices()).await?
        } else {
            vec![]
        };
        Ok(Self {
            nodes,
            pods,
            deployments,
            replica_sets,
            stateful_sets,
            daemon_sets,
            jobs,
            services,
            endpoints,
            endpoint_slices,
        })
    }
}
