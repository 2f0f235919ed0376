//! Admission: the plugins every API write passes through between the kind's strategy and
//! the store, in kube-apiserver's order — mutating plugins may change the object (then the
//! schema defaults and validates it), validating plugins may only refuse it. Features hand
//! the server their plugins (kcp's workspace and APIBinding admission, RBAC escalation,
//! webhooks); the registry knows none of them by name.
//!
//! Who asks travels with each write ([`WriteOptions::user`], [`DeleteOptions::user`]): an
//! explicit request context, so a plugin never has to guess. The server's own writes carry
//! no user; `system` writes (bookkeeping that must never be wedged by a tenant's webhook)
//! skip admission altogether.

use std::sync::Arc;

use async_trait::async_trait;
use kplex_apimachinery::{ApiError, UserInfo};
use serde_json::Value;

use super::{DeleteOptions, Registry, Scope, WriteOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    /// As AdmissionReview and RBAC name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

/// One write as admission sees it (kube's `admission.Attributes`).
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    pub scope: &'a Scope,
    /// The logical cluster written to (admission never sees wildcard writes).
    pub cluster: &'a str,
    pub operation: Operation,
    pub name: &'a str,
    /// "" for the main resource.
    pub subresource: &'a str,
    pub dry_run: bool,
    pub field_manager: Option<&'a str>,
    pub propagation_policy: Option<&'a str>,
    /// Who asks; `None`: the server itself (controllers, workspace bookkeeping).
    pub user: Option<&'a UserInfo>,
}

impl<'a> Attributes<'a> {
    /// The requester, if this is an API request creating an object (the server's own
    /// creations are trusted).
    pub fn api_create(&self) -> Option<&'a UserInfo> {
        self.user.filter(|_| self.operation == Operation::Create)
    }

    /// Whether this write is to `group`/`plural`.
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.scope.desc.group == group && self.scope.desc.plural == plural
    }
}

/// One admission plugin. Both stages default to allowing everything.
#[async_trait]
pub trait AdmissionPlugin: Send + Sync + 'static {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Mutating stage of a create or update: may change `obj`.
    async fn admit(
        &self,
        _attrs: &Attributes<'_>,
        _obj: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Validating stage: `obj` is the object to store (None for a delete), `old` the stored
    /// one (None for a create).
    async fn validate(
        &self,
        _attrs: &Attributes<'_>,
        _obj: Option<&Value>,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The plugins in order; assembled once at start from every feature's. Installed after
/// the registry was handed out ([`install`](Self::install)): the features that hold a
/// registry are built before their plugins are known, and their writes must pass the chain.
#[derive(Default)]
pub struct AdmissionChain {
    plugins: std::sync::OnceLock<Vec<Arc<dyn AdmissionPlugin>>>,
}

impl std::fmt::Debug for AdmissionChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins().iter().map(|p| p.name()))
            .finish()
    }
}

/// The chain was installed already.
#[derive(Debug, thiserror::Error)]
#[error("the admission chain is installed once")]
pub struct AlreadyInstalled;

impl AdmissionChain {
    pub fn new(plugins: Vec<Arc<dyn AdmissionPlugin>>) -> Self {
        Self {
            plugins: std::sync::OnceLock::from(plugins),
        }
    }

    /// Sets the plugins of a chain created empty; every clone of the registry sees them.
    pub fn install(&self, plugins: Vec<Arc<dyn AdmissionPlugin>>) -> Result<(), AlreadyInstalled> {
        self.plugins.set(plugins).map_err(|_| AlreadyInstalled)
    }

    fn plugins(&self) -> &[Arc<dyn AdmissionPlugin>] {
        self.plugins.get().map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.plugins().is_empty()
    }

    pub async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        for plugin in self.plugins() {
            plugin.admit(attrs, obj, old).await?;
        }
        Ok(())
    }

    pub async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        for plugin in self.plugins() {
            plugin.validate(attrs, obj, old).await?;
        }
        Ok(())
    }
}

fn write_attributes<'a>(
    scope: &'a Scope,
    operation: Operation,
    name: &'a str,
    opts: &'a WriteOptions,
) -> Option<Attributes<'a>> {
    if opts.system {
        return None;
    }
    Some(Attributes {
        scope,
        cluster: scope.cluster.as_deref()?,
        operation,
        name,
        subresource: opts.subresource.as_deref().unwrap_or(""),
        dry_run: opts.dry_run,
        field_manager: opts.field_manager.as_deref(),
        propagation_policy: None,
        user: opts.user.as_deref(),
    })
}

fn name_of(obj: &Value) -> &str {
    kplex_apimachinery::meta::name(obj).unwrap_or("")
}

impl Registry {
    /// The mutating stage of a create or update.
    pub(crate) async fn admit_mutating(
        &self,
        scope: &Scope,
        operation: Operation,
        opts: &WriteOptions,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let name = name_of(obj).to_string();
        let Some(attrs) = write_attributes(scope, operation, &name, opts) else {
            return Ok(());
        };
        self.admission.admit(&attrs, obj, old).await
    }

    /// The validating stage of a create or update.
    pub(crate) async fn admit_validating(
        &self,
        scope: &Scope,
        operation: Operation,
        opts: &WriteOptions,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let Some(attrs) = write_attributes(scope, operation, name_of(obj), opts) else {
            return Ok(());
        };
        self.admission.validate(&attrs, Some(obj), old).await
    }

    /// The validating stage of a delete of `old` (mutating a deletion is not a thing).
    pub(crate) async fn admit_delete(
        &self,
        scope: &Scope,
        opts: &DeleteOptions,
        old: &Value,
    ) -> Result<(), ApiError> {
        let Some(cluster) = scope.cluster.as_deref() else {
            return Ok(());
        };
        let attrs = Attributes {
            scope,
            cluster,
            operation: Operation::Delete,
            name: name_of(old),
            subresource: "",
            dry_run: opts.dry_run,
            field_manager: None,
            propagation_policy: opts.propagation_policy.as_deref(),
            user: opts.user.as_deref(),
        };
        self.admission.validate(&attrs, None, Some(old)).await
    }
}
