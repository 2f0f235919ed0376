//! `metadata.managedFields` encoding.

use serde_json::{Map, Value};

use crate::Error;
use crate::path::FieldSet;

/// The operation that produced a managed fields entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or (non-apply) patch.
    Update,
}

impl Operation {
    /// Kubernetes' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// Field manager name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// API version the fields were recorded at.
    pub api_version: String,
    /// RFC 3339 time of the last change by this manager.
    pub time: Option<String>,
    /// Owned fields.
    pub fields: FieldSet,
    /// Subresource the manager wrote through (empty for the main resource).
    pub subresource: String,
}

impl ManagedFieldsEntry {
    /// Whether two entries belong to the same manager identity: appliers are
    /// one identity across versions, updaters one per API version.
    pub fn same_manager(&self, other: &ManagedFieldsEntry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// How kube names this manager in conflict messages (`"mgr" using apps/v1`).
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    /// Kube's manager identifier (the entry's JSON without fields and time),
    /// whose order decides the order of conflict messages.
    pub(crate) fn identifier(&self) -> String {
        let mut m = Map::new();
        m.insert("manager".into(), self.manager.clone().into());
        m.insert("operation".into(), self.operation.as_str().into());
        if self.operation == Operation::Update {
            m.insert("apiVersion".into(), self.api_version.clone().into());
        }
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(m).to_string()
    }
}

fn str_field(e: &Map<String, Value>, name: &str, i: usize) -> Result<Option<String>, Error> {
    match e.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::ManagedFields(format!(
            "entry {i}: {name} must be a string"
        ))),
    }
}

/// Decodes `metadata.managedFields` of an object (absent = no entries).
pub fn decode_managed_fields(obj: &Value) -> Result<Vec<ManagedFieldsEntry>, Error> {
    let raw = obj.get("metadata").and_then(|m| m.get("managedFields"));
    match raw {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => decode_entries(v),
    }
}

/// Decodes a `managedFields` array.
pub fn decode_entries(v: &Value) -> Result<Vec<ManagedFieldsEntry>, Error> {
    let Value::Array(items) = v else {
        return Err(Error::ManagedFields("managedFields must be a list".into()));
    };
    let mut out: Vec<ManagedFieldsEntry> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(e) = item else {
            return Err(Error::ManagedFields(format!("entry {i} must be an object")));
        };
        let operation = match str_field(e, "operation", i)?.as_deref() {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            _ => {
                return Err(Error::ManagedFields(format!(
                    "entry {i}: operation must be `Apply` or `Update`"
                )));
            }
        };
        let api_version = str_field(e, "apiVersion", i)?.unwrap_or_default();
        if api_version.is_empty() {
            return Err(Error::ManagedFields(format!(
                "entry {i}: apiVersion must not be empty"
            )));
        }
        match str_field(e, "fieldsType", i)?.as_deref() {
            Some("FieldsV1") => {}
            None | Some("") => {
                return Err(Error::ManagedFields(format!(
                    "missing fieldsType in managed fields entry {i}"
                )));
            }
            Some(t) => {
                return Err(Error::ManagedFields(format!(
                    "invalid fieldsType {t:?} in managed fields entry {i}"
                )));
            }
        }
        let fields = match e.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(f) => FieldSet::from_fields_v1(f)?,
        };
        let entry = ManagedFieldsEntry {
            manager: str_field(e, "manager", i)?.unwrap_or_default(),
            operation,
            api_version,
            time: str_field(e, "time", i)?,
            fields,
            subresource: str_field(e, "subresource", i)?.unwrap_or_default(),
        };
        // A repeated identity replaces the earlier one, as kube's map does.
        if let Some(pos) = out.iter().position(|o| o.same_manager(&entry)) {
            out[pos] = entry;
        } else {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Encodes entries as kube stores them: sorted by operation, time, manager,
/// apiVersion, subresource; entries with no fields are dropped.
pub fn encode_managed_fields(entries: &[ManagedFieldsEntry]) -> Value {
    let mut sorted: Vec<&ManagedFieldsEntry> =
        entries.iter().filter(|e| !e.fields.is_empty()).collect();
    sorted.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| {
                p.time
                    .as_deref()
                    .unwrap_or("")
                    .cmp(q.time.as_deref().unwrap_or(""))
            })
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    Value::Array(sorted.into_iter().map(encode_entry).collect())
}

fn encode_entry(e: &ManagedFieldsEntry) -> Value {
    let mut m = Map::new();
    if !e.manager.is_empty() {
        m.insert("manager".into(), e.manager.clone().into());
    }
    m.insert("operation".into(), e.operation.as_str().into());
    m.insert("apiVersion".into(), e.api_version.clone().into());
    if let Some(t) = &e.time {
        m.insert("time".into(), t.clone().into());
    }
    m.insert("fieldsType".into(), "FieldsV1".into());
    m.insert("fieldsV1".into(), e.fields.to_fields_v1());
    if !e.subresource.is_empty() {
        m.insert("subresource".into(), e.subresource.clone().into());
    }
    Value::Object(m)
}
