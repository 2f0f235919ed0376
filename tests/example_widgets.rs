//! The worked example in examples/widgets, end to end: the README's shell blocks run
//! verbatim by bash (with the real kubectl and this repository's kubectl plugins) against a
//! fresh kplex, and the example controller (`widgets-controller`) as a real process that
//! watches every consumer through the APIExport's virtual workspace and writes status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Backend, Kplex, create_workspace, eventually, json, kubectl_binary, ws_ok, ws_ok_stdin,
};

const README: &str = include_str!("../examples/widgets/README.md");
const SCHEMA: &str = include_str!("../examples/widgets/schema.yaml");
const EXPORT: &str = include_str!("../examples/widgets/export.yaml");
const WIDGET: &str = include_str!("../examples/widgets/widget.yaml");

/// Makes user bob admin of the workspace it is applied in (and nothing else).
const BOB_ADMIN: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bob-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
";

/// An APIBinding like the one `kubectl kplex bind apiexport root:provider:widgets` creates.
const BINDING: &str = "apiVersion: apis.kcp.io/v1alpha2
kind: APIBinding
metadata: {name: widgets}
spec:
  reference: {export: {path: 'root:provider', name: widgets}}
";

/// The README's fenced blocks, in order.
fn blocks() -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in README.lines() {
        if line.starts_with("```") {
            match current.take() {
                Some(lines) => out.push(lines.join("\n")),
                None => current = Some(Vec::new()),
            }
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    out
}

/// The README block whose first line is `first`, and the block after it (its output).
fn block(first: &str) -> (String, String) {
    let all = blocks();
    let i = all
        .iter()
        .position(|b| b.lines().next() == Some(first))
        .unwrap_or_else(|| panic!("the README has no block starting with {first:?}"));
    (all[i].clone(), all.get(i + 1).cloned().unwrap_or_default())
}

/// Rows of words: kubectl's tables compared without caring about column padding.
fn table(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|r| !r.is_empty())
        .collect()
}

/// The user's terminal: a directory laid out like the repository after
/// `bash scripts/run.sh` (`.kplex/admin.kubeconfig`, `examples/`), kubectl with the
/// repository's plugins first on PATH, and a HOME of its own.
struct Terminal<'a> {
    k: &'a Kplex,
    dir: PathBuf,
    path: OsString,
}

impl<'a> Terminal<'a> {
    fn new(k: &'a Kplex) -> Self {
        let dir = k.dir.path().join("repo");
        std::fs::create_dir_all(dir.join(".kplex")).unwrap();
        std::fs::copy(k.kubeconfig(), dir.join(".kplex/admin.kubeconfig")).unwrap();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        std::os::unix::fs::symlink(examples, dir.join("examples")).unwrap();
        let plugins = Path::new(env!("CARGO_BIN_EXE_kubectl-kplex"))
            .parent()
            .unwrap()
            .to_path_buf();
        let kubectl = kubectl_binary().parent().unwrap().to_path_buf();
        let mut dirs = vec![plugins, kubectl];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let path = std::env::join_paths(dirs).unwrap();
        Self { k, dir, path }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join(".kplex/admin.kubeconfig")
    }

    /// Runs `script` with bash in the terminal; returns stdout, panics when it fails.
    #[track_caller]
    fn run(&self, script: &str) -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{script}"))
            .current_dir(&self.dir)
            .env("PATH", &self.path)
            .env("HOME", self.k.home())
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "script failed:\n{script}\nstdout:\n{stdout}\nstderr:\n{}\nkplex log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.k.log()
        );
        stdout
    }

    /// Runs the README block that starts with `first`; returns (stdout, the README's output).
    #[track_caller]
    fn run_block(&self, first: &str) -> (String, String) {
        let (script, expected) = block(first);
        (self.run(&script), expected)
    }
}

/// `target/<profile>/examples/widgets-controller`, next to this test's `deps/` directory.
fn controller_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile.join("examples").join(format!(
        "widgets-controller{}",
        std::env::consts::EXE_SUFFIX
    ));
    let hint = "build it with `cargo build --example widgets-controller` (`cargo test` and \
                `cargo nextest run` build examples, but not when given --test)";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {hint}", bin.display()));
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/widgets/controller.rs");
    let written = std::fs::metadata(&source).unwrap().modified().unwrap();
    assert!(
        built >= written,
        "{} is older than {}: {hint}",
        bin.display(),
        source.display()
    );
    bin
}

/// The example controller, running; killed when dropped.
struct Controller {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Controller {
    /// Starts the controller as the README's `cargo run --example widgets-controller -- ARGS`
    /// line does, in the terminal's directory.
    fn start(t: &Terminal, name: &str) -> Self {
        let (script, _) = block(
            "cargo run --example widgets-controller -- --kubeconfig .kplex/admin.kubeconfig --workspace root:provider",
        );
        let args: Vec<&str> = script
            .split_once(" -- ")
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let stdout = t.k.dir.path().join(format!("{name}.out"));
        let stderr = t.k.dir.path().join(format!("{name}.err"));
        let child = Command::new(controller_binary())
            .args(&args)
            .current_dir(&t.dir)
            .env_remove("KUBECONFIG")
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn log(&self) -> String {
        format!(
            "controller stdout:\n{}\ncontroller stderr:\n{}",
            self.output(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// The `reconciled …` lines so far.
    fn reconciled(&self) -> Vec<String> {
        self.output()
            .lines()
            .filter(|l| l.starts_with("reconciled "))
            .map(str::to_string)
            .collect()
    }

    /// Waits until `f` holds; on timeout, panics with the controller's and kplex's logs.
    #[track_caller]
    fn wait(&self, k: &Kplex, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}\nkplex log:\n{}",
                self.log(),
                k.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The logical cluster behind `root:<name>`.
fn cluster_of(k: &Kplex, name: &str) -> String {
    ws_ok(
        k,
        "root",
        &["get", "workspace", name, "-o", "jsonpath={.spec.cluster}"],
    )
}

/// `default/my-widget` in `root:<team>`.
fn my_widget(k: &Kplex, team: &str) -> serde_json::Value {
    json(&ws_ok(
        k,
        &format!("root:{team}"),
        &["get", "widget", "my-widget", "-n", "default", "-o", "json"],
    ))
}

/// Waits until the controller has written `size` as observed into team's widget, and
/// logged it.
#[track_caller]
fn wait_observed(k: &Kplex, c: &Controller, team: &str, size: i64) {
    c.wait(
        k,
        &format!("status of {team}'s widget at size {size}"),
        || {
            let w = my_widget(k, team);
            assert_eq!(w["spec"]["size"], size, "{w}");
            w["status"]["ready"] == true && w["status"]["observedSize"] == size
        },
    );
    let line = format!(
        "reconciled {}/default/my-widget size={size}",
        cluster_of(k, team)
    );
    c.wait(k, &format!("the controller to log {line:?}"), || {
        c.output().lines().any(|l| l == line)
    });
}

#[test]
fn readme_walkthrough() {
    let k = Kplex::start(Backend::Embedded);
    let t = Terminal::new(&k);

    // 2. The provider publishes the API: the snapshot of crd.yaml is schema.yaml, and the
    //    export is export.yaml.
    t.run_block("export KUBECONFIG=.kplex/admin.kubeconfig");
    let snapshot = Command::new(env!("CARGO_BIN_EXE_kubectl-kplex"))
        .args(["crd", "snapshot", "-f", "examples/widgets/crd.yaml"])
        .args(["--prefix", "v1", "-o", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        snapshot.status.success(),
        "{}",
        String::from_utf8_lossy(&snapshot.stderr)
    );
    // kubectl parses schema.yaml (client-side, nothing is sent to the server).
    let parsed = t.run(&format!(
        "kubectl create --dry-run=client -o json -f - <<'YAML'\n{SCHEMA}\nYAML"
    ));
    assert_eq!(
        json(&parsed),
        json(&String::from_utf8_lossy(&snapshot.stdout)),
        "schema.yaml must be what `kubectl kplex crd snapshot -f examples/widgets/crd.yaml --prefix v1` prints"
    );
    // The README's alternative: applying schema.yaml changes nothing.
    let again = t.run("kubectl apply -f examples/widgets/schema.yaml");
    assert!(again.contains("unchanged"), "{again}");
    assert!(README.contains("kubectl apply -f examples/widgets/schema.yaml"));
    let export = json(&ws_ok(
        &k,
        "root:provider",
        &[
            "get",
            "apiexports.v1alpha2.apis.kcp.io",
            "widgets",
            "-o",
            "json",
        ],
    ));
    let declared = json(&t.run(&format!(
        "kubectl create --dry-run=client -o json -f - <<'YAML'\n{EXPORT}\nYAML"
    )));
    assert_eq!(export["spec"]["resources"], declared["spec"]["resources"]);
    assert_eq!(
        export["spec"]["resources"][0]["schema"],
        "v1.widgets.example.dev"
    );
    // Granting bind: every authenticated user may bind the export.
    t.run_block("kubectl apply -f - <<'YAML'");
    // Bob, admin of his own workspace only, may now bind the export there.
    create_workspace(&k, "root", "bobs", None);
    ws_ok_stdin(&k, "root:bobs", &["apply", "-f", "-"], BOB_ADMIN);
    let bound = k.ok_stdin(
        &[
            "--as",
            "bob",
            "--server",
            &k.url("/clusters/root:bobs"),
            "create",
            "-f",
            "-",
        ],
        BINDING,
    );
    assert!(bound.contains("created"), "{bound}");
    eventually(20, "bob's APIBinding to be Bound", || {
        let phase = ws_ok(
            &k,
            "root:bobs",
            &[
                "get",
                "apibinding",
                "widgets",
                "-o",
                "jsonpath={.status.phase}",
            ],
        );
        (phase == "Bound").then_some(())
    });

    // 3. Two teams bind it and create the sample widget; nobody reconciles yet.
    let (out, expected) = t.run_block("kubectl ws ..");
    assert!(table(&out).ends_with(&table(&expected)), "{out}");
    assert!(WIDGET.contains("size: 3"));
    for team in ["team-a", "team-b"] {
        let b = ws_ok(
            &k,
            &format!("root:{team}"),
            &[
                "get",
                "apibinding",
                "widgets",
                "-o",
                "jsonpath={.status.phase}",
            ],
        );
        assert_eq!(b, "Bound");
        assert!(my_widget(&k, team).get("status").is_none());
    }

    // 4. The controller finds the virtual workspace and writes both statuses.
    let c = Controller::start(&t, "controller");
    wait_observed(&k, &c, "team-a", 3);
    wait_observed(&k, &c, "team-b", 3);
    let first = c.output();
    let watching = first
        .lines()
        .find_map(|l| {
            l.strip_prefix("watching widgets in every workspace that binds the export, via ")
        })
        .unwrap_or_else(|| panic!("{}", c.log()));
    let provider = cluster_of(&k, "provider");
    assert_eq!(
        watching,
        k.url(&format!("/services/apiexport/{provider}/widgets"))
    );

    // 5. The consumers see it; team-a's change is followed; each team sees only its own.
    let (out, expected) = t.run_block("kubectl get widgets");
    assert_eq!(table(&out), table(&expected), "{out}");
    let (script, expected) = block("kubectl ws :root:team-a");
    t.run(&script);
    wait_observed(&k, &c, "team-a", 5);
    let last = script.lines().last().unwrap();
    assert_eq!(t.run(last).trim(), expected.trim());
    let mine = t.run("kubectl get widgets -A");
    assert!(README.contains("`kubectl get widgets -A` in `root:team-a` lists one"));
    assert_eq!(
        table(&mine),
        table("NAMESPACE NAME SIZE READY\ndefault my-widget 5 true"),
        "{mine}"
    );
    assert_eq!(my_widget(&k, "team-b")["status"]["observedSize"], 3);
    // The provider's view lists both teams' widgets with their clusters.
    let (view, _) = t.run_block("kubectl ws :root:provider");
    let mut rows = table(&view);
    rows.retain(|r| r[0] != "Current"); // kubectl ws's "Current workspace is …"
    rows.sort();
    let (a, b) = (cluster_of(&k, "team-a"), cluster_of(&k, "team-b"));
    let mut want = vec![
        vec!["CLUSTER", "NAMESPACE", "NAME", "SIZE", "READY"],
        vec![a.as_str(), "default", "my-widget", "5", "true"],
        vec![b.as_str(), "default", "my-widget", "3", "true"],
    ];
    want.sort();
    assert_eq!(rows, want, "{view}");

    // Beyond the README: a workspace that binds the export while the controller runs is
    // picked up by the same watch.
    t.run(
        "kubectl ws :root\nkubectl create workspace team-c --enter\n\
         kubectl kplex bind apiexport root:provider:widgets\nkubectl apply -f examples/widgets/widget.yaml",
    );
    wait_observed(&k, &c, "team-c", 3);

    // A restarted controller catches up from its initial list: it writes the widget that
    // changed while it was down, and leaves the others alone (no write, same
    // resourceVersion).
    drop(c);
    ws_ok(
        &k,
        "root:team-b",
        &[
            "patch",
            "widget",
            "my-widget",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":8}}"#,
        ],
    );
    let before_a = my_widget(&k, "team-a")["metadata"]["resourceVersion"].clone();
    let before_c = my_widget(&k, "team-c")["metadata"]["resourceVersion"].clone();
    let c = Controller::start(&t, "controller-restarted");
    wait_observed(&k, &c, "team-b", 8);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        c.reconciled(),
        vec![format!("reconciled {b}/default/my-widget size=8")],
        "{}",
        c.log()
    );
    assert_eq!(
        my_widget(&k, "team-a")["metadata"]["resourceVersion"],
        before_a
    );
    assert_eq!(
        my_widget(&k, "team-c")["metadata"]["resourceVersion"],
        before_c
    );
}
