//! `kubectl kplex`: the API commands of kcp's `kubectl kcp` plugin.
//!
//! - `bind apiexport <path>:<export>` creates an APIBinding in the current workspace and waits
//!   for it to be bound,
//! - `claims get|accept|reject apibinding ...` shows and answers an APIBinding's permission
//!   claims,
//! - `crd snapshot` converts CRDs to APIResourceSchemas ([`crate::crd_snapshot`]),
//! - `workspace` / `ws` is `kubectl ws`.
//!
//! Command lines are parsed with clap as cobra parses kcp's ([`crate::flags`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use http::Method;
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::crd_snapshot::{self, Format};
use crate::error::{Error, Result};
use crate::flags::{self, GoBool};
use crate::kubeconfig::{self, Connection, Kubeconfig};
use crate::path::{ClusterUrl, LogicalPath};
use crate::server::ApiClient;

const APIBINDINGS: &str = "apis/apis.kcp.io/v1alpha2/apibindings";
const APIEXPORTS: &str = "apis/apis.kcp.io/v1alpha2/apiexports";
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Updates of a binding retried after a 409 Conflict before giving up.
const UPDATE_ATTEMPTS: usize = 5;

const GLOBAL_FLAGS: &str = "Global Flags:
      --kubeconfig string          Path to the kubeconfig file to use
      --context string             The kubeconfig context to use
  -s, --server string              The address of the server (replaces the context's server URL)
      --token string               Bearer token for authentication to the server
      --insecure-skip-tls-verify   Do not verify the server's certificate (insecure)
  -h, --help                       Help for the command
";

pub const USAGE: &str =
    "Manages kplex (kcp-compatible) APIs: bindings, permission claims, CRD snapshots

Usage:
  kubectl kplex [command]

Available Commands:
  bind        Bind an APIExport (bind apiexport) or compute (bind compute) into the current workspace
  claims      View, accept or reject the permission claims of APIBindings
  crd         Snapshot CustomResourceDefinitions into APIResourceSchemas
  workload    Connect clusters (workload sync) and cordon, uncordon or drain them
  workspace   Manages workspaces, same as kubectl ws (alias: ws)
  help        Help about any command

Use \"kubectl kplex <command> --help\" for more information about a command.
";

pub const BIND_USAGE: &str = "Bind an APIExport into the current workspace and wait until the APIBinding is bound

Usage:
  kubectl kplex bind apiexport <workspace-path>:<apiexport-name> [--name NAME] [--accept-permission-claim RESOURCE.GROUP,...] [--reject-permission-claim RESOURCE.GROUP,...] [--timeout 30s]

Examples:
  # bind the APIExport \"widgets\" of workspace root:provider into the current workspace
  kubectl kplex bind apiexport root:provider:widgets

  # name the binding, accept the export's claim on config maps, reject the one on gadgets
  kubectl kplex bind apiexport root:provider:widgets --name my-widgets \\
      --accept-permission-claim configmaps --reject-permission-claim gadgets.example.dev

Flags:
      --name string                       Name of the APIBinding (default: the APIExport's name)
      --accept-permission-claim strings   Permission claims to accept: RESOURCE.GROUP, or RESOURCE for the core group; repeatable, comma-separated
      --reject-permission-claim strings   Permission claims to reject, in the same form
      --timeout duration                  How long to wait for the APIBinding to be bound; 0 does not wait (default 30s)
";

pub const CLAIMS_USAGE: &str = "View, accept or reject the permission claims of APIBindings

Usage:
  kubectl kplex claims get apibinding [NAME]
  kubectl kplex claims accept apibinding NAME RESOURCE.GROUP...
  kubectl kplex claims reject apibinding NAME RESOURCE.GROUP...

Claims are named RESOURCE.GROUP, or RESOURCE (or RESOURCE.core) for the core group.
Claims the binding neither accepts nor rejects are Pending.

Examples:
  # the permission claims of every APIBinding in the current workspace
  kubectl kplex claims get apibinding

  # accept the claims of binding \"widgets\" on config maps and on gadgets.example.dev
  kubectl kplex claims accept apibinding widgets configmaps gadgets.example.dev
";

pub const CRD_USAGE: &str = "Snapshot CustomResourceDefinitions into APIResourceSchemas

Usage:
  kubectl kplex crd snapshot -f FILE --prefix PREFIX [-o yaml|json]

Each CustomResourceDefinition in FILE (YAML documents separated by ---, or JSON; - reads
standard input) becomes an APIResourceSchema named PREFIX.PLURAL.GROUP, printed to standard
output.

Examples:
  kubectl kplex crd snapshot -f widgets-crd.yaml --prefix v250101 | kubectl apply -f -

Flags:
  -f, --filename string   The file holding the CustomResourceDefinitions (- for standard input)
      --prefix string     The prefix of the APIResourceSchema names, e.g. a date (v250101)
  -o, --output string     Output format: yaml or json (default yaml)
";

/// The flags that select and reach the server, shared by all commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalFlags {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub server: Option<String>,
    pub token: Option<String>,
    pub insecure_skip_tls_verify: bool,
}

/// A permission claim named on the command line: `configmaps` (core) or `widgets.example.dev`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClaimRef {
    pub resource: String,
    pub group: String,
}

impl ClaimRef {
    /// Splits at the first dot; `RESOURCE` and `RESOURCE.core` are the core group.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let (resource, group) = s.split_once('.').unwrap_or((s, ""));
        let group = if group == "core" { "" } else { group };
        let valid = !resource.is_empty()
            && resource
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && (group.is_empty()
                || group.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                }));
        if !valid {
            return Err(Error::msg(format!(
                "invalid permission claim {s:?}: expected RESOURCE.GROUP, or RESOURCE for the core group"
            )));
        }
        Ok(Self {
            resource: resource.to_string(),
            group: group.to_string(),
        })
    }

    fn matches(&self, claim: &Value) -> bool {
        claim
            .get("group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            == self.group
            && claim
                .get("resource")
                .and_then(Value::as_str)
                .unwrap_or_default()
                == self.resource
    }
}

impl std::fmt::Display for ClaimRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// What a binding says about a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimState {
    Accepted,
    Rejected,
}

impl ClaimState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimState::Accepted => "Accepted",
            ClaimState::Rejected => "Rejected",
        }
    }
}

/// `bind apiexport` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindOptions {
    /// The export's workspace; empty means the current one.
    pub export_path: String,
    pub export_name: String,
    /// The APIBinding's name.
    pub name: String,
    pub accept: Vec<ClaimRef>,
    pub reject: Vec<ClaimRef>,
    /// Zero: do not wait for the binding to be bound.
    pub timeout: Duration,
}

/// One parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Print this usage text to stdout.
    Help(&'static str),
    /// `workspace|ws ...`: the arguments for `kubectl ws`.
    Workspace(Vec<String>),
    Bind(BindOptions),
    /// `claims get apibinding [NAME]`.
    ClaimsGet {
        name: Option<String>,
    },
    /// `claims accept|reject apibinding NAME CLAIM...`.
    ClaimsSet {
        name: String,
        claims: Vec<ClaimRef>,
        state: ClaimState,
    },
    CrdSnapshot {
        file: String,
        prefix: String,
        format: Format,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub global: GlobalFlags,
    pub command: Command,
}

/// The command line of `kubectl kplex`: every command's flags (checked against the command
/// after parsing, as cobra's subcommands do) and the words naming the command and its
/// arguments. `workspace` (or `ws`) hands the rest of the line to `kubectl ws`.
#[derive(Debug, Parser)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    args_override_self = true
)]
struct Args {
    /// Path to the kubeconfig file to use
    #[arg(long, allow_hyphen_values = true)]
    kubeconfig: Option<String>,
    /// The kubeconfig context to use
    #[arg(long, allow_hyphen_values = true)]
    context: Option<String>,
    /// The address of the server (replaces the context's server URL)
    #[arg(short, long, allow_hyphen_values = true)]
    server: Option<String>,
    /// Bearer token for authentication to the server
    #[arg(long, allow_hyphen_values = true)]
    token: Option<String>,
    /// Do not verify the server's certificate (insecure)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = GoBool)]
    insecure_skip_tls_verify: Option<bool>,
    /// Help for the command
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = GoBool)]
    help: Option<bool>,
    /// Name of the APIBinding (default: the APIExport's name)
    #[arg(long, allow_hyphen_values = true)]
    name: Option<String>,
    /// Permission claims to accept: RESOURCE.GROUP, or RESOURCE for the core group
    #[arg(long, allow_hyphen_values = true)]
    accept_permission_claim: Vec<String>,
    /// Permission claims to reject, in the same form
    #[arg(long, allow_hyphen_values = true)]
    reject_permission_claim: Vec<String>,
    /// How long to wait for the APIBinding to be bound; 0 does not wait
    #[arg(long, allow_hyphen_values = true)]
    timeout: Option<String>,
    /// The file holding the CustomResourceDefinitions (- for standard input)
    #[arg(short = 'f', long, allow_hyphen_values = true)]
    filename: Option<String>,
    /// The prefix of the APIResourceSchema names, e.g. a date (v250101)
    #[arg(long, allow_hyphen_values = true)]
    prefix: Option<String>,
    /// Output format: yaml or json (default yaml)
    #[arg(short, long, allow_hyphen_values = true)]
    output: Option<String>,
    /// The command and its arguments.
    words: Vec<String>,
    #[command(subcommand)]
    workspace: Option<Workspace>,
}

#[derive(Debug, clap::Subcommand)]
enum Workspace {
    /// `kubectl ws`, with its own flags.
    #[command(
        name = "workspace",
        aliases = ["ws", "workspaces"],
        disable_help_flag = true,
        disable_version_flag = true
    )]
    Workspace {
        #[arg(num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

const GLOBAL: &[&str] = &[
    "kubeconfig",
    "context",
    "server",
    "token",
    "insecure_skip_tls_verify",
    "help",
];
const BIND_FLAGS: &[&str] = &[
    "name",
    "accept_permission_claim",
    "reject_permission_claim",
    "timeout",
];
const CRD_FLAGS: &[&str] = &["filename", "prefix", "output"];

/// A Go duration (`30s`, `1m30s`, `500ms`, `1.5h`, `0`), as `--timeout` takes it.
pub fn parse_duration(s: &str) -> Result<Duration> {
    kplex_gocompat::parse_std_duration(s).ok_or_else(|| {
        Error::msg(format!(
            "invalid argument {s:?} for \"--timeout\" flag: time: invalid duration {s:?}"
        ))
    })
}

/// `--accept-permission-claim a,b --accept-permission-claim c`.
fn parse_claim_list(values: &[String]) -> Result<Vec<ClaimRef>> {
    let mut out: Vec<ClaimRef> = Vec::new();
    for v in values {
        for part in v.split(',').filter(|p| !p.trim().is_empty()) {
            let c = ClaimRef::parse(part)?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// `<path>:<export>` (a leading `:` is allowed, as in `:root:org:export`); no path means an
/// export of the current workspace.
pub fn parse_export_reference(s: &str) -> Result<(String, String)> {
    let s = s.strip_prefix(':').unwrap_or(s);
    let (path, name) = s.rsplit_once(':').unwrap_or(("", s));
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
    if !name_ok || !(path.is_empty() || LogicalPath::new(path).is_valid()) {
        return Err(Error::msg(format!(
            "invalid APIExport reference {s:?}: expected <workspace-path>:<apiexport-name>, e.g. root:provider:widgets"
        )));
    }
    Ok((path.to_string(), name.to_string()))
}

fn is_apibinding_kind(s: &str) -> bool {
    matches!(
        s,
        "apibinding" | "apibindings" | "apibinding.apis.kcp.io" | "apibindings.apis.kcp.io"
    )
}

fn arg_count(want: &str, got: usize) -> Error {
    Error::msg(format!("accepts {want} arg(s), received {got}"))
}

/// Parses the plugin's arguments (without the program name).
pub fn parse_args(args: &[String]) -> Result<Invocation> {
    let (args, matches) = flags::parse::<Args>(args)?;
    if let Some(Workspace::Workspace { args: rest }) = args.workspace {
        // The flags before `workspace` are `kubectl ws`'s too; only its own are known there.
        if let Some(flag) =
            flags::first_not_allowed::<Args>(&matches, &["kubeconfig", "context", "help"])
        {
            return Err(Error::msg(format!("unknown flag: --{flag}")));
        }
        let mut ws_args = Vec::new();
        ws_args.extend(args.kubeconfig.map(|k| format!("--kubeconfig={k}")));
        ws_args.extend(args.context.map(|c| format!("--context={c}")));
        ws_args.extend(args.help.map(|_| "--help".to_string()));
        ws_args.extend(rest);
        return Ok(Invocation {
            global: GlobalFlags::default(),
            command: Command::Workspace(ws_args),
        });
    }
    let help = args.help.unwrap_or(false);
    let global = GlobalFlags {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        server: args.server.clone(),
        token: args.token.clone(),
        insecure_skip_tls_verify: args.insecure_skip_tls_verify.unwrap_or(false),
    };
    let pos: Vec<&str> = args.words.iter().map(String::as_str).collect();
    let (usage, extra): (&'static str, &[&str]) = match pos.first().copied() {
        None | Some("help") => {
            // `help bind` shows bind's usage.
            let usage = match pos.get(1).copied() {
                Some("bind") => BIND_USAGE,
                Some("claims") => CLAIMS_USAGE,
                Some("crd") => CRD_USAGE,
                _ => USAGE,
            };
            return Ok(Invocation {
                global,
                command: Command::Help(usage),
            });
        }
        Some("bind") => (BIND_USAGE, BIND_FLAGS),
        Some("claims") => (CLAIMS_USAGE, &[]),
        Some("crd") => (CRD_USAGE, CRD_FLAGS),
        Some(other) => {
            return Err(Error::msg(format!(
                "unknown command {other:?} for \"kubectl kplex\""
            )));
        }
    };
    if let Some(flag) = flags::first_not_allowed::<Args>(&matches, &[GLOBAL, extra].concat()) {
        return Err(Error::msg(format!("unknown flag: --{flag}")));
    }
    if help || pos.len() == 1 {
        return Ok(Invocation {
            global,
            command: Command::Help(usage),
        });
    }
    let command = match pos.as_slice() {
        ["bind", "apiexport" | "apiexports", rest @ ..] => {
            let [reference] = rest else {
                return Err(arg_count("1", rest.len()));
            };
            let (export_path, export_name) = parse_export_reference(reference)?;
            let accept = parse_claim_list(&args.accept_permission_claim)?;
            let reject = parse_claim_list(&args.reject_permission_claim)?;
            if let Some(both) = accept.iter().find(|c| reject.contains(c)) {
                return Err(Error::msg(format!(
                    "permission claim {both} cannot be both accepted and rejected"
                )));
            }
            let name = args.name.clone().unwrap_or_else(|| export_name.clone());
            if name.is_empty() {
                return Err(Error::msg("--name must not be empty"));
            }
            let timeout = match &args.timeout {
                Some(t) => parse_duration(t)?,
                None => DEFAULT_TIMEOUT,
            };
            Command::Bind(BindOptions {
                export_path,
                export_name,
                name,
                accept,
                reject,
                timeout,
            })
        }
        ["bind", other, ..] => {
            return Err(Error::msg(format!(
                "unknown command {other:?} for \"kubectl kplex bind\""
            )));
        }
        ["claims", verb @ ("get" | "accept" | "reject"), rest @ ..] => {
            let Some((kind, rest)) = rest.split_first() else {
                return Err(Error::msg(format!(
                    "a resource type is required: kubectl kplex claims {verb} apibinding ..."
                )));
            };
            if !is_apibinding_kind(kind) {
                return Err(Error::msg(format!(
                    "unsupported resource type {kind:?}: only apibinding has permission claims"
                )));
            }
            match (*verb, rest) {
                ("get", []) => Command::ClaimsGet { name: None },
                ("get", [name]) => Command::ClaimsGet {
                    name: Some(name.to_string()),
                },
                ("get", more) => return Err(arg_count("at most 1", more.len())),
                (_, [name, claims @ ..]) if !claims.is_empty() => Command::ClaimsSet {
                    name: name.to_string(),
                    claims: parse_claim_list(
                        &claims.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                    )?,
                    state: if *verb == "accept" {
                        ClaimState::Accepted
                    } else {
                        ClaimState::Rejected
                    },
                },
                (_, _) => {
                    return Err(Error::msg(format!(
                        "an APIBinding name and at least one permission claim are required: kubectl kplex claims {verb} apibinding NAME RESOURCE.GROUP..."
                    )));
                }
            }
        }
        ["claims", other, ..] => {
            return Err(Error::msg(format!(
                "unknown command {other:?} for \"kubectl kplex claims\""
            )));
        }
        ["crd", "snapshot", rest @ ..] => {
            if !rest.is_empty() {
                return Err(arg_count("0", rest.len()));
            }
            let file = args.filename.clone().filter(|f| !f.is_empty());
            let prefix = args.prefix.clone().filter(|p| !p.is_empty());
            let (file, prefix) = match (file, prefix) {
                (Some(f), Some(p)) => (f, p),
                (None, None) => {
                    return Err(Error::msg(
                        "required flag(s) \"filename\", \"prefix\" not set",
                    ));
                }
                (None, _) => return Err(Error::msg("required flag(s) \"filename\" not set")),
                (_, None) => return Err(Error::msg("required flag(s) \"prefix\" not set")),
            };
            let format = match &args.output {
                Some(o) => Format::parse(o)?,
                None => Format::Yaml,
            };
            Command::CrdSnapshot {
                file,
                prefix,
                format,
            }
        }
        ["crd", other, ..] => {
            return Err(Error::msg(format!(
                "unknown command {other:?} for \"kubectl kplex crd\""
            )));
        }
        _ => Command::Help(usage),
    };
    Ok(Invocation { global, command })
}

// ---------------------------------------------------------------------------------------------
// Reaching the server.

/// The current workspace: a client for the server and the request prefix of the workspace.
pub struct Target {
    pub client: ApiClient,
    /// `/clusters/<path>` (or whatever path the server URL has), no trailing slash.
    pub prefix: String,
    /// The workspace path, when the server URL points into one.
    pub path: Option<LogicalPath>,
}

impl Target {
    /// `path` under the current workspace.
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.prefix)
    }

    /// The request prefix of workspace `path`; empty means the current one.
    fn workspace_prefix(&self, path: &str) -> String {
        if path.is_empty() {
            self.prefix.clone()
        } else {
            LogicalPath::new(path).request_path()
        }
    }
}

/// Splits a server URL into what an [`ApiClient`] takes (scheme, authority and any prefix before
/// `/clusters/`) and the request prefix of the workspace it points at.
pub fn split_server(server: &str) -> (String, String, Option<LogicalPath>) {
    if let Some(c) = ClusterUrl::parse(server) {
        let prefix = c.path.request_path();
        return (c.base, prefix, Some(c.path));
    }
    let after_scheme = server.find("://").map_or(0, |i| i + 3);
    let server = server.split(['?', '#']).next().unwrap_or(server);
    match server[after_scheme..].find('/') {
        Some(i) => (
            server[..after_scheme + i].to_string(),
            server[after_scheme + i..].trim_end_matches('/').to_string(),
            None,
        ),
        None => (server.to_string(), String::new(), None),
    }
}

/// The connection of the kubeconfig's current context, with the global flags applied.
pub fn connection(g: &GlobalFlags) -> Result<Connection> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let path = kubeconfig::locate(
        g.kubeconfig.as_deref().map(std::path::Path::new),
        std::env::var_os("KUBECONFIG").as_deref(),
        home.as_deref(),
    );
    let mut conn = match (path, &g.server) {
        (Ok(path), server) => match Kubeconfig::load(&path) {
            Ok(kc) => {
                let kc = kc.with_context_override(g.context.clone());
                match server {
                    Some(s) if kc.current_context_name().is_none() => Connection::for_server(s)?,
                    _ => kc.connection()?,
                }
            }
            // No kubeconfig at all is fine when --server says where to go.
            Err(Error::Io { source, .. })
                if server.is_some()
                    && g.kubeconfig.is_none()
                    && source.kind() == std::io::ErrorKind::NotFound =>
            {
                Connection::for_server(server.as_deref().unwrap_or_default())?
            }
            Err(e) => return Err(e),
        },
        (Err(_), Some(server)) => Connection::for_server(server)?,
        (Err(e), None) => return Err(e),
    };
    if let Some(s) = &g.server {
        conn.server = s.clone();
    }
    if let Some(t) = &g.token {
        conn.config.auth_info.token = Some(SecretString::from(t.clone()));
    }
    if g.insecure_skip_tls_verify {
        conn.config.accept_invalid_certs = true;
        conn.config.root_cert = None;
    }
    Ok(conn)
}

pub fn target(g: &GlobalFlags) -> Result<Target> {
    let conn = connection(g)?;
    let (base, prefix, path) = split_server(&conn.server);
    Ok(Target {
        client: ApiClient::new(conn.config, &base)?,
        prefix,
        path,
    })
}

// ---------------------------------------------------------------------------------------------
// Permission claims.

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn non_empty_array(v: Option<&Value>) -> Option<&Vec<Value>> {
    v.and_then(Value::as_array).filter(|a| !a.is_empty())
}

/// The claim of `claims` for `c`.
fn find_claim<'a>(claims: &'a [Value], c: &ClaimRef) -> Option<&'a Value> {
    claims.iter().find(|e| c.matches(e))
}

/// A binding's `spec.permissionClaims[]` entry for `c` in `state`: verbs and identityHash from
/// the export's claim when known (verbs default to `*`), selector `matchAll` unless `existing`
/// (the binding's current entry) has one, since a claim's selector cannot change.
pub fn claim_entry(
    c: &ClaimRef,
    state: ClaimState,
    export_claim: Option<&Value>,
    existing: Option<&Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("group".into(), Value::String(c.group.clone()));
    m.insert("resource".into(), Value::String(c.resource.clone()));
    let identity = export_claim
        .map(|e| str_of(e, "identityHash"))
        .filter(|h| !h.is_empty())
        .or_else(|| {
            existing
                .map(|e| str_of(e, "identityHash"))
                .filter(|h| !h.is_empty())
        });
    if let Some(h) = identity {
        m.insert("identityHash".into(), Value::String(h.to_string()));
    }
    let verbs = non_empty_array(export_claim.and_then(|e| e.get("verbs")))
        .or_else(|| non_empty_array(existing.and_then(|e| e.get("verbs"))))
        .cloned()
        .unwrap_or_else(|| vec![json!("*")]);
    m.insert("verbs".into(), Value::Array(verbs));
    let selector = existing
        .and_then(|e| e.get("selector"))
        .filter(|s| s.as_object().is_some_and(|o| !o.is_empty()))
        .cloned()
        .unwrap_or_else(|| json!({"matchAll": true}));
    m.insert("selector".into(), selector);
    m.insert("state".into(), Value::String(state.as_str().into()));
    Value::Object(m)
}

/// The APIBinding `bind apiexport` creates; `export_claims` are the export's
/// `spec.permissionClaims` when it could be read.
pub fn binding_object(opts: &BindOptions, export_claims: Option<&[Value]>) -> Value {
    let mut export = Map::new();
    if !opts.export_path.is_empty() {
        export.insert("path".into(), Value::String(opts.export_path.clone()));
    }
    export.insert("name".into(), Value::String(opts.export_name.clone()));
    let mut spec = Map::new();
    spec.insert("reference".into(), json!({"export": Value::Object(export)}));
    let claims: Vec<Value> = opts
        .accept
        .iter()
        .map(|c| (c, ClaimState::Accepted))
        .chain(opts.reject.iter().map(|c| (c, ClaimState::Rejected)))
        .map(|(c, state)| claim_entry(c, state, export_claims.and_then(|e| find_claim(e, c)), None))
        .collect();
    if !claims.is_empty() {
        spec.insert("permissionClaims".into(), Value::Array(claims));
    }
    json!({
        "apiVersion": "apis.kcp.io/v1alpha2",
        "kind": "APIBinding",
        "metadata": {"name": opts.name},
        "spec": Value::Object(spec),
    })
}

/// Sets the binding's claims `claims` to `state` (adding or replacing entries of
/// `spec.permissionClaims`). With the export's claims known, a claim the export does not make
/// is an error.
pub fn merge_claims(
    binding: &mut Value,
    claims: &[ClaimRef],
    state: ClaimState,
    export_claims: Option<&[Value]>,
    export_ref: &str,
) -> Result<()> {
    if let Some(ec) = export_claims
        && let Some(missing) = claims.iter().find(|c| find_claim(ec, c).is_none())
    {
        return Err(Error::msg(format!(
            "APIExport {export_ref} has no permission claim for {missing}"
        )));
    }
    let name = binding["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let spec = binding
        .as_object_mut()
        .map(|o| o.entry("spec").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Error::msg(format!("APIBinding {name:?} has no spec")))?;
    let list = spec
        .entry("permissionClaims")
        .or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    let list = list.as_array_mut().ok_or_else(|| {
        Error::msg(format!(
            "APIBinding {name:?} has a malformed spec.permissionClaims"
        ))
    })?;
    for c in claims {
        let export_claim = export_claims.and_then(|e| find_claim(e, c));
        match list.iter_mut().find(|e| c.matches(e)) {
            Some(entry) => {
                let updated = claim_entry(c, state, export_claim, Some(entry));
                *entry = updated;
            }
            None => list.push(claim_entry(c, state, export_claim, None)),
        }
    }
    Ok(())
}

/// The state the binding gives claim `export_claim`: its entry's state, or Pending.
fn claim_state(binding: &Value, export_claim: &Value) -> String {
    let Some(entries) = binding["spec"]["permissionClaims"].as_array() else {
        return "Pending".into();
    };
    let same_gr = |e: &&Value| {
        str_of(e, "group") == str_of(export_claim, "group")
            && str_of(e, "resource") == str_of(export_claim, "resource")
    };
    let hash = str_of(export_claim, "identityHash");
    let entry = entries
        .iter()
        .filter(same_gr)
        .find(|e| hash.is_empty() || str_of(e, "identityHash") == hash)
        .or_else(|| entries.iter().find(same_gr));
    match entry.map(|e| str_of(e, "state")) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "Pending".into(),
    }
}

pub const CLAIMS_HEADER: [&str; 5] = ["APIBINDING", "RESOURCE", "GROUP", "VERBS", "STATE"];

/// One table row per export claim: binding, resource, group (`core` for the core group),
/// verbs, and the binding's answer (Accepted, Rejected or Pending).
pub fn claim_rows(binding: &Value, export_claims: &[Value]) -> Vec<Vec<String>> {
    let name = binding["metadata"]["name"].as_str().unwrap_or_default();
    export_claims
        .iter()
        .map(|c| {
            let group = str_of(c, "group");
            let verbs = c
                .get("verbs")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "<none>".into());
            vec![
                name.to_string(),
                str_of(c, "resource").to_string(),
                if group.is_empty() { "core" } else { group }.to_string(),
                verbs,
                claim_state(binding, c),
            ]
        })
        .collect()
}

/// Columns padded as kubectl's tab writer pads them (three spaces after the widest cell).
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i + 1 < n {
                let pad = widths[i] + 3 - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// `path:name` of the export a binding references (`name` alone for its own workspace).
fn export_ref_of(binding: &Value) -> (String, String) {
    let e = &binding["spec"]["reference"]["export"];
    (str_of(e, "path").to_string(), str_of(e, "name").to_string())
}

fn display_ref(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}:{name}")
    }
}

/// The False conditions of a binding, as `Reason: message` (Ready only if nothing else).
pub fn unbound_detail(binding: &Value) -> Option<String> {
    let conditions = binding["status"]["conditions"].as_array()?;
    let falses: Vec<&Value> = conditions
        .iter()
        .filter(|c| str_of(c, "status") == "False")
        .collect();
    let specific: Vec<&Value> = falses
        .iter()
        .copied()
        .filter(|c| str_of(c, "type") != "Ready")
        .collect();
    let chosen = if specific.is_empty() {
        falses
    } else {
        specific
    };
    let mut parts: Vec<String> = Vec::new();
    for c in chosen {
        let (reason, message) = (str_of(c, "reason"), str_of(c, "message"));
        let text = match (reason.is_empty(), message.is_empty()) {
            (true, true) => format!("{} is False", str_of(c, "type")),
            (false, true) => reason.to_string(),
            (true, false) => message.to_string(),
            (false, false) => format!("{reason}: {message}"),
        };
        if !parts.contains(&text) {
            parts.push(text);
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn is_bound(binding: &Value) -> bool {
    binding["status"]["phase"].as_str() == Some("Bound")
}

// ---------------------------------------------------------------------------------------------
// The commands against a server.

/// An APIExport's `spec.permissionClaims`; None when it cannot be read (403/404).
async fn export_claims(t: &Target, path: &str, name: &str) -> Result<Option<Vec<Value>>> {
    let url = format!("{}/{APIEXPORTS}/{name}", t.workspace_prefix(path));
    match t.client.get(&url).await {
        Ok(export) => Ok(Some(
            export["spec"]["permissionClaims"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        )),
        Err(e) if e.is_not_found() || e.is_forbidden() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The export claims a binding answers: its `status.exportPermissionClaims`, else the
/// export's own claims (None when neither is known).
async fn binding_export_claims(
    t: &Target,
    binding: &Value,
    cache: &mut HashMap<(String, String), Option<Vec<Value>>>,
) -> Result<Option<Vec<Value>>> {
    if let Some(c) = non_empty_array(binding["status"].get("exportPermissionClaims")) {
        return Ok(Some(c.clone()));
    }
    let key = export_ref_of(binding);
    if key.1.is_empty() {
        return Ok(None);
    }
    if let Some(hit) = cache.get(&key) {
        return Ok(hit.clone());
    }
    let claims = export_claims(t, &key.0, &key.1).await?;
    cache.insert(key, claims.clone());
    Ok(claims)
}

pub async fn bind(
    t: &Target,
    opts: &BindOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let export_ref = display_ref(&opts.export_path, &opts.export_name);
    let claims = export_claims(t, &opts.export_path, &opts.export_name).await?;
    if let Some(ec) = &claims {
        for c in opts.accept.iter().chain(&opts.reject) {
            if find_claim(ec, c).is_none() {
                writeln!(
                    err,
                    "Warning: APIExport {export_ref} has no permission claim for {c}"
                )?;
            }
        }
    }
    let body = binding_object(opts, claims.as_deref());
    let created = match t.client.post(&t.url(APIBINDINGS), &body).await {
        Ok(v) => v,
        Err(e) if e.code() == Some(409) => {
            return Err(Error::msg(format!(
                "apibindings.apis.kcp.io {:?} already exists",
                opts.name
            )));
        }
        Err(e) => return Err(e),
    };
    if opts.timeout.is_zero() {
        writeln!(out, "apibinding.apis.kcp.io/{} created.", opts.name)?;
        return Ok(());
    }
    let url = format!("{}/{}", t.url(APIBINDINGS), opts.name);
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut last = created;
    let mut announced = false;
    while !is_bound(&last) {
        if !announced {
            writeln!(err, "Waiting for APIBinding {} to be bound...", opts.name)?;
            announced = true;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            let detail = unbound_detail(&last)
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            return Err(Error::msg(format!(
                "timed out waiting for APIBinding {} to be bound{detail}",
                opts.name
            )));
        }
        tokio::time::sleep_until((now + POLL_INTERVAL).min(deadline)).await;
        match tokio::time::timeout_at(deadline, t.client.get(&url)).await {
            Ok(Ok(v)) => last = v,
            Ok(Err(e)) => return Err(e),
            // The deadline passed mid-request: the next round reports the timeout.
            Err(_) => {}
        }
    }
    writeln!(
        out,
        "apibinding.apis.kcp.io/{} created and bound.",
        opts.name
    )?;
    Ok(())
}

pub async fn claims_get(
    t: &Target,
    name: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let bindings = match name {
        Some(n) => vec![t.client.get(&format!("{}/{n}", t.url(APIBINDINGS))).await?],
        None => t.client.get(&t.url(APIBINDINGS)).await?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    let mut cache = HashMap::new();
    let mut rows = Vec::new();
    for b in &bindings {
        let claims = binding_export_claims(t, b, &mut cache)
            .await?
            .unwrap_or_default();
        rows.extend(claim_rows(b, &claims));
    }
    if rows.is_empty() {
        writeln!(err, "No permission claims found.")?;
        return Ok(());
    }
    write!(out, "{}", render_table(&CLAIMS_HEADER, &rows))?;
    Ok(())
}

pub async fn claims_set(
    t: &Target,
    name: &str,
    claims: &[ClaimRef],
    state: ClaimState,
    out: &mut dyn Write,
) -> Result<()> {
    let url = format!("{}/{name}", t.url(APIBINDINGS));
    let mut cache = HashMap::new();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut binding = t.client.get(&url).await?;
        let export_claims = binding_export_claims(t, &binding, &mut cache).await?;
        let (path, export) = export_ref_of(&binding);
        merge_claims(
            &mut binding,
            claims,
            state,
            export_claims.as_deref(),
            &display_ref(&path, &export),
        )?;
        match t.client.json(Method::PUT, &url, Some(&binding)).await {
            Ok(_) => break,
            Err(e) if e.code() == Some(409) && attempt < UPDATE_ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    }
    writeln!(out, "apibinding.apis.kcp.io/{name} claims updated.")?;
    Ok(())
}

/// `crd snapshot`: reads `file` (`-` is `stdin`) and writes the schemas to `out`.
pub fn crd_snapshot(
    file: &str,
    prefix: &str,
    format: Format,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<()> {
    let input = if file == "-" {
        let mut s = String::new();
        stdin.read_to_string(&mut s).map_err(|source| Error::Io {
            path: PathBuf::from("<stdin>"),
            source,
        })?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|source| Error::Io {
            path: PathBuf::from(file),
            source,
        })?
    };
    let schemas = crd_snapshot::snapshot_all(&input, prefix)?;
    write!(out, "{}", crd_snapshot::render(&schemas, format)?)?;
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Output)
}

/// `kubectl kplex` with its arguments (no program name); `-f -` reads `stdin`.
pub fn run(
    args: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let inv = parse_args(args)?;
    match inv.command {
        Command::Help(usage) => {
            write!(out, "{usage}\n{GLOBAL_FLAGS}")?;
            Ok(())
        }
        Command::Workspace(rest) => crate::cli::ws(&rest, out, err),
        Command::CrdSnapshot {
            file,
            prefix,
            format,
        } => crd_snapshot(&file, &prefix, format, stdin, out),
        // The client is made inside the runtime: kube's spawns its request worker there.
        Command::Bind(opts) => runtime()?.block_on(async {
            let t = target(&inv.global)?;
            bind(&t, &opts, out, err).await
        }),
        Command::ClaimsGet { name } => runtime()?.block_on(async {
            let t = target(&inv.global)?;
            claims_get(&t, name.as_deref(), out, err).await
        }),
        Command::ClaimsSet {
            name,
            claims,
            state,
        } => runtime()?.block_on(async {
            let t = target(&inv.global)?;
            claims_set(&t, &name, &claims, state, out).await
        }),
    }
}

/// `kubectl kplex ...`: the process's arguments, including argv[0]. Errors print as
/// `Error: <message>` with exit code 1.
pub fn kplex_main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut stdin = std::io::stdin().lock();
    let result = if crate::workload::handles(&args) {
        crate::workload::run(&args, &mut out)
    } else {
        run(&args, &mut stdin, &mut out, &mut err)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(err, "Error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn claim(s: &str) -> ClaimRef {
        ClaimRef::parse(s).unwrap()
    }

    #[test]
    fn claim_args() {
        assert_eq!(
            claim("configmaps"),
            ClaimRef {
                resource: "configmaps".into(),
                group: String::new()
            }
        );
        assert_eq!(claim("configmaps.core"), claim("configmaps"));
        let w = claim("widgets.example.dev");
        assert_eq!(
            (w.resource.as_str(), w.group.as_str()),
            ("widgets", "example.dev")
        );
        assert_eq!(w.to_string(), "widgets.example.dev");
        assert_eq!(claim("secrets").to_string(), "secrets");
        for bad in [
            "",
            ".example.dev",
            "Widgets.x",
            "widgets..dev",
            "widgets.ex/ample",
        ] {
            assert!(ClaimRef::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_claim_list(&v(&["configmaps,widgets.example.dev", "configmaps", ""])).unwrap(),
            vec![claim("configmaps"), claim("widgets.example.dev")]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "30", "s", "-1s", "1x", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_duration("5").unwrap_err().to_string(),
            "invalid argument \"5\" for \"--timeout\" flag: time: invalid duration \"5\""
        );
    }

    #[test]
    fn export_references() {
        assert_eq!(
            parse_export_reference("root:org:widgets").unwrap(),
            ("root:org".to_string(), "widgets".to_string())
        );
        assert_eq!(
            parse_export_reference(":root:widgets").unwrap(),
            ("root".to_string(), "widgets".to_string())
        );
        assert_eq!(
            parse_export_reference("widgets").unwrap(),
            (String::new(), "widgets".to_string())
        );
        for bad in ["root:", "root::x", "Root:x", "root:x/y"] {
            assert!(parse_export_reference(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bind_args() {
        let inv = parse_args(&v(&[
            "--kubeconfig=/k",
            "bind",
            "apiexport",
            "root:org:widgets",
            "--accept-permission-claim",
            "configmaps,secrets",
            "--reject-permission-claim=widgets.example.dev",
            "--timeout",
            "2m",
            "--server",
            "https://h:6443/clusters/root:team",
            "--insecure-skip-tls-verify",
            "--token=t",
        ]))
        .unwrap();
        assert_eq!(
            inv.global,
            GlobalFlags {
                kubeconfig: Some("/k".into()),
                context: None,
                server: Some("https://h:6443/clusters/root:team".into()),
                token: Some("t".into()),
                insecure_skip_tls_verify: true,
            }
        );
        assert_eq!(
            inv.command,
            Command::Bind(BindOptions {
                export_path: "root:org".into(),
                export_name: "widgets".into(),
                name: "widgets".into(),
                accept: vec![claim("configmaps"), claim("secrets")],
                reject: vec![claim("widgets.example.dev")],
                timeout: Duration::from_secs(120),
            })
        );
        let Command::Bind(b) = parse_args(&v(&["bind", "apiexport", "root:x", "--name", "mine"]))
            .unwrap()
            .command
        else {
            panic!("not bind");
        };
        assert_eq!((b.name.as_str(), b.timeout), ("mine", DEFAULT_TIMEOUT));

        let err = |args: &[&str]| parse_args(&v(args)).unwrap_err().to_string();
        assert_eq!(err(&["bind", "apiexport"]), "accepts 1 arg(s), received 0");
        assert_eq!(
            err(&["bind", "apiexport", "root:x", "--prefix", "p"]),
            "unknown flag: --prefix"
        );
        assert_eq!(
            err(&["bind", "apiexport", "root:x", "--nope"]),
            "unknown flag: --nope"
        );
        assert_eq!(
            err(&["bind", "apiexport", "root:x", "--name"]),
            "flag needs an argument: --name"
        );
        assert_eq!(
            err(&["bind", "schema", "x"]),
            "unknown command \"schema\" for \"kubectl kplex bind\""
        );
        assert_eq!(
            err(&[
                "bind",
                "apiexport",
                "root:x",
                "--accept-permission-claim=configmaps",
                "--reject-permission-claim=configmaps.core"
            ]),
            "permission claim configmaps cannot be both accepted and rejected"
        );
        assert_eq!(
            err(&["frobnicate"]),
            "unknown command \"frobnicate\" for \"kubectl kplex\""
        );
        assert_eq!(err(&["-x"]), "unknown shorthand flag: 'x' in -x");
    }

    #[test]
    fn claims_and_crd_args() {
        let cmd = |args: &[&str]| parse_args(&v(args)).unwrap().command;
        assert_eq!(
            cmd(&["claims", "get", "apibinding"]),
            Command::ClaimsGet { name: None }
        );
        assert_eq!(
            cmd(&["claims", "get", "apibindings.apis.kcp.io", "b"]),
            Command::ClaimsGet {
                name: Some("b".into())
            }
        );
        assert_eq!(
            cmd(&[
                "--context",
                "c",
                "claims",
                "reject",
                "apibinding",
                "b",
                "configmaps",
                "widgets.example.dev"
            ]),
            Command::ClaimsSet {
                name: "b".into(),
                claims: vec![claim("configmaps"), claim("widgets.example.dev")],
                state: ClaimState::Rejected,
            }
        );
        let err = |args: &[&str]| parse_args(&v(args)).unwrap_err().to_string();
        assert!(
            err(&["claims", "accept", "apibinding", "b"]).contains("at least one permission claim")
        );
        assert!(err(&["claims", "get", "apiexport"]).contains("only apibinding"));
        assert_eq!(
            err(&["claims", "get", "apibinding", "a", "b"]),
            "accepts at most 1 arg(s), received 2"
        );

        assert_eq!(
            cmd(&["crd", "snapshot", "-f", "-", "--prefix", "v1", "-ojson"]),
            Command::CrdSnapshot {
                file: "-".into(),
                prefix: "v1".into(),
                format: Format::Json
            }
        );
        assert_eq!(
            cmd(&["crd", "snapshot", "--filename=crd.yaml", "--prefix=today"]),
            Command::CrdSnapshot {
                file: "crd.yaml".into(),
                prefix: "today".into(),
                format: Format::Yaml
            }
        );
        assert_eq!(
            err(&["crd", "snapshot"]),
            "required flag(s) \"filename\", \"prefix\" not set"
        );
        assert_eq!(
            err(&["crd", "snapshot", "-f", "x"]),
            "required flag(s) \"prefix\" not set"
        );
        assert!(
            err(&["crd", "snapshot", "-f", "x", "--prefix", "p", "-o", "wide"]).contains("wide")
        );
        assert_eq!(
            err(&["crd", "snapshot", "-f", "x", "--prefix", "p", "--name", "n"]),
            "unknown flag: --name"
        );
    }

    #[test]
    fn help_and_workspace() {
        let cmd = |args: &[&str]| parse_args(&v(args)).unwrap().command;
        assert_eq!(cmd(&[]), Command::Help(USAGE));
        assert_eq!(cmd(&["-h"]), Command::Help(USAGE));
        assert_eq!(cmd(&["help", "crd"]), Command::Help(CRD_USAGE));
        assert_eq!(cmd(&["bind"]), Command::Help(BIND_USAGE));
        assert_eq!(
            cmd(&["bind", "apiexport", "--help"]),
            Command::Help(BIND_USAGE)
        );
        assert_eq!(
            cmd(&["claims", "get", "apibinding", "-h"]),
            Command::Help(CLAIMS_USAGE)
        );
        assert_eq!(
            cmd(&["crd", "snapshot", "--help"]),
            Command::Help(CRD_USAGE)
        );
        assert_eq!(
            cmd(&["--kubeconfig", "/k", "ws", "use", "x", "--short"]),
            Command::Workspace(v(&["--kubeconfig=/k", "use", "x", "--short"]))
        );
        // kubectl ws's own flags after `ws` (-f is --full there), its global ones before.
        assert_eq!(
            cmd(&["--context=c", "-h", "workspace", "tree", "-f", "--", "-x"]),
            Command::Workspace(v(&["--context=c", "--help", "tree", "-f", "--", "-x"]))
        );
        assert_eq!(
            parse_args(&v(&["--server", "https://h", "ws", "."]))
                .unwrap_err()
                .to_string(),
            "unknown flag: --server"
        );

        let (mut out, mut err) = (Vec::new(), Vec::new());
        run(
            &v(&["bind", "-h"]),
            &mut std::io::empty(),
            &mut out,
            &mut err,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("Bind an APIExport"));
        assert!(text.contains("\nGlobal Flags:\n"));
    }

    #[test]
    fn servers() {
        assert_eq!(
            split_server("https://h:6443/clusters/root:org"),
            (
                "https://h:6443".to_string(),
                "/clusters/root:org".to_string(),
                Some(LogicalPath::new("root:org"))
            )
        );
        assert_eq!(
            split_server("https://h/prefix/clusters/root/"),
            (
                "https://h/prefix".to_string(),
                "/clusters/root".to_string(),
                Some(LogicalPath::root())
            )
        );
        assert_eq!(
            split_server("https://h:6443"),
            ("https://h:6443".to_string(), String::new(), None)
        );
        assert_eq!(
            split_server("https://h:6443/some/"),
            ("https://h:6443".to_string(), "/some".to_string(), None)
        );
    }

    #[test]
    fn global_flags_override_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("config");
        std::fs::write(
            &kc,
            "apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: a, user: a}\n- name: b\n  context: {cluster: b, user: a}\nclusters:\n- name: a\n  cluster: {server: 'https://a/clusters/root', certificate-authority-data: 'AAAA'}\n- name: b\n  cluster: {server: 'https://b/clusters/root:b', insecure-skip-tls-verify: true}\nusers:\n- name: a\n  user: {token: from-file}\n",
        )
        .unwrap();
        let g = GlobalFlags {
            kubeconfig: Some(kc.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let token = |c: &Connection| {
            c.config
                .auth_info
                .token
                .as_ref()
                .map(|t| t.expose_secret().to_string())
        };
        let c = connection(&g).unwrap();
        assert_eq!(c.server, "https://a/clusters/root");
        assert_eq!(token(&c).as_deref(), Some("from-file"));
        assert!(!c.config.accept_invalid_certs && c.config.root_cert.is_some());

        let c = connection(&GlobalFlags {
            context: Some("b".into()),
            ..g.clone()
        })
        .unwrap();
        assert_eq!(c.server, "https://b/clusters/root:b");
        assert!(c.config.accept_invalid_certs);

        let c = connection(&GlobalFlags {
            server: Some("https://s/clusters/root:x".into()),
            token: Some("flag".into()),
            insecure_skip_tls_verify: true,
            ..g.clone()
        })
        .unwrap();
        assert_eq!(c.server, "https://s/clusters/root:x");
        assert_eq!(token(&c).as_deref(), Some("flag"));
        assert!(c.config.accept_invalid_certs && c.config.root_cert.is_none());

        // An explicit --kubeconfig must exist, even with --server.
        let missing = dir.path().join("missing");
        assert!(
            connection(&GlobalFlags {
                kubeconfig: Some(missing.to_string_lossy().into_owned()),
                server: Some("https://s".into()),
                ..Default::default()
            })
            .is_err()
        );
    }

    fn export_claims_fixture() -> Vec<Value> {
        vec![
            json!({"group": "", "resource": "configmaps", "verbs": ["get", "list", "watch"]}),
            json!({"group": "example.dev", "resource": "widgets", "identityHash": "abc123", "verbs": ["*"]}),
            json!({"group": "", "resource": "secrets", "verbs": ["get"]}),
        ]
    }

    #[test]
    fn binding_body() {
        let opts = BindOptions {
            export_path: "root:org".into(),
            export_name: "widgets".into(),
            name: "w".into(),
            accept: vec![claim("widgets.example.dev"), claim("pods")],
            reject: vec![claim("configmaps")],
            timeout: DEFAULT_TIMEOUT,
        };
        let ec = export_claims_fixture();
        assert_eq!(
            binding_object(&opts, Some(&ec)),
            json!({
                "apiVersion": "apis.kcp.io/v1alpha2",
                "kind": "APIBinding",
                "metadata": {"name": "w"},
                "spec": {
                    "reference": {"export": {"path": "root:org", "name": "widgets"}},
                    "permissionClaims": [
                        {"group": "example.dev", "resource": "widgets", "identityHash": "abc123",
                         "verbs": ["*"], "selector": {"matchAll": true}, "state": "Accepted"},
                        {"group": "", "resource": "pods", "verbs": ["*"],
                         "selector": {"matchAll": true}, "state": "Accepted"},
                        {"group": "", "resource": "configmaps", "verbs": ["get", "list", "watch"],
                         "selector": {"matchAll": true}, "state": "Rejected"},
                    ]
                }
            })
        );
        let plain = BindOptions {
            export_path: String::new(),
            accept: vec![],
            reject: vec![],
            ..opts
        };
        assert_eq!(
            binding_object(&plain, None)["spec"],
            json!({"reference": {"export": {"name": "widgets"}}})
        );
    }

    #[test]
    fn accept_merges() {
        let mut b = json!({
            "metadata": {"name": "w", "resourceVersion": "7"},
            "spec": {
                "reference": {"export": {"path": "root:org", "name": "widgets"}},
                "permissionClaims": [
                    {"group": "", "resource": "configmaps", "verbs": ["get"],
                     "selector": {"matchLabels": {"a": "b"}}, "state": "Rejected"}
                ]
            }
        });
        let ec = export_claims_fixture();
        merge_claims(
            &mut b,
            &[claim("configmaps"), claim("widgets.example.dev")],
            ClaimState::Accepted,
            Some(&ec),
            "root:org:widgets",
        )
        .unwrap();
        assert_eq!(
            b["spec"]["permissionClaims"],
            json!([
                // Replaced in place; the selector is kept (it is immutable).
                {"group": "", "resource": "configmaps", "verbs": ["get", "list", "watch"],
                 "selector": {"matchLabels": {"a": "b"}}, "state": "Accepted"},
                {"group": "example.dev", "resource": "widgets", "identityHash": "abc123",
                 "verbs": ["*"], "selector": {"matchAll": true}, "state": "Accepted"},
            ])
        );
        assert_eq!(b["metadata"]["resourceVersion"], "7");

        merge_claims(
            &mut b,
            &[claim("widgets.example.dev")],
            ClaimState::Rejected,
            Some(&ec),
            "x",
        )
        .unwrap();
        assert_eq!(b["spec"]["permissionClaims"][1]["state"], "Rejected");
        assert_eq!(b["spec"]["permissionClaims"].as_array().unwrap().len(), 2);

        // Export claims unknown: anything goes, verbs default to *.
        let mut b = json!({"metadata": {"name": "w"}, "spec": {"permissionClaims": null}});
        merge_claims(&mut b, &[claim("pods")], ClaimState::Accepted, None, "x").unwrap();
        assert_eq!(
            b["spec"]["permissionClaims"],
            json!([{"group": "", "resource": "pods", "verbs": ["*"],
                    "selector": {"matchAll": true}, "state": "Accepted"}])
        );
        // Known export claims: a claim it does not make is refused.
        assert_eq!(
            merge_claims(
                &mut b,
                &[claim("pods")],
                ClaimState::Accepted,
                Some(&ec),
                "root:org:widgets"
            )
            .unwrap_err()
            .to_string(),
            "APIExport root:org:widgets has no permission claim for pods"
        );
    }

    #[test]
    fn claims_table() {
        let b = json!({
            "metadata": {"name": "widgets"},
            "spec": {"permissionClaims": [
                {"group": "", "resource": "configmaps", "state": "Accepted"},
                {"group": "example.dev", "resource": "widgets", "identityHash": "abc123", "state": "Rejected"},
            ]}
        });
        let rows = claim_rows(&b, &export_claims_fixture());
        assert_eq!(
            render_table(&CLAIMS_HEADER, &rows),
            "\
APIBINDING   RESOURCE     GROUP         VERBS            STATE
widgets      configmaps   core          get,list,watch   Accepted
widgets      widgets      example.dev   *                Rejected
widgets      secrets      core          get              Pending
"
        );
        assert_eq!(render_table(&["A", "B"], &[]), "A   B\n");
    }

    #[test]
    fn timeout_details() {
        let b = json!({"status": {"phase": "Binding", "conditions": [
            {"type": "Ready", "status": "False", "reason": "NamingConflicts", "message": "m"},
            {"type": "APIExportValid", "status": "True"},
            {"type": "BindingUpToDate", "status": "False", "reason": "NamingConflicts",
             "message": "Unable to bind APIs because they are bound by other APIBindings or CRDs"},
        ]}});
        assert_eq!(
            unbound_detail(&b).as_deref(),
            Some(
                "NamingConflicts: Unable to bind APIs because they are bound by other APIBindings or CRDs"
            )
        );
        let ready_only = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "APIExportNotFound"}]}});
        assert_eq!(
            unbound_detail(&ready_only).as_deref(),
            Some("APIExportNotFound")
        );
        assert_eq!(unbound_detail(&json!({"status": {}})), None);
    }

    #[test]
    fn crd_snapshot_from_stdin() {
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: gadgets.example.dev}\nspec:\n  group: example.dev\n  names: {kind: Gadget, listKind: GadgetList, plural: gadgets, singular: gadget}\n  scope: Cluster\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object}}\n";
        let (mut out, mut err) = (Vec::new(), Vec::new());
        run(
            &v(&["crd", "snapshot", "-f", "-", "--prefix", "v1"]),
            &mut crd.as_bytes(),
            &mut out,
            &mut err,
        )
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("  name: v1.gadgets.example.dev\n"), "{out}");
        assert!(out.contains("    schema:\n      type: object\n"), "{out}");
    }

    // ---- against a fake API server -------------------------------------------------------

    type Handler = dyn Fn(&Method, &str, &Value, &mut Vec<(String, String, Value)>) -> (u16, Value)
        + Send
        + Sync;

    /// A plain-HTTP server answering with `handler`; every request is logged.
    async fn fake_server(
        handler: Arc<Handler>,
    ) -> (String, Arc<Mutex<Vec<(String, String, Value)>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log: Arc<Mutex<Vec<(String, String, Value)>>> = Arc::default();
        let log2 = log.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let handler = handler.clone();
                let log = log2.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let handler = handler.clone();
                            let log = log.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await.unwrap().to_bytes();
                                let body: Value =
                                    serde_json::from_slice(&body).unwrap_or(Value::Null);
                                let path = parts.uri.path().to_string();
                                let (code, answer) = {
                                    let mut log = log.lock().unwrap();
                                    log.push((
                                        parts.method.to_string(),
                                        path.clone(),
                                        body.clone(),
                                    ));
                                    handler(&parts.method, &path, &body, &mut log)
                                };
                                let mut resp = hyper::Response::new(Full::new(Bytes::from(
                                    answer.to_string(),
                                )));
                                *resp.status_mut() = http::StatusCode::from_u16(code).unwrap();
                                Ok::<_, Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        (
            format!("http://127.0.0.1:{port}/clusters/root:consumer"),
            log,
        )
    }

    fn target_for(server: &str) -> Target {
        let conn = Connection::for_server(server).unwrap();
        let (base, prefix, path) = split_server(server);
        Target {
            client: ApiClient::new(conn.config, &base).unwrap(),
            prefix,
            path,
        }
    }

    const EXPORT: &str = "/clusters/root:provider/apis/apis.kcp.io/v1alpha2/apiexports/widgets";
    const BINDINGS: &str = "/clusters/root:consumer/apis/apis.kcp.io/v1alpha2/apibindings";

    fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
        (
            code,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "code": code, "reason": reason, "message": message}),
        )
    }

    fn bind_opts(timeout: Duration) -> BindOptions {
        BindOptions {
            export_path: "root:provider".into(),
            export_name: "widgets".into(),
            name: "widgets".into(),
            accept: vec![claim("configmaps"), claim("widgets.example.dev")],
            reject: vec![],
            timeout,
        }
    }

    #[tokio::test]
    async fn bind_waits_until_bound() {
        let handler: Arc<Handler> = Arc::new(|method, path, body, log| {
            match (method.as_str(), path) {
                ("GET", EXPORT) => (
                    200,
                    json!({"kind": "APIExport", "spec": {"permissionClaims": export_claims_fixture()}}),
                ),
                ("POST", BINDINGS) => {
                    let mut b = body.clone();
                    b["status"] = json!({"phase": "Binding"});
                    (201, b)
                }
                ("GET", p) if p == format!("{BINDINGS}/widgets") => {
                    let gets = log
                        .iter()
                        .filter(|(m, p, _)| {
                            m == "GET" && p.ends_with("/widgets") && p.contains("apibindings")
                        })
                        .count();
                    let phase = if gets >= 3 { "Bound" } else { "Binding" };
                    (
                        200,
                        json!({"metadata": {"name": "widgets"}, "status": {"phase": phase}}),
                    )
                }
                _ => status(404, "NotFound", "not found"),
            }
        });
        let (server, log) = fake_server(handler).await;
        let t = target_for(&server);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        bind(&t, &bind_opts(Duration::from_secs(10)), &mut out, &mut err)
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "apibinding.apis.kcp.io/widgets created and bound.\n"
        );
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "Waiting for APIBinding widgets to be bound...\n"
        );
        let log = log.lock().unwrap();
        let (_, _, posted) = log.iter().find(|(m, _, _)| m == "POST").unwrap();
        assert_eq!(
            posted["spec"]["reference"]["export"]["path"],
            "root:provider"
        );
        assert_eq!(
            posted["spec"]["permissionClaims"][0]["verbs"],
            json!(["get", "list", "watch"])
        );
        assert_eq!(
            posted["spec"]["permissionClaims"][1]["identityHash"],
            "abc123"
        );
    }

    #[tokio::test]
    async fn bind_times_out_with_the_reason() {
        let handler: Arc<Handler> = Arc::new(|method, path, _body, _log| {
            let unbound = json!({"metadata": {"name": "widgets"}, "status": {"phase": "Binding",
                "conditions": [{"type": "BindingUpToDate", "status": "False", "reason": "NamingConflicts",
                                "message": "Unable to bind APIs because they are bound by other APIBindings or CRDs"}]}});
            match (method.as_str(), path) {
                // The export cannot be read: bind goes on without identity hashes.
                ("GET", EXPORT) => status(403, "Forbidden", "forbidden"),
                ("POST", BINDINGS) => (201, unbound),
                ("GET", _) => (200, unbound),
                _ => status(404, "NotFound", "not found"),
            }
        });
        let (server, log) = fake_server(handler).await;
        let t = target_for(&server);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let e = bind(
            &t,
            &bind_opts(Duration::from_millis(350)),
            &mut out,
            &mut err,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "timed out waiting for APIBinding widgets to be bound: NamingConflicts: Unable to bind APIs because they are bound by other APIBindings or CRDs"
        );
        assert_eq!(
            String::from_utf8(err)
                .unwrap()
                .matches("Waiting for APIBinding")
                .count(),
            1
        );
        let log = log.lock().unwrap();
        let (_, _, posted) = log.iter().find(|(m, _, _)| m == "POST").unwrap();
        assert!(
            posted["spec"]["permissionClaims"][1]
                .get("identityHash")
                .is_none()
        );
        let polls = log
            .iter()
            .filter(|(m, p, _)| m == "GET" && p.starts_with(BINDINGS))
            .count();
        assert!((2..=5).contains(&polls), "{polls} polls");
    }

    #[tokio::test]
    async fn bind_refuses_an_existing_binding() {
        let handler: Arc<Handler> = Arc::new(|method, _path, _body, _log| match method.as_str() {
            "POST" => status(
                409,
                "AlreadyExists",
                "apibindings.apis.kcp.io \"widgets\" already exists",
            ),
            _ => status(404, "NotFound", "not found"),
        });
        let (server, _) = fake_server(handler).await;
        let t = target_for(&server);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let e = bind(&t, &bind_opts(Duration::from_secs(1)), &mut out, &mut err)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "apibindings.apis.kcp.io \"widgets\" already exists"
        );
        assert!(out.is_empty());
    }

    fn stored_binding(rv: &str) -> Value {
        json!({
            "apiVersion": "apis.kcp.io/v1alpha2", "kind": "APIBinding",
            "metadata": {"name": "widgets", "resourceVersion": rv},
            "spec": {"reference": {"export": {"path": "root:provider", "name": "widgets"}},
                     "permissionClaims": [{"group": "", "resource": "configmaps", "verbs": ["get", "list", "watch"],
                                           "selector": {"matchAll": true}, "state": "Accepted"}]},
            "status": {"phase": "Bound", "exportPermissionClaims": export_claims_fixture()}
        })
    }

    #[tokio::test]
    async fn claims_accept_retries_conflicts() {
        let handler: Arc<Handler> = Arc::new(|method, path, body, log| {
            let one = format!("{BINDINGS}/widgets");
            match (method.as_str(), path) {
                ("GET", p) if p == one => {
                    let gets = log.iter().filter(|(m, _, _)| m == "GET").count();
                    (200, stored_binding(&gets.to_string()))
                }
                ("PUT", p) if p == one => {
                    if body["metadata"]["resourceVersion"] == "1" {
                        status(409, "Conflict", "the object has been modified")
                    } else {
                        (200, body.clone())
                    }
                }
                _ => status(404, "NotFound", "not found"),
            }
        });
        let (server, log) = fake_server(handler).await;
        let t = target_for(&server);
        let mut out = Vec::new();
        claims_set(
            &t,
            "widgets",
            &[claim("widgets.example.dev"), claim("secrets")],
            ClaimState::Accepted,
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "apibinding.apis.kcp.io/widgets claims updated.\n"
        );
        let puts: Vec<Value> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _, _)| m == "PUT")
            .map(|(_, _, b)| b.clone())
            .collect();
        assert_eq!(puts.len(), 2);
        assert_eq!(puts[1]["metadata"]["resourceVersion"], "2");
        let claims = puts[1]["spec"]["permissionClaims"].as_array().unwrap();
        assert_eq!(claims.len(), 3);
        assert_eq!(claims[1]["identityHash"], "abc123");
        assert_eq!(
            claims[2],
            json!({"group": "", "resource": "secrets", "verbs": ["get"],
                                     "selector": {"matchAll": true}, "state": "Accepted"})
        );

        // A claim the export does not make.
        let mut out = Vec::new();
        let e = claims_set(
            &t,
            "widgets",
            &[claim("pods")],
            ClaimState::Rejected,
            &mut out,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "APIExport root:provider:widgets has no permission claim for pods"
        );
    }

    #[tokio::test]
    async fn claims_get_lists_every_binding() {
        let handler: Arc<Handler> = Arc::new(|method, path, _body, _log| {
            let mut other = stored_binding("3");
            other["metadata"]["name"] = json!("gadgets");
            other["spec"]["reference"]["export"] =
                json!({"path": "root:provider", "name": "widgets"});
            other["spec"]["permissionClaims"] = json!([]);
            // No exportPermissionClaims: the export's own claims are read.
            other["status"] = json!({"phase": "Bound"});
            match (method.as_str(), path) {
                ("GET", BINDINGS) => (
                    200,
                    json!({"kind": "APIBindingList", "items": [stored_binding("2"), other]}),
                ),
                ("GET", EXPORT) => (
                    200,
                    json!({"spec": {"permissionClaims": [export_claims_fixture()[0].clone()]}}),
                ),
                _ => status(
                    404,
                    "NotFound",
                    "apibindings.apis.kcp.io \"nope\" not found",
                ),
            }
        });
        let (server, _) = fake_server(handler).await;
        let t = target_for(&server);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        claims_get(&t, None, &mut out, &mut err).await.unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
APIBINDING   RESOURCE     GROUP         VERBS            STATE
widgets      configmaps   core          get,list,watch   Accepted
widgets      widgets      example.dev   *                Pending
widgets      secrets      core          get              Pending
gadgets      configmaps   core          get,list,watch   Pending
"
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let e = claims_get(&t, Some("nope"), &mut out, &mut err)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "apibindings.apis.kcp.io \"nope\" not found");
    }
}
