//! Training configuration: presets, overridable field by field from a TOML
//! file and from the command line.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use crate::data::{SpanCorruption, SpanFormat};
use crate::kernels::Matmul;
use crate::optim::AdamWConfig;

/// Everything a run needs besides the variant. Saved in the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Preset this configuration started from.
    pub preset: String,
    /// Corpus files or directories; empty = the built-in synthetic corpus.
    pub data: Vec<PathBuf>,
    /// A Hugging Face `tokenizer.json`; none = train a byte-fallback BPE.
    pub tokenizer: Option<PathBuf>,
    /// Documents of the built-in corpus to generate.
    pub builtin_documents: usize,
    /// Tokens per chunk before span corruption.
    pub chunk_len: usize,
    /// Files held out whole as the validation split; none: validation is
    /// drawn from `data`.
    pub validation: Vec<PathBuf>,
    /// Files held out whole as the test split; none: drawn from `data`.
    pub test: Vec<PathBuf>,
    /// Tokens in each held-out split, in whole chunks drawn at random across
    /// the corpus (the same chunks for every run and seed on it), or across
    /// the `validation` / `test` files; drawn from `data`, a split takes at
    /// most a quarter of it.
    pub held_out_tokens: usize,
    /// Runs made before the held-out chunks were drawn: the first this many
    /// chunks were validation and the next as many test (kept so that such
    /// runs resume on their own data); new runs leave it unset.
    /// Set for the original's layout too: the first `held_out_chunks`
    /// chunks held out in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_out_chunks: Option<usize>,
    /// With `held_out_chunks`: the test split first, then validation (the
    /// original: test = chunks [0, n), validation = [n, 2n)).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub held_out_test_first: bool,
    pub noise_density: f64,
    pub mean_noise_span: f64,
    /// How span-corrupted examples end: `t5`, or `april_2023` (the
    /// original's own format of April 2023).
    #[serde(skip_serializing_if = "SpanFormat::is_t5")]
    pub span_format: SpanFormat,
    /// Optimizer steps.
    pub steps: u64,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    pub lr: f64,
    pub schedule: Schedule,
    /// Warmup as a fraction of `steps` (used unless `warmup_steps` is set).
    pub warmup_fraction: f64,
    /// Warmup in steps, explicitly; a fresh run records its resolved
    /// warmup here ([`TrainConfig::warmup`]).
    pub warmup_steps: Option<u64>,
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub clip_grad_norm: f64,
    /// Evaluate every this many steps (and at the end).
    pub eval_every: u64,
    /// Validation batches per evaluation during the run (the same ones
    /// every time); the run's last evaluation reads the whole validation
    /// and test splits.
    pub eval_batches: usize,
    /// Save a checkpoint every this many steps (and at the end).
    pub checkpoint_every: u64,
    pub seed: u64,
    /// Precision of the projections' matrix products on the CPU: f32, or
    /// bf16 on AMX or AVX-512 BF16 (mixed precision; everything else stays
    /// f32).
    pub matmul: Matmul,
    /// Stop as diverged when a training loss exceeds this many times
    /// ln(vocab), the loss of a uniform guess (0: never).
    pub divergence_factor: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig::preset("cpu").expect("the cpu preset exists")
    }
}

/// The presets, by name.
pub const PRESETS: &[(&str, &str)] = &[
    ("cpu", "the small family in minutes on 2 cores: 300 steps of 16 × 128-token chunks, AdamW 1e-3 cosine"),
    ("original", "the original march: 1,000 steps of 64 × 16 chunks of 1,024 tokens, AdamW 1e-4 constant, eval every 20"),
    ("smoke", "a few steps, for tests"),
];

impl TrainConfig {
    /// The span corruption this configuration trains and evaluates with.
    pub fn span_corruption(&self) -> SpanCorruption {
        SpanCorruption {
            noise_density: self.noise_density,
            mean_noise_span: self.mean_noise_span,
            format: self.span_format,
        }
    }

    pub fn preset(name: &str) -> Result<Self, String> {
        let cpu = TrainConfig {
            preset: "cpu".into(),
            data: Vec::new(),
            tokenizer: None,
            builtin_documents: 30_000,
            chunk_len: 128,
            validation: Vec::new(),
            test: Vec::new(),
            held_out_tokens: 262_144,
            held_out_chunks: None,
            held_out_test_first: false,
            noise_density: 0.15,
            mean_noise_span: 3.0,
            span_format: SpanFormat::T5,
            steps: 300,
            batch_size: 16,
            grad_accum: 1,
            lr: 1e-3,
            schedule: Schedule::Cosine,
            warmup_fraction: 0.1,
            warmup_steps: None,
            adamw: AdamWConfig::default(),
            clip_grad_norm: 1.0,
            eval_every: 25,
            eval_batches: 4,
            checkpoint_every: 100,
            seed: 0,
            matmul: Matmul::F32,
            divergence_factor: 4.0,
        };
        match name {
            "cpu" => Ok(cpu),
            "original" => Ok(TrainConfig {
                preset: "original".into(),
                builtin_documents: 3_000_000,
                chunk_len: 1024,
                // test = chunks [0, 1000), validation = [1000, 2000), all
                // 1,000 evaluated every 20 steps (16 batches of 64)
                held_out_chunks: Some(1000),
                held_out_test_first: true,
                steps: 1000,
                batch_size: 64,
                grad_accum: 16,
                lr: 1e-4,
                schedule: Schedule::Constant,
                warmup_fraction: 0.0,
                // HF Trainer's max_grad_norm default, passed to DeepSpeed
                clip_grad_norm: 1.0,
                // DeepSpeed's optimizer got every parameter: the Trainer's
                // no-decay list for norms did not reach it
                adamw: AdamWConfig {
                    decay_norms: true,
                    ..AdamWConfig::default()
                },
                eval_every: 20,
                eval_batches: 16,
                checkpoint_every: 100,
                seed: 42,
                // its own span corruption of April 2023 (span_corrupt_utils.py)
                span_format: SpanFormat::April2023,
                ..cpu
            }),
            "smoke" => Ok(TrainConfig {
                preset: "smoke".into(),
                builtin_documents: 2_000,
                chunk_len: 64,
                held_out_tokens: 512,
                steps: 6,
                batch_size: 4,
                warmup_steps: Some(2),
                eval_every: 3,
                eval_batches: 1,
                checkpoint_every: 3,
                ..cpu
            }),
            other => {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                Err(format!(
                    "unknown preset `{other}`; the presets are: {}",
                    names.join(", ")
                ))
            }
        }
    }

    /// Chunks in each held-out split drawn from a corpus: `held_out_tokens`
    /// in whole chunks.
    pub fn held_out_chunks_per_split(&self) -> usize {
        self.held_out_tokens.div_ceil(self.chunk_len.max(1))
    }

    /// Warmup steps: `warmup_steps` if set, else `warmup_fraction` of
    /// `steps`, rounded.
    pub fn warmup(&self) -> u64 {
        self.warmup_steps
            .unwrap_or_else(|| (self.warmup_fraction * self.steps as f64).round() as u64)
    }

    /// Apply a TOML file's fields on top of this configuration.
    pub fn merge_toml(&self, text: &str) -> Result<Self, String> {
        let mut base = toml::Table::try_from(self).map_err(|e| e.to_string())?;
        let over: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        merge(&mut base, over);
        toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| with_suggestion(&e.to_string()))
    }

    /// Check the values; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        let mut bad = Vec::new();
        if self.steps == 0 {
            bad.push("steps must be at least 1".to_string());
        }
        if self.batch_size == 0 || self.grad_accum == 0 {
            bad.push("batch_size and grad_accum must be at least 1".into());
        }
        if self.chunk_len < 8 {
            bad.push(format!(
                "chunk_len {} is too short (at least 8)",
                self.chunk_len
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bad.push(format!("lr must be a positive number, not {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.noise_density) || self.mean_noise_span < 1.0 {
            bad.push("noise_density must be in [0, 1) and mean_noise_span at least 1".into());
        }
        if !(self.divergence_factor >= 0.0 && self.divergence_factor.is_finite()) {
            bad.push(format!(
                "divergence_factor must be a number ≥ 0 (0: never stop), not {}",
                self.divergence_factor
            ));
        }
        if !(0.0..=1.0).contains(&self.warmup_fraction) {
            bad.push(format!(
                "warmup_fraction must be in [0, 1], not {}",
                self.warmup_fraction
            ));
        }
        if self.held_out_tokens == 0 || self.held_out_chunks == Some(0) {
            bad.push(
                "held_out_tokens (and held_out_chunks, if set) must be at least 1: validation needs chunks".into(),
            );
        }
        let (b1, b2) = self.adamw.betas;
        if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2)) {
            bad.push(format!(
                "adamw.betas must both be in [0, 1), not [{b1}, {b2}]"
            ));
        }
        if !(self.adamw.eps > 0.0 && self.adamw.eps.is_finite()) {
            bad.push(format!(
                "adamw.eps must be a positive number, not {}",
                self.adamw.eps
            ));
        }
        if !(self.adamw.weight_decay >= 0.0 && self.adamw.weight_decay.is_finite()) {
            bad.push(format!(
                "adamw.weight_decay must be a number ≥ 0, not {}",
                self.adamw.weight_decay
            ));
        }
        if !(self.clip_grad_norm >= 0.0 && self.clip_grad_norm.is_finite()) {
            bad.push(format!(
                "clip_grad_norm must be a number ≥ 0 (0: no clipping), not {}",
                self.clip_grad_norm
            ));
        }
        if self.eval_every == 0 || self.checkpoint_every == 0 || self.eval_batches == 0 {
            bad.push("eval_every, eval_batches and checkpoint_every must be at least 1".into());
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join("; "))
        }
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// serde's "unknown field `lrr`, expected one of `a`, `b`, …" with the
/// nearest field suggested ("did you mean `lr`?").
fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return message.to_string();
    };
    let Some((typed, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let fields: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match crate::names::nearest(typed, fields.iter().copied()) {
        Some(n) => format!("{}; did you mean `{n}`?", message.trim_end()),
        None => message.to_string(),
    }
}
