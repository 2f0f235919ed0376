//! Prometheus metrics served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub resource: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    pub verb: String,
}

/// The request metrics of the API server.
pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub durations: Family<VerbLabels, Histogram>,
    pub watches: Gauge,
}

impl Metrics {
    /// Registers the request metrics in `registry` (the server's, or a sub-registry of it).
    /// Registers under `apiserver_` in the process's registry.
    pub fn register(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("apiserver");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<VerbLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 20))
        });
        let watches = Gauge::default();
        registry.register(
            "request",
            "Requests by verb, resource and HTTP code",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request latency by verb",
            durations.clone(),
        );
        registry.register("registered_watchers", "Open watch streams", watches.clone());
        Self {
            requests,
            durations,
            watches,
        }
    }

    pub fn record(&self, verb: &str, resource: &str, code: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                verb: verb.into(),
                resource: resource.into(),
                code: code.to_string(),
            })
            .inc();
        self.durations
            .get_or_create(&VerbLabels { verb: verb.into() })
            .observe(seconds);
    }
}

/// The one Prometheus registry of the process, built at start: every component registers
/// its metrics in it (or in a sub-registry of it) before serving starts; `/metrics` encodes it.
pub struct Exposition(Registry);

impl Exposition {
    pub fn new(registry: Registry) -> Self {
        Self(registry)
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0);
        out
    }
}
