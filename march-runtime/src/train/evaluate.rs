//! Evaluation: a model's loss on held-out chunks — during a run (a fixed
//! subset of the validation split), at its end (the whole validation and
//! test splits) and for a finished run (`march eval`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::data::{corpus_chunks, load_data};
use super::run_dir::RunConfig;
use crate::checkpoint::{self, TrainState};
use crate::data::{derive_seed, Batcher, MarchTokenizer};
use crate::layers::IGNORE_INDEX;
use crate::session::{DeviceKind, HostBatch, Opener, Session, SessionOptions};

/// The salt of the evaluation's span corruption: chunk `i` of batch `b` is
/// corrupted by `derive_seed(EVAL_SALT, [b, i])` in every run and seed.
const EVAL_SALT: u64 = 0x4556_414c; // "EVAL"

/// Held-out chunks as span-corrupted batches of `batch_size`, each chunk
/// corrupted by its position, so that every evaluation of them is the same.
pub fn batches(batcher: &Batcher, chunks: &[Vec<u32>], batch_size: usize) -> Vec<HostBatch> {
    chunks
        .chunks(batch_size)
        .enumerate()
        .map(|(b, chunks)| {
            let seeded: Vec<(&[u32], u64)> = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_slice(), derive_seed(EVAL_SALT, &[b as u64, i as u64])))
                .collect();
            batcher.batch(&seeded)
        })
        .collect()
}

/// A model's loss on some held-out batches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Loss {
    /// Mean cross-entropy per target token, in nats.
    pub loss: f64,
    /// Target tokens it averages over.
    pub targets: u64,
    /// The standard error of `loss` as an estimate of the loss on the
    /// corpus the chunks were drawn from: over the batches as clusters
    /// (the targets of one chunk are not independent).
    pub standard_error: f64,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

impl Loss {
    /// e^loss: the model's perplexity on the target tokens.
    pub fn perplexity(&self) -> f64 {
        self.loss.exp()
    }
}

/// The mean loss per target token over `batches` (each batch's mean
/// weighted by its targets), without dropout.
pub fn loss(session: &dyn Session, batches: &[HostBatch]) -> Loss {
    loss_by_batch(session, batches).0
}

/// [`loss`], and each batch's mean loss and targets.
pub fn loss_by_batch(session: &dyn Session, batches: &[HostBatch]) -> (Loss, Vec<(f64, u64)>) {
    let t0 = Instant::now();
    let per_batch: Vec<(f64, u64)> = batches
        .iter()
        .filter_map(|b| {
            let n = b.labels.iter().filter(|&&l| l != IGNORE_INDEX).count() as u64;
            (n > 0).then(|| (session.eval_loss(b), n))
        })
        .collect();
    let targets: u64 = per_batch.iter().map(|&(_, n)| n).sum();
    let total = targets.max(1) as f64;
    let loss = per_batch.iter().map(|&(l, n)| l * n as f64).sum::<f64>() / total;
    // the ratio estimator's standard error, batches as clusters
    let k = per_batch.len() as f64;
    let standard_error = if per_batch.len() > 1 {
        let ss: f64 = per_batch
            .iter()
            .map(|&(l, n)| (n as f64 * (l - loss)).powi(2))
            .sum();
        (k / (k - 1.0) * ss).sqrt() / total
    } else {
        f64::NAN
    };
    (
        Loss {
            loss,
            targets,
            standard_error,
            seconds: t0.elapsed().as_secs_f64(),
        },
        per_batch,
    )
}

/// What `march eval` measures of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvaluation {
    pub variant: String,
    pub run_dir: PathBuf,
    /// The checkpoint's step and training tokens.
    pub step: u64,
    pub tokens: u64,
    /// Each split or corpus evaluated, in order.
    pub results: Vec<SplitLoss>,
}

/// The loss on one split or corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitLoss {
    /// `validation`, `test`, or the corpus's files.
    pub name: String,
    pub chunks: usize,
    pub loss: Loss,
    /// Each batch's mean loss and targets, in order (the same chunks and
    /// corruption for every run on this corpus and chunk length: two
    /// runs' batches pair up).
    pub batches: Vec<(f64, u64)>,
}

/// What `march eval` evaluates a run on.
#[derive(Debug, Clone, Default)]
pub struct EvalTarget {
    /// Corpus files; empty: the run's own validation and test splits.
    pub data: Vec<PathBuf>,
    /// With `data`: at most this many tokens of it (whole chunks drawn
    /// across it); `None`: all of it.
    pub max_tokens: Option<usize>,
}

/// Evaluate the checkpoint of the run in `dir` (a model of `arch`, opened
/// by `open`) on its validation and test splits, or on another corpus.
/// Reads the run directory and writes nothing into it.
pub fn evaluate_run(
    arch: &'static crate::arch::Arch,
    open: Opener,
    dir: &Path,
    target: &EvalTarget,
    device: DeviceKind,
    progress: bool,
) -> Result<RunEvaluation> {
    let config_path = dir.join("config.json");
    let config: RunConfig = serde_json::from_slice(
        &std::fs::read(&config_path)
            .with_context(|| format!("{}: no run here", config_path.display()))?,
    )
    .with_context(|| format!("{}: unreadable run configuration", config_path.display()))?;
    if config.variant != arch.name {
        bail!(
            "{} is a run of {}, not {}",
            dir.display(),
            config.variant,
            arch.name
        );
    }
    let ckpt = dir.join(checkpoint::FILE);
    if !ckpt.exists() {
        bail!(
            "{}: no checkpoint yet (the run saves one every checkpoint_every steps)",
            dir.display()
        );
    }
    let cfg = &config.train;
    let tokenizer = MarchTokenizer::load(&dir.join("tokenizer.json"))?;
    let batcher = Batcher::new(
        cfg.span_corruption(),
        tokenizer.special.clone(),
        cfg.chunk_len,
    );
    let splits: Vec<(String, Vec<Vec<u32>>)> = if target.data.is_empty() {
        let data = load_data(cfg, tokenizer, progress)?;
        vec![
            ("validation".to_string(), data.chunks.validation),
            ("test".to_string(), data.chunks.test),
        ]
    } else {
        let chunks = corpus_chunks(
            &target.data,
            &tokenizer,
            cfg.chunk_len,
            target.max_tokens,
            progress,
        )?;
        if chunks.is_empty() {
            bail!(
                "the corpus has fewer than {} tokens: not one chunk to evaluate",
                cfg.chunk_len
            );
        }
        let name = target
            .data
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        vec![(name, chunks)]
    };
    // the products in the run's own precision
    let mut session = open(
        arch,
        &SessionOptions {
            matmul: cfg.matmul,
            ..SessionOptions::probe(device, 0)
        },
    )?;
    let state: TrainState = session
        .load_weights(&ckpt)
        .with_context(|| format!("loading {}", ckpt.display()))?;
    let results = splits
        .into_iter()
        .map(|(name, chunks)| {
            let (loss, batches) = loss_by_batch(
                session.as_ref(),
                &batches(&batcher, &chunks, cfg.batch_size),
            );
            SplitLoss {
                name,
                chunks: chunks.len(),
                loss,
                batches,
            }
        })
        .collect();
    Ok(RunEvaluation {
        variant: arch.name.to_string(),
        run_dir: dir.to_path_buf(),
        step: state.step,
        tokens: state.tokens,
        results,
    })
}
