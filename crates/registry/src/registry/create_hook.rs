//! Work a feature does around a create through the API (kube's generic registry
//! `BeginCreate` and its finish function): begun before the object is written, finished
//! after it was. kcp's workspace scheduling at creation is one: the POST claims the
//! Workspace before creating it, so the controller woken by the creation leaves it alone,
//! and schedules it before answering.

use async_trait::async_trait;
use serde_json::Value;

use super::{Scope, WriteOptions};

pub trait CreateHook: Send + Sync + 'static {
    /// Called before `obj` is created in `scope`; what it returns is finished once the
    /// create succeeded, and dropped unfinished if it failed.
    fn begin_create(
        &self,
        scope: &Scope,
        opts: &WriteOptions,
        obj: &Value,
    ) -> Option<Box<dyn FinishCreate>>;
}

#[async_trait]
pub trait FinishCreate: Send {
    /// The create succeeded: the object to answer with instead of the one created (`None`:
    /// the created one). A failure here is the feature's to log and retry elsewhere: the
    /// creation itself succeeded.
    async fn finish(self: Box<Self>) -> Option<Value>;
}
