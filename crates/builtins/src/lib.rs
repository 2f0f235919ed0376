//! The built-in Kubernetes kinds (a feature: data and strategies, no HTTP): the table of what every logical cluster serves
//! ([`kinds`]) and the rules of the few with rules of their own ([`strategies`]).

// ApiError is a Kubernetes Status with details: large, but only on the error path.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod component_status;
pub mod controllers;
pub mod events;
pub mod feature;
pub mod hpa;
pub mod kinds;
pub mod pods;
pub mod strategies;

pub use kinds::all;
