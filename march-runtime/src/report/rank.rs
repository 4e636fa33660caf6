//! Rank agreement between march's ordering of the variants and a
//! reference's (e.g. the original's single-seed losses): Spearman's ρ, with
//! a bootstrap interval over the seeds.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Ranks 1…n of `xs`, ties given the mean of the ranks they span.
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        // positions i..=j share the mean of ranks i+1 … j+1
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation: Pearson's correlation of the ranks (ties
/// averaged). `None` for fewer than 3 pairs or a constant side.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    assert_eq!(a.len(), b.len(), "spearman of unpaired values");
    if a.len() < 3 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let mut sab = 0.0;
    let mut saa = 0.0;
    let mut sbb = 0.0;
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// Spearman's ρ between the variants' mean losses and a reference, with a
/// percentile bootstrap interval over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankAgreement {
    /// Variants in both.
    pub n: usize,
    pub rho: f64,
    /// 95% percentile interval of ρ when each variant's seeds are drawn
    /// again with replacement (`resamples` times, a fixed seed).
    pub ci_low: f64,
    pub ci_high: f64,
    pub resamples: usize,
}

/// ρ between the means of `seeds` (one list of per-seed losses per variant)
/// and `reference` (one value per variant, in the same order), with its
/// bootstrap interval; `None` when ρ is undefined.
pub fn rank_agreement(
    seeds: &[Vec<f64>],
    reference: &[f64],
    resamples: usize,
    seed: u64,
) -> Option<RankAgreement> {
    assert_eq!(seeds.len(), reference.len());
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let means: Vec<f64> = seeds.iter().map(|s| mean(s)).collect();
    let rho = spearman(&means, reference)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rhos: Vec<f64> = (0..resamples)
        .filter_map(|_| {
            let m: Vec<f64> = seeds
                .iter()
                .map(|s| {
                    let draw: Vec<f64> =
                        (0..s.len()).map(|_| s[rng.gen_range(0..s.len())]).collect();
                    mean(&draw)
                })
                .collect();
            spearman(&m, reference)
        })
        .collect();
    rhos.sort_by(f64::total_cmp);
    let at = |q: f64| -> f64 {
        if rhos.is_empty() {
            return f64::NAN;
        }
        // the percentile by linear interpolation between order statistics
        let pos = q * (rhos.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        rhos[lo] + (rhos[hi] - rhos[lo]) * (pos - lo as f64)
    };
    Some(RankAgreement {
        n: means.len(),
        rho,
        ci_low: at(0.025),
        ci_high: at(0.975),
        resamples: rhos.len(),
    })
}
