//! Prometheus metrics per controller.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: &'static str,
}

type Histograms = Family<ControllerLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 0.5 ms … 16 s: a reconcile is a few store round trips, or a stuck one.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The metric families every controller reports into, labelled by controller name.
/// Register once per registry ([`Metrics::register`]) and hand the same `Metrics` to every
/// controller ([`crate::Controller::metrics`]), including controllers re-created each time
/// a [`crate::LeaderGate`] is won.
///
/// - `kplex_controller_reconcile_total{controller, result}`: reconciles by result: `ok`
///   ([`crate::Action::Done`]), `requeue` ([`crate::Action::RequeueAfter`]), `error`
///   (an `Err` or a panic);
/// - `kplex_controller_reconcile_duration_seconds{controller}`: how long reconciles take;
/// - `kplex_controller_queue_depth{controller}`: keys waiting ([`crate::WorkQueue::len`]).
///
/// Names are registered as written, so hand in a registry without a prefix.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<ResultLabels, Counter>,
    durations: Histograms,
    depth: Family<ControllerLabels, Gauge>,
}

impl Metrics {
    /// Registers under `kplex_controller_` in the process's registry.
    pub fn register(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("kplex_controller");
        let m = Self {
            reconciles: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            depth: Family::default(),
        };
        // prometheus-client appends `_total` to counters.
        registry.register(
            "reconcile",
            "Reconciles by controller and result (ok, requeue, error)",
            m.reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time taken by one reconcile",
            m.durations.clone(),
        );
        registry.register(
            "queue_depth",
            "Keys waiting in the controller's work queue",
            m.depth.clone(),
        );
        m
    }

    /// The handles of one controller, looked up once so a reconcile allocates nothing.
    pub(crate) fn controller(&self, name: &str) -> ControllerMetrics {
        let result = |result| {
            self.reconciles.get_or_create_owned(&ResultLabels {
                controller: name.to_string(),
                result,
            })
        };
        let labels = ControllerLabels {
            controller: name.to_string(),
        };
        ControllerMetrics {
            ok: result("ok"),
            requeue: result("requeue"),
            error: result("error"),
            duration: self.durations.get_or_create_owned(&labels),
            depth: self.depth.get_or_create_owned(&labels),
        }
    }
}

#[derive(Clone)]
pub(crate) struct ControllerMetrics {
    pub ok: Counter,
    pub requeue: Counter,
    pub error: Counter,
    pub duration: Histogram,
    pub depth: Gauge,
}
