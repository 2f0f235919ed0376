//! `kubectl workspace`: the long name of `kubectl ws`.

fn main() -> std::process::ExitCode {
    kplex_cli::ws_main(std::env::args_os())
}
