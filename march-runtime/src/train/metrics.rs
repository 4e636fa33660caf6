//! Metrics: JSON Lines (one record per step and per evaluation) and
//! TensorBoard: the original's scalars (`train/loss`, `eval/loss`,
//! `train/num_params`) and `train/learning_rate`, `train/grad_norm`,
//! `train/tokens_per_s`, `train/epoch`, `eval/runtime_s`, and a finished
//! run's `final/val_loss` and `final/test_loss` (the whole splits), with the run's
//! hyperparameters as a text summary (`hparams`, TensorBoard's text tab).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::tensorboard::EventWriter;

pub const FILE: &str = "metrics.jsonl";

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Train {
        step: u64,
        tokens: u64,
        loss: f64,
        lr: f64,
        grad_norm: f64,
        tokens_per_s: f64,
        elapsed_s: f64,
        /// Passes over the training chunks so far (absent in older runs).
        #[serde(default)]
        epoch: f64,
    },
    Eval {
        step: u64,
        tokens: u64,
        val_loss: f64,
        /// Seconds the evaluation took (absent in older runs).
        #[serde(default)]
        eval_s: f64,
    },
    /// A finished run's last evaluation: the whole validation and test
    /// splits (mean loss per target token, and the targets).
    Final {
        step: u64,
        tokens: u64,
        val_loss: f64,
        val_targets: u64,
        test_loss: f64,
        test_targets: u64,
        eval_s: f64,
    },
}

impl Record {
    pub fn step(&self) -> u64 {
        match self {
            Record::Train { step, .. } | Record::Eval { step, .. } | Record::Final { step, .. } => {
                *step
            }
        }
    }
}

pub struct Metrics {
    jsonl: BufWriter<File>,
    tb: EventWriter,
    pub path: PathBuf,
}

/// Every record of a metrics file.
pub fn read(path: &Path) -> Result<Vec<Record>> {
    let f = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    BufReader::new(f)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let l = l?;
            serde_json::from_str(&l)
                .with_context(|| format!("{}:{}: bad record", path.display(), i + 1))
        })
        .collect()
}

impl Metrics {
    /// Open the run's metrics; when resuming from `resume_step`, records of
    /// later steps (written after that checkpoint) are dropped first, and
    /// the records kept are returned. `hparams` (Markdown) goes to
    /// TensorBoard's text tab.
    pub fn open(
        dir: &Path,
        resume_step: Option<u64>,
        num_params: u64,
        hparams: &str,
    ) -> Result<(Self, Vec<Record>)> {
        let path = dir.join(FILE);
        let mut earlier = Vec::new();
        if let Some(step) = resume_step {
            if path.exists() {
                // keep the earlier lines byte for byte (no float re-formatting)
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let mut kept = String::new();
                for (i, line) in text.lines().enumerate() {
                    let r: Record = serde_json::from_str(line)
                        .with_context(|| format!("{}:{}: bad record", path.display(), i + 1))?;
                    if r.step() <= step {
                        kept.push_str(line);
                        kept.push('\n');
                        earlier.push(r);
                    }
                }
                // atomically: a kill here leaves the old file, never a torn one
                crate::files::write_atomic(&path, kept.as_bytes())?;
            }
        }
        let jsonl = BufWriter::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?,
        );
        let mut tb = EventWriter::create(&dir.join("tensorboard"))
            .context("creating the TensorBoard event file")?;
        tb.scalar(
            "train/num_params",
            resume_step.unwrap_or(0),
            num_params as f32,
        )?;
        tb.text("hparams", resume_step.unwrap_or(0), hparams)?;
        Ok((Metrics { jsonl, tb, path }, earlier))
    }

    pub fn write(&mut self, r: &Record) -> Result<()> {
        writeln!(self.jsonl, "{}", serde_json::to_string(r)?)?;
        match r {
            Record::Train {
                step,
                loss,
                lr,
                grad_norm,
                tokens_per_s,
                epoch,
                ..
            } => {
                self.tb.scalar("train/loss", *step, *loss as f32)?;
                self.tb.scalar("train/learning_rate", *step, *lr as f32)?;
                self.tb
                    .scalar("train/grad_norm", *step, *grad_norm as f32)?;
                self.tb
                    .scalar("train/tokens_per_s", *step, *tokens_per_s as f32)?;
                self.tb.scalar("train/epoch", *step, *epoch as f32)?;
            }
            Record::Eval {
                step,
                val_loss,
                eval_s,
                ..
            } => {
                self.tb.scalar("eval/loss", *step, *val_loss as f32)?;
                self.tb.scalar("eval/runtime_s", *step, *eval_s as f32)?;
            }
            Record::Final {
                step,
                val_loss,
                test_loss,
                ..
            } => {
                self.tb.scalar("final/val_loss", *step, *val_loss as f32)?;
                self.tb
                    .scalar("final/test_loss", *step, *test_loss as f32)?;
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.jsonl.flush()?;
        self.tb.flush()?;
        Ok(())
    }
}

/// The run's hyperparameters as a Markdown table: the variant, its
/// architecture and counts, and every training setting.
pub fn hparams_markdown(
    variant: &str,
    architecture: &str,
    params: u64,
    train: &impl Serialize,
) -> String {
    let mut out = String::from("| hyperparameter | value |\n| --- | --- |\n");
    let mut row =
        |k: &str, v: String| out.push_str(&format!("| {k} | {} |\n", v.replace('|', "\\|")));
    row("variant", variant.to_string());
    row("architecture", format!("`{architecture}`"));
    row("parameters", params.to_string());
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(train) {
        for (k, v) in fields {
            row(&k, v.as_str().map_or_else(|| v.to_string(), String::from));
        }
    }
    out
}
