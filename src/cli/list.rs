//! `march list` and `march show`.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{bail, Result};
use march_runtime::arch::thousands;
use march_runtime::registry::{find_or_suggest, variants};
use march_runtime::Arch;

/// Print `text` to stdout; a closed pipe surfaces as an `io::Error`.
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only variants whose name contains this (case-insensitive).
    #[arg(long)]
    filter: Option<String>,
}

fn budget_cell(a: &Arch) -> String {
    let dev = a.budget_deviation_pct();
    let on = if a.budget.on == march_runtime::arch::BudgetOn::Live {
        " live"
    } else {
        ""
    };
    match a.budget.exempt {
        Some(_) => format!("{dev:+.2}%{on} EXEMPT"),
        None => format!("{dev:+.2}%{on} (±{}%)", a.budget.tolerance_pct),
    }
}

pub fn run(args: &ListArgs) -> Result<()> {
    let filter = args.filter.as_deref().map(str::to_lowercase);
    let all: Vec<_> = variants()
        .into_iter()
        .filter(|e| match &filter {
            Some(f) => e.arch.name.to_lowercase().contains(f),
            None => true,
        })
        .collect();
    if all.is_empty() {
        bail!("no variant matches; run `march list` to see them all");
    }
    let name_w = all
        .iter()
        .map(|e| e.arch.name.len())
        .max()
        .unwrap_or(4)
        .max(7);
    let mut out = String::new();
    writeln!(
        out,
        "{:<name_w$}  {:>12}  {:>12}  {:>22}  {:>11}  declaration",
        "variant", "params", "live", "vs budget", "MFLOP/tok"
    )?;
    for e in &all {
        let a = e.arch;
        let decl = match a.base {
            Some(base) if a.declared.is_empty() => format!("base = {base}"),
            Some(base) => format!("base = {base}, {}", a.declared),
            None => a.declared.to_string(),
        };
        writeln!(
            out,
            "{:<name_w$}  {:>12}  {:>12}  {:>22}  {:>11.1}  {}",
            a.name,
            thousands(a.params.total),
            thousands(a.params.live),
            budget_cell(a),
            a.flops_per_token() as f64 / 1e6,
            decl
        )?;
    }
    let exempt: Vec<_> = all
        .iter()
        .filter(|e| e.arch.budget.exempt.is_some())
        .collect();
    if !exempt.is_empty() {
        writeln!(out, "\nexempt from their budget:")?;
        for e in exempt {
            let reason = e.arch.budget.exempt.unwrap_or_default();
            writeln!(out, "  {}: {reason}", e.arch.name)?;
        }
    }
    writeln!(
        out,
        "\nlive = parameters that receive a gradient; MFLOP/tok = forward+backward per corpus token \
         at encoder {} / decoder {} tokens per {}-token chunk",
        march_runtime::arch::REF_ENCODER_LEN,
        march_runtime::arch::REF_DECODER_LEN,
        march_runtime::arch::REF_CHUNK_TOKENS
    )?;
    emit(&out)
}

pub fn show(name: &str) -> Result<()> {
    let e = find_or_suggest(name)?;
    let mut out = String::new();
    if !e.arch.doc.is_empty() {
        writeln!(out, "{}\n", e.arch.doc)?;
    }
    writeln!(out, "{}", e.arch)?;
    writeln!(
        out,
        "flops/token      {:.1} MFLOP (forward+backward, reference workload)",
        e.arch.flops_per_token() as f64 / 1e6
    )?;
    emit(&out)
}
