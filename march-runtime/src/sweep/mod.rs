//! Sweeps: a set of variants × settings × seeds trained under one
//! configuration, each (variant, setting, seed) in its own run directory.
//! Settings are a grid of training keys (`--grid lr=1e-3,3e-3`): every
//! combination of the axes' values, applied to the configuration as TOML.
//!
//! A sweep directory holds
//! - `sweep.json`: the variants, the seeds, the grid and the full training
//!   configuration;
//! - `runs.txt`: the list of runs, one per line (`variant seed directory`,
//!   then the run's settings as `key=value`), a
//!   plain file that several machines (or a scheduler's job array) share: each
//!   runs a disjoint slice of its lines (`--slice K/N` takes the lines whose
//!   index is K modulo N);
//! - one run directory per line, as `march train` writes it.
//!
//! Running a sweep again skips finished runs and resumes a killed one from its
//! checkpoint. For a given seed every variant sees the same data in the same
//! order: the data order, the span corruption and the dropout masks depend on
//! the seed only (and the tokenizer on the corpus and the vocabulary).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::files::{clear_except_lock, DirLock};
use crate::registry::find;
use crate::train::{DeviceKind, RunOptions, TrainConfig};

pub const SPEC_FILE: &str = "sweep.json";
pub const RUNS_FILE: &str = "runs.txt";

/// What a sweep trains: saved as `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    pub variants: Vec<String>,
    pub seeds: Vec<u64>,
    /// Every run's configuration, but for its seed and its settings.
    pub config: TrainConfig,
    /// Axes of settings: every run trains one combination of their values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grid: Vec<Axis>,
}

/// One axis of a grid: a training key (as in a TOML configuration, e.g.
/// `lr` or `adamw.weight_decay`) and its values (TOML value text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

impl FromStr for Axis {
    type Err = String;
    /// `KEY=V1,V2,…`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("--grid `{s}`: {why}; write KEY=V1,V2,… with a training key, e.g. lr=1e-3,3e-3")
        };
        let (key, values) = s.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(bad("the key is not a training key"));
        }
        if key == "seed" {
            return Err(format!(
                "--grid `{s}`: seeds are not a setting; use --seeds N or --seed-list"
            ));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(bad("an empty value"));
        }
        let mut unique = values.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != values.len() {
            return Err(bad("a value listed twice"));
        }
        Ok(Axis {
            key: key.to_string(),
            values,
        })
    }
}

/// `key = value` as TOML: the value as written when it is a TOML value
/// (`1e-3`, `true`, `[0.9, 0.99]`), else as a string (`cosine`).
fn toml_line(key: &str, value: &str) -> String {
    let line = format!("{key} = {value}");
    if line.parse::<toml::Table>().is_ok() {
        line
    } else {
        format!("{key} = {}", toml::Value::String(value.to_string()))
    }
}

/// `config` with `settings` applied (each a key and its value).
pub fn apply(config: &TrainConfig, settings: &[(String, String)]) -> Result<TrainConfig> {
    if settings.is_empty() {
        return Ok(config.clone());
    }
    let text: String = settings
        .iter()
        .map(|(k, v)| toml_line(k, v) + "\n")
        .collect();
    config.merge_toml(&text).map_err(|e| {
        let what: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        anyhow::anyhow!("the setting {}: {e}", what.join(" "))
    })
}

/// A setting as a part of a directory name: `lr3e-3`, `adamw.weight_decay0.1`.
fn dir_part(key: &str, value: &str) -> String {
    let v: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+-.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{key}{v}")
}

impl SweepSpec {
    /// Check the variants exist (canonical names) and the lists are sane.
    pub fn new(variants: &[String], seeds: Vec<u64>, config: TrainConfig) -> Result<Self> {
        if variants.is_empty() {
            bail!("a sweep needs at least one variant");
        }
        if seeds.is_empty() {
            bail!("a sweep needs at least one seed");
        }
        let mut names: Vec<String> = Vec::new();
        for v in variants {
            let entry = crate::registry::find_or_suggest(v)?;
            let name = entry.arch.name.to_string();
            if names.contains(&name) {
                bail!("variant `{name}` is listed twice");
            }
            names.push(name);
        }
        let mut sorted = seeds.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != seeds.len() {
            bail!("seed list {seeds:?} repeats a seed");
        }
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(SweepSpec {
            variants: names,
            seeds,
            config,
            grid: Vec::new(),
        })
    }

    /// The same sweep over a grid of settings: every combination must give
    /// a valid configuration (checked here, before anything trains).
    pub fn with_grid(mut self, grid: Vec<Axis>) -> Result<Self> {
        for (i, a) in grid.iter().enumerate() {
            if grid[..i].iter().any(|b| b.key == a.key) {
                bail!("--grid: the key `{}` is given twice", a.key);
            }
        }
        self.grid = grid;
        for settings in self.settings() {
            let cfg = apply(&self.config, &settings)?;
            cfg.validate().map_err(|e| {
                let what: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                anyhow::anyhow!("the setting {}: {e}", what.join(" "))
            })?;
        }
        Ok(self)
    }

    /// Every combination of the grid's values (one empty one without a
    /// grid), the first axis slowest.
    pub fn settings(&self) -> Vec<Vec<(String, String)>> {
        let mut combos = vec![Vec::new()];
        for axis in &self.grid {
            combos = combos
                .into_iter()
                .flat_map(|c: Vec<(String, String)>| {
                    axis.values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((axis.key.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        combos
    }

    /// Seed-major: all variants and settings of the first seed come first,
    /// so a sweep cut short still compares every variant.
    pub fn runs(&self) -> Vec<PlannedRun> {
        let mut runs = Vec::new();
        for &seed in &self.seeds {
            for v in &self.variants {
                for settings in self.settings() {
                    let parts: String = settings
                        .iter()
                        .map(|(k, x)| format!("-{}", dir_part(k, x)))
                        .collect();
                    runs.push(PlannedRun {
                        variant: v.clone(),
                        seed,
                        dir: format!("{v}{parts}-seed{seed}"),
                        settings,
                    });
                }
            }
        }
        runs
    }
}

/// One line of `runs.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRun {
    pub variant: String,
    pub seed: u64,
    /// Relative to the sweep directory.
    pub dir: String,
    /// The run's settings (keys and values of the sweep's grid).
    pub settings: Vec<(String, String)>,
}

impl PlannedRun {
    /// The settings as they are typed: ` lr=1e-3 batch_size=8` (empty
    /// without a grid).
    pub fn settings_text(&self) -> String {
        self.settings
            .iter()
            .map(|(k, v)| format!(" {k}={v}"))
            .collect()
    }

    /// The run's configuration: the sweep's, its settings applied, its seed.
    pub fn config(&self, spec: &SweepSpec) -> Result<TrainConfig> {
        Ok(TrainConfig {
            seed: self.seed,
            ..apply(&spec.config, &self.settings)?
        })
    }
}

/// Write `runs.txt`.
pub fn write_runs(path: &Path, runs: &[PlannedRun]) -> Result<()> {
    let mut text = String::from(
        "# march sweep: one run per line: variant seed directory (relative to this file) [key=value…]\n",
    );
    for r in runs {
        text.push_str(&format!(
            "{} {} {}{}\n",
            r.variant,
            r.seed,
            r.dir,
            r.settings_text()
        ));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Read `runs.txt` (blank lines and `#` comments ignored).
pub fn read_runs(path: &Path) -> Result<Vec<PlannedRun>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut runs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = || {
            anyhow::anyhow!(
                "{}:{}: expected `variant seed directory [key=value…]`, found `{line}`",
                path.display(),
                i + 1
            )
        };
        let [variant, seed, dir, ref rest @ ..] = fields[..] else {
            return Err(bad());
        };
        let settings = rest
            .iter()
            .map(|f| {
                f.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<_>>>()?;
        let seed = seed.parse().map_err(|_| bad())?;
        if Path::new(dir).is_absolute() || dir.contains("..") {
            bail!(
                "{}:{}: the run directory `{dir}` must be relative to the sweep, without `..`",
                path.display(),
                i + 1
            );
        }
        runs.push(PlannedRun {
            variant: variant.to_string(),
            seed,
            dir: dir.to_string(),
            settings,
        });
    }
    Ok(runs)
}

/// The part of a sweep one process runs: lines `index`, `index + count`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub index: usize,
    pub count: usize,
}

impl Slice {
    pub const ALL: Slice = Slice { index: 0, count: 1 };

    pub fn contains(&self, line: usize) -> bool {
        line % self.count == self.index
    }
}

impl FromStr for Slice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("slice `{s}`: write K/N with 0 <= K < N, e.g. 0/4 (the first of 4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Slice { index, count })
    }
}

impl fmt::Display for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where a run directory stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Not started.
    New,
    /// Started, killed before its first checkpoint: nothing worth keeping.
    NoCheckpoint,
    /// Has a checkpoint: resume it.
    Resumable,
    /// Finished (`summary.json` written).
    Done,
}

pub fn run_state(dir: &Path) -> RunState {
    if dir.join("summary.json").exists() {
        RunState::Done
    } else if dir.join(checkpoint::FILE).exists() {
        RunState::Resumable
    } else if dir.join("config.json").exists() {
        RunState::NoCheckpoint
    } else {
        RunState::New
    }
}

/// Create the sweep in `dir` from `spec`, or open the one there. With both,
/// they must agree (the same sweep, continued).
pub fn open(dir: &Path, spec: Option<SweepSpec>) -> Result<(SweepSpec, Vec<PlannedRun>)> {
    let spec_path = dir.join(SPEC_FILE);
    let runs_path = dir.join(RUNS_FILE);
    let saved: Option<SweepSpec> = if spec_path.exists() {
        let text = std::fs::read(&spec_path)
            .with_context(|| format!("reading {}", spec_path.display()))?;
        Some(
            serde_json::from_slice(&text)
                .with_context(|| format!("{}: not a sweep description", spec_path.display()))?,
        )
    } else {
        None
    };
    let spec = match (spec, saved) {
        (None, None) => bail!(
            "{} holds no sweep: name the variants to start one (march sweep VARIANT… --out {})",
            dir.display(),
            dir.display()
        ),
        (None, Some(saved)) => saved,
        (Some(new), Some(saved)) => {
            if new != saved {
                bail!(
                    "{} holds a different sweep (variants, seeds or configuration differ): continue it with `march sweep --out {}` alone, or choose another --out",
                    dir.display(),
                    dir.display()
                );
            }
            saved
        }
        (Some(new), None) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(&spec_path, serde_json::to_string_pretty(&new)?)
                .with_context(|| format!("writing {}", spec_path.display()))?;
            write_runs(&runs_path, &new.runs())?;
            new
        }
    };
    if !runs_path.exists() {
        write_runs(&runs_path, &spec.runs())?;
    }
    let runs = read_runs(&runs_path)?;
    Ok((spec, runs))
}

/// How to run (a slice of) a sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub dir: PathBuf,
    pub slice: Slice,
    pub device: DeviceKind,
    pub progress: bool,
    /// Stop the sweep inside its `n`-th run (0-based, counting the runs this
    /// call trains) after `step`, as if killed (tests).
    pub stop_after: Option<(usize, u64)>,
}

/// What a sweep call did.
#[derive(Debug, Default)]
pub struct SweepOutcome {
    pub trained: Vec<String>,
    pub resumed: Vec<String>,
    pub skipped: Vec<String>,
    /// Runs another process holds (trains) now: left to it.
    pub held: Vec<String>,
    /// Runs that failed, with why; the others still ran.
    pub failed: Vec<(String, String)>,
    /// Stopped early by `stop_after`.
    pub stopped: bool,
}

/// Run this slice of the sweep: finished runs are skipped, killed ones resumed.
pub fn run(spec: &SweepSpec, runs: &[PlannedRun], opts: &SweepOptions) -> Result<SweepOutcome> {
    let mine: Vec<&PlannedRun> = runs
        .iter()
        .enumerate()
        .filter(|(i, _)| opts.slice.contains(*i))
        .map(|(_, r)| r)
        .collect();
    let mut out = SweepOutcome::default();
    let say = |msg: String| {
        if opts.progress {
            eprintln!("{msg}");
        }
    };
    let mut started = 0usize;
    for (i, r) in mine.iter().enumerate() {
        let dir = opts.dir.join(&r.dir);
        let label = format!(
            "{}{} seed {} ({})",
            r.variant,
            r.settings_text(),
            r.seed,
            dir.display()
        );
        let state = run_state(&dir);
        if state == RunState::Done {
            out.skipped.push(label);
            continue;
        }
        let Some(entry) = find(&r.variant) else {
            out.failed.push((
                label,
                format!("unknown variant `{}` in {RUNS_FILE}", r.variant),
            ));
            continue;
        };
        // held for the run: another process (another slice started twice,
        // a hand-started `march train`) training it is left alone
        let lock = match DirLock::acquire(&dir, "run") {
            Ok(l) => std::sync::Arc::new(l),
            Err(e) => {
                say(format!("skipping {label}: {e:#}"));
                out.held.push(label);
                continue;
            }
        };
        if state == RunState::NoCheckpoint {
            // killed before its first checkpoint: start it again (the lock
            // file stays: it is what keeps other processes out)
            clear_except_lock(&dir)?;
        }
        let resume = state == RunState::Resumable;
        say(format!(
            "sweep {}: run {}/{} of this slice: {label}{}",
            opts.slice,
            i + 1,
            mine.len(),
            if resume { ", resuming" } else { "" }
        ));
        let stop_after = match opts.stop_after {
            Some((n, step)) if n == started => Some(step),
            _ => None,
        };
        started += 1;
        let cfg = match r.config(spec) {
            Ok(c) => c,
            Err(e) => {
                out.failed.push((label, format!("{e:#}")));
                continue;
            }
        };
        let run_opts = RunOptions {
            cfg,
            out: dir.clone(),
            resume,
            resume_steps: None,
            device: opts.device,
            progress: opts.progress,
            stop_after,
            inject_nan_at: None,
            lock: Some(lock),
        };
        match entry.train(&run_opts) {
            Ok(report) if report.interrupted || stop_after.is_some() => {
                out.stopped = true;
                say(format!(
                    "sweep stopped in {label}: continue it with `march sweep --out {}`",
                    opts.dir.display()
                ));
                return Ok(out);
            }
            Ok(_) if resume => out.resumed.push(label),
            Ok(_) => out.trained.push(label),
            Err(e) if e.downcast_ref::<crate::train::Interrupted>().is_some() => {
                out.stopped = true;
                say(format!(
                    "sweep stopped in {label} ({e}): continue it with `march sweep --out {}`",
                    opts.dir.display()
                ));
                return Ok(out);
            }
            Err(e) => {
                say(format!("run failed: {label}: {e:#}"));
                out.failed.push((label, format!("{e:#}")));
            }
        }
        // a signal between two runs stops the sweep before the next
        if crate::train::progress::interrupted() {
            out.stopped = true;
            return Ok(out);
        }
    }
    Ok(out)
}
