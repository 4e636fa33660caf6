//! Each building block against a straightforward f64 reference (loops over
//! plain vectors, written from the paper's formulas), at small dimensions.

use dfdx::prelude::*;
use march_runtime::arch::*;
use march_runtime::layers::*;

mod common;

use common::ARCH;

const M: usize = 6;
const B: usize = 2;
const S: usize = 4;

/// Deterministic pseudo-random values in [-scale, scale].
fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let x = ((i as f64 + 1.0) * 12.9898 + seed as f64 * 78.233).sin() * 43758.5453;
            (x - x.floor() - 0.5) * 2.0 * scale
        })
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

fn dev() -> Cpu {
    Cpu::seed_from_u64(0)
}

fn hidden(dev: &Cpu, seed: u64) -> (Hidden<M, f64, Cpu>, Vec<f64>) {
    let v = values(B * S * M, seed, 1.5);
    (dev.tensor_from_vec(v.clone(), (B, S, Const::<M>)), v)
}

fn matrix<const R: usize, const C: usize>(
    dev: &Cpu,
    seed: u64,
    scale: f64,
) -> (Tensor<Rank2<R, C>, f64, Cpu>, Vec<f64>) {
    let v = values(R * C, seed, scale);
    (dev.tensor_from_vec(v.clone(), (Const::<R>, Const::<C>)), v)
}

/// `x [rows, k] @ w [k, n]`, row-major.
fn matmul(x: &[f64], w: &[f64], k: usize, n: usize) -> Vec<f64> {
    let rows = x.len() / k;
    let mut out = vec![0.0; rows * n];
    for r in 0..rows {
        for j in 0..n {
            out[r * n + j] = (0..k).map(|i| x[r * k + i] * w[i * n + j]).sum();
        }
    }
    out
}

fn rms_norm_ref(x: &[f64], w: &[f64]) -> Vec<f64> {
    let m = w.len();
    x.chunks(m)
        .flat_map(|row| {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / m as f64;
            let inv = 1.0 / (ms + 1e-6).sqrt();
            row.iter()
                .zip(w)
                .map(move |(v, g)| v * inv * g)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn rms_norm_matches_reference() {
    let dev = dev();
    let (x, xv) = hidden(&dev, 1);
    let w = values(M, 2, 1.0);
    let norm = RmsNorm::<M, M, f64, Cpu> {
        weight: dev.tensor_from_vec(w.clone(), (Const::<M>,)),
    };
    let got = norm.forward(x.clone()).as_vec();
    assert_close(&got, &rms_norm_ref(&xv, &w), 1e-12, "rms_norm");
    // `norm_gain = scalar`: one gain for every feature
    let norm = RmsNorm::<M, 1, f64, Cpu> {
        weight: dev.tensor_from_vec(vec![w[0]], (Const::<1>,)),
    };
    let got = norm.forward(x).as_vec();
    assert_close(&got, &rms_norm_ref(&xv, &[w[0]; M]), 1e-12, "scalar gain");
}

/// softmax(scale · q kᵀ + mask) v per head, for `[B, S, H·DQK]` projections.
#[allow(clippy::too_many_arguments)]
fn attention_ref(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    sq: usize,
    sk: usize,
    h: usize,
    d: usize,
    scale: f64,
    allowed: impl Fn(usize, usize, usize) -> bool,
) -> Vec<f64> {
    let bias = |b, _, i, j| if allowed(b, i, j) { 0.0 } else { -1e9 };
    attention_ref_biased(q, k, v, sq, sk, h, d, scale, bias)
}

/// softmax(scale · q kᵀ + bias(batch, head, i, j)) v per head.
#[allow(clippy::too_many_arguments)]
fn attention_ref_biased(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    sq: usize,
    sk: usize,
    h: usize,
    d: usize,
    scale: f64,
    bias: impl Fn(usize, usize, usize, usize) -> f64,
) -> Vec<f64> {
    let inner = h * d;
    let b = q.len() / (sq * inner);
    let mut out = vec![0.0; b * sq * inner];
    for bi in 0..b {
        for hi in 0..h {
            for i in 0..sq {
                let logits: Vec<f64> = (0..sk)
                    .map(|j| {
                        let dot: f64 = (0..d)
                            .map(|c| {
                                q[(bi * sq + i) * inner + hi * d + c]
                                    * k[(bi * sk + j) * inner + hi * d + c]
                            })
                            .sum::<f64>()
                            * scale;
                        dot + bias(bi, hi, i, j)
                    })
                    .collect();
                let max = logits.iter().cloned().fold(f64::MIN, f64::max);
                let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
                let z: f64 = exps.iter().sum();
                for c in 0..d {
                    out[(bi * sq + i) * inner + hi * d + c] = (0..sk)
                        .map(|j| exps[j] / z * v[(bi * sk + j) * inner + hi * d + c])
                        .sum();
                }
            }
        }
    }
    out
}

/// A self-attention block whose `w_q`, `w_k` are drawn from seeds `seed`,
/// `seed + 1` at scale `qk` and `w_v`, `w_o` from the next two at 0.5; with
/// the reference's view: the projections of `xv` and `w_o`'s values.
struct Block<const H: usize, const DQK: usize, const I: usize> {
    attn: SelfAttention<M, H, DQK, I, f64, Cpu>,
    q: Vec<f64>,
    k: Vec<f64>,
    v: Vec<f64>,
    wo: Vec<f64>,
}

fn block<const H: usize, const DQK: usize, const I: usize>(
    dev: &Cpu,
    xv: &[f64],
    seed: u64,
    qk: f64,
) -> Block<H, DQK, I> {
    let (w_q, wq) = matrix::<M, I>(dev, seed, qk);
    let (w_k, wk) = matrix::<M, I>(dev, seed + 1, qk);
    let (w_v, wv) = matrix::<M, I>(dev, seed + 2, 0.5);
    let (w_o, wo) = matrix::<I, M>(dev, seed + 3, 0.5);
    Block {
        attn: SelfAttention { w_q, w_k, w_v, w_o },
        q: matmul(xv, &wq, M, I),
        k: matmul(xv, &wk, M, I),
        v: matmul(xv, &wv, M, I),
        wo,
    }
}

#[test]
fn self_attention_with_padding_mask_matches_reference() {
    let dev = dev();
    let (x, xv) = hidden(&dev, 3);
    let Block { attn, q, k, v, wo } = block::<2, 3, 6>(&dev, &xv, 4, 0.5);
    // second example: last key is padding
    let mask_v = vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
    let mask = dev.tensor_from_vec(mask_v.clone(), (B, S));
    let bias = padding_bias(&mask, S);
    let ctx = Ctx::eval(&ARCH);
    let (out, kv) = attn.forward(x, Mixing::Softmax(&bias, None), &ctx);
    let a = attention_ref(&q, &k, &v, S, S, 2, 3, 1.0, |b, _, j| {
        mask_v[b * S + j] > 0.5
    });
    let want = matmul(&a, &wo, 6, M);
    assert_close(&out.as_vec(), &want, 1e-10, "self-attention");
    assert_close(&kv.keys.unwrap().as_vec(), &k, 1e-12, "keys");
    assert_close(&kv.values.as_vec(), &v, 1e-12, "values");
}

#[test]
fn causal_attention_matches_reference() {
    let dev = dev();
    let (x, xv) = hidden(&dev, 8);
    let Block { attn, q, k, v, wo } = block::<3, 2, 6>(&dev, &xv, 9, 0.5);
    let bias = causal_bias(&dev, B, S);
    let (out, _) = attn.forward(x, Mixing::Softmax(&bias, None), &Ctx::eval(&ARCH));
    let a = attention_ref(&q, &k, &v, S, S, 3, 2, 1.0, |_, i, j| j <= i);
    assert_close(
        &out.as_vec(),
        &matmul(&a, &wo, 6, M),
        1e-10,
        "causal attention",
    );
}

#[test]
fn inv_sqrt_dim_attention_matches_reference() {
    let dev = dev();
    let (x, xv) = hidden(&dev, 13);
    let Block { attn, q, k, v, wo } = block::<2, 3, 6>(&dev, &xv, 14, 0.9);
    let arch = Arch {
        attention_scale: AttentionScale::InvSqrtDim,
        ..ARCH
    };
    let bias = causal_bias(&dev, B, S);
    let (out, _) = attn.forward(x, Mixing::Softmax(&bias, None), &Ctx::eval(&arch));
    let a = attention_ref(&q, &k, &v, S, S, 2, 3, 1.0 / 3f64.sqrt(), |_, i, j| j <= i);
    assert_close(
        &out.as_vec(),
        &matmul(&a, &wo, 6, M),
        1e-10,
        "1/√d attention",
    );
}

/// The rotation of RoFormer with GPT-NeoX's halves, from its definition:
/// in each head, the pair `(j, j + d/2)` at position `p` turned by
/// `p · θ^(−2j/d)`; rows of `[B, S, h·d]`.
fn rope_ref(x: &[f64], h: usize, d: usize, theta: f64) -> Vec<f64> {
    let mut out = x.to_vec();
    for (row, chunk) in out.chunks_mut(h * d).enumerate() {
        let p = (row % S) as f64;
        for head in chunk.chunks_mut(d) {
            for j in 0..d / 2 {
                let angle = p * theta.powf(-2.0 * j as f64 / d as f64);
                let (a, c) = (head[j], head[j + d / 2]);
                head[j] = a * angle.cos() - c * angle.sin();
                head[j + d / 2] = c * angle.cos() + a * angle.sin();
            }
        }
    }
    out
}

#[test]
fn rope_attention_matches_reference() {
    let dev = dev();
    let (x, xv) = hidden(&dev, 51);
    let Block { attn, q, k, v, wo } = block::<2, 4, 8>(&dev, &xv, 52, 0.9);
    let arch = Arch {
        position: Position {
            kind: PositionKind::Rope { theta: 100.0 },
            ..ARCH.position
        },
        ..ARCH
    };
    let bias = causal_bias(&dev, B, S);
    let (out, kv) = attn.forward(x, Mixing::Softmax(&bias, None), &Ctx::eval(&arch));
    let (rq, rk) = (rope_ref(&q, 2, 4, 100.0), rope_ref(&k, 2, 4, 100.0));
    let a = attention_ref(&rq, &rk, &v, S, S, 2, 4, 1.0, |_, i, j| j <= i);
    assert_close(
        &out.as_vec(),
        &matmul(&a, &wo, 8, M),
        1e-10,
        "rope attention",
    );
    // the stored keys stay unrotated, for the attentions that reuse them
    assert_close(&kv.keys.unwrap().as_vec(), &k, 1e-12, "stored keys");
}

/// What rotary embeddings are for: the score of a query at `p` and a key at
/// `p'` depends only on `p − p'`.
#[test]
fn rope_scores_depend_only_on_the_distance() {
    use march_runtime::kernels::rope::rope;
    let dev = dev();
    let (s, d) = (7, 6);
    let (qv, kv) = (values(d, 61, 1.0), values(d, 62, 1.0));
    // the same vector at every position
    let at_all = |v: &[f64]| -> Tensor<(usize, usize, usize), f64, Cpu> {
        dev.tensor_from_vec(v.repeat(s), (1, s, d))
    };
    let rq = rope::<1, 6, f64, _>(at_all(&qv), 10_000.0).as_vec();
    let rk = rope::<1, 6, f64, _>(at_all(&kv), 10_000.0).as_vec();
    let score =
        |p: usize, pk: usize| -> f64 { (0..d).map(|c| rq[p * d + c] * rk[pk * d + c]).sum() };
    for (p, pk) in [(0, 3), (2, 0), (4, 4), (1, 6)] {
        for shift in 1..s - p.max(pk) {
            let (a, b) = (score(p, pk), score(p + shift, pk + shift));
            assert!((a - b).abs() < 1e-12, "({p}, {pk}) {a} vs +{shift}: {b}");
        }
    }
    // and rotations keep lengths
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>();
    assert!((norm(&rq[5 * d..6 * d]) - norm(&qv)).abs() < 1e-12);
    // a shift changes the score: the positions are seen
    assert!((score(0, 3) - score(0, 2)).abs() > 1e-3);
}

/// Hugging Face's `_relative_position_bucket` at its defaults (32 buckets,
/// max distance 128), worked by hand from its definition.
#[test]
fn t5_buckets_match_hugging_face() {
    // bidirectional: 16 per direction, 8 exact, then log-spaced to 128
    let both = [
        (0, 0),
        (-1, 1),
        (1, 17),
        (-7, 7),
        (-8, 8),
        (-12, 9),
        (-127, 15),
        (-128, 15),
        (200, 31),
    ];
    for (rel, want) in both {
        assert_eq!(bucket(rel, true, 32, 128), want, "bidirectional {rel}");
    }
    // causal: later keys share bucket 0; 16 exact, then log-spaced
    let causal = [
        (5, 0),
        (0, 0),
        (-3, 3),
        (-15, 15),
        (-16, 16),
        (-20, 17),
        (-127, 31),
        (-1000, 31),
    ];
    for (rel, want) in causal {
        assert_eq!(bucket(rel, false, 32, 128), want, "causal {rel}");
    }
}

#[test]
fn relative_bias_attention_matches_reference() {
    const NB: usize = 8;
    let dev = dev();
    let (x, xv) = hidden(&dev, 71);
    let Block { attn, q, k, v, wo } = block::<2, 3, 6>(&dev, &xv, 72, 0.7);
    let (enc, encv) = matrix::<NB, 2>(&dev, 76, 2.0);
    let (dec, decv) = matrix::<NB, 2>(&dev, 77, 2.0);
    let tables = RelativeBias::<M, NB, 2, f64, Cpu> {
        encoder: enc,
        decoder: dec,
    };
    let arch = Arch {
        position: Position {
            kind: PositionKind::T5Relative {
                num_buckets: NB,
                max_distance: 5,
            },
            ..ARCH.position
        },
        // a second encoder layer: the first's self-attention reads the table
        encoder_layers: 2,
        decoder_layers: 2,
        ..ARCH
    };
    let ((enc_bias, dec_bias), _) = tables.biases(&arch, S, S, NoneTape);
    let ctx = Ctx::eval(&arch);
    // the decoder's: causal buckets, with the causal mask
    let causal = causal_bias(&dev, B, S);
    let (out, _) = attn.forward(x.clone(), Mixing::Softmax(&causal, dec_bias.as_ref()), &ctx);
    let a = attention_ref_biased(&q, &k, &v, S, S, 2, 3, 1.0, |_, h, i, j| {
        let mask = if j <= i { 0.0 } else { -1e9 };
        mask + decv[bucket(j as i64 - i as i64, false, NB, 5) * 2 + h]
    });
    assert_close(
        &out.as_vec(),
        &matmul(&a, &wo, 6, M),
        1e-10,
        "decoder relative bias",
    );
    // the encoder's: bidirectional buckets
    let none = padding_bias(&dev.ones_like(&(B, S)), S);
    let (out, _) = attn.forward(x, Mixing::Softmax(&none, enc_bias.as_ref()), &ctx);
    let a = attention_ref_biased(&q, &k, &v, S, S, 2, 3, 1.0, |_, h, i, j| {
        encv[bucket(j as i64 - i as i64, true, NB, 5) * 2 + h]
    });
    assert_close(
        &out.as_vec(),
        &matmul(&a, &wo, 6, M),
        1e-10,
        "encoder relative bias",
    );
}

#[test]
fn uniform_attention_averages_unpadded_values() {
    let dev = dev();
    let (x, xv) = hidden(&dev, 13);
    let Block { attn, v, wo, .. } = block::<2, 3, 6>(&dev, &xv, 14, 0.5);
    let mask_v = vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
    let mask = dev.tensor_from_vec(mask_v.clone(), (B, S));
    let probs = uniform_probs(&mask, S);
    let (out, kv) = attn.forward(x, Mixing::Fixed(&probs), &Ctx::eval(&ARCH));
    assert!(kv.keys.is_none(), "uniform attention computes no keys");
    let mut a = vec![0.0; B * S * 6];
    for b in 0..B {
        let n: f64 = mask_v[b * S..(b + 1) * S].iter().sum();
        for i in 0..S {
            for c in 0..6 {
                a[(b * S + i) * 6 + c] = (0..S)
                    .map(|j| mask_v[b * S + j] * v[(b * S + j) * 6 + c])
                    .sum::<f64>()
                    / n;
            }
        }
    }
    assert_close(
        &out.as_vec(),
        &matmul(&a, &wo, 6, M),
        1e-10,
        "uniform attention",
    );
}

fn act_ref(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Relu => x.max(0.0),
        Activation::Gelu => {
            // erf via its Taylor series (|x| small here), independent of dfdx's
            let z = x / std::f64::consts::SQRT_2;
            let mut erf = 0.0;
            let mut term = z;
            for n in 0..60 {
                erf += term / (2 * n + 1) as f64;
                term *= -z * z / (n + 1) as f64;
            }
            0.5 * x * (1.0 + erf * 2.0 / std::f64::consts::PI.sqrt())
        }
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
    }
}

#[test]
fn dense_ffn_matches_reference_for_each_activation() {
    let dev = dev();
    for act in [Activation::Relu, Activation::Gelu, Activation::Silu] {
        let (x, xv) = hidden(&dev, 20);
        let (up, upv) = matrix::<M, 5>(&dev, 21, 0.8);
        let (down, downv) = matrix::<5, M>(&dev, 22, 0.8);
        let ffn = DenseFfn::<M, 5, f64, Cpu> { up, down };
        let arch = Arch {
            ffn: FeedForward::Dense { activation: act },
            ..ARCH
        };
        let got = ffn.forward(x, &Ctx::eval(&arch)).as_vec();
        let h: Vec<f64> = matmul(&xv, &upv, M, 5)
            .into_iter()
            .map(|v| act_ref(act, v))
            .collect();
        assert_close(&got, &matmul(&h, &downv, 5, M), 1e-9, act.name());
    }
}

#[test]
fn glu_ffn_matches_reference_for_each_gate() {
    let dev = dev();
    for gate in [
        Activation::Relu,
        Activation::Gelu,
        Activation::Silu,
        Activation::Sigmoid,
    ] {
        let (x, xv) = hidden(&dev, 23);
        let (g, gv) = matrix::<M, 5>(&dev, 24, 0.8);
        let (up, upv) = matrix::<M, 5>(&dev, 25, 0.8);
        let (down, downv) = matrix::<5, M>(&dev, 26, 0.8);
        let ffn = GluFfn::<M, 5, f64, Cpu> { gate: g, up, down };
        let arch = Arch {
            ffn: FeedForward::Glu { gate },
            ..ARCH
        };
        let got = ffn.forward(x, &Ctx::eval(&arch)).as_vec();
        let h: Vec<f64> = matmul(&xv, &gv, M, 5)
            .into_iter()
            .zip(matmul(&xv, &upv, M, 5))
            .map(|(a, u)| act_ref(gate, a) * u)
            .collect();
        assert_close(&got, &matmul(&h, &downv, 5, M), 1e-9, gate.name());
    }
}

#[test]
fn mixed_act_ffn_matches_reference_for_mean_and_sum() {
    let dev = dev();
    for (combine, factor) in [(Combine::Mean, 0.5), (Combine::Sum, 1.0)] {
        let (x, xv) = hidden(&dev, 27);
        let (slow, slowv) = matrix::<M, 5>(&dev, 28, 0.8);
        let (fast, fastv) = matrix::<M, 5>(&dev, 29, 0.8);
        let (down, downv) = matrix::<5, M>(&dev, 30, 0.8);
        let ffn = MixedActFfn::<M, 5, f64, Cpu> {
            up_slow: slow,
            up_fast: fast,
            down,
        };
        let arch = Arch {
            ffn: FeedForward::MixedAct {
                combine,
                branch_dropout: 0.5,
            },
            ..ARCH
        };
        // evaluation: the branch dropout is off
        let got = ffn.forward(x, &Ctx::eval(&arch)).as_vec();
        let h: Vec<f64> = matmul(&xv, &slowv, M, 5)
            .into_iter()
            .zip(matmul(&xv, &fastv, M, 5))
            .map(|(s, f)| factor * (act_ref(Activation::Sigmoid, s) + f.max(0.0)))
            .collect();
        assert_close(&got, &matmul(&h, &downv, 5, M), 1e-10, combine.name());
    }
}

#[test]
fn position_combine_mean_and_sum() {
    let dev = dev();
    let (emb, embv) = matrix::<7, M>(&dev, 31, 1.0);
    let (table, tablev) = matrix::<9, M>(&dev, 32, 1.0);
    let ids_v = vec![3usize, 0, 6, 2, 1, 1, 5, 4];
    let ids = dev.tensor_from_vec(ids_v.clone(), (B, S));
    for (combine, factor) in [(Combine::Mean, 0.5), (Combine::Sum, 1.0)] {
        let arch = Arch {
            position: Position {
                kind: PositionKind::Learned,
                combine,
                init: PositionInit::Scaled,
            },
            ..ARCH
        };
        let got: Hidden<M, f64, Cpu> = embed_with_positions::<7, M, 9, f64, Cpu, NoneTape>(
            &emb,
            &table,
            &ids,
            &Ctx::eval(&arch),
        );
        let mut want = Vec::new();
        for (i, id) in ids_v.iter().enumerate() {
            let pos = i % S;
            for c in 0..M {
                want.push(factor * (embv[id * M + c] + tablev[pos * M + c]));
            }
        }
        assert_close(&got.as_vec(), &want, 1e-12, combine.name());
    }
}

#[test]
fn tied_logits_and_masked_cross_entropy_match_reference() {
    let dev = dev();
    let (x, xv) = hidden(&dev, 33);
    let (emb, embv) = matrix::<7, M>(&dev, 34, 1.0);
    let logits = tied_logits(x, &emb, march_runtime::ops::Matmul::F32);
    let scale = (M as f64).powf(-0.5);
    let mut want = Vec::new();
    for row in xv.chunks(M) {
        for v in 0..7 {
            want.push(
                (0..M)
                    .map(|c| row[c] * scale * embv[v * M + c])
                    .sum::<f64>(),
            );
        }
    }
    assert_close(&logits.as_vec(), &want, 1e-12, "tied logits");

    let labels = vec![2i64, -100, 6, 0, 1, 5, -100, 3];
    let loss = masked_cross_entropy(logits, &labels).array();
    let mut total = 0.0;
    let mut n = 0.0;
    for (row, &l) in want.chunks(7).zip(&labels) {
        if l < 0 {
            continue;
        }
        let max = row.iter().cloned().fold(f64::MIN, f64::max);
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        total += lse - row[l as usize];
        n += 1.0;
    }
    assert_close(&[loss], &[total / n], 1e-12, "masked cross-entropy");
}

#[test]
fn ignored_labels_get_exactly_zero_gradient() {
    let dev = dev();
    let v = values(B * S * 7, 35, 2.0);
    let logits: Tensor<(usize, usize, Const<7>), f64, Cpu> =
        dev.tensor_from_vec(v, (B, S, Const::<7>));
    let labels = vec![2i64, -100, 6, 0, 1, 5, -100, 3];
    let g = masked_cross_entropy(logits.leaky_trace(), &labels).backward();
    let grad = g.get(&logits).as_vec();
    for (pos, &l) in labels.iter().enumerate() {
        let row = &grad[pos * 7..(pos + 1) * 7];
        if l < 0 {
            assert!(
                row.iter().all(|&x| x == 0.0),
                "position {pos} is ignored but has gradient {row:?}"
            );
        } else {
            assert!(
                row.iter().any(|&x| x != 0.0),
                "position {pos} has no gradient"
            );
        }
    }
}

#[test]
fn dropout_drops_at_rate_p_and_rescales_the_rest() {
    let dev = dev();
    let n = 200_000;
    let x: Tensor<(usize,), f64, Cpu> = dev.tensor_from_vec(vec![1.0; n], (n,));
    let ctx = Ctx::train_seeded(&ARCH, 7);
    let y = ctx.dropout(x.clone(), 0.1).as_vec();
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
    assert!((dropped - 0.1).abs() < 0.003, "dropped {dropped}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-12));
    // the next dropout of the pass draws another mask; the same seed, the same masks
    let y2 = ctx.dropout(x.clone(), 0.1).as_vec();
    assert_ne!(y, y2);
    let again = Ctx::train_seeded(&ARCH, 7);
    assert_eq!(again.dropout(x.clone(), 0.1).as_vec(), y);
    assert_ne!(
        Ctx::train_seeded(&ARCH, 8).dropout(x.clone(), 0.1).as_vec(),
        y
    );
    // evaluation: the identity
    assert_eq!(
        Ctx::eval(&ARCH).dropout(x.clone(), 0.5).as_vec(),
        vec![1.0; n]
    );
    // gradient: the mask, scaled
    let g = ctx
        .dropout(x.leaky_trace(), 0.5)
        .sum::<Rank0, _>()
        .backward();
    let grad = g.get(&x).as_vec();
    assert!(grad.iter().all(|&v| v == 0.0 || v == 2.0));
}
