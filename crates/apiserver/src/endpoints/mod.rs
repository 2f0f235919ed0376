//! What the chain dispatches to: discovery and OpenAPI documents, virtual resources, and the
//! generic resource verbs over the registry; options parsing and response rendering.

pub mod discovery;
pub mod options;
pub mod render;
pub mod resource;
