//! `march report`: compare runs (a sweep, or runs made one by one) variant by
//! variant, with the uncertainty over seeds.
//!
//! - [`runs`] finds and reads run directories,
//! - [`stats`] has the statistics (mean ± std, Welch's interval),
//!   [`holm`](mod@holm) the correction for many comparisons, [`rank`] the rank
//!   agreement with a [`reference`](mod@reference),
//! - [`markdown`] writes the table, [`plot`] the figures (SVG and PNG).

pub mod holm;
pub mod markdown;
pub mod plot;
pub mod rank;
pub mod reference;
pub mod runs;
pub mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::registry::find;
use holm::{holm, Holm};
use rank::{rank_agreement, RankAgreement};
pub use reference::Reference;
use runs::RunData;
use stats::{welch, Summary, Welch};

/// The family-wise error rate of the Holm correction.
pub const FAMILY_ALPHA: f64 = 0.05;

/// Bootstrap resamples of the rank agreement (a fixed seed: a report is
/// the same every time it is made from the same runs).
pub const RANK_RESAMPLES: usize = 2000;

/// One point of a variant's validation curve, over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub tokens: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// One variant's row of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub variant: String,
    pub seeds: Vec<u64>,
    pub run_dirs: Vec<PathBuf>,
    pub params_total: u64,
    pub params_live: u64,
    /// Deviation from its declared budget, in percent (`None` when the
    /// variant is not registered in this build).
    pub budget_deviation_pct: Option<f64>,
    pub budget_exempt: bool,
    pub flops_per_token: u64,
    /// Training tokens seen by each run.
    pub tokens: u64,
    /// The whole validation split at the end of each run.
    pub final_val_loss: Summary,
    pub best_val_loss: Summary,
    /// The whole test split at the end of each run (`None` when a run
    /// predates test evaluation).
    #[serde(default)]
    pub test_loss: Option<Summary>,
    /// Each run's final validation loss, in the order of `seeds`.
    #[serde(default)]
    pub final_val_losses: Vec<f64>,
    /// The row this variant is compared with: its like-for-like control
    /// (`--control`), else the baseline (`None` for the baseline itself).
    #[serde(default)]
    pub control: Option<String>,
    /// Final validation loss minus the control's, with Welch's 95% interval
    /// (`None` for the baseline, or with fewer than two seeds).
    pub vs_control: Option<Welch>,
    /// The comparison with the control after Holm's correction over every
    /// comparison in the report.
    #[serde(default)]
    pub holm: Option<Holm>,
    /// The reference's value for this variant (`--reference`).
    #[serde(default)]
    pub reference: Option<f64>,
    pub tokens_per_s: Summary,
    pub wall_s: Summary,
    /// Validation loss against tokens: mean and range over the seeds (at the
    /// evaluation points every seed has).
    pub curve: Vec<CurvePoint>,
}

/// A comparison of variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: Option<String>,
    pub variants: Vec<VariantResult>,
    /// Training settings that differ between the runs compared (a fair
    /// comparison has none).
    pub differences: Vec<String>,
    /// Runs that could not be read or are unfinished, each naming its directory.
    pub errors: Vec<String>,
    /// The reference's file name, when one was given.
    #[serde(default)]
    pub reference: Option<String>,
    /// Spearman's ρ between the variants' mean final losses and the
    /// reference's values, with its bootstrap interval over seeds.
    #[serde(default)]
    pub rank_agreement: Option<RankAgreement>,
    /// Each variant at its best setting, where the runs hold several
    /// settings of it (picked on validation, compared on test).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub best_settings: Vec<BestSetting>,
}

/// A variant's best setting among its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestSetting {
    pub variant: String,
    /// The row chosen: the lowest mean final validation loss.
    pub row: String,
    /// Every row of the variant that was considered.
    pub candidates: Vec<String>,
    pub val_loss: f64,
    pub test_loss: Option<Summary>,
    /// Its test loss minus the baseline variant's chosen row's, with
    /// Welch's 95% interval (`None` for the baseline, or without test
    /// losses of two seeds each).
    pub vs_baseline_test: Option<Welch>,
}

/// What to compare, and against what.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// The baseline's name [default: see [`compare`]].
    pub baseline: Option<String>,
    /// Only these variants (empty: all).
    pub only: Vec<String>,
    /// (variant, its control): the variant is compared with its control
    /// instead of the baseline.
    pub controls: Vec<(String, String)>,
    pub reference: Option<Reference>,
}

/// Choose the baseline: the one asked for, else a variant called
/// `Baseline`/`SmallBaseline`…, else the first.
fn pick_baseline(names: &[String], asked: Option<&str>) -> Result<Option<String>> {
    if let Some(a) = asked {
        return match names.iter().find(|n| of_variant(n, a)) {
            Some(n) => Ok(Some(n.clone())),
            None => anyhow::bail!(
                "the baseline `{a}` is not among the runs compared ({})",
                names.join(", ")
            ),
        };
    }
    Ok(names
        .iter()
        .find(|n| {
            n.split(" (")
                .next()
                .is_some_and(|v| v.ends_with("Baseline"))
        })
        .or(names.first())
        .cloned())
}

/// Whether the row `label` holds runs of variant `name` (`SmallBaseline`
/// or `SmallBaseline (lr 0.003)` for `smallbaseline`).
fn of_variant(label: &str, name: &str) -> bool {
    label.eq_ignore_ascii_case(name)
        || label
            .to_ascii_lowercase()
            .starts_with(&format!("{} (", name.to_ascii_lowercase()))
}

/// Build the comparison of the runs under `roots`, each variant against the
/// baseline: `baseline` if given, else the variant whose name ends in
/// `Baseline`, else the first. Unreadable or unfinished runs are listed in
/// `errors`; the rest are compared.
pub fn compare(roots: &[PathBuf], baseline: Option<&str>, only: &[String]) -> Result<Comparison> {
    compare_with(
        roots,
        &CompareOptions {
            baseline: baseline.map(String::from),
            only: only.to_vec(),
            ..CompareOptions::default()
        },
    )
}

/// [`compare`], with controls and a reference.
pub fn compare_with(roots: &[PathBuf], opts: &CompareOptions) -> Result<Comparison> {
    let (baseline, only) = (opts.baseline.as_deref(), &opts.only[..]);
    let (dirs, mut errors) = runs::discover(roots);
    let mut read = Vec::new();
    for d in dirs {
        match runs::read_run(&d) {
            Ok(r) => {
                let v = &r.config.variant;
                if only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(v)) {
                    read.push(r);
                }
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    // runs are seeds of one another only when every setting but the seed
    // agrees: a group is (variant, the settings that vary among the runs)
    let varying = varying_settings(read.iter());
    let mut by_variant: Vec<(String, Vec<RunData>)> = Vec::new();
    for r in read {
        let label = group_label(&r, &varying);
        match by_variant.iter_mut().find(|(n, _)| *n == label) {
            Some((_, runs)) => runs.push(r),
            None => by_variant.push((label, vec![r])),
        }
    }
    let names: Vec<String> = by_variant.iter().map(|(n, _)| n.clone()).collect();
    let baseline = pick_baseline(&names, baseline)?;
    // the baseline first, the others in the order found
    by_variant.sort_by_key(|(n, _)| Some(n) != baseline.as_ref());

    let differences = differences(by_variant.iter().flat_map(|(_, r)| r));
    let mut variants: Vec<VariantResult> = by_variant
        .iter()
        .map(|(label, r)| VariantResult {
            variant: label.clone(),
            ..summarize(r)
        })
        .collect();
    // each row against its control, else the baseline
    let labels: Vec<String> = variants.iter().map(|v| v.variant.clone()).collect();
    let find_row = |name: &str, what: &str| -> Result<usize> {
        labels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(name))
            .or_else(|| labels.iter().position(|l| of_variant(l, name)))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--control: the {what} `{name}` is not among the runs compared ({})",
                    labels.join(", ")
                )
            })
    };
    let mut control_of: Vec<Option<usize>> = variants
        .iter()
        .map(|v| match &baseline {
            Some(b) if &v.variant != b => labels.iter().position(|l| l == b),
            _ => None,
        })
        .collect();
    for (variant, control) in &opts.controls {
        let (v, c) = (find_row(variant, "variant")?, find_row(control, "control")?);
        if v == c {
            anyhow::bail!("--control {variant}={control}: a variant cannot be its own control");
        }
        control_of[v] = Some(c);
    }
    let finals: Vec<Summary> = variants.iter().map(|v| v.final_val_loss).collect();
    for (v, c) in variants.iter_mut().zip(&control_of) {
        if let Some(c) = *c {
            v.control = Some(labels[c].clone());
            v.vs_control = welch(&v.final_val_loss, &finals[c]);
        }
    }
    // Holm over every comparison made
    let tested: Vec<usize> = (0..variants.len())
        .filter(|&i| variants[i].vs_control.is_some())
        .collect();
    let ps: Vec<f64> = tested
        .iter()
        .map(|&i| variants[i].vs_control.expect("tested").p)
        .collect();
    for (&i, h) in tested.iter().zip(holm(&ps, FAMILY_ALPHA)) {
        variants[i].holm = Some(h);
    }
    // rank agreement with the reference
    let mut rank_agreement_ = None;
    if let Some(reference) = &opts.reference {
        let mut seeds = Vec::new();
        let mut values = Vec::new();
        for v in variants.iter_mut() {
            let name = v.variant.split(" (").next().unwrap_or(&v.variant);
            v.reference = reference.get(name);
            if let Some(r) = v.reference {
                seeds.push(v.final_val_losses.clone());
                values.push(r);
            }
        }
        if values.is_empty() {
            anyhow::bail!(
                "--reference {}: none of its variants is among the runs compared ({})",
                reference.name,
                labels.join(", ")
            );
        }
        rank_agreement_ = rank_agreement(&seeds, &values, RANK_RESAMPLES, 0x5241_4e4b);
    }
    Ok(Comparison {
        best_settings: best_settings(&variants, baseline.as_deref()),
        baseline,
        variants,
        differences,
        errors,
        reference: opts.reference.as_ref().map(|r| r.name.clone()),
        rank_agreement: rank_agreement_,
    })
}

fn summarize(runs: &[RunData]) -> VariantResult {
    let first = &runs[0];
    let arch = find(&first.config.variant).map(|e| e.arch);
    let col = |f: &dyn Fn(&RunData) -> f64| -> Summary {
        Summary::of(&runs.iter().map(f).collect::<Vec<_>>()).expect("at least one run")
    };
    // evaluation points every seed has
    let mut points: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for r in runs {
        for &(t, v) in &r.curve {
            points.entry(t).or_default().push(v);
        }
    }
    let curve = points
        .into_iter()
        .filter(|(_, vs)| vs.len() == runs.len())
        .map(|(tokens, vs)| {
            let s = Summary::of(&vs).expect("values");
            CurvePoint {
                tokens,
                mean: s.mean,
                min: s.min,
                max: s.max,
            }
        })
        .collect();
    VariantResult {
        variant: first.config.variant.clone(),
        seeds: runs.iter().map(|r| r.config.train.seed).collect(),
        run_dirs: runs.iter().map(|r| r.dir.clone()).collect(),
        params_total: first.config.params_total,
        params_live: first.config.params_live,
        budget_deviation_pct: arch.map(|a| a.budget_deviation_pct()),
        budget_exempt: arch.is_some_and(|a| a.budget.exempt.is_some()),
        flops_per_token: first.config.flops_per_token,
        tokens: runs.iter().map(|r| r.summary.tokens).max().unwrap_or(0),
        final_val_loss: col(&|r| r.summary.final_val_loss.unwrap_or(f64::NAN)),
        final_val_losses: runs
            .iter()
            .map(|r| r.summary.final_val_loss.unwrap_or(f64::NAN))
            .collect(),
        best_val_loss: col(&|r| r.summary.best_val_loss.unwrap_or(f64::NAN)),
        test_loss: runs
            .iter()
            .map(|r| r.summary.test_loss)
            .collect::<Option<Vec<f64>>>()
            .and_then(|t| Summary::of(&t)),
        control: None,
        vs_control: None,
        holm: None,
        reference: None,
        tokens_per_s: col(&|r| r.summary.tokens_per_s),
        wall_s: col(&|r| r.summary.wall_s),
        curve,
    }
}

/// The settings a comparison looks at, by name: the data, the held-out
/// splits, the tokenizer and the device as the run recorded them, and
/// every training setting but the seed (`adamw.weight_decay` for nested
/// ones), so that runs of any two settings are told apart.
fn settings(r: &RunData) -> Vec<(String, String)> {
    let mut out = vec![
        ("data".to_string(), r.config.data.clone()),
        ("held_out".to_string(), r.config.held_out.clone()),
        ("tokenizer".to_string(), r.config.tokenizer.clone()),
        ("device".to_string(), format!("{:?}", r.config.device)),
    ];
    if let Ok(table) = toml::Table::try_from(&r.config.train) {
        let mut train = Vec::new();
        flatten("", &table, &mut train);
        // the seed is what seeds differ in; the files are named above
        train.retain(|(k, _)| !matches!(k.as_str(), "seed" | "data" | "tokenizer"));
        out.extend(train);
    }
    out
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (k, v) in table {
        let key = format!("{prefix}{k}");
        match v {
            toml::Value::Table(t) => flatten(&format!("{key}."), t, out),
            toml::Value::String(s) => out.push((key, s.clone())),
            v => out.push((key, v.to_string())),
        }
    }
}

/// Each setting that is not the same in every run, with its values in
/// the order found.
fn varying_settings<'a>(runs: impl Iterator<Item = &'a RunData>) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in runs {
        for (k, v) in settings(r) {
            let vals = seen.entry(k).or_default();
            if !vals.contains(&v) {
                vals.push(v);
            }
        }
    }
    seen.retain(|_, v| v.len() > 1);
    seen
}

/// A run's row in the report: its variant, and its value of each varying
/// setting (`SmallBaseline (lr 0.003, steps 40)`).
fn group_label(r: &RunData, varying: &BTreeMap<String, Vec<String>>) -> String {
    let own: Vec<String> = settings(r)
        .into_iter()
        .filter(|(k, _)| varying.contains_key(k))
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if own.is_empty() {
        r.config.variant.clone()
    } else {
        format!("{} ({})", r.config.variant, own.join(", "))
    }
}

/// For each variant with several rows (a sweep over settings), the row of
/// its lowest mean final validation loss, and that row's test loss
/// compared with the baseline variant's chosen row (Welch over seeds).
/// Choosing on validation and comparing on test keeps the choice from
/// flattering the number it is judged by.
fn best_settings(variants: &[VariantResult], baseline: Option<&str>) -> Vec<BestSetting> {
    let name_of = |label: &str| label.split(" (").next().unwrap_or(label).to_string();
    let mut names: Vec<String> = Vec::new();
    for v in variants {
        let n = name_of(&v.variant);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if names.len() == variants.len() {
        return Vec::new();
    }
    let best_of = |name: &str| -> Option<&VariantResult> {
        variants
            .iter()
            .filter(|v| name_of(&v.variant) == name)
            .min_by(|a, b| a.final_val_loss.mean.total_cmp(&b.final_val_loss.mean))
    };
    let base_name = baseline.map(name_of);
    let base_best = base_name.as_deref().and_then(best_of);
    names
        .iter()
        .filter_map(|n| {
            let best = best_of(n)?;
            let vs_baseline_test = match (base_best, &base_name) {
                (Some(b), Some(bn)) if bn != n => match (&best.test_loss, &b.test_loss) {
                    (Some(t), Some(bt)) => welch(t, bt),
                    _ => None,
                },
                _ => None,
            };
            Some(BestSetting {
                variant: n.clone(),
                row: best.variant.clone(),
                candidates: variants
                    .iter()
                    .filter(|v| name_of(&v.variant) == *n)
                    .map(|v| v.variant.clone())
                    .collect(),
                val_loss: best.final_val_loss.mean,
                test_loss: best.test_loss,
                vs_baseline_test,
            })
        })
        .collect()
}

/// The training settings (besides the seed) that are not the same in every run.
fn differences<'a>(runs: impl Iterator<Item = &'a RunData>) -> Vec<String> {
    varying_settings(runs)
        .into_iter()
        .map(|(k, v)| format!("{k}: {}", v.join(" / ")))
        .collect()
}

/// The files a report writes.
#[derive(Debug, Clone)]
pub struct Written {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub plots: Vec<PathBuf>,
}

/// Write `report.md`, `report.json` and the plots into `out`.
pub fn write(cmp: &Comparison, out: &Path, command: &str) -> Result<Written> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let plots = plot::write_all(cmp, out)?;
    let markdown = out.join("report.md");
    crate::files::write_atomic(
        &markdown,
        markdown::render(cmp, command, &plots, out).as_bytes(),
    )?;
    let json = out.join("report.json");
    crate::files::write_atomic(&json, serde_json::to_string_pretty(cmp)?.as_bytes())?;
    Ok(Written {
        markdown,
        json,
        plots,
    })
}
