//! The APIExport virtual workspace as the server mounts it,
//! `/services/apiexport/<export-cluster|path>/<export>/clusters/{*|<consumer>}/…`: access by
//! `apiexports/content` in the export's workspace (its own authorization: the consumers'
//! RBAC is not asked), discovery limited to the view's resources, and each request served
//! as the view plans it (see `view.rs`).

use async_trait::async_trait;
use kplex_apimachinery::ApiError;
use kplex_registry::virtual_workspace::{
    Authorization, Decision, Serve, VirtualWorkspace, VirtualWorkspaceRequest,
};

use super::Apis;
use super::view::{ExportView, ViewRequest};
use crate::authz::Authorizer;

pub struct ExportVirtualWorkspace {
    pub apis: Apis,
    pub authz: Authorizer,
}

#[async_trait]
impl VirtualWorkspace for ExportVirtualWorkspace {
    fn name(&self) -> &str {
        "apiexport"
    }

    fn accepts(&self, prefix: &[String]) -> bool {
        prefix.len() == 2
    }

    fn authorization(&self) -> Authorization {
        Authorization::Own
    }

    async fn serve(&self, req: &VirtualWorkspaceRequest<'_>) -> Result<Decision, ApiError> {
        let [export_cluster, export] = req.prefix else {
            return Err(ApiError::no_such_path());
        };
        let (registry, served) = (&self.apis.registry, &self.apis.served);
        let view = ExportView::load(registry, served, export_cluster, export).await?;
        let verb = req.resource.map_or("get", |r| r.verb);
        self.authz
            .authorize(
                Some(&view.export_cluster),
                &view.content_request(req.user, verb),
            )
            .await?;
        let Some(r) = req.resource else {
            return Ok(Decision::Serve(Serve {
                discovery: Some(view.resources(served)),
                ..Serve::default()
            }));
        };
        let view_request = ViewRequest {
            group: r.group,
            version: r.version,
            resource: r.resource,
            verb: r.verb,
            name: r.name,
        };
        let plan = view.plan(served, &self.apis.exports, req.cluster, &view_request)?;
        Ok(Decision::Serve(Serve {
            desc: Some(plan.desc),
            predicate: plan.predicate,
            trigger: None,
            labels_on_create: plan.labels,
            discovery: None,
        }))
    }
}
