//! ResourceQuota usage: `status.used` recounted per namespace, on every quota change and
//! every few seconds (object counts change with every create and delete, which the
//! controllers do not follow one by one).

use std::time::Duration;

use kplex_apimachinery::ApiError;
use kplex_registry::registry::ListOptions;

use super::{Builtins, Work};

/// How often ResourceQuota usage is recounted.
const RESYNC: Duration = Duration::from_secs(5);

impl Builtins {
    /// Enqueues every namespace that holds quotas, every few seconds.
    pub(super) async fn resync_quotas(self: std::sync::Arc<Self>) {
        let Some(quota) = self.registry.quota.clone() else {
            return;
        };
        loop {
            tokio::time::sleep(RESYNC).await;
            for (cluster, namespace) in quota.quota_namespaces() {
                self.enqueue(Work::Quotas { cluster, namespace });
            }
        }
    }

    /// Recounts `status.used` of the ResourceQuotas in one namespace.
    pub(super) async fn reconcile_quotas(
        &self,
        cluster: &str,
        namespace: &str,
    ) -> Result<bool, ApiError> {
        let (Some(quota), Some(desc)) = (
            &self.registry.quota,
            self.desc(cluster, "", "v1", "resourcequotas"),
        ) else {
            return Ok(true);
        };
        let scope = self.scope(cluster, desc, Some(namespace));
        let list = self.registry.list(&scope, &ListOptions::default()).await?;
        for item in &list.items {
            let obj = item.decode()?;
            let status = quota
                .usage(self.registry.store.as_ref(), cluster, namespace, &obj)
                .await?;
            self.registry.set_status(&scope, &obj, status).await?;
        }
        Ok(true)
    }
}
