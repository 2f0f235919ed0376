//! Prometheus metrics served at `/metrics`, under kube-apiserver's names and labels so that
//! existing dashboards and alerts work: `apiserver_request_total`,
//! `apiserver_request_duration_seconds`, `apiserver_response_sizes`,
//! `apiserver_current_inflight_requests`, `apiserver_longrunning_requests`,
//! `apiserver_registered_watchers`, `apiserver_watch_events_total`, and `process_*`.
//!
//! No label names a workspace: the series count depends on the resources served, not on
//! how many workspaces there are. Requests answered 404 are counted without their group,
//! version and resource, so made-up URLs cannot grow the series count either.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// What kube-apiserver labels a request with (`apiserver_request_total` adds `code`).
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `GET`, `LIST`, `WATCH`, `POST`, `PUT`, `PATCH`, `APPLY`, `DELETE`, or the HTTP
    /// method of a non-resource request.
    pub verb: &'static str,
    pub dry_run: &'static str,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    /// `resource` (one object), `namespace`, `cluster`, or "" (non-resource).
    pub scope: &'static str,
    pub component: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    #[prometheus(flatten)]
    request: RequestLabels,
    code: String,
}

/// kube's labels of a kind's watch metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub group: String,
    pub version: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InflightLabels {
    request_kind: &'static str,
}

type Histograms = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// kube-apiserver's latency buckets (seconds).
fn duration_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
        10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
    ])
}

/// kube-apiserver's response-size buckets (bytes): 1 KB × 10ⁿ.
fn size_histogram() -> Histogram {
    Histogram::new((0..8).map(|n| 1000.0 * 10f64.powi(n)))
}

/// The request metrics of the API server.
pub struct Metrics {
    requests: Family<CodeLabels, Counter>,
    durations: Histograms,
    sizes: Histograms,
    inflight: Family<InflightLabels, Gauge>,
    longrunning: Family<RequestLabels, Gauge>,
    pub watchers: Family<KindLabels, Gauge>,
    pub watch_events: Family<KindLabels, Counter>,
}

impl Metrics {
    /// Registers the request metrics in the process's registry, under kube's names.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            sizes: Family::new_with_constructor(size_histogram),
            inflight: Family::default(),
            longrunning: Family::default(),
            watchers: Family::default(),
            watch_events: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("apiserver");
        // prometheus-client appends `_total` to counters.
        r.register(
            "request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            m.requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            Unit::Seconds,
            m.durations.clone(),
        );
        r.register(
            "response_sizes",
            "Response size distribution in bytes for each group, version, verb, resource, subresource, scope and component.",
            m.sizes.clone(),
        );
        r.register(
            "current_inflight_requests",
            "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
            m.inflight.clone(),
        );
        r.register(
            "longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component.",
            m.longrunning.clone(),
        );
        r.register(
            "registered_watchers",
            "Number of currently registered watchers for a given resources",
            m.watchers.clone(),
        );
        r.register(
            "watch_events",
            "Number of events sent in watch clients",
            m.watch_events.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        m
    }

    /// Counts a request that is starting (read-only or mutating, by its `verb`); the guard
    /// counts it done when dropped.
    pub fn start(&self, verb: &str) -> InflightGuard {
        let request_kind = match verb {
            "GET" | "LIST" | "HEAD" | "OPTIONS" => "readOnly",
            _ => "mutating",
        };
        let gauge = self
            .inflight
            .get_or_create_owned(&InflightLabels { request_kind });
        gauge.inc();
        InflightGuard(gauge)
    }

    /// Counts a watch, a long-running request, until the guard is dropped.
    pub fn start_long_running(&self, labels: &RequestLabels) -> InflightGuard {
        let gauge = self.longrunning.get_or_create_owned(labels);
        gauge.inc();
        InflightGuard(gauge)
    }

    /// Records a finished request (watches: once their response has started).
    pub fn record(&self, mut labels: RequestLabels, code: u16, seconds: f64, size: Option<u64>) {
        if code == 404 {
            // Unbounded otherwise: any URL names some group and resource.
            labels.group.clear();
            labels.version.clear();
            labels.resource.clear();
            labels.subresource.clear();
        }
        if labels.verb != "WATCH" {
            self.durations.get_or_create(&labels).observe(seconds);
            if let Some(size) = size {
                self.sizes.get_or_create(&labels).observe(size as f64);
            }
        }
        self.requests
            .get_or_create(&CodeLabels {
                request: labels,
                code: code.to_string(),
            })
            .inc();
    }
}

/// Keeps a request counted in flight (or long-running) until dropped.
pub struct InflightGuard(Gauge);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `process_*` of this process, read from `/proc` at each scrape (as client_golang's process
/// collector does): CPU seconds, resident and virtual memory, open file descriptors, start
/// time.
#[derive(Debug)]
struct ProcessCollector;

/// Clock ticks per second of `/proc/self/stat` times (`sysconf(_SC_CLK_TCK)` is 100 on
/// Linux for every architecture kplex builds for).
const TICKS_PER_SECOND: f64 = 100.0;

/// Bytes per page of `/proc` memory figures (4 KiB on the x86-64 and arm64 kernels kplex
/// is built for and tested on).
const PAGE_SIZE: f64 = 4096.0;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stat) = read_stat() else {
            return Ok(());
        };
        let page = PAGE_SIZE;
        let gauges: [(&str, &str, f64); 4] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                stat.rss_pages as f64 * page,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stat.vsize as f64,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                open_fds() as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                boot_time().unwrap_or(0.0) + stat.start_ticks as f64 / TICKS_PER_SECOND,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = ConstGauge::new(value);
            let e = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
            metric.encode(e)?;
        }
        let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / TICKS_PER_SECOND);
        let e = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?;
        cpu.encode(e)
    }
}

struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

/// The fields of `/proc/self/stat` the collector reports (after the command name, which
/// may hold spaces, so fields are counted from its closing parenthesis).
fn read_stat() -> Option<Stat> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        utime: num(14)?,
        stime: num(15)?,
        start_ticks: num(22)?,
        vsize: num(23)?,
        rss_pages: num(24)?,
    })
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// When the machine booted (`btime` of `/proc/stat`), in Unix seconds.
fn boot_time() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_metrics_are_read_from_proc() {
        let stat = read_stat().unwrap();
        assert!(stat.rss_pages > 0 && stat.vsize > 0);
        assert!(open_fds() > 0);
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        let labels = RequestLabels {
            verb: "GET",
            resource: "configmaps".into(),
            scope: "resource",
            component: "apiserver",
            ..Default::default()
        };
        drop(m.start(labels.verb));
        m.record(labels.clone(), 200, 0.01, Some(1500));
        m.record(
            RequestLabels {
                resource: "made-up".into(),
                ..labels
            },
            404,
            0.01,
            Some(10),
        );
        let text = Exposition::new(registry).encode();
        for want in [
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "apiserver_request_total{verb=\"GET\",dry_run=\"\",group=\"\",version=\"\",resource=\"configmaps\",subresource=\"\",scope=\"resource\",component=\"apiserver\",code=\"200\"} 1",
            "apiserver_request_duration_seconds_bucket{",
            "apiserver_response_sizes_bucket{",
            "apiserver_current_inflight_requests{request_kind=\"readOnly\"} 0",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
        assert!(!text.contains("made-up"), "{text}");
    }
}
