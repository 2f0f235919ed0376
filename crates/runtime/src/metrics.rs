//! Prometheus metrics per controller.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: &'static str,
}

type Histograms = Family<QueueLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 0.5 ms … 16 s: a reconcile is a few store round trips, or a stuck one.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The metric families every controller reports into, labelled by controller name.
/// Register once per registry ([`Metrics::register`]) and hand the same `Metrics` to every
/// controller ([`crate::Controller::metrics`]), including controllers re-created each time
/// a [`crate::LeaderGate`] is won.
///
/// client-go's work-queue metrics, under their names (dashboards for kube controllers
/// work as they are), with the controller's name as `name`:
/// - `workqueue_depth{name}`: keys waiting ([`crate::WorkQueue::len`]);
/// - `workqueue_adds_total{name}`: keys added;
/// - `workqueue_work_duration_seconds{name}`: how long reconciles take;
/// - `workqueue_retries_total{name}`: keys queued again after a requeue or an error.
///
/// And kplex's own: `kplex_controller_reconcile_total{controller, result}`: reconciles by
/// result: `ok` ([`crate::Action::Done`]), `requeue` ([`crate::Action::RequeueAfter`]),
/// `error` (an `Err` or a panic).
///
/// Names are registered as written, so hand in a registry without a prefix.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<ResultLabels, Counter>,
    durations: Histograms,
    depth: Family<QueueLabels, Gauge>,
    adds: Family<QueueLabels, Counter>,
    retries: Family<QueueLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    name: String,
}

impl Metrics {
    /// Registers `workqueue_*` and `kplex_controller_*` in the process's registry.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            depth: Family::default(),
            adds: Family::default(),
            retries: Family::default(),
        };
        // prometheus-client appends `_total` to counters.
        registry
            .sub_registry_with_prefix("kplex_controller")
            .register(
                "reconcile",
                "Reconciles by controller and result (ok, requeue, error)",
                m.reconciles.clone(),
            );
        let queue = registry.sub_registry_with_prefix("workqueue");
        queue.register(
            "work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            m.durations.clone(),
        );
        queue.register("depth", "Current depth of workqueue", m.depth.clone());
        queue.register(
            "adds",
            "Total number of adds handled by workqueue",
            m.adds.clone(),
        );
        queue.register(
            "retries",
            "Total number of retries handled by workqueue",
            m.retries.clone(),
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
        let queue = QueueLabels {
            name: name.to_string(),
        };
        ControllerMetrics {
            ok: result("ok"),
            requeue: result("requeue"),
            error: result("error"),
            retries: self.retries.get_or_create_owned(&queue),
            duration: self.durations.get_or_create_owned(&queue),
            depth: self.depth.get_or_create_owned(&queue),
            adds: self.adds.get_or_create_owned(&queue),
        }
    }
}

#[derive(Clone)]
pub(crate) struct ControllerMetrics {
    pub ok: Counter,
    pub requeue: Counter,
    pub error: Counter,
    pub retries: Counter,
    pub duration: Histogram,
    pub depth: Gauge,
    pub adds: Counter,
}
