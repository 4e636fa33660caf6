//! The `march` command line (see [`march::cli`]).

#[global_allocator]
static ALLOC: march_runtime::alloc::ParallelZeroing = march_runtime::alloc::ParallelZeroing;

fn main() -> std::process::ExitCode {
    march::cli::main()
}
