//! Command lines of `kubectl-ws` and `kubectl-create-workspace`, parsed with clap the way kcp's
//! cobra commands accept them ([`crate::flags`]).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgMatches, Parser};

use crate::error::{Error, Result};
use crate::flags::{self, GoBool};
use crate::workspace::{CreateOptions, GlobalOptions, Session};

const WS_USAGE: &str = "Manages kcp workspaces

Usage:
  kubectl ws [create|use|current|tree|<workspace>|..|.|-|~|<:root:absolute:workspace>]

Examples:
  kubectl ws .                       # shows the workspace you are currently using
  kubectl ws use my-workspace        # enter a workspace (changes the current context)
  kubectl ws my-workspace            # short-hand for use
  kubectl ws :root:org:team          # enter an absolute workspace
  kubectl ws :                       # the root of the current hierarchy
  kubectl ws some:nested:workspace   # enter a relative workspace
  kubectl ws ..                      # the parent workspace; ..:.. the grand parent
  kubectl ws -                       # the previous workspace
  kubectl ws                         # your home workspace (~)
  kubectl ws tree                    # the workspaces below the current one
  kubectl ws current --short         # just the current path
  kubectl ws create-context [NAME]   # a kubeconfig context for the current workspace
  kubectl ws snapshot [WS] -o FILE   # save a workspace, consistent at one moment, online
  kubectl ws restore FILE [WS]       # make a workspace hold exactly what FILE holds
  kubectl ws fork SOURCE NAME        # a new workspace NAME here, a copy of SOURCE
  kubectl ws export [WS] [-o FILE]   # a workspace as YAML manifests
  kubectl create workspace my-workspace --enter

Flags:
      --kubeconfig string   Path to the kubeconfig file to use
      --context string      The kubeconfig context to start from
      --short               Print only the name of the workspace
  -o, --output string       snapshot and export: the file to write (- for standard output)
      --type string         fork: the new workspace's type
";

const CREATE_USAGE: &str = "Creates a new workspace

Usage:
  kubectl create workspace <workspace name> [--type=<type>] [--enter] [--ignore-existing]

Flags:
      --type string         A workspace type (NAME or PATH:NAME). The default type depends on where this child workspace is created.
      --enter               Immediately enter the created workspace
      --ignore-existing     Ignore if the workspace already exists. Requires none or absolute type path. Overwrites the context if --create-context is set.
      --create-context string   Create a kubeconfig context for the new workspace with the given name.
      --kubeconfig string   Path to the kubeconfig file to use
      --context string      The kubeconfig context to start from
";

/// The flags and arguments of `kubectl ws` and `kubectl create workspace`; which flags a
/// command accepts is checked after parsing ([`Mode`]), as cobra's subcommands do.
#[derive(Debug, Default, PartialEq, Eq, Parser)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Parsed {
    /// Path to the kubeconfig file to use
    #[arg(long, allow_hyphen_values = true)]
    pub kubeconfig: Option<String>,
    /// The kubeconfig context to start from
    #[arg(long, allow_hyphen_values = true)]
    pub context: Option<String>,
    /// Print only the name of the workspace
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = GoBool)]
    pub short: Option<bool>,
    /// Show full workspace names in the tree
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = GoBool)]
    pub full: Option<bool>,
    /// Help for the command; given at all, with any value, it shows the help.
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub help: Option<String>,
    /// The interactive tree browser (not supported)
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = GoBool)]
    pub interactive: Option<bool>,
    /// A workspace type (NAME or PATH:NAME)
    #[arg(long = "type", allow_hyphen_values = true)]
    pub workspace_type: Option<String>,
    /// Immediately enter the created workspace
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = GoBool)]
    pub enter: Option<bool>,
    /// Ignore if the workspace already exists
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = GoBool)]
    pub ignore_existing: Option<bool>,
    /// Create a kubeconfig context for the new workspace with the given name
    #[arg(long, allow_hyphen_values = true)]
    pub create_context: Option<String>,
    /// Update the context of `ws create-context` if it exists
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = GoBool)]
    pub overwrite: Option<bool>,
    /// `snapshot` and `export`: the file to write
    #[arg(short, long, allow_hyphen_values = true)]
    pub output: Option<String>,
    /// The subcommand, if any, and its arguments.
    pub args: Vec<String>,
}

/// Which command's flags a command line may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ws,
    Create,
    CreateContext,
    /// `snapshot`, `restore`, `fork`, `export`.
    Copy,
}

/// The flags of every command, and those of `create` and `create-context` alone.
const COMMON_FLAGS: &[&str] = &[
    "kubeconfig",
    "context",
    "short",
    "full",
    "help",
    "interactive",
];
const CREATE_FLAGS: &[&str] = &[
    "workspace_type",
    "enter",
    "ignore_existing",
    "create_context",
];
const CREATE_CONTEXT_FLAGS: &[&str] = &["overwrite"];
const COPY_FLAGS: &[&str] = &["output", "workspace_type"];

/// Parses `args` (without the program name) for the command `mode`.
pub fn parse(args: &[String], mode: Mode) -> Result<Parsed> {
    let (parsed, matches) = flags::parse::<Parsed>(args)?;
    check_mode(&matches, mode)?;
    Ok(parsed)
}

/// cobra's error for a flag another command defines.
fn check_mode(matches: &ArgMatches, mode: Mode) -> Result<()> {
    let own: &[&str] = match mode {
        Mode::Ws => &[],
        Mode::Create => CREATE_FLAGS,
        Mode::CreateContext => CREATE_CONTEXT_FLAGS,
        Mode::Copy => COPY_FLAGS,
    };
    match flags::first_not_allowed::<Parsed>(matches, &[COMMON_FLAGS, own].concat()) {
        Some(flag) => Err(Error::msg(format!("unknown flag: --{flag}"))),
        None => Ok(()),
    }
}

fn global(p: &Parsed) -> GlobalOptions {
    GlobalOptions {
        kubeconfig: p.kubeconfig.as_ref().map(PathBuf::from),
        context: p.context.clone(),
    }
}

fn strings(args: impl IntoIterator<Item = OsString>) -> Vec<String> {
    args.into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Output)
}

/// Runs `f` and turns an error into cobra's `Error: <message>` and exit code 1.
fn finish(result: Result<()>, err: &mut dyn Write) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(err, "Error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn create_options(p: &Parsed, name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_string(),
        workspace_type: p.workspace_type.clone(),
        enter: p.enter.unwrap_or(false),
        ignore_existing: p.ignore_existing.unwrap_or(false),
        create_context: p.create_context.clone(),
        ready_timeout: Duration::from_secs(60),
    }
}

/// `kubectl ws ...` (also `kubectl workspace ...`): the process's arguments, including argv[0].
pub fn ws_main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = strings(args);
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let result = ws(&args, &mut out, &mut err);
    finish(result, &mut err)
}

/// `kubectl create workspace ...`.
pub fn create_workspace_main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = strings(args);
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let result = create_workspace(&args, &mut out, &mut err);
    finish(result, &mut err)
}

/// `kubectl ws` with its arguments; output goes to `out` and `err`.
pub fn ws(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    // Flags may come before the subcommand and belong to it (cobra's TraverseChildren), so
    // the command line is parsed as a whole and the first argument names the subcommand.
    let (mut p, matches) = flags::parse::<Parsed>(args)?;
    let sub = match p.args.first().map(String::as_str) {
        Some(
            s @ ("use" | "cd" | "current" | "tree" | "create" | "create-context" | "help"
            | "snapshot" | "restore" | "fork" | "export"),
        ) => {
            let s = s.to_string();
            p.args.remove(0);
            Some(s)
        }
        _ => None,
    };
    let sub = sub.as_deref();
    check_mode(
        &matches,
        match sub {
            Some("create") => Mode::Create,
            Some("create-context") => Mode::CreateContext,
            Some("snapshot" | "restore" | "fork" | "export") => Mode::Copy,
            _ => Mode::Ws,
        },
    )?;
    if p.help.is_some() || sub == Some("help") {
        let usage = if sub == Some("create") {
            CREATE_USAGE.replace("kubectl create workspace", "kubectl ws create")
        } else {
            WS_USAGE.to_string()
        };
        write!(out, "{usage}")?;
        return Ok(());
    }
    if p.interactive.unwrap_or(false) {
        return Err(Error::msg(
            "the interactive workspace browser (-i) is not supported by kplex's kubectl ws",
        ));
    }
    let short = p.short.unwrap_or(false);
    let g = global(&p);
    let rt = runtime()?;
    match sub {
        None | Some("use") | Some("cd") => {
            let name = match (sub, p.args.as_slice()) {
                (None, []) => String::new(),
                (_, [one]) => one.clone(),
                _ => {
                    write!(out, "{WS_USAGE}")?;
                    return Ok(());
                }
            };
            let mut s = Session::open(&g, out, err)?;
            rt.block_on(s.use_workspace(&name, short))
        }
        Some("current") => {
            if !p.args.is_empty() {
                write!(out, "{WS_USAGE}")?;
                return Ok(());
            }
            Session::open(&g, out, err)?.current(short)
        }
        Some("tree") => {
            if !p.args.is_empty() {
                write!(out, "{WS_USAGE}")?;
                return Ok(());
            }
            let mut s = Session::open(&g, out, err)?;
            rt.block_on(s.tree(p.full.unwrap_or(false)))
        }
        Some("create") => {
            // kcp deprecates `ws create` in favour of the create-workspace plugin (cobra's
            // deprecation notice goes to stderr).
            writeln!(
                err,
                "Command \"create\" is deprecated, install the 'kubectl create workspace' plugin instead, compare https://docs.kcp.io/kcp/latest/setup/kubectl-plugin/."
            )?;
            let [name] = p.args.as_slice() else {
                return Err(Error::msg(format!(
                    "accepts 1 arg(s), received {}",
                    p.args.len()
                )));
            };
            let mut s = Session::open(&g, out, err)?;
            rt.block_on(s.create(&create_options(&p, name)))
        }
        Some("create-context") => {
            if p.args.len() > 1 {
                write!(out, "{WS_USAGE}")?;
                return Ok(());
            }
            Session::open(&g, out, err)?.create_context(
                p.args.first().map(String::as_str),
                p.overwrite.unwrap_or(false),
            )
        }
        Some("snapshot" | "export") => {
            let workspace = match p.args.as_slice() {
                [] => "",
                [one] => one.as_str(),
                _ => return Err(arg_count("0 or 1", p.args.len())),
            };
            let output = p.output.clone().unwrap_or_default();
            let mut s = Session::open(&g, out, err)?;
            if sub == Some("export") {
                return rt.block_on(s.export(workspace, &output));
            }
            if output.is_empty() {
                return Err(Error::msg(
                    "--output is required: the file to write the snapshot to (- for standard output)",
                ));
            }
            rt.block_on(s.snapshot(workspace, &output))
        }
        Some("restore") => {
            let (file, workspace) = match p.args.as_slice() {
                [file] => (file.as_str(), ""),
                [file, ws] => (file.as_str(), ws.as_str()),
                _ => return Err(arg_count("1 or 2", p.args.len())),
            };
            let mut s = Session::open(&g, out, err)?;
            rt.block_on(s.restore(file, workspace))
        }
        Some("fork") => {
            let [source, name] = p.args.as_slice() else {
                return Err(arg_count("2", p.args.len()));
            };
            let mut s = Session::open(&g, out, err)?;
            rt.block_on(s.fork(source, &create_options(&p, name)))
        }
        Some(other) => Err(Error::msg(format!("unknown command {other:?}"))),
    }
}

/// cobra's error for a wrong number of arguments.
fn arg_count(accepts: &str, received: usize) -> Error {
    Error::msg(format!("accepts {accepts} arg(s), received {received}"))
}

/// `kubectl create workspace` with its arguments.
pub fn create_workspace(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let p = parse(args, Mode::Create)?;
    if p.help.is_some() {
        write!(out, "{CREATE_USAGE}")?;
        return Ok(());
    }
    let [name] = p.args.as_slice() else {
        return Err(Error::msg(format!(
            "accepts 1 arg(s), received {}",
            p.args.len()
        )));
    };
    let g = global(&p);
    let rt = runtime()?;
    let mut s = Session::open(&g, out, err)?;
    rt.block_on(s.create(&create_options(&p, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags() {
        let p = parse(&v(&["--kubeconfig=/k", "-", "--short"]), Mode::Ws).unwrap();
        assert_eq!(p.kubeconfig.as_deref(), Some("/k"));
        assert_eq!(p.args, ["-"]);
        assert_eq!(p.short, Some(true));

        let p = parse(
            &v(&[
                "x",
                "--type",
                "root:universal",
                "--enter",
                "--ignore-existing=false",
            ]),
            Mode::Create,
        )
        .unwrap();
        assert_eq!(p.workspace_type.as_deref(), Some("root:universal"));
        assert_eq!((p.enter, p.ignore_existing), (Some(true), Some(false)));
        assert_eq!(p.args, ["x"]);

        let p = parse(&v(&["--", "--weird"]), Mode::Ws).unwrap();
        assert_eq!(p.args, ["--weird"]);

        // pflag: the last value wins; a bool takes a value only after `=`; a flag's value
        // may start with a dash.
        let p = parse(
            &v(&[
                "--context",
                "a",
                "--context=b",
                "--short",
                "false",
                "--kubeconfig",
                "-k",
            ]),
            Mode::Ws,
        )
        .unwrap();
        assert_eq!(p.context.as_deref(), Some("b"));
        assert_eq!(p.short, Some(true));
        assert_eq!(p.kubeconfig.as_deref(), Some("-k"));
        assert_eq!(p.args, ["false"]);

        let err = |args: &[&str], mode| parse(&v(args), mode).unwrap_err().to_string();
        assert_eq!(err(&["--type", "x"], Mode::Ws), "unknown flag: --type");
        assert_eq!(
            err(&["--overwrite", "--enter"], Mode::Create),
            "unknown flag: --overwrite"
        );
        assert_eq!(err(&["--nope=1"], Mode::Ws), "unknown flag: --nope");
        assert_eq!(err(&["-x"], Mode::Ws), "unknown shorthand flag: 'x' in -x");
        assert_eq!(
            err(&["-xyz"], Mode::Ws),
            "unknown shorthand flag: 'x' in -xyz"
        );
        assert_eq!(
            err(&["--context"], Mode::Ws),
            "flag needs an argument: --context"
        );
        assert_eq!(
            err(&["--short=maybe"], Mode::Ws),
            "invalid argument \"maybe\" for \"--short\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
    }

    #[test]
    fn subcommands() {
        // Flags before the subcommand belong to it; `--` ends the flags, not the words.
        let out = |args: &[&str]| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let r = ws(&v(args), &mut out, &mut err).map_err(|e| e.to_string());
            (r, String::from_utf8(out).unwrap())
        };
        assert_eq!(
            out(&["--enter", "create", "-h"]),
            (
                Ok(()),
                CREATE_USAGE.replace("kubectl create workspace", "kubectl ws create")
            )
        );
        assert_eq!(out(&["--", "help"]), (Ok(()), WS_USAGE.to_string()));
        assert_eq!(
            out(&["--enter", "tree"]).0,
            Err("unknown flag: --enter".to_string())
        );
        assert_eq!(
            out(&["--overwrite", "current"]).0,
            Err("unknown flag: --overwrite".to_string())
        );
        // Too many arguments: the usage.
        assert_eq!(out(&["use", "a", "b"]), (Ok(()), WS_USAGE.to_string()));
        assert_eq!(
            out(&["-i"]).0,
            Err(
                "the interactive workspace browser (-i) is not supported by kplex's kubectl ws"
                    .to_string()
            )
        );
    }

    #[test]
    fn help_needs_no_kubeconfig() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        ws(&v(&["--help"]), &mut out, &mut err).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Manages kcp workspaces")
        );
        // Any value of --help shows the help, as it always has.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        create_workspace(&v(&["--help=false"]), &mut out, &mut err).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Creates a new workspace")
        );
    }

    #[test]
    fn create_needs_one_name() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let e = create_workspace(&v(&[]), &mut out, &mut err).unwrap_err();
        assert_eq!(e.to_string(), "accepts 1 arg(s), received 0");
    }
}
