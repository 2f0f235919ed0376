//! The compiled structural schema and its read-only accessors.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// Maximum nesting of schemas (and of objects walked against them). Kubernetes
/// has no such limit, but untrusted input must not be able to exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 128;

/// The `type` of a schema node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    /// `object`
    Object,
    /// `array`
    Array,
    /// `string`
    String,
    /// `integer`
    Integer,
    /// `number`
    Number,
    /// `boolean`
    Boolean,
}

impl SchemaType {
    /// The OpenAPI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Object => "object",
            SchemaType::Array => "array",
            SchemaType::String => "string",
            SchemaType::Integer => "integer",
            SchemaType::Number => "number",
            SchemaType::Boolean => "boolean",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "object" => SchemaType::Object,
            "array" => SchemaType::Array,
            "string" => SchemaType::String,
            "integer" => SchemaType::Integer,
            "number" => SchemaType::Number,
            "boolean" => SchemaType::Boolean,
            _ => return None,
        })
    }
}

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListType {
    /// The list is replaced as a whole.
    Atomic,
    /// Scalar items that must be unique.
    Set,
    /// Object items keyed by `x-kubernetes-list-map-keys`.
    Map,
}

impl ListType {
    /// The extension's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ListType::Atomic => "atomic",
            ListType::Set => "set",
            ListType::Map => "map",
        }
    }
}

/// `x-kubernetes-map-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapType {
    /// Keys are owned separately (the default).
    Granular,
    /// The map is replaced as a whole.
    Atomic,
}

impl MapType {
    /// The extension's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MapType::Granular => "granular",
            MapType::Atomic => "atomic",
        }
    }
}

/// One `x-kubernetes-validations` entry. Stored for publishing only: CEL rules
/// are NOT evaluated by this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRule {
    /// The CEL expression.
    pub rule: String,
    /// Static failure message.
    pub message: Option<String>,
    /// CEL expression producing the failure message.
    pub message_expression: Option<String>,
    /// Status cause reason on failure.
    pub reason: Option<String>,
    /// Field path the failure is reported on.
    pub field_path: Option<String>,
    /// Whether `oldSelf` is optional (ratcheting).
    pub optional_old_self: Option<bool>,
}

/// A compiled `pattern`: keeps the source for messages.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) source: String,
    pub(crate) regex: Regex,
}

/// `additionalProperties` in its structural meanings.
#[derive(Debug, Clone)]
pub(crate) enum Additional {
    /// `additionalProperties: false`: no extra keys are part of the schema.
    Deny,
    /// `additionalProperties: true`: any extra key with any value.
    Any,
    /// A map whose values follow the schema.
    Schema(Box<Schema>),
}

/// A compiled structural schema node (a `JSONSchemaProps`), see [`Schema::compile`].
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub(crate) raw: Value,
    pub(crate) ty: Option<SchemaType>,
    pub(crate) description: Option<String>,
    pub(crate) properties: BTreeMap<String, Schema>,
    pub(crate) additional: Option<Additional>,
    pub(crate) items: Option<Box<Schema>>,
    pub(crate) required: Vec<String>,
    pub(crate) enum_values: Option<Vec<Value>>,
    pub(crate) default: Option<Value>,
    pub(crate) nullable: bool,
    pub(crate) format: Option<String>,
    pub(crate) maximum: Option<f64>,
    pub(crate) exclusive_maximum: bool,
    pub(crate) minimum: Option<f64>,
    pub(crate) exclusive_minimum: bool,
    pub(crate) multiple_of: Option<f64>,
    pub(crate) max_length: Option<u64>,
    pub(crate) min_length: Option<u64>,
    pub(crate) pattern: Option<Pattern>,
    pub(crate) max_items: Option<u64>,
    pub(crate) min_items: Option<u64>,
    pub(crate) unique_items: bool,
    pub(crate) max_properties: Option<u64>,
    pub(crate) min_properties: Option<u64>,
    pub(crate) all_of: Vec<Schema>,
    pub(crate) any_of: Vec<Schema>,
    pub(crate) one_of: Vec<Schema>,
    pub(crate) not: Option<Box<Schema>>,
    pub(crate) preserve_unknown_fields: bool,
    pub(crate) int_or_string: bool,
    pub(crate) embedded_resource: bool,
    pub(crate) list_type: Option<ListType>,
    pub(crate) list_map_keys: Vec<String>,
    pub(crate) map_type: Option<MapType>,
    pub(crate) validations: Vec<ValidationRule>,
}

impl Schema {
    /// The JSON this node was compiled from (for OpenAPI publishing).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// `type`, if set.
    pub fn schema_type(&self) -> Option<SchemaType> {
        self.ty
    }

    /// `description`, if set.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// `properties`, in name order.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &Schema)> {
        self.properties.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// One property's schema.
    pub fn property(&self, name: &str) -> Option<&Schema> {
        self.properties.get(name)
    }

    /// `additionalProperties` when it is a schema (i.e. this node is a map).
    pub fn additional_properties(&self) -> Option<&Schema> {
        match &self.additional {
            Some(Additional::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether `additionalProperties: true` was given (any extra key allowed).
    pub fn allows_any_additional_properties(&self) -> bool {
        matches!(self.additional, Some(Additional::Any))
    }

    /// `items`.
    pub fn items(&self) -> Option<&Schema> {
        self.items.as_deref()
    }

    /// `required`.
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// `enum`.
    pub fn enum_values(&self) -> Option<&[Value]> {
        self.enum_values.as_deref()
    }

    /// `default`.
    pub fn default_value(&self) -> Option<&Value> {
        self.default.as_ref()
    }

    /// `nullable`.
    pub fn nullable(&self) -> bool {
        self.nullable
    }

    /// `format`.
    pub fn format(&self) -> Option<&str> {
        self.format.as_deref()
    }

    /// `pattern` source.
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_ref().map(|p| p.source.as_str())
    }

    /// `x-kubernetes-preserve-unknown-fields`.
    pub fn preserve_unknown_fields(&self) -> bool {
        self.preserve_unknown_fields
    }

    /// `x-kubernetes-int-or-string`.
    pub fn int_or_string(&self) -> bool {
        self.int_or_string
    }

    /// `x-kubernetes-embedded-resource`.
    pub fn embedded_resource(&self) -> bool {
        self.embedded_resource
    }

    /// `x-kubernetes-list-type`.
    pub fn list_type(&self) -> Option<ListType> {
        self.list_type
    }

    /// `x-kubernetes-list-map-keys`.
    pub fn list_map_keys(&self) -> &[String] {
        &self.list_map_keys
    }

    /// `x-kubernetes-map-type`.
    pub fn map_type(&self) -> Option<MapType> {
        self.map_type
    }

    /// `x-kubernetes-validations` (stored, never evaluated).
    pub fn validations(&self) -> &[ValidationRule] {
        &self.validations
    }

    /// `allOf`, `anyOf`, `oneOf` and `not` value validations.
    pub fn all_of(&self) -> &[Schema] {
        &self.all_of
    }

    /// See [`Schema::all_of`].
    pub fn any_of(&self) -> &[Schema] {
        &self.any_of
    }

    /// See [`Schema::all_of`].
    pub fn one_of(&self) -> &[Schema] {
        &self.one_of
    }

    /// See [`Schema::all_of`].
    pub fn not(&self) -> Option<&Schema> {
        self.not.as_deref()
    }

    /// Walks field names from this node, stepping through arrays transparently
    /// (as `kubectl explain spec.containers.name` does) and into map values.
    pub fn lookup(&self, path: &[&str]) -> Option<&Schema> {
        let mut node = self;
        for seg in path {
            node = node.element_schema();
            node = node
                .properties
                .get(*seg)
                .or_else(|| node.additional_properties())?;
        }
        Some(node)
    }

    /// Descends through (possibly nested) array items to the element schema.
    fn element_schema(&self) -> &Schema {
        let mut node = self;
        for _ in 0..MAX_DEPTH {
            match &node.items {
                Some(items) if node.ty == Some(SchemaType::Array) => node = items,
                _ => break,
            }
        }
        node
    }
}
