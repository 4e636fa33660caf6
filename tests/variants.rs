//! The variant library: every registered variant's compile-time count equals
//! dfdx's count of the built module, the original experiments have exactly
//! the original's counts, and exactly the live parameters get gradients.
//! Variants declared here, as a user's crate would declare them, are in the
//! registry too and go through the same checks.

use march_models::Baseline;
use march_runtime::arch::PerLayer;
use march_runtime::registry::{find, variants};
use march_runtime::{march_model, Variant};

/// Twice the heads at half the head dimension: one line.
#[march_model(base = Baseline, heads *= 2, dim_qkv /= 2)]
pub struct MyVariant;

/// Per-layer feed-forward widths (same total, less live: the last encoder
/// layer's 1,024-wide feed-forward is dead).
#[march_model(base = Baseline, dim_ff = [3072, 2048, 1024])]
pub struct TaperedFeedForward;

/// A variant of a variant declared outside the library.
#[march_model(base = MyVariant, ffn = glu(silu), dim_ff = 1365)]
pub struct MyGluVariant;

#[test]
fn a_user_crate_declares_variants_of_library_variants() {
    assert_eq!(MyVariant::PARAMS.total, 36_340_224);
    assert_eq!(<MyVariant as Variant>::ARCH.encoder_heads(), [16, 16, 16]);
    assert_eq!(<MyVariant as Variant>::ARCH.base, Some("Baseline"));
    assert_eq!(MyGluVariant::PARAMS.total, 36_337_152);
    assert_eq!(<MyGluVariant as Variant>::ARCH.base, Some("MyVariant"));
    assert!(find("MyGluVariant").is_some(), "not in the registry");
}

/// The issue tracker's table (vocab 30,000).
const ORIGINAL: &[(&str, u64)] = &[
    ("Baseline", 36_340_224),
    ("MoreHeadsLessLayers", 34_764_800),
    ("MoreHeadsLessQKVDim", 36_340_224),
    ("LessHeadsMoreQKVDim", 36_340_224),
    ("ScalingHeads", 36_340_224),
    ("InverseScalingHeads", 36_340_224),
    ("APESumOverAverage", 36_340_224),
    ("APEUnitVariance", 36_340_224),
    ("MoreHeadsLessQKVDimLessLayers", 32_143_360),
    ("ReLUGatedLinearUnit", 36_337_152),
    ("GELUGatedLinearUnit", 36_337_152),
    ("SiLUGatedLinearUnit", 36_337_152),
    ("MixedAct", 36_337_152),
    ("MixedActSumOverMean", 36_337_152),
    ("MixedActSOMDropout", 36_337_152),
    ("NoSelfAttentionResidual", 36_340_224),
];

#[test]
fn original_experiments_have_the_original_counts() {
    march_models::link();
    for (name, count) in ORIGINAL {
        let e = find(name).unwrap_or_else(|| panic!("{name} is not registered"));
        assert_eq!(e.arch.params.total, *count, "{name}");
        // every one exists at CPU scale too
        let small = format!("Small{name}");
        assert!(find(&small).is_some(), "{small} is not registered");
    }
    // the baseline's dead weights: last encoder layer's w_q, w_o, FFN, FFN norm
    // and the final encoder norm
    let base = find("Baseline").unwrap().arch;
    assert_eq!(base.params.dead(), 2_622_464);
}

/// The original's logged `train/num_params` of its README-era runs (the
/// TensorBoard event files in its 97234f0 tree; f32 scalars), and each
/// as-run variant's true count: 15,360,000 (tied embedding) + 524,288
/// (position table) + the layers + one gain per RMS norm (7 in the encoder,
/// `3·layers + 1` in the decoder; `2·layers + 1` + `3·layers + 1` with 2+2
/// layers).
const AS_RUN: &[(&str, u64, f32)] = &[
    ("AsRunBaseline", 36_331_537, 36_331_536.0),
    ("AsRunMoreHeadsLessLayers", 34_758_668, 34_758_668.0),
    ("AsRunReLUGatedLinearUnit", 36_328_465, 36_328_464.0),
    ("AsRunGELUGatedLinearUnit", 36_328_465, 36_328_464.0),
    ("AsRunSiLUGatedLinearUnit", 36_328_465, 36_328_464.0),
    (
        "AsRunMoreHeadsLessQKVDimLessLayers",
        32_137_228,
        32_137_228.0,
    ),
];

#[test]
fn as_run_variants_have_the_original_logged_counts() {
    march_models::link();
    for &(name, count, logged) in AS_RUN {
        let e = find(name).unwrap_or_else(|| panic!("{name} is not registered"));
        assert_eq!(e.arch.params.total, count, "{name}");
        // TensorBoard keeps f32: above 2^25 its spacing is 4
        assert_eq!(count as f32, logged, "{name}: the logged count");
        assert!(find(&format!("Small{name}")).is_some(), "Small{name}");
    }
    // shared decoder norms: layers 1 and 2 read the previous feed-forward
    // norm, so their own self-attention gains (one element each) are dead,
    // beside the baseline's dead weights (its last encoder layer's w_q, w_o,
    // FFN and FFN norm, and the final encoder norm: 1 element each here)
    let base = find("AsRunBaseline").unwrap().arch;
    let intended_dead = 2 * 512 * 512 + 2 * 512 * 2048;
    assert_eq!(base.params.dead(), intended_dead + 2 + 2);
}

#[test]
fn compile_time_count_equals_the_built_module() {
    for e in variants() {
        assert_eq!(
            e.built_params() as u64,
            e.arch.params.total,
            "{}: #[march_model]'s count differs from the built module's tensors",
            e.arch.name
        );
    }
}

#[test]
fn exactly_the_live_parameters_receive_gradients() {
    for e in variants() {
        let mags = e
            .grad_magnitudes(march_runtime::session::DeviceKind::Cpu)
            .unwrap();
        let live: u64 = mags
            .iter()
            .filter(|(_, m)| *m > 0.0)
            .map(|(p, _)| p.numel as u64)
            .sum();
        let dead: Vec<&str> = mags
            .iter()
            .filter(|(_, m)| *m == 0.0)
            .map(|(p, _)| p.name.as_str())
            .collect();
        assert!(
            mags.iter().all(|(_, m)| m.is_finite()),
            "{}: non-finite gradient",
            e.arch.name
        );
        assert_eq!(
            live, e.arch.params.live,
            "{}: tensors without gradient: {dead:?}",
            e.arch.name
        );
    }
}

#[test]
fn budgets_hold_unless_declared_exempt() {
    for e in variants() {
        let a = e.arch;
        let within = a.budget_deviation_pct().abs() <= a.budget.tolerance_pct;
        assert!(
            within || a.budget.exempt.is_some(),
            "{} is outside its budget",
            a.name
        );
    }
    let exempt: Vec<&str> = variants()
        .iter()
        .filter(|e| e.arch.budget.exempt.is_some())
        .map(|e| e.arch.name)
        .collect();
    assert_eq!(
        exempt,
        [
            "AsRunMoreHeadsLessLayers",
            "AsRunMoreHeadsLessQKVDimLessLayers",
            "CrossAttentionKvWeights",
            "MoreHeadsLessLayers",
            "MoreHeadsLessQKVDimLessLayers",
            "NoFeedForward",
            "NoPositionEncoding",
            "SmallAsRunMoreHeadsLessLayers",
            "SmallAsRunMoreHeadsLessQKVDimLessLayers",
            "SmallCrossAttentionKvWeights",
            "SmallMoreHeadsLessLayers",
            "SmallMoreHeadsLessQKVDimLessLayers",
            "SmallNoFeedForward",
            "SmallNoPositionEncoding",
            "SmallUniformMoreHeadsLessLayers"
        ]
    );
}

#[test]
fn declarations_resolve_as_the_table_says() {
    let arch = |n: &str| find(n).unwrap().arch;
    assert_eq!(arch("ScalingHeads").encoder_heads(), [12, 8, 4]);
    assert_eq!(arch("ScalingHeads").decoder_heads(), [12, 8, 4]);
    assert_eq!(arch("InverseScalingHeads").encoder_heads(), [4, 8, 12]);
    assert_eq!(arch("SmallScalingHeads").encoder_heads(), [6, 4, 2]);
    let a = arch("MoreHeadsLessQKVDimLessLayers");
    assert_eq!(
        (a.dim_qkv, a.encoder_heads(), a.decoder_layers),
        (PerLayer::All(32), vec![24, 24], 2)
    );
    assert_eq!(arch("LessHeadsMoreQKVDim").encoder_heads(), [4, 4, 4]);
    assert_eq!(arch("ReLUGatedLinearUnit").dim_ff, PerLayer::All(1365));
    assert_eq!(arch("SmallReLUGatedLinearUnit").dim_ff, PerLayer::All(341));
    let d = arch("MixedActSOMDropout");
    assert_eq!(d.base, Some("MixedActSumOverMean"));
    assert_eq!(
        d.ffn,
        march_runtime::arch::FeedForward::MixedAct {
            combine: march_runtime::arch::Combine::Sum,
            branch_dropout: 0.5
        }
    );
    assert!(!arch("NoSelfAttentionResidual").residual.self_attn);
    assert!(arch("NoSelfAttentionResidual").residual.cross_attn);
    assert_eq!(arch("SmallBaseline").params.total, 2_394_240);
    // constant attention width: heads × dim_qkv = dim_model in every layer
    let c = arch("ScalingHeadsConstant");
    assert_eq!(c.encoder_heads(), [16, 8, 4]);
    assert_eq!(c.dim_qkv, PerLayer::Each(&[32, 64, 128]));
    assert_eq!(c.params.total, 36_340_224);
    let s = arch("SmallInverseScalingHeadsConstant");
    assert_eq!(
        (s.encoder_heads(), s.dim_qkv.of(3)),
        (vec![2, 4, 8], vec![64, 32, 16])
    );
    assert_eq!(s.params.total, 2_394_240);
    // attention only: no feed-forward and no norm before it
    let n = arch("NoFeedForward");
    let b = arch("Baseline");
    assert_eq!(
        n.params.total,
        b.params.total - 6 * (2 * 512 * 2048 + 512),
        "six feed-forwards and their norms fewer"
    );
    assert!(n.flops_per_token() < b.flops_per_token());
    assert!(arch("NoFeedForwardParamMatch").budget_deviation_pct().abs() <= 1.0);
    // three decoder layers' w_k, w_v [512, 512] more than the baseline
    assert_eq!(
        arch("CrossAttentionKvWeights").params.total,
        b.params.total + 3 * 2 * 512 * 512
    );
    assert_eq!(
        arch("NoPositionEncoding").params.total,
        b.params.total - 1024 * 512
    );
    // the position table's parameters moved into the feed-forward
    assert_eq!(arch("RotaryPosition").params.total, b.params.total - 2048);
    assert_eq!(
        arch("RelativePositionBias").params.total,
        b.params.total - 2048 + 2 * 32 * 8
    );
    // T5: relative bias, its own w_k, w_v in each cross-attention, narrower
    // feed-forward; nothing is dead (the final encoder output is read)
    let t5 = arch("T5Baseline");
    assert_eq!(t5.params.total, b.params.total - 1536);
    assert_eq!(t5.params.dead(), 0);
    let v2 = arch("BaselineV2");
    assert_eq!(v2.params.total, b.params.total + 262_144);
    assert_eq!(
        (v2.dropout, v2.position.kind),
        (0.0, march_runtime::arch::PositionKind::ROPE)
    );
    for small in [
        "SmallT5Baseline",
        "SmallBaselineV2",
        "SmallRotaryPosition",
        "SmallRelativePositionBias",
    ] {
        assert!(arch(small).budget_deviation_pct().abs() <= 1.0, "{small}");
    }
    let t = arch("TaperedFeedForward");
    assert_eq!(t.params.total, 36_340_224);
    assert_eq!(
        t.params.dead(),
        arch("Baseline").params.dead() - 2 * 512 * 2048 + 2 * 512 * 1024
    );
}
