//! Turning `openAPIV3Schema` JSON into a [`Schema`], enforcing the structural
//! schema rules kube-apiserver applies when a CRD is created or updated.

use std::collections::{BTreeMap, BTreeSet};

use regex::RegexBuilder;
use serde_json::{Map, Value};

use crate::error::{FieldError, join_path};
use crate::schema::{
    Additional, ListType, MAX_DEPTH, MapType, Pattern, Schema, SchemaType, ValidationRule,
};

/// Where a node sits; decides which structural rules apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Root,
    Property,
    Items,
    AdditionalProperties,
    /// Inside allOf/anyOf/oneOf/not: only value validations are allowed.
    ValueValidation {
        int_or_string: bool,
    },
}

/// Bounds pattern compilation so a hostile schema cannot allocate huge automata.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Keywords Kubernetes rejects in CRD schemas outright.
const UNSUPPORTED: &[&str] = &[
    "$ref",
    "$schema",
    "id",
    "definitions",
    "dependencies",
    "additionalItems",
    "patternProperties",
];

/// Keywords that make a node non-structural inside value validations.
const NESTED_FORBIDDEN: &[(&str, &str)] = &[
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    (
        "x-kubernetes-preserve-unknown-fields",
        "must be undefined to be structural",
    ),
    (
        "x-kubernetes-embedded-resource",
        "must be false to be structural",
    ),
    (
        "x-kubernetes-int-or-string",
        "must be false to be structural",
    ),
    (
        "x-kubernetes-list-map-keys",
        "must be empty to be structural",
    ),
    (
        "x-kubernetes-list-type",
        "must be undefined to be structural",
    ),
    (
        "x-kubernetes-map-type",
        "must be undefined to be structural",
    ),
];

impl Schema {
    /// Compiles an `openAPIV3Schema` value. Error paths are relative to the
    /// schema root and start with `openAPIV3Schema` (e.g.
    /// `openAPIV3Schema.properties[spec].type`); prefix them with the version
    /// path (`spec.versions[0].schema`) via [`FieldError::with_prefix`].
    pub fn compile(schema: &Value) -> Result<Schema, Vec<FieldError>> {
        Self::compile_at(schema, "openAPIV3Schema")
    }

    /// Like [`Schema::compile`] with a caller-chosen root path for errors.
    pub fn compile_at(schema: &Value, root: &str) -> Result<Schema, Vec<FieldError>> {
        let mut c = Compiler::default();
        let compiled = c.node(schema, root, Place::Root, 0);
        if c.errors.is_empty() {
            c.check_defaults(&compiled, root, 0);
        }
        if c.errors.is_empty() {
            Ok(compiled)
        } else {
            Err(c.errors)
        }
    }
}

#[derive(Default)]
struct Compiler {
    errors: Vec<FieldError>,
}

fn key(path: &str, k: &str) -> String {
    join_path(path, k)
}

fn indexed(path: &str, name: &str, i: usize) -> String {
    format!("{}[{i}]", join_path(path, name))
}

fn keyed(path: &str, name: &str, k: &str) -> String {
    format!("{}[{k}]", join_path(path, name))
}

impl Compiler {
    fn node(&mut self, v: &Value, path: &str, place: Place, depth: usize) -> Schema {
        let Some(obj) = v.as_object() else {
            self.errors.push(FieldError::invalid(
                path,
                v.clone(),
                "must be a schema object",
            ));
            return <Schema as Default>::default();
        };
        if depth > MAX_DEPTH {
            self.errors.push(FieldError::forbidden(
                path,
                format!("must not be nested deeper than {MAX_DEPTH} levels"),
            ));
            return <Schema as Default>::default();
        }
        let mut s = Schema {
            raw: v.clone(),
            ..<Schema as Default>::default()
        };
        self.forbid_unsupported(obj, path);
        if let Place::ValueValidation { int_or_string } = place {
            self.forbid_nested_generics(obj, path, int_or_string);
        }
        self.scalars(obj, path, &mut s);
        self.numeric(obj, path, &mut s);
        self.extensions(obj, path, &mut s);
        self.children(obj, path, place, depth, &mut s);
        self.junctors(obj, path, depth, &mut s);
        if !matches!(place, Place::ValueValidation { .. }) {
            self.structural_invariants(&s, path, place);
        }
        s
    }

    fn forbid_unsupported(&mut self, obj: &Map<String, Value>, path: &str) {
        for k in UNSUPPORTED {
            if obj.contains_key(*k) {
                self.errors.push(FieldError::forbidden(
                    key(path, k),
                    format!("{k} is not supported"),
                ));
            }
        }
        if obj.get("uniqueItems") == Some(&Value::Bool(true)) {
            self.errors.push(FieldError::forbidden(
                key(path, "uniqueItems"),
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ));
        }
    }

    fn forbid_nested_generics(&mut self, obj: &Map<String, Value>, path: &str, ios: bool) {
        for (k, msg) in NESTED_FORBIDDEN {
            let set = match obj.get(*k) {
                None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                Some(Value::String(s)) => !s.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            // int-or-string is expressed as anyOf [{type: integer}, {type: string}].
            let allowed = *k == "type" && ios;
            if set && !allowed {
                self.errors.push(FieldError::forbidden(key(path, k), *msg));
            }
        }
        if obj
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| p.contains_key("metadata"))
        {
            self.errors.push(FieldError::forbidden(
                keyed(path, "properties", "metadata"),
                "must not be specified in a nested context",
            ));
        }
    }

    fn string(&mut self, obj: &Map<String, Value>, path: &str, k: &str) -> Option<String> {
        match obj.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => {
                self.errors.push(FieldError::invalid(
                    key(path, k),
                    other.clone(),
                    "must be a string",
                ));
                None
            }
        }
    }

    fn boolean(&mut self, obj: &Map<String, Value>, path: &str, k: &str) -> Option<bool> {
        match obj.get(k)? {
            Value::Bool(b) => Some(*b),
            Value::Null => None,
            other => {
                self.errors.push(FieldError::invalid(
                    key(path, k),
                    other.clone(),
                    "must be a boolean",
                ));
                None
            }
        }
    }

    fn number(&mut self, obj: &Map<String, Value>, path: &str, k: &str) -> Option<f64> {
        match obj.get(k)? {
            Value::Number(n) => n.as_f64(),
            Value::Null => None,
            other => {
                self.errors.push(FieldError::invalid(
                    key(path, k),
                    other.clone(),
                    "must be a number",
                ));
                None
            }
        }
    }

    fn count(&mut self, obj: &Map<String, Value>, path: &str, k: &str) -> Option<u64> {
        match obj.get(k)? {
            Value::Null => None,
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            other => {
                self.errors.push(FieldError::invalid(
                    key(path, k),
                    other.clone(),
                    "must be a non-negative integer",
                ));
                None
            }
        }
    }

    fn string_list(&mut self, obj: &Map<String, Value>, path: &str, k: &str) -> Vec<String> {
        match obj.get(k) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        self.errors.push(FieldError::invalid(
                            indexed(path, k, i),
                            other.clone(),
                            "must be a string",
                        ));
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.errors.push(FieldError::invalid(
                    key(path, k),
                    other.clone(),
                    "must be an array",
                ));
                Vec::new()
            }
        }
    }

    fn scalars(&mut self, obj: &Map<String, Value>, path: &str, s: &mut Schema) {
        if let Some(t) = self.string(obj, path, "type")
            && !t.is_empty()
        {
            s.ty = SchemaType::parse(&t);
            if s.ty.is_none() {
                let supported = ["array", "boolean", "integer", "number", "object", "string"];
                self.errors.push(FieldError::not_supported(
                    key(path, "type"),
                    Value::String(t),
                    &supported.map(String::from),
                ));
            }
        }
        s.description = self.string(obj, path, "description");
        s.format = self.string(obj, path, "format").filter(|f| !f.is_empty());
        s.nullable = self.boolean(obj, path, "nullable").unwrap_or(false);
        s.required = self.string_list(obj, path, "required");
        s.default = obj.get("default").filter(|d| !d.is_null()).cloned();
        match obj.get("enum") {
            None | Some(Value::Null) => {}
            Some(Value::Array(values)) => s.enum_values = Some(values.clone()),
            Some(other) => self.errors.push(FieldError::invalid(
                key(path, "enum"),
                other.clone(),
                "must be an array",
            )),
        }
        if let Some(p) = self.string(obj, path, "pattern") {
            match RegexBuilder::new(&p).size_limit(REGEX_SIZE_LIMIT).build() {
                Ok(regex) => s.pattern = Some(Pattern { source: p, regex }),
                Err(e) => self.errors.push(FieldError::invalid(
                    key(path, "pattern"),
                    Value::String(p),
                    format!("must be a valid regular expression, but isn't: {e}"),
                )),
            }
        }
    }

    fn numeric(&mut self, obj: &Map<String, Value>, path: &str, s: &mut Schema) {
        s.maximum = self.number(obj, path, "maximum");
        s.minimum = self.number(obj, path, "minimum");
        s.exclusive_maximum = self.boolean(obj, path, "exclusiveMaximum").unwrap_or(false);
        s.exclusive_minimum = self.boolean(obj, path, "exclusiveMinimum").unwrap_or(false);
        s.multiple_of = self.number(obj, path, "multipleOf");
        if s.multiple_of.is_some_and(|m| m <= 0.0) {
            self.errors.push(FieldError::invalid(
                key(path, "multipleOf"),
                obj.get("multipleOf").cloned().unwrap_or_default(),
                "must be greater than zero",
            ));
        }
        s.max_length = self.count(obj, path, "maxLength");
        s.min_length = self.count(obj, path, "minLength");
        s.max_items = self.count(obj, path, "maxItems");
        s.min_items = self.count(obj, path, "minItems");
        s.max_properties = self.count(obj, path, "maxProperties");
        s.min_properties = self.count(obj, path, "minProperties");
        s.unique_items = self.boolean(obj, path, "uniqueItems").unwrap_or(false);
    }

    fn extensions(&mut self, obj: &Map<String, Value>, path: &str, s: &mut Schema) {
        let puf = "x-kubernetes-preserve-unknown-fields";
        if let Some(p) = self.boolean(obj, path, puf) {
            if !p {
                self.errors.push(FieldError::invalid(
                    key(path, puf),
                    Value::Bool(false),
                    "must be true or undefined",
                ));
            }
            s.preserve_unknown_fields = p;
        }
        s.int_or_string = self
            .boolean(obj, path, "x-kubernetes-int-or-string")
            .unwrap_or(false);
        s.embedded_resource = self
            .boolean(obj, path, "x-kubernetes-embedded-resource")
            .unwrap_or(false);
        let lt = "x-kubernetes-list-type";
        if let Some(t) = self.string(obj, path, lt) {
            s.list_type = match t.as_str() {
                "atomic" => Some(ListType::Atomic),
                "set" => Some(ListType::Set),
                "map" => Some(ListType::Map),
                _ => {
                    let supported = ["atomic", "set", "map"].map(String::from);
                    self.errors.push(FieldError::not_supported(
                        key(path, lt),
                        Value::String(t),
                        &supported,
                    ));
                    None
                }
            };
        }
        s.list_map_keys = self.string_list(obj, path, "x-kubernetes-list-map-keys");
        let mt = "x-kubernetes-map-type";
        if let Some(t) = self.string(obj, path, mt) {
            s.map_type = match t.as_str() {
                "granular" => Some(MapType::Granular),
                "atomic" => Some(MapType::Atomic),
                _ => {
                    let supported = ["granular", "atomic"].map(String::from);
                    self.errors.push(FieldError::not_supported(
                        key(path, mt),
                        Value::String(t),
                        &supported,
                    ));
                    None
                }
            };
        }
        s.validations = self.validation_rules(obj, path);
    }

    fn validation_rules(&mut self, obj: &Map<String, Value>, path: &str) -> Vec<ValidationRule> {
        let k = "x-kubernetes-validations";
        let Some(list) = obj.get(k).filter(|v| !v.is_null()) else {
            return Vec::new();
        };
        let Some(list) = list.as_array() else {
            self.errors.push(FieldError::invalid(
                key(path, k),
                list.clone(),
                "must be an array",
            ));
            return Vec::new();
        };
        let mut rules = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let p = indexed(path, k, i);
            let Some(e) = entry.as_object() else {
                self.errors
                    .push(FieldError::invalid(p, entry.clone(), "must be an object"));
                continue;
            };
            let rule = self.string(e, &p, "rule").unwrap_or_default();
            if rule.trim().is_empty() {
                self.errors.push(FieldError::required(key(&p, "rule"), ""));
            }
            rules.push(ValidationRule {
                rule,
                message: self.string(e, &p, "message"),
                message_expression: self.string(e, &p, "messageExpression"),
                reason: self.string(e, &p, "reason"),
                field_path: self.string(e, &p, "fieldPath"),
                optional_old_self: self.boolean(e, &p, "optionalOldSelf"),
            });
        }
        rules
    }

    fn children(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        place: Place,
        depth: usize,
        s: &mut Schema,
    ) {
        let nested = matches!(place, Place::ValueValidation { .. });
        let (prop_place, items_place, add_place) = if nested {
            (place, place, place)
        } else {
            (Place::Property, Place::Items, Place::AdditionalProperties)
        };
        match obj.get("properties") {
            None | Some(Value::Null) => {}
            Some(Value::Object(props)) => {
                let mut out = BTreeMap::new();
                for (name, sub) in props {
                    let p = keyed(path, "properties", name);
                    out.insert(name.clone(), self.node(sub, &p, prop_place, depth + 1));
                }
                s.properties = out;
            }
            Some(other) => self.errors.push(FieldError::invalid(
                key(path, "properties"),
                other.clone(),
                "must be an object",
            )),
        }
        match obj.get("items") {
            None | Some(Value::Null) => {}
            Some(Value::Array(_)) => self.errors.push(FieldError::forbidden(
                key(path, "items"),
                "items must be a schema object and not an array",
            )),
            Some(sub) => {
                let p = key(path, "items");
                s.items = Some(Box::new(self.node(sub, &p, items_place, depth + 1)));
            }
        }
        s.additional = match obj.get("additionalProperties") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(true)) => Some(Additional::Any),
            Some(Value::Bool(false)) => Some(Additional::Deny),
            Some(sub) => {
                let p = key(path, "additionalProperties");
                Some(Additional::Schema(Box::new(self.node(
                    sub,
                    &p,
                    add_place,
                    depth + 1,
                ))))
            }
        };
        if !s.properties.is_empty()
            && matches!(s.additional, Some(Additional::Deny | Additional::Schema(_)))
        {
            self.errors.push(FieldError::forbidden(
                key(path, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
    }

    fn junctors(&mut self, obj: &Map<String, Value>, path: &str, depth: usize, s: &mut Schema) {
        let place = Place::ValueValidation {
            int_or_string: s.int_or_string,
        };
        s.all_of = self.schema_list(obj, path, "allOf", place, depth);
        s.any_of = self.schema_list(obj, path, "anyOf", place, depth);
        s.one_of = self.schema_list(obj, path, "oneOf", place, depth);
        if let Some(sub) = obj.get("not").filter(|v| !v.is_null()) {
            let nested = Place::ValueValidation {
                int_or_string: false,
            };
            s.not = Some(Box::new(self.node(
                sub,
                &key(path, "not"),
                nested,
                depth + 1,
            )));
        }
    }

    fn schema_list(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        k: &str,
        place: Place,
        depth: usize,
    ) -> Vec<Schema> {
        match obj.get(k) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, sub)| self.node(sub, &indexed(path, k, i), place, depth + 1))
                .collect(),
            Some(other) => {
                self.errors.push(FieldError::invalid(
                    key(path, k),
                    other.clone(),
                    "must be an array",
                ));
                Vec::new()
            }
        }
    }

    fn structural_invariants(&mut self, s: &Schema, path: &str, place: Place) {
        self.type_invariants(s, path, place);
        if s.embedded_resource {
            self.embedded_invariants(s, path);
        }
        if place == Place::Root || s.embedded_resource {
            self.metadata_invariants(s, path);
        }
        self.list_invariants(s, path);
        if s.map_type.is_some() && s.ty.is_some_and(|t| t != SchemaType::Object) {
            self.errors.push(FieldError::invalid(
                key(path, "x-kubernetes-map-type"),
                Value::String(s.map_type.map(MapType::as_str).unwrap_or_default().into()),
                "must only be used if type is object",
            ));
        }
    }

    fn type_invariants(&mut self, s: &Schema, path: &str, place: Place) {
        let type_path = key(path, "type");
        if s.int_or_string {
            if let Some(t) = s.ty {
                self.errors.push(FieldError::invalid(
                    type_path,
                    Value::String(t.as_str().into()),
                    "must be empty if x-kubernetes-int-or-string is true",
                ));
            }
        } else if s.ty.is_none() && !s.preserve_unknown_fields {
            let detail = match place {
                Place::Root => "must not be empty at the root",
                Place::Items => "must not be empty for specified array items",
                _ => "must not be empty for specified object fields",
            };
            self.errors.push(FieldError::required(type_path, detail));
        } else if place == Place::Root
            && let Some(t) = s.ty.filter(|t| *t != SchemaType::Object)
        {
            self.errors.push(FieldError::invalid(
                type_path,
                Value::String(t.as_str().into()),
                "must be object at the root",
            ));
        }
        if s.ty == Some(SchemaType::Array) && s.items.is_none() {
            self.errors.push(FieldError::required(
                key(path, "items"),
                "must be specified",
            ));
        }
        if place == Place::Root {
            for (k, set) in [
                ("nullable", s.nullable),
                ("x-kubernetes-int-or-string", s.int_or_string),
                ("x-kubernetes-embedded-resource", s.embedded_resource),
            ] {
                if set {
                    self.errors.push(FieldError::forbidden(
                        key(path, k),
                        "must be false at the root",
                    ));
                }
            }
        }
    }

    fn embedded_invariants(&mut self, s: &Schema, path: &str) {
        if s.ty != Some(SchemaType::Object) {
            self.errors.push(FieldError::invalid(
                key(path, "type"),
                Value::String(s.ty.map(SchemaType::as_str).unwrap_or_default().into()),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
        if !s.preserve_unknown_fields && s.properties.is_empty() {
            self.errors.push(FieldError::required(
                key(path, "properties"),
                "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            ));
        }
    }

    /// metadata is implicitly ObjectMeta; a schema may only narrow name/generateName.
    fn metadata_invariants(&mut self, s: &Schema, path: &str) {
        let Some(meta) = s.properties.get("metadata") else {
            return;
        };
        let meta_path = keyed(path, "properties", "metadata");
        if meta.ty != Some(SchemaType::Object) {
            self.errors.push(FieldError::invalid(
                key(&meta_path, "type"),
                Value::String(meta.ty.map(SchemaType::as_str).unwrap_or_default().into()),
                "must be object",
            ));
        }
        let only_names = meta
            .properties
            .keys()
            .all(|k| k == "name" || k == "generateName");
        let narrows_more = !only_names
            || meta.additional.is_some()
            || meta.default.is_some()
            || !meta.required.is_empty()
            || meta.enum_values.is_some();
        if narrows_more {
            self.errors.push(FieldError::forbidden(
                meta_path.clone(),
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
        for (name, prop) in &meta.properties {
            let is_name = name == "name" || name == "generateName";
            if is_name && prop.ty != Some(SchemaType::String) {
                self.errors.push(FieldError::invalid(
                    key(&keyed(&meta_path, "properties", name), "type"),
                    Value::String(prop.ty.map(SchemaType::as_str).unwrap_or_default().into()),
                    "must be string",
                ));
            }
        }
    }

    fn list_invariants(&mut self, s: &Schema, path: &str) {
        let lt_path = key(path, "x-kubernetes-list-type");
        let keys_path = key(path, "x-kubernetes-list-map-keys");
        if let Some(lt) = s.list_type
            && s.ty != Some(SchemaType::Array)
        {
            self.errors.push(FieldError::invalid(
                lt_path.clone(),
                Value::String(lt.as_str().into()),
                "must only be used on type array",
            ));
        }
        if s.list_type != Some(ListType::Map) {
            if !s.list_map_keys.is_empty() {
                self.errors.push(FieldError::forbidden(
                    keys_path,
                    "must only be used if x-kubernetes-list-type is map",
                ));
            }
            if s.list_type == Some(ListType::Set) {
                self.set_items_invariants(s, path);
            }
            return;
        }
        if s.list_map_keys.is_empty() {
            self.errors.push(FieldError::required(
                keys_path,
                "must not be empty if x-kubernetes-list-type is map",
            ));
            return;
        }
        self.map_keys_invariants(s, &keys_path);
    }

    fn set_items_invariants(&mut self, s: &Schema, path: &str) {
        let Some(items) = s.items.as_deref() else {
            return;
        };
        if items.ty == Some(SchemaType::Object) && items.map_type != Some(MapType::Atomic) {
            self.errors.push(FieldError::invalid(
                key(&key(path, "items"), "x-kubernetes-map-type"),
                Value::String(items.map_type.unwrap_or(MapType::Granular).as_str().into()),
                "must be atomic as item of a list with x-kubernetes-list-type=set",
            ));
        }
    }

    fn map_keys_invariants(&mut self, s: &Schema, keys_path: &str) {
        let keys_value = Value::from(s.list_map_keys.clone());
        let Some(items) = s
            .items
            .as_deref()
            .filter(|i| i.ty == Some(SchemaType::Object))
        else {
            self.errors.push(FieldError::invalid(
                keys_path,
                keys_value,
                "must only be used if items are of type object",
            ));
            return;
        };
        let unique: BTreeSet<&String> = s.list_map_keys.iter().collect();
        if unique.len() != s.list_map_keys.len() {
            self.errors.push(FieldError::invalid(
                keys_path,
                keys_value.clone(),
                "must not contain duplicate entries",
            ));
        }
        for (i, k) in s.list_map_keys.iter().enumerate() {
            let scalar = items.properties.get(k).is_some_and(|p| {
                p.int_or_string
                    || p.ty
                        .is_some_and(|t| !matches!(t, SchemaType::Object | SchemaType::Array))
            });
            if !scalar {
                self.errors.push(FieldError::invalid(
                    format!("{keys_path}[{i}]"),
                    Value::String(k.clone()),
                    "must be the name of a scalar property of the items",
                ));
            }
        }
    }

    /// Defaults must survive pruning unchanged and validate, like kube checks
    /// on CRD writes; otherwise every object would get an invalid default.
    fn check_defaults(&mut self, s: &Schema, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        if let Some(d) = &s.default {
            self.check_default(s, d, path);
        }
        for (name, p) in &s.properties {
            self.check_defaults(p, &keyed(path, "properties", name), depth + 1);
        }
        if let Some(items) = &s.items {
            self.check_defaults(items, &key(path, "items"), depth + 1);
        }
        if let Some(Additional::Schema(a)) = &s.additional {
            self.check_defaults(a, &key(path, "additionalProperties"), depth + 1);
        }
    }

    fn check_default(&mut self, s: &Schema, d: &Value, path: &str) {
        let dpath = key(path, "default");
        let mut pruned = d.clone();
        let removed = crate::prune::prune_value(s, &mut pruned, false, 0);
        if !removed.is_empty() {
            self.errors.push(FieldError::invalid(
                dpath.clone(),
                d.clone(),
                format!("must not have unknown fields: {}", removed.join(", ")),
            ));
        }
        for e in crate::validate::validate_value(s, d, "default", 0) {
            let detail = if e.detail.is_empty() {
                e.to_string()
            } else {
                e.detail
            };
            self.errors
                .push(FieldError::invalid(dpath.clone(), d.clone(), detail));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(v: Value) -> Vec<String> {
        match Schema::compile(&v) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn structural_rules() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"type": "object", "properties": {"spec": {"type": "object"}}}),
                vec![],
            ),
            (
                json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}),
                vec![
                    "openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
                ],
            ),
            (
                json!({"properties": {}}),
                vec!["openAPIV3Schema.type: Required value: must not be empty at the root"],
            ),
            (
                json!({"type": "array", "items": {"type": "string"}}),
                vec![r#"openAPIV3Schema.type: Invalid value: "array": must be object at the root"#],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array", "items": {}}}}),
                vec![
                    "openAPIV3Schema.properties[l].items.type: Required value: must not be empty for specified array items",
                ],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array"}}}),
                vec!["openAPIV3Schema.properties[l].items: Required value: must be specified"],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}),
                vec![
                    "openAPIV3Schema.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
                ],
            ),
            (
                json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}}),
                vec![
                    "openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
                ],
            ),
            (
                json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}}}}),
                vec![],
            ),
            (
                json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true}, "q": {"x-kubernetes-preserve-unknown-fields": true}}}),
                vec![],
            ),
            (
                json!({"type": "object", "properties": {"p": {"type": "string", "x-kubernetes-int-or-string": true}}}),
                vec![
                    r#"openAPIV3Schema.properties[p].type: Invalid value: "string": must be empty if x-kubernetes-int-or-string is true"#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}}}),
                vec![],
            ),
            (
                json!({"type": "object", "properties": {"p": {"type": "string", "allOf": [{"type": "string"}]}}}),
                vec![
                    "openAPIV3Schema.properties[p].allOf[0].type: Forbidden: must be empty to be structural",
                ],
            ),
            (
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": false}),
                vec![
                    "openAPIV3Schema.x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined",
                ],
            ),
            (
                json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "("}}}),
                vec![concat!(
                    r#"openAPIV3Schema.properties[s].pattern: Invalid value: "(": must be a valid regular expression, but isn't: "#,
                    "regex parse error:\n    (\n    ^\nerror: unclosed group"
                )],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array", "uniqueItems": true, "items": {"type": "string"}}}}),
                vec![
                    "openAPIV3Schema.properties[l].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
                ],
            ),
            (
                json!({"type": "object", "properties": {"r": {"$ref": "#/x", "type": "string"}}}),
                vec!["openAPIV3Schema.properties[r].$ref: Forbidden: $ref is not supported"],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object"}}}}),
                vec![
                    "openAPIV3Schema.properties[l].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map",
                ],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}}}}),
                vec![
                    r#"openAPIV3Schema.properties[l].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map""#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"r": {"type": "object", "x-kubernetes-embedded-resource": true}}}),
                vec![
                    "openAPIV3Schema.properties[r].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
                ],
            ),
            (
                json!({"type": "object", "properties": {"n": {"type": "integer", "default": "x"}}}),
                vec![
                    r#"openAPIV3Schema.properties[n].default: Invalid value: "x": default in body must be of type integer: "string""#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"o": {"type": "object", "properties": {"a": {"type": "string"}}, "default": {"b": 1}}}}),
                vec![
                    r#"openAPIV3Schema.properties[o].default: Invalid value: {"b":1}: must not have unknown fields: .b"#,
                ],
            ),
            (
                json!("string"),
                vec![r#"openAPIV3Schema: Invalid value: "string": must be a schema object"#],
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(errors(schema.clone()), want, "{schema}");
        }
    }

    #[test]
    fn keeps_metadata_for_publishing() {
        let s = Schema::compile(&json!({"type": "object", "description": "root",
            "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "self.a > 0", "message": "m"}],
                "properties": {"l": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
                    "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}}}}))
        .expect("compiles");
        assert_eq!(s.description(), Some("root"));
        let l = s.lookup(&["spec", "l"]).expect("l");
        assert_eq!(l.list_type(), Some(ListType::Map));
        assert_eq!(l.list_map_keys(), ["k".to_string()]);
        assert_eq!(
            s.lookup(&["spec", "l", "k"]).and_then(Schema::schema_type),
            Some(SchemaType::String)
        );
        assert!(s.lookup(&["spec", "missing"]).is_none());
        let spec = s.property("spec").expect("spec");
        assert_eq!(spec.validations()[0].rule, "self.a > 0");
        assert_eq!(spec.validations()[0].message.as_deref(), Some("m"));
    }

    #[test]
    fn malformed_keywords_are_errors_not_panics() {
        let bad = [
            json!({"type": 1}),
            json!({"type": "object", "properties": []}),
            json!({"type": "object", "required": "x"}),
            json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": -1, "minimum": "x", "enum": {}}}}),
            json!({"type": "object", "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}}),
            json!({"type": "object", "properties": {"a": {"type": "integer", "multipleOf": 0}}}),
            json!({"type": "object", "x-kubernetes-validations": [{"message": "no rule"}, 3]}),
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["k", "k"], "items": {"type": "object", "properties": {"k": {"type": "object"}}}}}}),
            json!({"type": "object", "properties": {"a": {"type": "string", "x-kubernetes-list-type": "set", "x-kubernetes-map-type": "atomic"}}}),
        ];
        for schema in bad {
            assert!(Schema::compile(&schema).is_err(), "{schema}");
        }
    }

    #[test]
    fn deep_schemas_are_rejected_not_overflowing() {
        let mut v = json!({"type": "string"});
        for _ in 0..500 {
            v = json!({"type": "object", "properties": {"a": v}});
        }
        let errs = Schema::compile(&v).expect_err("too deep");
        assert!(errs[0].detail.contains("nested deeper"));
    }
}
