//! The `march` command line, as a library function: [`main`] runs it for
//! every variant linked into the calling binary — the library's and, in a
//! user's own binary, the user's (see `examples/my_experiments.rs`).

mod bench;
mod eval;
mod list;
mod report;
mod sample;
mod sweep;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "march",
    version,
    about = "Model-architecture experiments at a fixed parameter budget"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every registered variant: parameters (total and live), deviation
    /// from its budget, FLOPs per token and what its declaration changes.
    List(list::ListArgs),
    /// Train a variant (default: SmallBaseline on the built-in corpus, CPU preset).
    Train(Box<train::TrainArgs>),
    /// Train variants × settings (--grid) × seeds under one configuration,
    /// each in its own run directory; resumable, and sliceable across
    /// machines (--slice).
    Sweep(Box<sweep::SweepArgs>),
    /// Compare run directories: a Markdown table (mean ± std over seeds,
    /// Welch's 95% interval against the baseline or a control, Holm), each
    /// variant at its best setting, plots and JSON.
    Report(report::ReportArgs),
    /// Measure a variant's throughput on a synthetic batch: ms/step, tokens/s,
    /// GFLOP/s against the measured matmul ceiling, peak memory.
    Bench(bench::BenchArgs),
    /// Evaluate a run's checkpoint on its whole validation and test splits,
    /// or on another corpus: loss per target token and perplexity.
    Eval(eval::EvalArgs),
    /// Fill `<extra_id_N>` spans with a trained run's model: greedy, or
    /// sampled with a temperature and top-k.
    Sample(sample::SampleArgs),
    /// Describe one variant's architecture in full.
    Show {
        /// Variant name (case-insensitive), as `march list` prints it.
        variant: String,
    },
}

/// Parse the process's arguments and run the command: `march`'s `main`, and
/// a user binary's. Every variant registered in the binary is available.
/// Runs `f` with the main thread as one of rayon's worker threads (the
/// pool's size is still `RAYON_NUM_THREADS`, else one per core). Called
/// from outside the pool, every parallel loop of a step hands its work
/// over and puts the calling thread to sleep until it is done — a futex
/// wait and wake per loop, and a third thread on two cores while the serial
/// parts run beside the workers' spinning; on a worker, the step's serial
/// parts and its loops share the pool's threads. The worker is the main
/// thread itself, not a spawned one, so that the tensors it allocates come
/// from glibc's main heap, which [`march_runtime::alloc`] keeps: a spawned
/// thread's arena maps the largest blocks afresh (measured: 50 MB more
/// peak memory for `march bench Baseline`). Spawned workers get 8 MiB of
/// stack, as the main thread has.
fn on_the_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // fails only if the pool exists already (it does not before this)
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(8 << 20)
        .use_current_thread()
        .build_global();
    rayon::scope(|_| f())
}

pub fn main() -> ExitCode {
    march_runtime::alloc::keep_freed_memory();
    march_models::link();
    let cli = Cli::parse();
    let result = on_the_pool(move || match cli.command {
        Command::List(args) => list::run(&args),
        Command::Show { variant } => list::show(&variant),
        Command::Train(args) => train::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Sample(args) => sample::run(&args),
        Command::Eval(args) => eval::run(&args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // a closed pipe (`march list | head`) is not an error
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        // stopped by a signal after saving: not a success, and not a failure
        // of the run (it continues with --resume)
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => {
            eprintln!("{e}");
            ExitCode::from(Interrupted::EXIT_CODE)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

pub use march_runtime::train::Interrupted;
