//! The `march` command line (see [`march::cli`]).

fn main() -> std::process::ExitCode {
    march::cli::main()
}
