//! The generic registry: how objects are kept in the store ([`object`]), and (moving here
//! from `kplex-apiserver`) resource descriptions and generic REST over the store.

// ApiError is a Kubernetes Status with details: large, but only on the error path.
#![allow(clippy::result_large_err)]

pub mod object;
