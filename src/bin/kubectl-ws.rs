//! `kubectl ws`: navigate kplex workspaces (kubectl finds this as a plugin on PATH).

fn main() -> std::process::ExitCode {
    kplex_cli::ws_main(std::env::args_os())
}
