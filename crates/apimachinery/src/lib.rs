//! Kubernetes object rules independent of HTTP.
