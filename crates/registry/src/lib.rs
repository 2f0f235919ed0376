//! The generic registry, below HTTP: how objects are stored ([`object`]), what a resource is
//! ([`catalog`]: descriptions with a per-kind [`registry::strategy`]), what each logical
//! cluster serves ([`served`], [`crd`]: CRDs → descriptions), and generic REST over the store
//! ([`registry`]: write, list, watch, apply, the watch cache and the admission chain), with
//! body decoding ([`codec`]) and object-count quotas ([`quota`]); and the seams features plug
//! into the server through: answers without storage ([`virtual_resource`]), views under
//! `/services/…` ([`virtual_workspace`]), work around a create
//! ([`registry::create_hook`]), objects every logical cluster shares without storing them
//! ([`shared`]).

// ApiError is a Kubernetes Status with details: large, but only on the error path.
#![allow(clippy::result_large_err)]

pub mod catalog;
pub mod clusters;
pub mod codec;
pub mod crd;
pub mod object;
pub mod quota;
pub mod registry;
pub mod served;
pub mod shared;
pub mod virtual_resource;
pub mod virtual_workspace;
