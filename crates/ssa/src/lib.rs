//! Server-side apply and field management for Kubernetes objects held as
//! [`serde_json::Value`], with the semantics of sigs.k8s.io/structured-merge-diff
//! and k8s.io/apimachinery's `managedfields`.
//!
//! - [`FieldSet`]: sets of field paths, the FieldsV1 format, kube's path printing.
//! - [`ManagedFieldsEntry`], [`decode_managed_fields`], [`encode_managed_fields`].
//! - [`apply`]: server-side apply with conflicts, force and pruning.
//! - [`update`]: ownership tracking for create/update/patch.
//! - [`TypeInfo`]: list/map semantics, implemented for [`kplex_schema::Schema`]
//!   and [`Deduced`] (schema-less data).
//!
//! Pure computation: no I/O.

mod managed;
mod ops;
mod path;
mod typeinfo;
mod walk;

use serde_json::Value;

pub use managed::{
    ManagedFieldsEntry, Operation, decode_entries, decode_managed_fields, encode_managed_fields,
};
pub use ops::{ApplyResult, LAST_APPLIED_ANNOTATION, apply, update};
pub use path::{FieldSet, Path, PathElement};
pub use typeinfo::{DEDUCED, Deduced, ListType, MapType, TypeInfo};

/// Bound on object and field set nesting, so hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 128;

/// Errors decoding field sets or walking objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Malformed FieldsV1.
    #[error("invalid FieldsV1: {0}")]
    FieldsV1(String),
    /// Malformed `metadata.managedFields`.
    #[error("invalid managedFields: {0}")]
    ManagedFields(String),
    /// The object does not fit its schema's list semantics (missing or duplicate keys...).
    #[error("{0}")]
    Invalid(String),
    /// Nesting beyond [`MAX_DEPTH`].
    #[error("nesting exceeds the maximum depth of {MAX_DEPTH}")]
    TooDeep,
}

/// One apply conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager that owns the field.
    pub manager: String,
    /// The field, as kube prints it (`.spec.replicas`).
    pub field: String,
    /// Kube's status cause message: `conflict with "mgr" using apps/v1`.
    pub message: String,
}

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (HTTP 409).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// Bad applied configuration or live object (HTTP 400 / 500).
    #[error("{0}")]
    Invalid(String),
}

impl From<Error> for ApplyError {
    fn from(e: Error) -> Self {
        ApplyError::Invalid(e.to_string())
    }
}

/// Kube's message for apply conflicts (apimachinery's `getConflictMessage`).
/// Conflicts are expected grouped by manager, as [`apply`] returns them.
pub fn conflicts_message(conflicts: &[Conflict]) -> String {
    let who = |c: &Conflict| {
        c.message
            .strip_prefix("conflict with ")
            .unwrap_or(&c.message)
            .to_string()
    };
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            who(c),
            c.field
        );
    }
    let mut lines: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    for c in conflicts {
        let w = who(c);
        if last.as_ref() != Some(&w) {
            lines.push(format!("conflicts with {w}:"));
            last = Some(w);
        }
        lines.push(format!("- {}", c.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

impl FieldSet {
    /// The fields an object sets, as apply records them: leaves, list items
    /// and map entries (with `.` for items that also have children).
    pub fn from_object(obj: &Value, ti: &dyn TypeInfo) -> Result<FieldSet, Error> {
        walk::to_field_set(obj, ti, 0)
    }
}
