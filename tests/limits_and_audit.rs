//! Audit logging (policy levels, event shape, kcp's workspace annotation), overload
//! protection (in-flight budgets, watches per user) and metrics (kube-apiserver's names,
//! a series count that does not grow with workspaces), end to end against real kplex
//! processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Backend, Kplex, eventually, path_str};
use serde_json::Value;

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources:
  - group: ""
    resources: ["secrets"]
- level: Request
  verbs: ["create"]
  resources:
  - group: ""
    resources: ["configmaps"]
- level: Metadata
"#;

fn audit_events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn find<'a>(events: &'a [Value], verb: &str, resource: &str, name: &str) -> Option<&'a Value> {
    events.iter().find(|e| {
        e["verb"] == verb
            && e["objectRef"]["resource"] == resource
            && e["objectRef"]["name"] == name
    })
}

#[test]
fn audit_log_follows_the_policy() {
    let files = tempfile::tempdir().unwrap();
    let policy = files.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let log = files.path().join("audit.log");
    let k = Kplex::start_with_args(
        Backend::Embedded,
        &[
            "--audit-log-path",
            path_str(&log),
            "--audit-policy-file",
            path_str(&policy),
        ],
    );
    k.ok(&["create", "configmap", "cm1", "--from-literal=a=b"]);
    k.ok(&["get", "configmap", "cm1"]);
    k.ok(&["create", "secret", "generic", "s1", "--from-literal=a=b"]);
    k.ok(&["get", "secret", "s1"]);

    let events = eventually(10, "audit events of the configmap get", || {
        let events = audit_events(&log);
        find(&events, "get", "configmaps", "cm1")
            .is_some()
            .then_some(events)
    });
    let created = events
        .iter()
        .find(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "configmaps")
        .expect("an event for the configmap create");
    assert_eq!(created["kind"], "Event");
    assert_eq!(created["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(created["stage"], "ResponseComplete");
    assert_eq!(created["level"], "Request");
    assert_eq!(created["user"]["username"], "kplex-admin");
    assert!(
        created["user"]["groups"]
            .as_array()
            .unwrap()
            .contains(&"system:masters".into())
    );
    assert_eq!(created["objectRef"]["namespace"], "default");
    assert_eq!(created["objectRef"]["apiVersion"], "v1");
    assert_eq!(created["responseStatus"]["code"], 201);
    assert_eq!(
        created["requestObject"]["metadata"]["name"], "cm1",
        "{created}"
    );
    assert_eq!(created["annotations"]["tenancy.kcp.io/workspace"], "root");
    assert_eq!(created["sourceIPs"][0], "127.0.0.1");
    assert!(
        created["userAgent"]
            .as_str()
            .unwrap()
            .starts_with("kubectl")
    );
    assert!(created["auditID"].as_str().unwrap().len() == 36);
    assert!(
        created["requestURI"]
            .as_str()
            .unwrap()
            .contains("/api/v1/namespaces/default/configmaps?")
    );

    let got = find(&events, "get", "configmaps", "cm1").unwrap();
    assert_eq!(got["level"], "Metadata");
    assert_eq!(got["responseStatus"]["code"], 200);
    assert!(got.get("requestObject").is_none());
    assert_eq!(got["annotations"]["tenancy.kcp.io/workspace"], "root");

    // The None rule keeps secrets out of the log entirely.
    assert!(
        !events
            .iter()
            .any(|e| e["objectRef"]["resource"] == "secrets"),
        "secrets audited: {events:?}"
    );
}

/// A watch stream kept open by curl; its response headers land in a file once it started.
struct Watch {
    child: Child,
    headers: PathBuf,
}

impl Watch {
    fn open(k: &Kplex, name: &str) -> Self {
        let headers = k.dir.path().join(format!("{name}.headers"));
        let child = Command::new("curl")
            .args(["-sS", "-N", "--cacert"])
            .arg(k.root().join("ca.crt"))
            .arg("-H")
            .arg(format!("Authorization: Bearer {}", k.token()))
            .arg("-D")
            .arg(&headers)
            .arg("-o")
            .arg("/dev/null")
            .arg(k.url("/api/v1/namespaces/default/configmaps?watch=1"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, headers }
    }

    fn started(&self) -> bool {
        std::fs::read_to_string(&self.headers).is_ok_and(|h| h.contains(" 200"))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (code, headers) of a watch given up on after a second.
fn try_watch(k: &Kplex) -> (String, String) {
    let (out, _) = k.curl(&[
        "-m",
        "1",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &k.url("/api/v1/namespaces/default/configmaps?watch=1"),
    ]);
    let code = out
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_string();
    (code, out)
}

#[test]
fn watches_per_user_are_capped() {
    let k = Kplex::start_with_args(Backend::Embedded, &["--max-watches-per-user", "2"]);
    let first = Watch::open(&k, "first");
    let second = Watch::open(&k, "second");
    eventually(10, "two watches streaming", || {
        (first.started() && second.started()).then_some(())
    });
    let (code, headers) = try_watch(&k);
    assert_eq!(code, "429", "{headers}");
    assert!(
        headers.to_ascii_lowercase().contains("retry-after: 1"),
        "{headers}"
    );
    // Other requests of the same user are not affected.
    k.ok(&["get", "configmaps"]);
    // A closed stream gives its slot back.
    drop(first);
    eventually(20, "a watch slot freed", || {
        (try_watch(&k).0 == "200").then_some(())
    });
    drop(second);
}

const TOKENS: &str = "alice-token,alice,1001,\"dev\"\n";

/// A POST whose body never ends until the returned sender is dropped: it holds a mutating
/// slot meanwhile.
fn slow_post(k: &Kplex) -> (Child, std::sync::mpsc::Sender<()>) {
    let mut child = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(k.root().join("ca.crt"))
        .args([
            "-H",
            "Authorization: Bearer alice-token",
            "-H",
            "Content-Type: application/json",
            "-X",
            "POST",
            "-T",
            "-",
            "-o",
            "/dev/null",
        ])
        .arg(k.url("/api/v1/namespaces/default/configmaps"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // More than curl's upload buffer, so that it surely sends the request instead of waiting
    // for more input; written from a thread since curl stops reading if answered at once.
    let mut stdin = child.stdin.take().unwrap();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut prefix = b"{".to_vec();
        prefix.resize(256 * 1024, b' ');
        let _ = stdin.write_all(&prefix);
        let _ = stdin.flush();
        let _ = wait.recv();
    });
    (child, done)
}

/// (code, headers) of a request by alice.
fn alice(k: &Kplex, method: &str, path: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(k.root().join("ca.crt"))
        .args([
            "-H",
            "Authorization: Bearer alice-token",
            "-H",
            "Content-Type: application/json",
            "-X",
            method,
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-m",
            "10",
        ])
        // A body only where one belongs: a GET's body is never read, and an HTTP/2 client
        // still uploading it when the answer comes may see a reset stream instead.
        .args(if method == "GET" {
            &[][..]
        } else {
            &["-d", "{}"][..]
        })
        .arg(k.url(path))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = headers
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_string();
    (code, headers)
}

#[test]
fn mutating_requests_in_flight_are_capped() {
    let files = tempfile::tempdir().unwrap();
    let tokens = files.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS).unwrap();
    let k = Kplex::start_with_args(
        Backend::Embedded,
        &[
            "--token-auth-file",
            path_str(&tokens),
            "--max-mutating-requests-inflight",
            "1",
        ],
    );
    let path = "/api/v1/namespaces/default/configmaps";
    let (mut held, mut release) = slow_post(&k);
    let headers = eventually(20, "a 429 while the slot is held", || {
        let (code, headers) = alice(&k, "POST", path);
        if code == "429" && held.try_wait().unwrap().is_none() {
            return Some(headers);
        }
        // The slot is free: the probe reached the server before the slow request, which got
        // the 429 itself (its curl may linger on stdin). Start the slow one again.
        let _ = held.kill();
        let _ = held.wait();
        (held, release) = slow_post(&k);
        std::thread::sleep(Duration::from_millis(200));
        None
    });
    assert!(
        headers.to_ascii_lowercase().contains("retry-after: 1"),
        "{headers}"
    );
    // Reads have their own budget; system:masters is never limited (as in kube).
    assert_eq!(alice(&k, "GET", path).0, "403");
    k.ok(&["create", "configmap", "by-admin"]);
    // Ending the held body frees the slot.
    drop(release);
    let _ = held.wait();
    eventually(10, "the slot freed", || {
        (alice(&k, "POST", path).0 == "403").then_some(())
    });
}

#[test]
fn bad_audit_policy_fails_start() {
    let files = tempfile::tempdir().unwrap();
    let policy = files.path().join("policy.yaml");
    std::fs::write(&policy, "rules: [{level: Loud}]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kplex"))
        .arg("start")
        .arg("--root-directory")
        .arg(files.path().join("root"))
        .arg("--secure-port")
        .arg(kplex_testing::free_port().to_string())
        .arg("--audit-log-path")
        .arg(files.path().join("audit.log"))
        .arg("--audit-policy-file")
        .arg(&policy)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = {
        let mut child = out;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().unwrap().is_some() {
                break child.wait_with_output().unwrap();
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("kplex started with an invalid audit policy");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("audit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The series `/metrics` exposes (lines that are not comments).
fn series(k: &Kplex) -> Vec<String> {
    let text = k.curl(&[&k.url("/metrics")]).0;
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplit_once(' ').map_or(l, |(name, _)| name).to_string())
        .collect()
}

/// Workspaces `from..to` under root, each with a ConfigMap, through kubectl.
fn tenants(k: &Kplex, from: usize, to: usize) {
    for i in from..to {
        common::create_workspace(k, "root", &format!("tenant-{i}"), None);
        common::ws_ok(
            k,
            &format!("root:tenant-{i}"),
            &["create", "configmap", "c"],
        );
        common::ws_ok(k, &format!("root:tenant-{i}"), &["get", "configmaps"]);
    }
}

/// Metrics carry kube-apiserver's names and labels, and no label names a workspace: the
/// same requests in more workspaces add no series.
#[test]
fn metrics_use_kubes_names_and_do_not_grow_with_workspaces() {
    let k = Kplex::start(Backend::Embedded);
    tenants(&k, 0, 3);
    let before = series(&k);
    tenants(&k, 3, 23);
    let after = series(&k);
    let new: Vec<&String> = after.iter().filter(|s| !before.contains(s)).collect();
    assert!(
        new.is_empty(),
        "series added by 20 more workspaces: {new:#?}"
    );
    assert!(!after.iter().any(|s| s.contains("tenant-")), "{after:#?}");
    let text = after.join("\n");
    for want in [
        r#"apiserver_request_total{verb="POST",dry_run="",group="",version="v1",resource="configmaps",subresource="",scope="namespace",component="apiserver",code="201"}"#,
        r#"apiserver_request_total{verb="GET",dry_run="",group="tenancy.kcp.io",version="v1alpha1",resource="workspaces",subresource="",scope="resource""#,
        "apiserver_request_duration_seconds_bucket{",
        "apiserver_response_sizes_bucket{",
        "apiserver_current_inflight_requests{",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        r#"etcd_request_duration_seconds_count{operation="create",type="configmaps"}"#,
        // kplex's own: the embedded store's group commits, the watch caches' fall-behinds.
        "kplex_store_commit_duration_seconds_bucket{",
        "kplex_store_commit_batch_size_count",
        "kplex_watch_cache_lagged_total",
        "kplex_watch_cache_expired_total",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    // Stored objects per resource, all workspaces together (kube's storage gauges, counted
    // again at most every 10 s).
    let value = |raw: &str, series: &str| -> Option<i64> {
        raw.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    };
    let raw = eventually(20, "the storage gauges to count every workspace", || {
        let raw = k.curl(&[&k.url("/metrics")]).0;
        let workspaces = value(
            &raw,
            r#"apiserver_storage_objects{resource="workspaces.tenancy.kcp.io"}"#,
        );
        (workspaces == Some(23)).then_some(raw)
    });
    // Workspaces by phase (and their logical clusters), all Ready.
    assert_eq!(
        value(
            &raw,
            r#"kplex_objects_by_phase{resource="workspaces.tenancy.kcp.io",phase="Ready"}"#
        ),
        Some(23)
    );
    assert!(
        value(
            &raw,
            r#"kplex_objects_by_phase{resource="logicalclusters.core.kcp.io",phase="Ready"}"#
        ) >= Some(23)
    );
    assert!(value(&raw, r#"apiserver_storage_objects{resource="configmaps"}"#) >= Some(23));
    assert!(
        value(
            &raw,
            r#"apiserver_storage_size_bytes{storage_cluster_id=""}"#
        ) > Some(0)
    );
    // A watch is a long-running request and a registered watcher while it streams.
    let mut watch = k.spawn_kubectl(&["get", "configmaps", "--watch"]);
    let watching = eventually(20, "the watch to be counted", || {
        let now = k.curl(&[&k.url("/metrics")]).0;
        now.lines()
            .any(|l| {
                l.starts_with(
                    r#"apiserver_registered_watchers{group="",version="v1",kind="ConfigMap"} 1"#,
                )
            })
            .then_some(now)
    });
    assert!(
        watching.contains(r#"apiserver_longrunning_requests{verb="WATCH""#),
        "{watching}"
    );
    // The watch is served from the ConfigMaps' watch cache, whose window shows.
    for want in [
        r#"kplex_watch_cache_watchers{resource="configmaps"} 1"#,
        r#"kplex_watch_cache_window_revisions{resource="configmaps"}"#,
        r#"kplex_watch_cache_window_events{resource="configmaps"}"#,
    ] {
        assert!(watching.contains(want), "{want} missing:\n{watching}");
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
}

/// `--log-format json` (kube-apiserver's `--logging-format=json`): every line kplex logs is
/// one JSON object with a timestamp, level and message, for log collectors — the line that
/// says it is ready included.
#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut kplex = Command::new(env!("CARGO_BIN_EXE_kplex"))
        .args([
            "start",
            "--log-format",
            "json",
            "--secure-port",
            &port.to_string(),
        ])
        .arg("--root-directory")
        .arg(dir.path().join("root"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = kplex.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let ready = line.contains("kplex is ready on");
        lines.push(line);
        if ready {
            break;
        }
    }
    let _ = kplex.kill();
    let _ = kplex.wait();
    assert!(
        lines.iter().any(|l| l.contains("kplex is ready on")),
        "never ready: {lines:#?}"
    );
    for line in &lines {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        for field in ["timestamp", "level", "message"] {
            assert!(entry.get(field).is_some(), "no {field}: {line}");
        }
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Metric names a PromQL text uses: identifiers of kplex's families, with the series
/// suffixes (`_total`, `_bucket`, …) taken off.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    const FAMILIES: &[&str] = &["apiserver_", "etcd_", "workqueue_", "kplex_", "process_"];
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| FAMILIES.iter().any(|f| t.starts_with(f)))
        .map(family)
        .collect()
}

fn family(name: &str) -> String {
    ["_bucket", "_count", "_sum", "_total", "_created"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
        .to_string()
}

/// The Grafana dashboard and the alert rules in `deploy/monitoring` use only metrics kplex
/// serves (a renamed metric would leave an empty panel or a silent alert), and every alert
/// links a runbook that `docs/operations.md` has.
#[test]
fn the_dashboard_and_alerts_use_metrics_kplex_serves() {
    let k = Kplex::start(Backend::Embedded);
    // Traffic of every kind the panels show: reads, writes, an open watch with events.
    let mut watch = k.spawn_kubectl(&["get", "configmaps", "--watch"]);
    k.ok(&["get", "configmaps"]);
    let text = eventually(10, "the watch and its events counted", || {
        k.ok(&["create", "configmap", &format!("c{}", rand_suffix())]);
        let text = k.curl(&[&k.url("/metrics")]).0;
        text.contains("apiserver_watch_events_total{")
            .then_some(text)
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let served: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(family)
        .collect();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard =
        std::fs::read_to_string(repo.join("deploy/monitoring/grafana-dashboard.json")).unwrap();
    let parsed: Value = serde_json::from_str(&dashboard).unwrap();
    let panels = parsed["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    for panel in panels {
        assert!(!panel["targets"][0]["expr"].as_str().unwrap().is_empty());
    }
    let alerts = std::fs::read_to_string(repo.join("deploy/monitoring/alerts.yaml")).unwrap();
    for (file, used) in [
        ("grafana-dashboard.json", metric_names(&dashboard)),
        ("alerts.yaml", metric_names(&alerts)),
    ] {
        assert!(used.len() >= 5, "{file}: {used:?}");
        for name in &used {
            // Served once a webhook has been called, as kube's is (one series per webhook):
            // `tests/webhooks.rs` checks it.
            if name == "apiserver_admission_webhook_admission_duration_seconds" {
                continue;
            }
            assert!(
                served.contains(name),
                "{file} uses {name}, which kplex does not serve"
            );
        }
    }
    let guide = std::fs::read_to_string(repo.join("docs/operations.md")).unwrap();
    let alert_names: Vec<&str> = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alert_names.len() >= 5);
    for alert in alert_names {
        assert!(
            alerts.contains(&format!(
                "runbook_url: docs/operations.md#{}",
                alert.to_lowercase()
            )),
            "{alert} links no runbook"
        );
        assert!(
            guide.contains(&format!("#### {alert}")),
            "no runbook for {alert} in docs/operations.md"
        );
    }
}

/// `/clusters/<ws>/metrics` answers a workspace's admin with that workspace's object counts
/// and nothing else — no other workspace's figures, no process metrics.
#[test]
fn a_workspace_serves_its_own_object_counts() {
    let k = Kplex::start(Backend::Embedded);
    common::create_workspace(&k, "root", "team", None);
    for name in ["a", "b", "c"] {
        common::ws_ok(&k, "root:team", &["create", "configmap", name]);
    }
    k.ok(&["create", "configmap", "in-root"]);
    let ours = common::ws_ok(&k, "root:team", &["get", "configmaps", "-A", "-o", "name"]);
    let text = k.curl(&[&k.url("/clusters/root:team/metrics")]).0;
    let want = format!(
        "apiserver_storage_objects{{resource=\"configmaps\"}} {}",
        ours.lines().count()
    );
    assert!(text.contains(&want), "{want} not in:\n{text}");
    for global in ["apiserver_request_total", "process_", "workqueue_"] {
        assert!(
            !text.contains(global),
            "{global} in a workspace's metrics:\n{text}"
        );
    }
}

/// Per-workspace figures only when asked for, and bounded: the N busiest workspaces plus
/// the named ones, labelled by path; the others stay out.
#[test]
fn per_workspace_figures_are_opt_in_and_bounded() {
    let k = Kplex::start_with_args(
        Backend::Embedded,
        &[
            "--metrics-top-workspaces",
            "2",
            "--metrics-workspaces",
            "root:quiet",
        ],
    );
    for name in ["busy", "calm", "quiet"] {
        common::create_workspace(&k, "root", name, None);
    }
    for _ in 0..8 {
        common::ws_ok(&k, "root:busy", &["get", "configmaps"]);
    }
    common::ws_ok(&k, "root:calm", &["get", "configmaps"]);
    let raw = k.curl(&[&k.url("/metrics")]).0;
    let mut shown: Vec<&str> = raw
        .lines()
        .filter_map(|l| l.strip_prefix(r#"kplex_workspace_requests_total{workspace=""#))
        .filter_map(|l| l.split('"').next())
        .collect();
    shown.sort();
    // The root workspace (where the workspaces were made) and root:busy are the two
    // busiest; root:quiet is named; root:calm is neither.
    assert_eq!(shown, ["root", "root:busy", "root:quiet"], "{raw}");
    let busy = raw
        .lines()
        .find_map(|l| l.strip_prefix(r#"kplex_workspace_requests_total{workspace="root:busy"} "#))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap();
    assert!(busy >= 8.0, "{busy}");
    assert!(
        raw.contains(r#"kplex_workspace_request_duration_seconds_total{workspace="root:busy"}"#)
    );
}
