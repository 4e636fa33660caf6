//! `march train`.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use march_runtime::data::SpanFormat;
use march_runtime::kernels::Matmul;
use march_runtime::registry::find_or_suggest;
use march_runtime::train::{DeviceKind, RunOptions, TrainConfig};

/// The training configuration flags `train` and `sweep` share.
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// Starting configuration: cpu (the small family in minutes), original
    /// (the original march's 1,000 × 1M tokens), smoke (a few steps).
    #[arg(long, default_value = "cpu")]
    preset: String,
    /// A TOML file whose fields override the preset's.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Corpus file or directory (.txt, .jsonl, either gzipped, .parquet);
    /// repeatable. Without it: the built-in synthetic corpus.
    #[arg(long)]
    data: Vec<PathBuf>,
    /// Files held out whole as the validation split (repeatable) [default:
    /// chunks drawn across the --data corpus].
    #[arg(long)]
    validation: Vec<PathBuf>,
    /// Files held out whole as the test split (repeatable) [default: chunks
    /// drawn across the --data corpus].
    #[arg(long)]
    test: Vec<PathBuf>,
    /// Tokens in each held-out split (validation, test), in whole chunks
    /// drawn at random across its corpus [cpu preset: 262,144].
    #[arg(long)]
    held_out_tokens: Option<usize>,
    /// A Hugging Face tokenizer.json; without it a byte-fallback BPE is trained.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Optimizer steps (`march train --resume` may raise it: the new total).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Examples per micro-batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Micro-batches per optimizer step.
    #[arg(long)]
    grad_accum: Option<usize>,
    /// Peak learning rate of AdamW.
    #[arg(long)]
    lr: Option<f64>,
    /// Tokens per chunk before span corruption.
    #[arg(long)]
    chunk_len: Option<usize>,
    /// Evaluate on the validation batches every this many steps (and at
    /// the end).
    #[arg(long)]
    eval_every: Option<u64>,
    /// Save a checkpoint every this many steps (and at the end, and when
    /// stopped by a signal).
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Precision of the projections' matrix products on the CPU: f32, or
    /// bf16 (mixed precision on Intel AMX or AVX-512 BF16: bf16 factors,
    /// f32 sums, f32 everywhere else).
    #[arg(long)]
    matmul: Option<Matmul>,
    /// How span-corrupted examples end: t5 (inputs and labels end with
    /// `</s>`), or april_2023 (the original's own format of April 2023:
    /// inputs end with a sentinel, labels with one sentinel more) [cpu
    /// preset: t5; original: april_2023].
    #[arg(long)]
    span_format: Option<SpanFormat>,
}

impl ConfigArgs {
    /// The flags given that set something besides `--steps` (which a
    /// resumed run may change).
    pub fn given_besides_steps(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        let mut flag = |set: bool, name: &'static str| {
            if set {
                given.push(name);
            }
        };
        flag(self.preset != "cpu", "--preset");
        flag(self.config.is_some(), "--config");
        flag(!self.data.is_empty(), "--data");
        flag(!self.validation.is_empty(), "--validation");
        flag(!self.test.is_empty(), "--test");
        flag(self.held_out_tokens.is_some(), "--held-out-tokens");
        flag(self.tokenizer.is_some(), "--tokenizer");
        flag(self.batch_size.is_some(), "--batch-size");
        flag(self.grad_accum.is_some(), "--grad-accum");
        flag(self.lr.is_some(), "--lr");
        flag(self.chunk_len.is_some(), "--chunk-len");
        flag(self.eval_every.is_some(), "--eval-every");
        flag(self.checkpoint_every.is_some(), "--checkpoint-every");
        flag(self.matmul.is_some(), "--matmul");
        flag(self.span_format.is_some(), "--span-format");
        given
    }

    /// The preset, then the TOML file, then the flags.
    pub fn resolve(&self, seed: Option<u64>) -> Result<TrainConfig> {
        let mut cfg = TrainConfig::preset(&self.preset).map_err(|e| anyhow!(e))?;
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            cfg = cfg
                .merge_toml(&text)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        }
        if !self.data.is_empty() {
            cfg.data = self.data.clone();
        }
        if self.tokenizer.is_some() {
            cfg.tokenizer = self.tokenizer.clone();
        }
        if !self.validation.is_empty() {
            cfg.validation = self.validation.clone();
        }
        if !self.test.is_empty() {
            cfg.test = self.test.clone();
        }
        macro_rules! set {
            ($($field:ident),*) => {$(if let Some(v) = self.$field { cfg.$field = v; })*};
        }
        set!(
            steps,
            batch_size,
            grad_accum,
            lr,
            chunk_len,
            held_out_tokens,
            eval_every,
            checkpoint_every,
            matmul,
            span_format
        );
        if let Some(seed) = seed {
            cfg.seed = seed;
        }
        cfg.validate()
            .map_err(|e| anyhow!("invalid configuration: {e}"))?;
        Ok(cfg)
    }
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Variant to train (`march list` shows them) [default: SmallBaseline,
    /// or with --resume the run's own].
    variant: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Seed of the initialisation, the data order, the span corruption and
    /// the dropout masks [default: the preset's, 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Run directory (default: runs/VARIANT-seedSEED).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint, with the run's own
    /// configuration (only --steps may change it).
    #[arg(long)]
    resume: bool,
    /// cpu, or cuda (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

/// The variant a run directory holds (its `config.json`).
pub(super) fn variant_of_run(dir: &std::path::Path) -> Result<String> {
    let path = dir.join("config.json");
    let text =
        std::fs::read(&path).with_context(|| format!("{}: no run to resume", path.display()))?;
    let config: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{}: unreadable run configuration", path.display()))?;
    config["variant"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow!("{}: names no variant", path.display()))
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let name = match (&args.variant, args.resume, &args.out) {
        (Some(v), _, _) => v.clone(),
        (None, true, Some(out)) => variant_of_run(out)?,
        (None, _, _) => "SmallBaseline".to_string(),
    };
    let entry = find_or_suggest(&name)?;
    if args.resume {
        let mut given = args.config.given_besides_steps();
        if args.seed.is_some() {
            given.push("--seed");
        }
        if !given.is_empty() {
            anyhow::bail!(
                "--resume continues a run with its own configuration: only --steps may change (got {})",
                given.join(", ")
            );
        }
    }
    let cfg = args.config.resolve(args.seed)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{}-seed{}", entry.arch.name, cfg.seed))
    });
    let opts = RunOptions {
        cfg,
        out,
        resume: args.resume,
        resume_steps: args.config.steps,
        device: args.device,
        progress: !args.quiet,
        stop_after: None,
        inject_nan_at: None,
        lock: None,
    };
    let report = entry.train(&opts)?;
    let fmt = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
    let test = match report.test_loss {
        Some(t) => format!(", test loss {t:.4} (perplexity {:.2})", t.exp()),
        None => String::new(),
    };
    println!(
        "{}: {} steps, {} tokens, val loss {} → {}{test} (best during the run {}; unigram entropy {:.3}), {:.0} tokens/s, {:.1}s{}\nrun directory: {}",
        report.variant,
        report.steps,
        march_runtime::arch::thousands(report.tokens),
        fmt(report.first_val_loss),
        fmt(report.final_val_loss),
        fmt(report.best_val_loss),
        report.unigram_entropy,
        report.tokens_per_s,
        report.wall_s,
        if report.interrupted { " (interrupted)" } else { "" },
        report.run_dir.display()
    );
    if report.interrupted {
        return Err(super::Interrupted(format!(
            "interrupted: checkpoint and metrics saved; continue with `march train --resume --out {}`",
            report.run_dir.display()
        ))
        .into());
    }
    Ok(())
}
