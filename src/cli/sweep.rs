//! `march sweep`: variants × settings × seeds under one configuration.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use march_runtime::sweep::{self, Axis, Slice, SweepOptions, SweepSpec, RUNS_FILE};
use march_runtime::train::DeviceKind;

use super::train::ConfigArgs;

#[derive(clap::Args)]
pub struct SweepArgs {
    /// Variants to train (`march list`); omit them to continue the sweep in --out.
    variants: Vec<String>,
    /// Sweep directory: sweep.json, runs.txt and one run directory per
    /// (variant, seed).
    #[arg(long)]
    out: PathBuf,
    /// Seeds 0..N for every variant.
    #[arg(long, default_value_t = 3, conflicts_with = "seed_list")]
    seeds: u64,
    /// Explicit seeds instead, e.g. 0,1,2,7.
    #[arg(long, value_delimiter = ',')]
    seed_list: Vec<u64>,
    /// An axis of settings, KEY=V1,V2,… with a training key as in a TOML
    /// configuration (lr, batch_size, warmup_fraction, adamw.weight_decay…):
    /// every run trains one combination of the axes' values (repeatable:
    /// `--grid lr=1e-3,3e-3 --grid batch_size=8,16` is 4 settings).
    #[arg(long, value_name = "KEY=V1,V2,…")]
    grid: Vec<Axis>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Run only lines K, K+N, K+2N… of runs.txt (0 <= K < N): one slice per
    /// machine or job-array task, all writing into the same --out.
    #[arg(long, default_value = "0/1")]
    slice: Slice,
    /// Write sweep.json and runs.txt and list the runs, without training.
    #[arg(long)]
    plan: bool,
    /// cpu, or cuda (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

/// Absolute paths, so that every machine of a shared sweep reads the same files.
fn absolute(p: &Path) -> Result<PathBuf> {
    p.canonicalize()
        .with_context(|| format!("{}: no such file or directory", p.display()))
}

pub fn run(args: &SweepArgs) -> Result<()> {
    let spec = if args.variants.is_empty() {
        None
    } else {
        let mut cfg = args.config.resolve(None)?;
        cfg.data = cfg
            .data
            .iter()
            .map(|p| absolute(p))
            .collect::<Result<_>>()?;
        for files in [&mut cfg.validation, &mut cfg.test] {
            *files = files.iter().map(|p| absolute(p)).collect::<Result<_>>()?;
        }
        cfg.tokenizer = cfg.tokenizer.as_deref().map(absolute).transpose()?;
        let seeds = if args.seed_list.is_empty() {
            (0..args.seeds).collect()
        } else {
            args.seed_list.clone()
        };
        Some(SweepSpec::new(&args.variants, seeds, cfg)?.with_grid(args.grid.clone())?)
    };
    if spec.is_none() && !args.grid.is_empty() {
        bail!("--grid without variants: name the variants to start a sweep (continuing one takes its own grid)");
    }
    let (spec, runs) = sweep::open(&args.out, spec)?;
    let say = |m: String| {
        if !args.quiet {
            eprintln!("{m}");
        }
    };
    let settings = spec.settings().len();
    say(format!(
        "sweep {}: {} variants{} × {} seeds = {} runs ({}), this slice {}: {} of them",
        args.out.display(),
        spec.variants.len(),
        if spec.grid.is_empty() {
            String::new()
        } else {
            format!(" × {settings} settings")
        },
        spec.seeds.len(),
        runs.len(),
        args.out.join(RUNS_FILE).display(),
        args.slice,
        (0..runs.len()).filter(|&i| args.slice.contains(i)).count()
    ));
    if args.plan {
        let mut text = String::new();
        for (i, r) in runs.iter().enumerate() {
            let state = sweep::run_state(&args.out.join(&r.dir));
            text += &format!(
                "{i:>4} {}{} {} {} {:?}{}\n",
                r.variant,
                r.settings_text(),
                r.seed,
                r.dir,
                state,
                if args.slice.contains(i) {
                    ""
                } else {
                    " (other slice)"
                }
            );
        }
        return super::list::emit(&text);
    }
    let outcome = sweep::run(
        &spec,
        &runs,
        &SweepOptions {
            dir: args.out.clone(),
            slice: args.slice,
            device: args.device,
            progress: !args.quiet,
            stop_after: None,
        },
    )?;
    println!(
        "sweep {} slice {}: {} trained, {} resumed, {} already finished, {}{} failed{}",
        args.out.display(),
        args.slice,
        outcome.trained.len(),
        outcome.resumed.len(),
        outcome.skipped.len(),
        if outcome.held.is_empty() {
            String::new()
        } else {
            format!("{} left to the process training them, ", outcome.held.len())
        },
        outcome.failed.len(),
        if outcome.stopped {
            " (interrupted: run the same command to continue)"
        } else {
            ""
        }
    );
    if !outcome.failed.is_empty() {
        for (run, why) in &outcome.failed {
            eprintln!("failed: {run}: {why}");
        }
        bail!(
            "{} of the sweep's runs failed (the others are kept)",
            outcome.failed.len()
        );
    }
    if !outcome.stopped {
        println!("compare them: march report {}", args.out.display());
    }
    Ok(())
}
