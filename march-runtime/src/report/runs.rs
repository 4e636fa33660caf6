//! Reading run directories: `config.json`, `metrics.jsonl`, `summary.json`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::sweep::{self, RUNS_FILE};
use crate::train::metrics::{self, Record};
use crate::train::run_dir::RunConfig;
use crate::train::Report as Summary;

/// What a report needs of one finished run.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub config: RunConfig,
    pub summary: Summary,
    /// Validation loss against tokens seen.
    pub curve: Vec<(u64, f64)>,
}

/// Where to look for runs: one run directory, or a directory of runs (a
/// sweep: its `runs.txt` in order; otherwise every run directory below it).
/// Returns the run directories found and the problems met on the way (a
/// sweep's run not started yet, a directory holding no run).
pub fn discover(roots: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for root in roots {
        if !root.is_dir() {
            problems.push(format!("{}: no such directory", root.display()));
            continue;
        }
        if root.join("config.json").exists() {
            found.push(root.clone());
            continue;
        }
        let runs_file = root.join(RUNS_FILE);
        if runs_file.exists() {
            match sweep::read_runs(&runs_file) {
                Ok(runs) => {
                    for r in runs {
                        let dir = root.join(&r.dir);
                        if dir.join("config.json").exists() {
                            found.push(dir);
                        } else {
                            problems.push(format!(
                                "{}: run of {} seed {} not started (run `march sweep --out {}`)",
                                dir.display(),
                                r.variant,
                                r.seed,
                                root.display()
                            ));
                        }
                    }
                }
                Err(e) => problems.push(format!("{e:#}")),
            }
            continue;
        }
        let before = found.len();
        walk(root, 3, &mut found);
        if found.len() == before {
            problems.push(format!(
                "{}: holds no run directory (no config.json in it or below it)",
                root.display()
            ));
        }
    }
    // the same run named twice (a sweep and one of its runs) counts once
    let mut seen = std::collections::HashSet::new();
    found.retain(|d| seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())));
    (found, problems)
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    for d in subdirs {
        if d.join("config.json").exists() {
            found.push(d);
        } else if depth > 1 {
            walk(&d, depth - 1, found);
        }
    }
}

/// Read one finished run; the error names the directory and what is wrong.
pub fn read_run(dir: &Path) -> Result<RunData> {
    let config_path = dir.join("config.json");
    let config: RunConfig = serde_json::from_slice(
        &std::fs::read(&config_path).with_context(|| format!("{}: unreadable", dir.display()))?,
    )
    .map_err(|e| {
        anyhow!(
            "{}: config.json is not a march run configuration: {e}",
            dir.display()
        )
    })?;
    let records = metrics::read(&dir.join(metrics::FILE))
        .with_context(|| format!("{}: unreadable metrics", dir.display()))?;
    let summary_path = dir.join("summary.json");
    if !summary_path.exists() {
        let step = records.iter().map(Record::step).max().unwrap_or(0);
        bail!(
            "{}: unfinished run of {} ({step} of {} steps; continue it with `march train --resume --out {}`)",
            dir.display(),
            config.variant,
            config.train.steps,
            dir.display()
        );
    }
    let summary: Summary = serde_json::from_slice(
        &std::fs::read(&summary_path)
            .with_context(|| format!("{}: unreadable summary.json", dir.display()))?,
    )
    .map_err(|e| anyhow!("{}: summary.json is corrupt: {e}", dir.display()))?;
    let curve = curve(dir, &records)?;
    if summary.final_val_loss.is_none() || curve.is_empty() {
        bail!("{}: the run has no validation loss", dir.display());
    }
    Ok(RunData {
        dir: dir.to_path_buf(),
        config,
        summary,
        curve,
    })
}

/// The validation curve of a run's records, in order of tokens: a record
/// written twice (two writers, a file copied onto itself) counts once; two
/// different losses at one point, or a loss that is not finite, are an
/// error that names the run.
fn curve(dir: &Path, records: &[Record]) -> Result<Vec<(u64, f64)>> {
    let mut points: Vec<(u64, f64)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Eval {
                tokens, val_loss, ..
            } => Some((*tokens, *val_loss)),
            _ => None,
        })
        .collect();
    if let Some(&(t, v)) = points.iter().find(|(_, v)| !v.is_finite()) {
        bail!(
            "{}: metrics.jsonl: validation loss {v} at {t} tokens",
            dir.display()
        );
    }
    points.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    points.dedup();
    if let Some(w) = points.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!(
            "{}: metrics.jsonl holds two validation losses at {} tokens ({} and {}): two processes wrote this run?",
            dir.display(),
            w[0].0,
            w[0].1,
            w[1].1
        );
    }
    Ok(points)
}
