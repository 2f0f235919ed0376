//! The generic registry, below HTTP: how objects are stored ([`object`]), what a resource is
//! ([`catalog`]: descriptions with a per-kind [`registry::strategy`]), what each logical
//! cluster serves ([`served`], [`crd`]: CRDs → descriptions), and generic REST over the store
//! ([`registry`]: write, list, watch, apply, the watch cache and the admission chain), with
//! body decoding ([`codec`]) and object-count quotas ([`quota`]).

// ApiError is a Kubernetes Status with details: large, but only on the error path.
#![allow(clippy::result_large_err)]

pub mod catalog;
pub mod codec;
pub mod crd;
pub mod object;
pub mod quota;
pub mod registry;
pub mod served;
pub mod virtual_resource;
