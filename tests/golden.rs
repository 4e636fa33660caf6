//! Golden fixtures: tiny configurations with fixed weights and inputs, whose
//! logits and loss were computed by an independent NumPy implementation of
//! the specification (`tests/golden/reference.py`, which also regenerates
//! `tests/golden/fixtures.json`).

use dfdx::prelude::*;
use march_runtime::layers::{Ctx, Float};
use march_runtime::model::{Seq2Seq, Seq2SeqBatch};
use march_runtime::params::set_params;
use march_runtime::{march_model, Variant};
use serde_json::Value;

#[march_model(
    dim_model = 8, layers = 2, heads = [2, 1], dim_qkv = 4, dim_ff = 12, vocab = 13,
    max_len = 10, ffn = dense(relu), position_combine = mean,
    cross_attention = reuse_encoder_kv, attention = softmax,
    budget = 1, budget_exempt = "golden fixture",
)]
struct GoldenOriginal;

#[march_model(
    base = GoldenOriginal, heads = 2, dim_qkv = 3, dim_ff = 6, ffn = glu(gelu),
    position_combine = sum, self_attn_residual = false, cross_attention = own_kv,
    budget_exempt = "golden fixture",
)]
struct GoldenT5Glu;

#[march_model(
    base = GoldenOriginal, heads = [1, 2], dim_ff = 6, ffn = mixed(sum),
    attention = uniform_encoder, budget_exempt = "golden fixture",
)]
struct GoldenMixedUniform;

#[march_model(
    base = GoldenOriginal, dim_qkv = [3, 5], dim_ff = [12, 6], ffn = dense(gelu),
    cross_attention = own_kv, attention_scale = inv_sqrt_dim, budget_exempt = "golden fixture",
)]
struct GoldenPerLayerScaled;

#[march_model(base = GoldenOriginal, ffn = none, budget_exempt = "golden fixture")]
struct GoldenNoFfn;

#[march_model(
    base = GoldenT5Glu, self_attn_residual = true, tie_embeddings = false,
    budget_exempt = "golden fixture",
)]
struct GoldenUntied;

#[march_model(
    base = GoldenOriginal, cross_attention = project_encoder_kv, budget_exempt = "golden fixture",
)]
struct GoldenProjectKv;

#[march_model(
    base = GoldenT5Glu, self_attn_residual = true, position = none,
    budget_exempt = "golden fixture",
)]
struct GoldenNoPosition;

#[march_model(
    base = GoldenT5Glu, self_attn_residual = true,
    position = t5_relative(num_buckets = 8, max_distance = 6), budget_exempt = "golden fixture",
)]
struct GoldenT5Relative;

#[march_model(base = GoldenOriginal, position = rope(theta = 100), budget_exempt = "golden fixture")]
struct GoldenRope;

#[march_model(base = GoldenOriginal, norm_gain = scalar, budget_exempt = "golden fixture")]
struct GoldenScalarGain;

fn fixture(name: &str) -> Value {
    let text = include_str!("golden/fixtures.json");
    let all: Vec<Value> = serde_json::from_str(text).expect("fixtures.json is valid JSON");
    all.into_iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// Runs `V` with the fixture's weights in `E` and returns (logits, loss, want logits, want loss).
fn run<V: Variant, E: Float>() -> (Vec<f64>, f64, Vec<f64>, f64)
where
    Cpu: march_runtime::ops::Ops<E>,
{
    let f = fixture(V::ARCH.name);
    let dev = Cpu::default();
    let mut model = V::build::<E, Cpu>(&dev, 0);
    let weights = f["weights"].as_object().unwrap();
    let mut loaded = 0;
    set_params(&mut model, |name, n| {
        let w = floats(
            weights
                .get(name)
                .unwrap_or_else(|| panic!("fixture has no {name}")),
        );
        assert_eq!(w.len(), n, "{name}");
        loaded += 1;
        Some(w.into_iter().map(|x| E::from_f64(x).unwrap()).collect())
    });
    assert_eq!(
        loaded,
        weights.len(),
        "every fixture weight is a model parameter"
    );
    let (b, se, sd) = (
        f["batch"].as_u64().unwrap() as usize,
        f["enc_len"].as_u64().unwrap() as usize,
        f["dec_len"].as_u64().unwrap() as usize,
    );
    let to_ids = |v: &Value| ints(v).into_iter().map(|x| x as usize).collect::<Vec<_>>();
    let batch = Seq2SeqBatch {
        enc_ids: dev.tensor_from_vec(to_ids(&f["enc_ids"]), (b, se)),
        enc_mask: dev.tensor_from_vec(
            floats(&f["enc_mask"])
                .into_iter()
                .map(|x| E::from_f64(x).unwrap())
                .collect(),
            (b, se),
        ),
        dec_ids: dev.tensor_from_vec(to_ids(&f["dec_ids"]), (b, sd)),
    };
    let ctx = Ctx::eval(&V::ARCH);
    let logits = model.forward(&batch, &ctx, NoneTape);
    let got: Vec<f64> = logits
        .as_vec()
        .into_iter()
        .map(|x| x.to_f64().unwrap())
        .collect();
    let loss = model.loss(&batch, &ints(&f["labels"]), &ctx, NoneTape);
    (
        got,
        loss.array().to_f64().unwrap(),
        floats(&f["logits"]),
        f["loss"].as_f64().unwrap(),
    )
}

fn check<V: Variant>() {
    // f64: the same numbers up to rounding
    let (got, loss, want, want_loss) = run::<V, f64>();
    let max_rel = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1e-3))
        .fold(0.0, f64::max);
    assert!(
        max_rel < 1e-9,
        "{}: f64 logits differ from the reference by {max_rel:e} relative",
        V::ARCH.name
    );
    assert!(
        ((loss - want_loss) / want_loss).abs() < 1e-12,
        "{}: f64 loss {loss} vs {want_loss}",
        V::ARCH.name
    );
    // f32, what training runs: within 1e-5 relative of the logits' scale
    let (got, loss, want, want_loss) = run::<V, f32>();
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    let max_err = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max);
    assert!(
        max_err <= 1e-5 * scale,
        "{}: f32 logits off by {max_err:e} (scale {scale})",
        V::ARCH.name
    );
    assert!(
        ((loss - want_loss) / want_loss).abs() < 1e-5,
        "{}: f32 loss {loss} vs {want_loss}",
        V::ARCH.name
    );
}

#[test]
fn original_structure_matches_reference() {
    check::<GoldenOriginal>();
}

#[test]
fn t5_cross_attention_glu_no_residual_matches_reference() {
    check::<GoldenT5Glu>();
}

#[test]
fn mixed_activation_uniform_attention_matches_reference() {
    check::<GoldenMixedUniform>();
}

#[test]
fn per_layer_dimensions_and_inv_sqrt_dim_scaling_match_reference() {
    check::<GoldenPerLayerScaled>();
}

#[test]
fn no_feed_forward_matches_reference() {
    check::<GoldenNoFfn>();
}

#[test]
fn untied_output_head_matches_reference() {
    check::<GoldenUntied>();
}

#[test]
fn projected_encoder_keys_and_values_match_reference() {
    check::<GoldenProjectKv>();
}

#[test]
fn no_position_encoding_matches_reference() {
    check::<GoldenNoPosition>();
}

#[test]
fn t5_relative_position_bias_matches_reference() {
    check::<GoldenT5Relative>();
}

#[test]
fn rotary_position_embedding_matches_reference() {
    check::<GoldenRope>();
}

#[test]
fn scalar_norm_gain_matches_reference() {
    check::<GoldenScalarGain>();
}
