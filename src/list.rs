//! `march list` and `march show`.

use anyhow::{bail, Result};
use march_runtime::registry::{find, variants};
use march_runtime::Arch;

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only variants whose name contains this (case-insensitive).
    #[arg(long)]
    filter: Option<String>,
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
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
    println!(
        "{:<name_w$}  {:>12}  {:>12}  {:>22}  {:>11}  declaration",
        "variant", "params", "live", "vs budget", "MFLOP/tok"
    );
    for e in &all {
        let a = e.arch;
        let decl = match a.base {
            Some(base) if a.declared.is_empty() => format!("base = {base}"),
            Some(base) => format!("base = {base}, {}", a.declared),
            None => a.declared.to_string(),
        };
        println!(
            "{:<name_w$}  {:>12}  {:>12}  {:>22}  {:>11.1}  {}",
            a.name,
            thousands(a.params.total),
            thousands(a.params.live),
            budget_cell(a),
            a.flops_per_token() as f64 / 1e6,
            decl
        );
    }
    let exempt: Vec<_> = all
        .iter()
        .filter(|e| e.arch.budget.exempt.is_some())
        .collect();
    if !exempt.is_empty() {
        println!("\nexempt from their budget:");
        for e in exempt {
            println!(
                "  {}: {}",
                e.arch.name,
                e.arch.budget.exempt.unwrap_or_default()
            );
        }
    }
    println!(
        "\nlive = parameters that receive a gradient; MFLOP/tok = forward+backward per corpus token \
         at encoder {} / decoder {} tokens per {}-token chunk",
        march_runtime::arch::REF_ENCODER_LEN,
        march_runtime::arch::REF_DECODER_LEN,
        march_runtime::arch::REF_CHUNK_TOKENS
    );
    Ok(())
}

pub fn show(name: &str) -> Result<()> {
    let Some(e) = find(name) else {
        bail!("unknown variant `{name}`; run `march list` to see them all");
    };
    if !e.arch.doc.is_empty() {
        println!("{}\n", e.arch.doc);
    }
    println!("{}", e.arch);
    println!(
        "flops/token      {:.1} MFLOP (forward+backward, reference workload)",
        e.arch.flops_per_token() as f64 / 1e6
    );
    Ok(())
}
