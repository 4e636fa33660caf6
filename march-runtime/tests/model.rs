//! Whole-model checks on tiny variants declared with the DSL: causality,
//! padding invariance, a finite-difference gradient check in f64, gradient
//! liveness and determinism.

use std::collections::HashMap;

use dfdx::prelude::*;
use march_runtime::layers::Ctx;
use march_runtime::model::{Seq2Seq, Seq2SeqBatch};
use march_runtime::params::{for_each_grad_slice, for_each_param, grad_magnitudes, set_params};
use march_runtime::registry::{probe_batch, tape_into};
use march_runtime::{march_model, Variant};

/// 2+2 layers, dim 8, 2 heads of 4: the original's structure in miniature.
#[march_model(
    dim_model = 8,
    layers = 2,
    heads = 2,
    dim_qkv = 4,
    dim_ff = 12,
    vocab = 11,
    max_len = 16,
    dropout = 0.1,
    budget = 2360
)]
struct Tiny;

#[march_model(base = Tiny, cross_attention = own_kv, heads = [3, 1], budget_exempt = "test")]
#[allow(dead_code)]
struct TinyOwnKv;

#[march_model(base = Tiny, attention = uniform_encoder, budget_exempt = "test")]
struct TinyUniform;

#[march_model(base = TinyOwnKv, attention_scale = inv_sqrt_dim, budget_exempt = "test")]
struct TinyScaled;

#[march_model(base = Tiny, ffn = none, budget_exempt = "test")]
struct TinyNoFfn;

#[march_model(base = TinyOwnKv, tie_embeddings = false, budget_exempt = "test")]
struct TinyUntied;

#[march_model(base = Tiny, cross_attention = project_encoder_kv, heads = [2, 1], budget_exempt = "test")]
struct TinyProjectKv;

#[march_model(base = TinyProjectKv, attention = uniform_encoder, budget_exempt = "test")]
struct TinyProjectKvUniform;

#[march_model(base = TinyOwnKv, position = none, budget_exempt = "test")]
struct TinyNoPosition;

#[march_model(base = Tiny, ffn = glu(silu), dim_ff *= 2/3, self_attn_residual = false)]
struct TinyGlu;

// GELU's derivative through the fused GLU and through the dense composition
#[march_model(base = Tiny, ffn = glu(gelu), dim_ff *= 2/3)]
struct TinyGeluGlu;

#[march_model(base = Tiny, ffn = dense(gelu))]
struct TinyDenseGelu;

#[march_model(base = Tiny, ffn = mixed(sum, branch_dropout = 0.5), dim_ff *= 2/3, position_combine = sum, position_init = unit)]
struct TinyMixed;

#[march_model(base = Tiny, cross_attention = own_kv, encoder_layers = 3, decoder_layers = 1, budget_exempt = "test")]
struct TinyDeepEncoder;

type Dev = Cpu;

fn batch(
    dev: &Dev,
    enc: Vec<usize>,
    mask: Vec<f64>,
    dec: Vec<usize>,
    b: usize,
) -> Seq2SeqBatch<f64, Dev> {
    let (se, sd) = (enc.len() / b, dec.len() / b);
    Seq2SeqBatch {
        enc_ids: dev.tensor_from_vec(enc, (b, se)),
        enc_mask: dev.tensor_from_vec(mask, (b, se)),
        dec_ids: dev.tensor_from_vec(dec, (b, sd)),
    }
}

fn logits<V: Variant>(model: &V::Model<f64, Dev>, b: &Seq2SeqBatch<f64, Dev>) -> Vec<f64> {
    model.forward(b, &Ctx::eval(&V::ARCH), NoneTape).as_vec()
}

/// Logits of a fixed two-example batch whose encoder mask is `mask`.
fn probe_logits<V: Variant>(model: &V::Model<f64, Dev>, dev: &Dev, mask: &[f64]) -> Vec<f64> {
    let b = batch(
        dev,
        vec![1, 2, 3, 4, 5, 6, 7, 8],
        mask.to_vec(),
        vec![0, 3, 4, 5, 0, 6, 7, 8],
        2,
    );
    logits::<V>(model, &b)
}

/// Equal to rounding (the equivalences below are exact in real arithmetic).
fn assert_same_logits(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() < 1e-12 * (1.0 + w.abs()),
            "logit {i}: {g} vs {w}"
        );
    }
}

fn check_causality<V: Variant>() {
    let dev = Dev::seed_from_u64(0);
    let model = V::build::<f64, Dev>(&dev, 1);
    let enc = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let mask = vec![1.0; 10];
    let dec_a = vec![0, 3, 4, 5, 6];
    let la = logits::<V>(
        &model,
        &batch(&dev, enc.clone(), mask.clone(), dec_a.clone(), 1),
    );
    for t in 0..dec_a.len() - 1 {
        let mut dec_b = dec_a.clone();
        for (i, id) in dec_b.iter_mut().enumerate().skip(t + 1) {
            *id = (*id + 3 + i) % 11;
        }
        let lb = logits::<V>(&model, &batch(&dev, enc.clone(), mask.clone(), dec_b, 1));
        let v = V::ARCH.vocab;
        assert_eq!(
            la[..(t + 1) * v],
            lb[..(t + 1) * v],
            "{}: changing decoder inputs after {t} changed logits at or before it",
            V::ARCH.name
        );
        assert_ne!(
            la[(t + 1) * v..],
            lb[(t + 1) * v..],
            "{}: later logits should change",
            V::ARCH.name
        );
    }
}

#[test]
fn decoder_is_causal() {
    check_causality::<Tiny>();
    check_causality::<TinyOwnKv>();
    check_causality::<TinyUniform>();
    check_causality::<TinyGlu>();
    check_causality::<TinyMixed>();
    check_causality::<TinyDeepEncoder>();
    check_causality::<TinyProjectKv>();
    check_causality::<TinyNoPosition>();
}

fn check_padding<V: Variant>() {
    let dev = Dev::seed_from_u64(0);
    let model = V::build::<f64, Dev>(&dev, 2);
    // two examples; the second has 3 padded encoder positions
    let enc_a = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2];
    let mask = vec![1., 1., 1., 1., 1., 1., 1., 1., 1., 0., 0., 0.];
    let dec = vec![0, 3, 4, 0, 5, 6];
    let la = logits::<V>(
        &model,
        &batch(&dev, enc_a.clone(), mask.clone(), dec.clone(), 2),
    );
    let mut enc_b = enc_a.clone();
    enc_b[9] = 4;
    enc_b[10] = 0;
    enc_b[11] = 9;
    let lb = logits::<V>(&model, &batch(&dev, enc_b, mask.clone(), dec.clone(), 2));
    assert_eq!(
        la,
        lb,
        "{}: padded encoder tokens changed the output",
        V::ARCH.name
    );
    // and a real token does change it
    let mut enc_c = enc_a;
    enc_c[7] = 1;
    let lc = logits::<V>(&model, &batch(&dev, enc_c, mask, dec, 2));
    assert_ne!(
        la,
        lc,
        "{}: a real encoder token should matter",
        V::ARCH.name
    );
}

#[test]
fn padded_encoder_tokens_change_nothing() {
    check_padding::<Tiny>();
    check_padding::<TinyOwnKv>();
    check_padding::<TinyUniform>();
    check_padding::<TinyGlu>();
    check_padding::<TinyMixed>();
    check_padding::<TinyDeepEncoder>();
    check_padding::<TinyProjectKv>();
    check_padding::<TinyNoPosition>();
}

fn loss_of<V: Variant>(model: &V::Model<f64, Dev>, dev: &Dev) -> f64 {
    let (b, labels) = probe_batch::<f64, Dev>(dev, V::ARCH.vocab);
    model
        .loss(&b, &labels, &Ctx::eval(&V::ARCH), NoneTape)
        .array()
}

/// Central differences against the tape's gradient, for a spread of entries
/// of every live tensor.
fn check_gradients<V: Variant>() {
    let dev = Dev::seed_from_u64(0);
    let mut model = V::build::<f64, Dev>(&dev, 3);
    let (b, labels) = probe_batch::<f64, Dev>(&dev, V::ARCH.vocab);
    let grads = model.alloc_grads();
    let loss = model.loss(&b, &labels, &Ctx::eval(&V::ARCH), tape_into(&dev, grads));
    let mut grads = loss.backward();
    let mags = grad_magnitudes(&model, &mut grads);
    let mut analytic: HashMap<String, Vec<f64>> = HashMap::new();
    for_each_grad_slice(&model, &mut grads, |name, g| {
        analytic.insert(name.to_string(), g.to_vec());
    });
    let mut params: HashMap<String, Vec<f64>> = HashMap::new();
    for_each_param(&model, |name, v| {
        params.insert(name.to_string(), v);
    });
    let h = 1e-6;
    let mut checked = 0;
    for (info, mag) in mags {
        let n = info.numel;
        for &idx in &[0, n / 3, n / 2, n - 1] {
            let mut eval_at = |delta: f64| {
                let mut p = params[&info.name].clone();
                p[idx] += delta;
                set_params(&mut model, |name, _| (name == info.name).then(|| p.clone()));
                loss_of::<V>(&model, &dev)
            };
            let numeric = (eval_at(h) - eval_at(-h)) / (2.0 * h);
            set_params(&mut model, |name, _| {
                (name == info.name).then(|| params[&info.name].clone())
            });
            let a = analytic[&info.name][idx];
            assert!(
                (numeric - a).abs() <= 1e-6 + 1e-5 * a.abs(),
                "{}: d loss / d {}[{idx}]: tape {a}, finite differences {numeric}",
                V::ARCH.name,
                info.name
            );
            if mag > 0.0 {
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "too few live entries checked: {checked}");
}

#[test]
fn gradients_match_finite_differences() {
    check_gradients::<Tiny>();
    check_gradients::<TinyOwnKv>();
    check_gradients::<TinyUniform>();
    check_gradients::<TinyGlu>();
    check_gradients::<TinyGeluGlu>();
    check_gradients::<TinyDenseGelu>();
    check_gradients::<TinyMixed>();
    check_gradients::<TinyDeepEncoder>();
    check_gradients::<TinyProjectKv>();
    check_gradients::<TinyNoPosition>();
}

fn check_liveness<V: Variant>() {
    let dev = Dev::seed_from_u64(0);
    let model = V::build::<f64, Dev>(&dev, 4);
    let (b, labels) = probe_batch::<f64, Dev>(&dev, V::ARCH.vocab);
    let loss = model.loss(
        &b,
        &labels,
        &Ctx::eval(&V::ARCH),
        tape_into(&dev, model.alloc_grads()),
    );
    let mut grads = loss.backward();
    let mags = grad_magnitudes(&model, &mut grads);
    let live: u64 = mags
        .iter()
        .filter(|(_, m)| *m > 0.0)
        .map(|(i, _)| i.numel as u64)
        .sum();
    let total: u64 = mags.iter().map(|(i, _)| i.numel as u64).sum();
    let dead: Vec<&str> = mags
        .iter()
        .filter(|(_, m)| *m == 0.0)
        .map(|(i, _)| i.name.as_str())
        .collect();
    assert_eq!(total, V::ARCH.params.total, "{}", V::ARCH.name);
    assert_eq!(
        live,
        V::ARCH.params.live,
        "{}: tensors without gradient: {dead:?}",
        V::ARCH.name
    );
}

#[test]
fn exactly_the_live_parameters_get_gradients() {
    check_liveness::<Tiny>();
    check_liveness::<TinyOwnKv>();
    check_liveness::<TinyUniform>();
    check_liveness::<TinyGlu>();
    check_liveness::<TinyMixed>();
    check_liveness::<TinyDeepEncoder>();
    check_liveness::<TinyProjectKv>();
    check_liveness::<TinyNoPosition>();
    check_liveness::<TinyScaled>();
    check_liveness::<TinyNoFfn>();
    check_liveness::<TinyUntied>();
    check_liveness::<TinyProjectKvUniform>();
    assert_eq!(TinyUntied::PARAMS.total, TinyOwnKv::PARAMS.total + 11 * 8);
    assert_eq!(
        TinyNoPosition::PARAMS.total,
        TinyOwnKv::PARAMS.total - 16 * 8
    );
    // the original's dead weights: last encoder layer's w_q, w_o, FFN and its
    // norm, and the final encoder norm
    let m = 8u64;
    assert_eq!(Tiny::PARAMS.dead(), 2 * m * 8 + 2 * m * 12 + m + m);
    assert_eq!(TinyOwnKv::PARAMS.dead(), 0);
}

#[test]
fn same_seed_same_model_same_loss() {
    let dev = Dev::seed_from_u64(7);
    let a = Tiny::build::<f64, Dev>(&dev, 11);
    let b = Tiny::build::<f64, Dev>(&dev, 11);
    let c = Tiny::build::<f64, Dev>(&dev, 12);
    assert_eq!(loss_of::<Tiny>(&a, &dev), loss_of::<Tiny>(&b, &dev));
    assert_ne!(loss_of::<Tiny>(&a, &dev), loss_of::<Tiny>(&c, &dev));
    // with dropout: the same dropout seed gives the same training loss, on
    // any device instance
    let train = |seed| {
        let dev = Dev::seed_from_u64(seed ^ 0xabc);
        let m = Tiny::build::<f64, Dev>(&dev, 11);
        let (bt, labels) = probe_batch::<f64, Dev>(&dev, 11);
        m.loss(
            &bt,
            &labels,
            &Ctx::train_seeded(&Tiny::ARCH, seed),
            NoneTape,
        )
        .array()
    };
    assert_eq!(train(5), train(5));
    assert_ne!(train(5), train(6));
    assert_ne!(
        train(5),
        loss_of::<Tiny>(&a, &dev),
        "dropout is active in training"
    );
}

#[test]
fn initialisation_follows_the_spec() {
    // std of each tensor against the spec, on the original baseline's shapes
    #[march_model(
        dim_model = 512,
        layers = 1,
        heads = 8,
        dim_qkv = 64,
        vocab = 512,
        max_len = 64,
        budget = 7_114_240
    )]
    struct Init;
    let dev = Dev::seed_from_u64(0);
    let model = Init::build::<f64, Dev>(&dev, 0);
    let want: &[(&str, f64)] = &[
        ("embedding", 1.0),
        ("position", 512f64.powf(-0.5)),
        ("encoder.0.self_attn.w_q", (512.0f64 * 64.0).powf(-0.5)),
        ("encoder.0.self_attn.w_k", 512f64.powf(-0.5)),
        ("encoder.0.self_attn.w_v", 512f64.powf(-0.5)),
        ("encoder.0.self_attn.w_o", 512f64.powf(-0.5)),
        ("encoder.0.ffn.up", 512f64.powf(-0.5)),
        ("encoder.0.ffn.down", 2048f64.powf(-0.5)),
        ("decoder.0.cross_attn.w_q", (512.0f64 * 64.0).powf(-0.5)),
    ];
    let mut seen = 0;
    for_each_param(&model, |name, v| {
        if name.ends_with("norm.weight") {
            assert!(v.iter().all(|&x| x == 1.0), "{name} is not all ones");
        }
        if let Some((_, std)) = want.iter().find(|(n, _)| *n == name) {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
            assert!(
                (sd / std - 1.0).abs() < 0.05,
                "{name}: std {sd}, want {std}"
            );
            assert!(mean.abs() < 0.05 * std + 1e-3, "{name}: mean {mean}");
            seen += 1;
        }
    });
    assert_eq!(seen, want.len());
}

#[test]
fn inv_sqrt_dim_scaling_equals_queries_divided_by_sqrt_dim() {
    // the same weights, every w_q (self- and cross-attention) divided by
    // √dim_qkv = 2, without the scale: the same logits
    let dev = Dev::seed_from_u64(0);
    let scaled = TinyScaled::build::<f64, Dev>(&dev, 3);
    let mut weights = HashMap::new();
    for_each_param(&scaled, |name, v| {
        weights.insert(name.to_string(), v);
    });
    let mut plain = TinyOwnKv::build::<f64, Dev>(&dev, 4);
    set_params(&mut plain, |name, _| {
        let v = weights[name].clone();
        Some(if name.ends_with("w_q") {
            v.iter().map(|x| x / 2.0).collect()
        } else {
            v
        })
    });
    let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
    let want = probe_logits::<TinyOwnKv>(&plain, &dev, &mask);
    let got = probe_logits::<TinyScaled>(&scaled, &dev, &mask);
    assert_same_logits(&got, &want);
    // and the scale changes the function of the same weights
    let unscaled = probe_logits::<TinyOwnKv>(&scaled, &dev, &mask);
    assert!(got.iter().zip(&unscaled).any(|(a, b)| (a - b).abs() > 1e-6));
}

#[test]
fn no_feed_forward_is_a_feed_forward_that_adds_nothing() {
    // Tiny with every feed-forward's `down` at zero adds x + 0 after each
    // feed-forward: the model without feed-forwards (same other weights)
    let dev = Dev::seed_from_u64(0);
    let mut zeroed = Tiny::build::<f64, Dev>(&dev, 5);
    set_params(&mut zeroed, |name, n| {
        name.ends_with("ffn.down").then(|| vec![0.0; n])
    });
    let mut weights = HashMap::new();
    for_each_param(&zeroed, |name, v| {
        weights.insert(name.to_string(), v);
    });
    let mut none = TinyNoFfn::build::<f64, Dev>(&dev, 6);
    let mut seen = 0;
    set_params(&mut none, |name, _| {
        seen += 1;
        Some(weights[name].clone())
    });
    assert_eq!(
        seen + 4 * 3,
        weights.len(),
        "no feed-forward (up, down) and no norm before it, in 4 layers"
    );
    let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
    let want = probe_logits::<Tiny>(&zeroed, &dev, &mask);
    let got = probe_logits::<TinyNoFfn>(&none, &dev, &mask);
    assert_same_logits(&got, &want);
}

#[test]
fn an_untied_head_equal_to_the_scaled_embedding_is_the_tied_head() {
    let dev = Dev::seed_from_u64(0);
    let tied = TinyOwnKv::build::<f64, Dev>(&dev, 7);
    let mut weights = HashMap::new();
    for_each_param(&tied, |name, v| {
        weights.insert(name.to_string(), v);
    });
    // T5 v1.1's head is initialised N(0, 1), like the embedding
    let untied = TinyUntied::build::<f64, Dev>(&dev, 7);
    let mut head = Vec::new();
    for_each_param(&untied, |name, v| {
        if name == "lm_head.weight" {
            head = v;
        }
    });
    let std = (head.iter().map(|x| x * x).sum::<f64>() / head.len() as f64).sqrt();
    assert!((0.7..1.3).contains(&std), "lm_head std {std}");
    let mut untied = untied;
    let scale = 8f64.powf(-0.5);
    set_params(&mut untied, |name, _| {
        Some(if name == "lm_head.weight" {
            weights["embedding"].iter().map(|x| x * scale).collect()
        } else {
            weights[name].clone()
        })
    });
    let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
    let want = probe_logits::<TinyOwnKv>(&tied, &dev, &mask);
    let got = probe_logits::<TinyUntied>(&untied, &dev, &mask);
    assert_same_logits(&got, &want);
}

#[test]
fn projecting_encoder_keys_and_values_by_the_identity_is_reusing_them() {
    #[march_model(base = Tiny, cross_attention = project_encoder_kv, budget_exempt = "test")]
    struct TinyProjectSameHeads;
    let dev = Dev::seed_from_u64(0);
    let reuse = Tiny::build::<f64, Dev>(&dev, 8);
    let mut weights = HashMap::new();
    for_each_param(&reuse, |name, v| {
        weights.insert(name.to_string(), v);
    });
    let mut project = TinyProjectSameHeads::build::<f64, Dev>(&dev, 9);
    // inner width 2 heads × 4 = 8
    let identity: Vec<f64> = (0..64)
        .map(|i| if i % 9 == 0 { 1.0 } else { 0.0 })
        .collect();
    set_params(&mut project, |name, _| {
        Some(
            if name.ends_with("cross_attn.w_k") || name.ends_with("cross_attn.w_v") {
                identity.clone()
            } else {
                weights[name].clone()
            },
        )
    });
    let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
    let want = probe_logits::<Tiny>(&reuse, &dev, &mask);
    let got = probe_logits::<TinyProjectSameHeads>(&project, &dev, &mask);
    assert_same_logits(&got, &want);
    // the projection's count: 2 × [8, 8] per decoder layer
    assert_eq!(
        TinyProjectSameHeads::PARAMS.total,
        Tiny::PARAMS.total + 2 * 2 * 64
    );
}

/// dfdx's view of a model's trainable tensors: names and element counts,
/// in its `TensorCollection` order, and the values `BuildModule` gives.
fn dfdx_tensors<M: TensorCollection<f64, Dev>>(model: &M) -> Vec<(String, usize, Vec<f64>)> {
    use dfdx::nn::tensor_collection::{
        RecursiveWalker, TensorOptions, TensorVisitor, ViewTensorName, ViewTensorRef,
    };
    struct Collect(Vec<(String, usize, Vec<f64>)>);
    impl TensorVisitor<f64, Dev> for Collect {
        type Viewer = (ViewTensorRef, ViewTensorName);
        type Err = <Dev as HasErr>::Err;
        type E2 = f64;
        type D2 = Dev;
        fn visit<S: Shape>(
            &mut self,
            opts: TensorOptions<S, f64, Dev>,
            (t, name): (&Tensor<S, f64, Dev>, String),
        ) -> Result<Option<Tensor<S, f64, Dev>>, Self::Err> {
            if opts.do_gradient_update {
                self.0.push((name, t.shape().num_elements(), t.as_vec()));
            }
            Ok(None)
        }
    }
    let mut v = Collect(Vec::new());
    M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut v,
    })
    .unwrap();
    v.0
}

fn check_walk_matches_dfdx<V: Variant>()
where
    V::Model<f64, Dev>: BuildModule<Dev, f64>,
{
    let dev = Dev::default();
    let name = V::ARCH.name;
    // built: the same zeros and ones as dfdx's BuildModule
    let ours = <V::Model<f64, Dev> as march_runtime::params::Build<f64, Dev>>::build(&dev);
    let theirs = <V::Model<f64, Dev> as BuildModule<Dev, f64>>::build(&dev);
    let mut walked = Vec::new();
    for_each_param(&ours, |n, v| walked.push((n.to_string(), v.len(), v)));
    assert_eq!(walked, dfdx_tensors(&theirs), "{name}: built");
    // initialised: the same names, counts and values seen both ways
    let model = V::build::<f64, Dev>(&dev, 3);
    let mut walked = Vec::new();
    for_each_param(&model, |n, v| walked.push((n.to_string(), v.len(), v)));
    assert_eq!(walked, dfdx_tensors(&model), "{name}: initialised");
    let infos = march_runtime::params::param_infos(&model);
    assert_eq!(
        march_runtime::params::num_params(&model),
        model.num_trainable_params(),
        "{name}"
    );
    assert_eq!(infos.len(), walked.len(), "{name}");
}

/// Two probes that between them hold every kind of module: stacks deeper
/// than dfdx's six-tuples (they nest), an untied head, no position table,
/// own and projected keys and values, no feed-forward (and its norm), T5's
/// relative bias and a scalar norm gain. (Each type checked here
/// instantiates dfdx's visitors, the compile time the walk saves: few.)
#[march_model(base = Tiny, cross_attention = own_kv, encoder_layers = 8, decoder_layers = 7, tie_embeddings = false, position = none, budget_exempt = "test")]
struct TinyWalkA;

#[march_model(base = Tiny, cross_attention = project_encoder_kv, ffn = none, position = t5_relative(num_buckets = 8, max_distance = 16), norm_gain = scalar, budget_exempt = "test")]
struct TinyWalkB;

#[test]
fn the_parameter_walk_is_dfdx_tensor_collection() {
    check_walk_matches_dfdx::<Tiny>();
    check_walk_matches_dfdx::<TinyMixed>();
    check_walk_matches_dfdx::<TinyWalkA>();
    check_walk_matches_dfdx::<TinyWalkB>();
}
