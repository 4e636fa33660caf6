//! `march eval`: a run's checkpoint on its validation and test splits, or on
//! any corpus: loss per target token and perplexity.

use std::path::PathBuf;

use anyhow::Result;
use march_runtime::arch::thousands;
use march_runtime::registry::find_or_suggest;
use march_runtime::session::DeviceKind;
use march_runtime::train::evaluate::EvalTarget;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A run directory (`march train --out`).
    run: PathBuf,
    /// Evaluate on this corpus (files or directories, as `train --data`)
    /// instead of the run's validation and test splits; repeatable.
    #[arg(long)]
    data: Vec<PathBuf>,
    /// With --data: at most this many tokens of it, in whole chunks drawn
    /// across it [default: all of it].
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Where to run the model: cpu or cuda.
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if args.max_tokens.is_some() && args.data.is_empty() {
        anyhow::bail!(
            "--max-tokens limits a --data corpus; the run's own splits are evaluated whole"
        );
    }
    if args.max_tokens == Some(0) {
        anyhow::bail!("--max-tokens must be at least 1");
    }
    let variant = super::train::variant_of_run(&args.run)?;
    let entry = find_or_suggest(&variant)?;
    let target = EvalTarget {
        data: args.data.clone(),
        max_tokens: args.max_tokens,
    };
    let e = entry.evaluate(&args.run, &target, args.device, !args.quiet)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    println!(
        "{} after {} steps ({} tokens), {}",
        e.variant,
        e.step,
        thousands(e.tokens),
        e.run_dir.display()
    );
    for r in &e.results {
        let l = &r.loss;
        println!(
            "{}: loss {:.4} ± {:.4} (standard error) nats per target token, perplexity {:.2} ({} chunks, {} targets, {:.1}s)",
            r.name,
            l.loss,
            l.standard_error,
            l.perplexity(),
            thousands(r.chunks as u64),
            thousands(l.targets),
            l.seconds
        );
    }
    Ok(())
}
