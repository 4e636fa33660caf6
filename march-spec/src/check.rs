//! Checks of a complete declaration, independent of how it was written, and
//! the budget check.

use crate::arch::{thousands, Arch, BudgetOn, DecoderNorms, PerLayer, PositionKind};

/// A problem with the declaration as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistency {
    pub message: String,
    /// The keys whose entries it is about (the macro points at the last of
    /// them the declaration wrote, else at the variant's name).
    pub keys: &'static [&'static str],
}

const LAYER_KEYS: &[&str] = &["layers", "encoder_layers", "decoder_layers"];

/// Every inconsistency of `arch`. `derived`: it has a base (which supplies
/// the budget).
pub fn check(arch: &Arch, derived: bool) -> Vec<Inconsistency> {
    let mut out = Vec::new();
    let mut add = |keys, message: String| out.push(Inconsistency { message, keys });
    if !derived && arch.budget.params.is_none() {
        add(&[], "a variant without `base` must state its parameter budget: add `budget = <parameters>` (or derive it with `base = SomeVariant`)".into());
    }
    let (enc, dec) = (arch.encoder_layers, arch.decoder_layers);
    let lists: [(&'static [&'static str], PerLayer); 3] = [
        (&["heads"], arch.heads),
        (&["dim_qkv"], arch.dim_qkv),
        (&["dim_ff"], arch.dim_ff),
    ];
    for (keys, value) in lists {
        let PerLayer::Each(list) = value else {
            continue;
        };
        let key = keys[0];
        if enc != dec {
            add(keys, format!(
                "a per-layer `{key}` list applies to encoder and decoder alike, but there are {enc} encoder and {dec} decoder layers: make them equal or give one {}",
                if key == "heads" { "head count" } else { "number" }
            ));
        } else if list.len() != enc {
            add(keys, format!(
                "`{key}` lists {} layers but the model has {enc} encoder and {dec} decoder layers: give one entry per layer, or one number",
                list.len()
            ));
        }
    }
    if arch.decoder_norms == DecoderNorms::Shared && !arch.ffn.present() {
        add(&["decoder_norms", "ffn"], "`decoder_norms = shared` lets a decoder layer's self-attention read the previous layer's feed-forward norm, but `ffn = none` has no such norm: write `decoder_norms = own`".into());
    }
    if arch.cross_attention.pairs_layers() && enc != dec {
        add(LAYER_KEYS, format!(
            "`cross_attention = {}` pairs decoder layer i with encoder layer i, but there are {enc} encoder and {dec} decoder layers: make them equal or write `cross_attention = own_kv`",
            arch.cross_attention.name()
        ));
    }
    match arch.position.kind {
        PositionKind::T5Relative {
            num_buckets,
            max_distance,
        } => {
            if let PerLayer::Each(_) = arch.heads {
                add(&["heads", "position"], "`position = t5_relative` shares one bias table per stack across its layers, so every layer needs the same heads: give one head count, or use `position = rope`".into());
            }
            if num_buckets < 4 || num_buckets % 2 != 0 {
                add(&["position"], format!("`t5_relative` needs an even `num_buckets` of at least 4 (half of them are exact, and the encoder splits them by direction), found {num_buckets}"));
            } else if max_distance <= num_buckets / 2 {
                add(&["position"], format!("`t5_relative`'s `max_distance` ({max_distance}) must exceed `num_buckets / 2` ({}), where the logarithmic buckets begin", num_buckets / 2));
            }
        }
        PositionKind::Rope { .. } => {
            let dims = match arch.dim_qkv {
                PerLayer::All(d) => vec![d],
                PerLayer::Each(list) => list.to_vec(),
            };
            let odd: Vec<usize> = dims.into_iter().filter(|d| d % 2 == 1).collect();
            if let Some(d) = odd.first() {
                add(&["dim_qkv", "position"], format!("`position = rope` rotates pairs of features, so `dim_qkv` must be even, found {d}"));
            }
        }
        _ => {}
    }
    if arch.vocab < 2 {
        add(&["vocab"], "`vocab` must be at least 2".into());
    }
    out
}

/// Whether every per-layer list has one entry per layer (encoder and decoder).
pub fn lists_fit(arch: &Arch) -> bool {
    [arch.heads, arch.dim_qkv, arch.dim_ff]
        .iter()
        .all(|l| match l {
            PerLayer::All(_) => true,
            PerLayer::Each(list) => {
                list.len() == arch.encoder_layers && list.len() == arch.decoder_layers
            }
        })
}

/// The budget check: `None` when the variant is within its budget (or exempt
/// from it, or has none).
pub fn budget_error(arch: &Arch) -> Option<String> {
    let budget = arch.budget.params?;
    let (count, what) = match arch.budget.on {
        BudgetOn::Total => (arch.params.total, "parameters"),
        BudgetOn::Live => (arch.params.live, "live parameters"),
    };
    let deviation = (count as f64 - budget as f64) / budget as f64 * 100.0;
    if deviation.abs() <= arch.budget.tolerance_pct || arch.budget.exempt.is_some() {
        return None;
    }
    let direction = if deviation > 0.0 { "over" } else { "under" };
    Some(format!(
        "`{}` has {} {what}, {:.2}% {direction} its budget of {} (tolerance ±{}%); \
         change the declaration, widen it with `tolerance = {:.1}%`, or declare \
         `budget_exempt = \"<reason>\"` to run it anyway",
        arch.name,
        thousands(count),
        deviation.abs(),
        thousands(budget),
        arch.budget.tolerance_pct,
        (deviation.abs() * 10.0).ceil() / 10.0,
    ))
}
