//! Many comparisons at once: Holm's step-down correction of their p-values
//! (Holm 1979), which holds the family-wise error rate at α without
//! assuming the tests independent.

use serde::{Deserialize, Serialize};

/// One comparison's p-value after Holm's correction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Holm {
    /// Holm-adjusted p-value: the smallest family-wise α at which this
    /// comparison is rejected.
    pub p_adjusted: f64,
    /// Rejected at the family-wise α asked for.
    pub survives: bool,
}

/// Holm's correction of `ps` (in their order) at family-wise `alpha`. With
/// the p-values sorted, p₍ᵢ₎ (i = 1…m) is compared with α / (m − i + 1);
/// every comparison up to the first that fails is rejected. The adjusted
/// p-value is maxⱼ≤ᵢ min(1, (m − j + 1) p₍ⱼ₎).
pub fn holm(ps: &[f64], alpha: f64) -> Vec<Holm> {
    let m = ps.len();
    let mut order: Vec<usize> = (0..m).collect();
    // NaN (no test) sorts last and never survives
    order.sort_by(|&a, &b| ps[a].total_cmp(&ps[b]));
    let mut out = vec![
        Holm {
            p_adjusted: f64::NAN,
            survives: false,
        };
        m
    ];
    let mut running = 0.0f64;
    let mut rejecting = true;
    for (rank, &i) in order.iter().enumerate() {
        let p = ps[i];
        if p.is_nan() {
            continue;
        }
        let factor = (m - rank) as f64;
        running = running.max((factor * p).min(1.0));
        rejecting = rejecting && p <= alpha / factor;
        out[i] = Holm {
            p_adjusted: running,
            survives: rejecting,
        };
    }
    out
}
