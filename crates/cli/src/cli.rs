//! Command lines of `kubectl-ws` and `kubectl-create-workspace`, parsed the way kcp's cobra
//! commands accept them (flags anywhere, `--flag=value` or `--flag value`, `--` ends flags).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::error::{Error, Result};
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
  kubectl create workspace my-workspace --enter

Flags:
      --kubeconfig string   Path to the kubeconfig file to use
      --context string      The kubeconfig context to start from
      --short               Print only the name of the workspace
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

/// Flags and positional arguments of one command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub global: ParsedGlobal,
    pub short: bool,
    pub full: bool,
    pub help: bool,
    pub interactive: bool,
    pub workspace_type: Option<String>,
    pub enter: bool,
    pub ignore_existing: bool,
    pub create_context: Option<String>,
    pub overwrite: bool,
    pub args: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParsedGlobal {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
}

fn parse_bool(flag: &str, v: Option<&str>) -> Result<bool> {
    match v {
        None | Some("true") | Some("1") | Some("t") | Some("T") | Some("TRUE") | Some("True") => {
            Ok(true)
        }
        Some("false") | Some("0") | Some("f") | Some("F") | Some("FALSE") | Some("False") => {
            Ok(false)
        }
        Some(other) => Err(Error::msg(format!(
            "invalid argument {other:?} for \"--{flag}\" flag: strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

/// Which command's flags a command line may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ws,
    Create,
    CreateContext,
}

/// Parses `args` (without the program name) for the command `mode`.
pub fn parse(args: &[String], mode: Mode) -> Result<Parsed> {
    let create = mode == Mode::Create;
    let mut p = Parsed::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            p.args.extend(it.by_ref().cloned());
            break;
        }
        // A lone `-` is the previous workspace, not a flag.
        if a == "-" || !a.starts_with('-') {
            p.args.push(a.clone());
            continue;
        }
        let (flag, inline) = match a.trim_start_matches('-').split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (a.trim_start_matches('-').to_string(), None),
        };
        let mut value = |name: &str| -> Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| Error::msg(format!("flag needs an argument: --{name}"))),
            }
        };
        match flag.as_str() {
            "kubeconfig" => p.global.kubeconfig = Some(value("kubeconfig")?),
            "context" => p.global.context = Some(value("context")?),
            "h" | "help" => p.help = true,
            "short" => p.short = parse_bool("short", inline.as_deref())?,
            "f" | "full" => p.full = parse_bool("full", inline.as_deref())?,
            "i" | "interactive" => p.interactive = parse_bool("interactive", inline.as_deref())?,
            "type" if create => p.workspace_type = Some(value("type")?),
            "enter" if create => p.enter = parse_bool("enter", inline.as_deref())?,
            "create-context" if create => p.create_context = Some(value("create-context")?),
            "overwrite" if mode == Mode::CreateContext => {
                p.overwrite = parse_bool("overwrite", inline.as_deref())?
            }
            "ignore-existing" if create => {
                p.ignore_existing = parse_bool("ignore-existing", inline.as_deref())?
            }
            _ => {
                return Err(Error::msg(if a.starts_with("--") {
                    format!("unknown flag: --{flag}")
                } else {
                    format!(
                        "unknown shorthand flag: {:?} in {a}",
                        flag.chars().next().unwrap_or('-')
                    )
                }));
            }
        }
    }
    Ok(p)
}

fn global(p: &Parsed) -> GlobalOptions {
    GlobalOptions {
        kubeconfig: p.global.kubeconfig.as_ref().map(PathBuf::from),
        context: p.global.context.clone(),
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
        enter: p.enter,
        ignore_existing: p.ignore_existing,
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

/// The index of the first argument that is neither a flag nor a flag's value.
fn first_positional(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            return (i + 1 < args.len()).then_some(i + 1);
        }
        if a == "-" || !a.starts_with('-') {
            return Some(i);
        }
        if matches!(
            a,
            "--kubeconfig" | "--context" | "--type" | "--create-context"
        ) {
            i += 1;
        }
        i += 1;
    }
    None
}

/// `kubectl ws` with its arguments; output goes to `out` and `err`.
pub fn ws(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let sub = first_positional(args).and_then(|i| match args[i].as_str() {
        s @ ("use" | "cd" | "current" | "tree" | "create" | "create-context" | "help") => {
            Some((i, s))
        }
        _ => None,
    });
    // Flags before the subcommand belong to it too (cobra's TraverseChildren).
    let (sub, rest): (Option<&str>, Vec<String>) = match sub {
        Some((i, s)) => (
            Some(s),
            args[..i].iter().chain(&args[i + 1..]).cloned().collect(),
        ),
        None => (None, args.to_vec()),
    };
    let mode = match sub {
        Some("create") => Mode::Create,
        Some("create-context") => Mode::CreateContext,
        _ => Mode::Ws,
    };
    let p = parse(&rest, mode)?;
    if p.help || sub == Some("help") {
        let usage = if sub == Some("create") {
            CREATE_USAGE.replace("kubectl create workspace", "kubectl ws create")
        } else {
            WS_USAGE.to_string()
        };
        write!(out, "{usage}")?;
        return Ok(());
    }
    if p.interactive {
        return Err(Error::msg(
            "the interactive workspace browser (-i) is not supported by kplex's kubectl ws",
        ));
    }
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
            rt.block_on(s.use_workspace(&name, p.short))
        }
        Some("current") => {
            if !p.args.is_empty() {
                write!(out, "{WS_USAGE}")?;
                return Ok(());
            }
            Session::open(&g, out, err)?.current(p.short)
        }
        Some("tree") => {
            if !p.args.is_empty() {
                write!(out, "{WS_USAGE}")?;
                return Ok(());
            }
            let mut s = Session::open(&g, out, err)?;
            rt.block_on(s.tree(p.full))
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
            Session::open(&g, out, err)?
                .create_context(p.args.first().map(String::as_str), p.overwrite)
        }
        Some(other) => Err(Error::msg(format!("unknown command {other:?}"))),
    }
}

/// `kubectl create workspace` with its arguments.
pub fn create_workspace(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let p = parse(args, Mode::Create)?;
    if p.help {
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
        assert_eq!(p.global.kubeconfig.as_deref(), Some("/k"));
        assert_eq!(p.args, ["-"]);
        assert!(p.short);

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
        assert!(p.enter && !p.ignore_existing);
        assert_eq!(p.args, ["x"]);

        let p = parse(&v(&["--", "--weird"]), Mode::Ws).unwrap();
        assert_eq!(p.args, ["--weird"]);

        assert_eq!(
            parse(&v(&["--type", "x"]), Mode::Ws)
                .unwrap_err()
                .to_string(),
            "unknown flag: --type"
        );
        assert_eq!(
            parse(&v(&["--context"]), Mode::Ws).unwrap_err().to_string(),
            "flag needs an argument: --context"
        );
    }

    #[test]
    fn subcommand_position() {
        assert_eq!(
            first_positional(&v(&["--kubeconfig", "/k", "use", "x"])),
            Some(2)
        );
        assert_eq!(first_positional(&v(&["--short", "-"])), Some(1));
        assert_eq!(first_positional(&v(&["--short"])), None);
        assert_eq!(first_positional(&v(&["--", "tree"])), Some(1));
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
        let (mut out, mut err) = (Vec::new(), Vec::new());
        create_workspace(&v(&["-h"]), &mut out, &mut err).unwrap();
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
