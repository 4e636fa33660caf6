//! Each fast kernel against the plain dfdx composition it replaces: values
//! and gradients, in f64 (to rounding) and f32 (to float tolerance).

use dfdx::prelude::*;
use march_runtime::kernels::cross_entropy::fused_masked_cross_entropy;
use march_runtime::layers::masked_cross_entropy_composed;

fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-30);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f64::max)
}

/// (loss, d loss / d logits) of `f` on `values` shaped `[b, s, V]`.
fn loss_and_grad<const V: usize, E: march_runtime::layers::Float>(
    values: &[f64],
    b: usize,
    s: usize,
    labels: &[i64],
    fused: bool,
) -> (f64, Vec<f64>)
where
    Cpu: Device<E>,
{
    let dev = Cpu::default();
    let data: Vec<E> = values.iter().map(|&x| E::from(x).unwrap()).collect();
    let logits: Tensor<(usize, usize, Const<V>), E, Cpu> =
        dev.tensor_from_vec(data, (b, s, Const::<V>));
    let eval = if fused {
        fused_masked_cross_entropy(logits.clone(), labels)
    } else {
        masked_cross_entropy_composed(logits.clone(), labels)
    };
    let loss = if fused {
        fused_masked_cross_entropy(logits.leaky_trace(), labels)
    } else {
        masked_cross_entropy_composed(logits.leaky_trace(), labels)
    };
    let value = loss.as_vec()[0].to_f64().unwrap();
    // the tape-free (evaluation) value is the training value
    let eval = eval.as_vec()[0].to_f64().unwrap();
    assert!(
        (eval - value).abs() <= 1e-6 * value.abs().max(1.0),
        "{eval} vs {value}"
    );
    let g = loss.backward();
    let grad = g
        .get(&logits)
        .as_vec()
        .iter()
        .map(|x| x.to_f64().unwrap())
        .collect();
    (value, grad)
}

fn logits(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    // SplitMix64 → uniform in [-scale, scale)
    let mut z = seed;
    (0..n)
        .map(|_| {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^= x >> 31;
            ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

#[test]
fn fused_cross_entropy_matches_the_composition() {
    const V: usize = 3001;
    let (b, s) = (3, 7);
    let values = logits(b * s * V, 7, 8.0);
    let labels: Vec<i64> = (0..b * s)
        .map(|i| {
            if i % 5 == 3 {
                -100
            } else {
                ((i * 977) % V) as i64
            }
        })
        .collect();

    let (l64, g64) = loss_and_grad::<V, f64>(&values, b, s, &labels, true);
    let (r64, h64) = loss_and_grad::<V, f64>(&values, b, s, &labels, false);
    assert!((l64 - r64).abs() <= 1e-12 * r64.abs(), "{l64} vs {r64}");
    assert!(max_rel_diff(&g64, &h64) < 1e-12);

    let (l32, g32) = loss_and_grad::<V, f32>(&values, b, s, &labels, true);
    let (r32, h32) = loss_and_grad::<V, f32>(&values, b, s, &labels, false);
    assert!((l32 - r32).abs() <= 1e-5 * r32.abs(), "{l32} vs {r32}");
    assert!((l32 - r64).abs() <= 1e-5 * r64.abs(), "{l32} vs {r64}");
    assert!(
        max_rel_diff(&g32, &h64) < 1e-5,
        "{}",
        max_rel_diff(&g32, &h64)
    );
    assert!(
        max_rel_diff(&g32, &h32) < 1e-5,
        "{}",
        max_rel_diff(&g32, &h32)
    );

    // ignored positions: exactly zero gradient rows
    for (pos, &l) in labels.iter().enumerate() {
        let row = &g32[pos * V..(pos + 1) * V];
        assert_eq!(row.iter().all(|&x| x == 0.0), l < 0, "position {pos}");
    }
}

#[test]
fn fused_cross_entropy_edge_cases() {
    const V: usize = 5;
    // every label ignored: loss 0, gradient 0, no NaN
    let values = logits(2 * 3 * V, 1, 3.0);
    let (l, g) = loss_and_grad::<V, f32>(&values, 2, 3, &[-100; 6], true);
    assert_eq!(l, 0.0);
    assert!(g.iter().all(|&x| x == 0.0));
    // huge logits do not overflow (the max is subtracted first)
    let big: Vec<f64> = values.iter().map(|x| x * 1e4).collect();
    let labels = [0i64, 1, 2, 3, 4, 0];
    let (l, g) = loss_and_grad::<V, f32>(&big, 2, 3, &labels, true);
    let (r, h) = loss_and_grad::<V, f64>(&big, 2, 3, &labels, false);
    assert!(
        l.is_finite() && (l - r).abs() <= 1e-5 * r.abs(),
        "{l} vs {r}"
    );
    assert!(max_rel_diff(&g, &h) < 1e-5);
}

#[test]
#[should_panic(expected = "outside the vocabulary")]
fn fused_cross_entropy_rejects_labels_outside_the_vocabulary() {
    let values = logits(4, 2, 1.0);
    loss_and_grad::<4, f32>(&values, 1, 1, &[4], true);
}
