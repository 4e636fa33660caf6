//! The run directory: its description (`config.json`), the configuration a
//! fresh or resumed run trains with, and what its checkpoint means.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::progress::say;
use crate::checkpoint;
use crate::files::clear_except_lock;
pub use crate::session::DeviceKind;

/// The run's description, saved as `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    pub variant: String,
    pub architecture: String,
    pub params_total: u64,
    pub params_live: u64,
    pub flops_per_token: u64,
    pub device: DeviceKind,
    pub data: String,
    pub tokenizer: String,
    pub corpus_tokens: usize,
    pub train_chunks: usize,
    pub validation_chunks: usize,
    pub test_chunks: usize,
    /// Where the validation and test chunks come from (absent in older runs).
    #[serde(default)]
    pub held_out: String,
    pub encoder_len: usize,
    pub decoder_len: usize,
    pub code_version: String,
    pub train: TrainConfig,
}

pub fn code_version() -> String {
    format!(
        "march {}{}",
        env!("CARGO_PKG_VERSION"),
        option_env!("MARCH_GIT_REV")
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    )
}

/// The configuration a run of `variant` in `dir` trains with, and the run's
/// description to record once its checkpoint is loaded when `--steps` grows
/// a resumed run.
///
/// A fresh run takes `cfg` (with its warmup resolved for its length) and
/// clears the directory of a run that stopped before its first checkpoint;
/// it refuses a directory with a checkpoint. A resumed run takes its own
/// `config.json`, with `resume_steps` as its new length.
pub(super) fn configure(
    variant: &str,
    cfg: &TrainConfig,
    resume: bool,
    resume_steps: Option<u64>,
    dir: &Path,
    progress: bool,
) -> Result<(TrainConfig, Option<RunConfig>)> {
    let config_path = dir.join("config.json");
    let ckpt_path = dir.join(checkpoint::FILE);
    // the configuration: fresh, or the run's own when resuming
    let mut new_length: Option<RunConfig> = None;
    let cfg = if resume {
        if !ckpt_path.exists() {
            bail!(
                "{}: no checkpoint to resume from{}; start the run without --resume",
                dir.display(),
                if config_path.exists() {
                    " (it stopped before its first one: it restarts in place)"
                } else {
                    ""
                }
            );
        }
        let saved: RunConfig = serde_json::from_slice(
            &std::fs::read(&config_path)
                .with_context(|| format!("reading {}", config_path.display()))?,
        )
        .with_context(|| format!("{}: unreadable run configuration", config_path.display()))?;
        if saved.variant != variant {
            bail!(
                "{} is a run of {}, not {}",
                dir.display(),
                saved.variant,
                variant
            );
        }
        let steps = resume_steps.unwrap_or(saved.train.steps);
        if steps != saved.train.steps {
            // a longer run: recorded once the checkpoint says it is one,
            // before anything trains; the schedule follows the new length
            let mut updated = saved.clone();
            updated.train.steps = steps;
            new_length = Some(updated);
        }
        TrainConfig {
            steps,
            ..saved.train
        }
    } else {
        if ckpt_path.exists() {
            bail!(
                "{} already holds a run: continue it with --resume, or choose another --out",
                dir.display()
            );
        }
        if config_path.exists() {
            // stopped before its first checkpoint: nothing to continue from
            say(
                progress,
                format!(
                    "{}: the run there stopped before its first checkpoint: starting it again",
                    dir.display()
                ),
            );
            clear_except_lock(dir)?;
        }
        // the warmup resolved for this run's length, and recorded
        TrainConfig {
            warmup_steps: Some(cfg.warmup()),
            ..cfg.clone()
        }
    };
    Ok((cfg, new_length))
}

/// What a run that stops on bad numbers says of its checkpoint: only ever
/// weights that were checked finite are saved, so an existing file is good.
pub(super) fn last_good(ckpt: &Path) -> String {
    if ckpt.exists() {
        format!("the last good checkpoint is {}", ckpt.display())
    } else {
        "no checkpoint was written yet".to_string()
    }
}
