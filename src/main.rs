//! The `march` command line.

mod list;

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
    /// Describe one variant's architecture in full.
    Show {
        /// Variant name (case-insensitive), as `march list` prints it.
        variant: String,
    },
}

fn main() -> anyhow::Result<()> {
    march_models::link();
    let cli = Cli::parse();
    match cli.command {
        Command::List(args) => list::run(&args),
        Command::Show { variant } => list::show(&variant),
    }
}
