//! `kubectl kplex`: bind APIExports, answer permission claims, snapshot CRDs into
//! APIResourceSchemas (kubectl finds this as a plugin on PATH).

fn main() -> std::process::ExitCode {
    kplex_cli::kplex_main(std::env::args_os())
}
