//! What the merge algorithms need to know about a schema: list and map semantics.

use serde_json::Value;

/// How a list's items are identified and owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced and owned as a whole.
    Atomic,
    /// Scalar items owned individually by value.
    Set,
    /// Object items owned individually, identified by these key fields.
    Map(Vec<String>),
}

/// How a map's entries are owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// Each key is owned separately.
    Granular,
    /// Replaced and owned as a whole.
    Atomic,
}

/// Schema information for one node. The value's JSON shape decides whether a
/// node is treated as a map, a list or a scalar; this trait only supplies the
/// semantics of that shape.
pub trait TypeInfo {
    /// Schema of a declared (struct) field. Declared fields are not recorded
    /// as members on their own when they hold children, undeclared map
    /// entries are (Kubernetes' `.` entries).
    fn field(&self, name: &str) -> Option<&dyn TypeInfo>;
    /// Schema of undeclared map entries (`additionalProperties`), if any.
    fn elements(&self) -> Option<&dyn TypeInfo>;
    /// Schema of list items.
    fn items(&self) -> Option<&dyn TypeInfo>;
    /// Semantics when the value is a list.
    fn list_type(&self) -> ListType;
    /// Semantics when the value is an object.
    fn map_type(&self) -> MapType;
    /// Default value, used for list-map key fields missing from an item.
    fn default_value(&self) -> Option<&Value> {
        None
    }
    /// Schema of a map entry: the declared field, else the element schema.
    fn child(&self, name: &str) -> Option<&dyn TypeInfo> {
        self.field(name).or_else(|| self.elements())
    }
}

/// Schema-less objects, as Kubernetes treats unknown or
/// preserve-unknown-fields data: maps granular, lists atomic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deduced;

/// A shared [`Deduced`] for fallbacks.
pub static DEDUCED: Deduced = Deduced;

impl TypeInfo for Deduced {
    fn field(&self, _: &str) -> Option<&dyn TypeInfo> {
        None
    }
    fn elements(&self) -> Option<&dyn TypeInfo> {
        Some(&DEDUCED)
    }
    fn items(&self) -> Option<&dyn TypeInfo> {
        Some(&DEDUCED)
    }
    fn list_type(&self) -> ListType {
        ListType::Atomic
    }
    fn map_type(&self) -> MapType {
        MapType::Granular
    }
}

impl TypeInfo for kplex_schema::Schema {
    fn field(&self, name: &str) -> Option<&dyn TypeInfo> {
        self.property(name).map(|s| s as &dyn TypeInfo)
    }
    fn elements(&self) -> Option<&dyn TypeInfo> {
        if let Some(s) = self.additional_properties() {
            return Some(s);
        }
        if self.preserve_unknown_fields() || self.allows_any_additional_properties() {
            return Some(&DEDUCED);
        }
        None
    }
    fn items(&self) -> Option<&dyn TypeInfo> {
        kplex_schema::Schema::items(self).map(|s| s as &dyn TypeInfo)
    }
    fn list_type(&self) -> ListType {
        match kplex_schema::Schema::list_type(self) {
            Some(kplex_schema::ListType::Set) => ListType::Set,
            Some(kplex_schema::ListType::Map) if !self.list_map_keys().is_empty() => {
                ListType::Map(self.list_map_keys().to_vec())
            }
            // Kubernetes' default for arrays without x-kubernetes-list-type.
            _ => ListType::Atomic,
        }
    }
    fn map_type(&self) -> MapType {
        match kplex_schema::Schema::map_type(self) {
            Some(kplex_schema::MapType::Atomic) => MapType::Atomic,
            _ => MapType::Granular,
        }
    }
    fn default_value(&self) -> Option<&Value> {
        kplex_schema::Schema::default_value(self)
    }
}

/// ObjectMeta's merge semantics, applied to every object's `metadata`
/// whatever its schema says (CRD schemas rarely describe metadata).
#[derive(Debug, Clone, Copy)]
enum Meta {
    Object,
    StringMap,
    Finalizers,
    OwnerReferences,
}

static OBJECT_META: Meta = Meta::Object;
static STRING_MAP: Meta = Meta::StringMap;
static FINALIZERS: Meta = Meta::Finalizers;
static OWNER_REFERENCES: Meta = Meta::OwnerReferences;

const META_SCALARS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

impl TypeInfo for Meta {
    fn field(&self, name: &str) -> Option<&dyn TypeInfo> {
        match self {
            Meta::Object => match name {
                "labels" | "annotations" => Some(&STRING_MAP),
                "finalizers" => Some(&FINALIZERS),
                "ownerReferences" => Some(&OWNER_REFERENCES),
                n if META_SCALARS.contains(&n) => Some(&DEDUCED),
                _ => None,
            },
            _ => None,
        }
    }
    fn elements(&self) -> Option<&dyn TypeInfo> {
        Some(&DEDUCED)
    }
    fn items(&self) -> Option<&dyn TypeInfo> {
        Some(&DEDUCED)
    }
    fn list_type(&self) -> ListType {
        match self {
            Meta::Finalizers => ListType::Set,
            Meta::OwnerReferences => ListType::Map(vec!["uid".into()]),
            _ => ListType::Atomic,
        }
    }
    fn map_type(&self) -> MapType {
        MapType::Granular
    }
}

/// The top level of an object: `apiVersion`, `kind` and `metadata` are
/// declared fields with fixed semantics, the rest comes from the schema.
pub(crate) struct Root<'a>(pub(crate) &'a dyn TypeInfo);

impl TypeInfo for Root<'_> {
    fn field(&self, name: &str) -> Option<&dyn TypeInfo> {
        match name {
            "metadata" => Some(&OBJECT_META),
            "apiVersion" | "kind" => Some(&DEDUCED),
            _ => self.0.field(name),
        }
    }
    fn elements(&self) -> Option<&dyn TypeInfo> {
        self.0.elements()
    }
    fn items(&self) -> Option<&dyn TypeInfo> {
        self.0.items()
    }
    fn list_type(&self) -> ListType {
        self.0.list_type()
    }
    fn map_type(&self) -> MapType {
        // The object itself is never atomic.
        MapType::Granular
    }
}
