//! `kubectl create workspace`: kubectl maps the `create workspace` subcommand to this plugin.

fn main() -> std::process::ExitCode {
    kplex_cli::create_workspace_main(std::env::args_os())
}
