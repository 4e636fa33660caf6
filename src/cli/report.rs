//! `march report`: compare runs variant by variant.

use std::path::PathBuf;

use anyhow::{bail, Result};
use march_runtime::report;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Run directories, or directories of runs (a sweep).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where to write report.md, report.json and the plots [default: DIR/report
    /// for the first DIR].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The variant the others are compared with [default: the one whose name
    /// ends in `Baseline`, else the first].
    #[arg(long)]
    baseline: Option<String>,
    /// Compare only these variants (comma-separated).
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// VARIANT=CONTROL: compare VARIANT with its like-for-like control
    /// instead of the baseline (repeatable, or comma-separated), e.g.
    /// SmallSiLUGatedLinearUnit=SmallAPEUnitVariance.
    #[arg(long, value_delimiter = ',')]
    control: Vec<String>,
    /// A file of reference values, one `Variant value` per line (or a JSON
    /// object): a column beside march's, and Spearman's ρ between the two
    /// orderings with a bootstrap interval over seeds.
    #[arg(long)]
    reference: Option<PathBuf>,
}

pub fn run(args: &ReportArgs) -> Result<()> {
    let controls = args
        .control
        .iter()
        .map(|c| match c.split_once('=') {
            Some((v, k)) if !v.trim().is_empty() && !k.trim().is_empty() => {
                Ok((v.trim().to_string(), k.trim().to_string()))
            }
            _ => bail!("--control `{c}`: write VARIANT=CONTROL"),
        })
        .collect::<Result<Vec<_>>>()?;
    let reference = args
        .reference
        .as_deref()
        .map(report::Reference::read)
        .transpose()?;
    let cmp = report::compare_with(
        &args.dirs,
        &report::CompareOptions {
            baseline: args.baseline.clone(),
            only: args.variants.clone(),
            controls,
            reference,
        },
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.dirs[0].join("report"));
    let command: Vec<String> = std::env::args()
        .enumerate()
        .map(|(i, a)| if i == 0 { "march".to_string() } else { a })
        .collect();
    if cmp.variants.is_empty() {
        bail!("no finished run to report on: {}", cmp.errors.join("; "));
    }
    let written = report::write(&cmp, &out, &command.join(" "))?;
    super::list::emit(&format!(
        "{}\nwritten: {}, {}, {}\n",
        std::fs::read_to_string(&written.markdown)?,
        written.markdown.display(),
        written.json.display(),
        written
            .plots
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    if !cmp.errors.is_empty() {
        for e in &cmp.errors {
            eprintln!("error: {e}");
        }
        bail!(
            "{} run(s) left out of the report (named above)",
            cmp.errors.len()
        );
    }
    Ok(())
}
