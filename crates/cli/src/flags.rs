//! Command lines are parsed with clap, configured to accept what cobra and pflag accept for
//! kcp's plugins: flags anywhere among the arguments, `--flag=value` or `--flag value`, `--`
//! ends the flags, a repeated flag's last value wins, boolean flags take a value only after
//! `=` (`--short=false`). clap's errors are reworded as pflag words them, and help is the
//! plugins' own text (clap's help flag is off).

use std::ffi::OsStr;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgMatches, CommandFactory};

use crate::error::{Error, Result};

/// A boolean flag's value as Go's strconv.ParseBool reads it; the flag alone means true.
///
/// Use with `num_args = 0..=1, require_equals = true, default_missing_value = "true"`.
#[derive(Clone, Copy, Debug)]
pub struct GoBool;

impl clap::builder::TypedValueParser for GoBool {
    type Value = bool;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> std::result::Result<bool, clap::Error> {
        let value = value.to_string_lossy();
        match kplex_gocompat::parse_bool(&value) {
            Some(b) => Ok(b),
            None => {
                let other = value.as_ref();
                let flag = arg.and_then(clap::Arg::get_long).unwrap_or_default();
                let mut e = clap::Error::new(ErrorKind::ValueValidation).with_cmd(cmd);
                e.insert(
                    ContextKind::Custom,
                    ContextValue::String(format!(
                        "invalid argument {other:?} for \"--{flag}\" flag: strconv.ParseBool: parsing {other:?}: invalid syntax"
                    )),
                );
                Err(e)
            }
        }
    }
}

/// Parses `args` (without the program name) into `P`, also returning clap's matches (which
/// know where each flag was given).
pub fn parse<P: clap::Parser>(args: &[String]) -> Result<(P, ArgMatches)> {
    let matches = P::command()
        .try_get_matches_from(args)
        .map_err(|e| pflag_error(&e, args))?;
    let parsed = P::from_arg_matches(&matches).map_err(|e| pflag_error(&e, args))?;
    Ok((parsed, matches))
}

/// The long name of the first flag on the command line that is not one of `allowed` (ids of
/// `P`'s arguments): cobra's subcommands each know only their own flags.
pub fn first_not_allowed<P: CommandFactory>(
    matches: &ArgMatches,
    allowed: &[&str],
) -> Option<String> {
    let cmd = P::command();
    cmd.get_arguments()
        .filter(|a| !a.is_positional() && !allowed.contains(&a.get_id().as_str()))
        .filter_map(|a| Some((matches.index_of(a.get_id().as_str())?, a)))
        .min_by_key(|(index, _)| *index)
        .and_then(|(_, a)| a.get_long().map(str::to_string))
}

/// The flag a clap error is about, from its rendering (`--context <CONTEXT>`,
/// `--short[=<SHORT>]`, `--nope=1`, `-x`).
fn invalid_arg(e: &clap::Error) -> Option<&str> {
    match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn long_name(rendered: &str) -> &str {
    let name = rendered.trim_start_matches('-');
    let end = name
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(name.len());
    &name[..end]
}

/// clap's error in pflag's (and cobra's) words.
fn pflag_error(e: &clap::Error, args: &[String]) -> Error {
    if let Some(ContextValue::String(message)) = e.get(ContextKind::Custom) {
        return Error::msg(message.clone());
    }
    match (e.kind(), invalid_arg(e)) {
        (ErrorKind::UnknownArgument, Some(arg)) if arg.starts_with("--") => {
            Error::msg(format!("unknown flag: --{}", long_name(arg)))
        }
        (ErrorKind::UnknownArgument, Some(arg)) => {
            // pflag names the whole argument the unknown shorthand came in.
            let c = arg.trim_start_matches('-').chars().next().unwrap_or('-');
            let whole = args
                .iter()
                .find(|a| {
                    !a.starts_with("--") && a.strip_prefix('-').is_some_and(|s| s.contains(c))
                })
                .map_or(arg, String::as_str);
            Error::msg(format!("unknown shorthand flag: {c:?} in {whole}"))
        }
        (ErrorKind::InvalidValue, Some(arg)) => {
            Error::msg(format!("flag needs an argument: --{}", long_name(arg)))
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            Error::msg(first.strip_prefix("error: ").unwrap_or(first).to_string())
        }
    }
}
