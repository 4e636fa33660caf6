//! The `march` command line.

mod list;
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
    /// Describe one variant's architecture in full.
    Show {
        /// Variant name (case-insensitive), as `march list` prints it.
        variant: String,
    },
}

fn main() -> ExitCode {
    march_models::link();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List(args) => list::run(&args),
        Command::Show { variant } => list::show(&variant),
        Command::Train(args) => train::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // a closed pipe (`march list | head`) is not an error
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
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
