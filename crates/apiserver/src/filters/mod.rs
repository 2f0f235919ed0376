//! The stages of the request chain (see `chain.rs` for their order), one file each.

pub mod audit;
pub mod authentication;
pub mod authorization;
pub mod body;
pub mod cluster;
pub mod impersonation;
pub mod limits;
pub mod request_info;
pub mod virtual_workspaces;
