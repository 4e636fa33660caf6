//! The statistics of a comparison: mean and sample standard deviation over
//! seeds, and Welch's t-test of a variant against the baseline (unequal
//! variances, Welch–Satterthwaite degrees of freedom).

use serde::{Deserialize, Serialize};

/// Mean, sample standard deviation (n − 1), extremes of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// `None` for a single value.
    pub std: Option<f64>,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for no values.
    pub fn of(xs: &[f64]) -> Option<Summary> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std = (n > 1)
            .then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Some(Summary {
            n,
            mean,
            std,
            min: xs.iter().copied().fold(f64::INFINITY, f64::min),
            max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// Variance of the mean (`s² / n`).
    fn var_of_mean(&self) -> Option<f64> {
        self.std.map(|s| s * s / self.n as f64)
    }
}

/// `a − b` with Welch's 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Welch {
    pub diff: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    pub t: f64,
    /// Two-sided p-value of `diff = 0`.
    pub p: f64,
    /// The interval excludes 0 (p < 0.05).
    pub significant: bool,
}

/// Welch's t-test of `a − b` at 95%; `None` unless both have two values or more.
pub fn welch(a: &Summary, b: &Summary) -> Option<Welch> {
    let (va, vb) = (a.var_of_mean()?, b.var_of_mean()?);
    let diff = a.mean - b.mean;
    let se2 = va + vb;
    if se2 == 0.0 {
        // identical values within each group: the difference is exact
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        return Some(Welch {
            diff,
            ci_low: diff,
            ci_high: diff,
            df: f64::INFINITY,
            t: if diff == 0.0 { 0.0 } else { f64::INFINITY },
            p,
            significant: diff != 0.0,
        });
    }
    let df = se2 * se2 / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
    let se = se2.sqrt();
    let t = diff / se;
    let half = student_t_quantile(0.975, df) * se;
    let p = student_t_two_sided_p(t, df);
    Some(Welch {
        diff,
        ci_low: diff - half,
        ci_high: diff + half,
        df,
        t,
        p,
        significant: diff - half > 0.0 || diff + half < 0.0,
    })
}

/// `P(|T| ≥ |t|)` for Student's t with `df` degrees of freedom:
/// `I_{df/(df+t²)}(df/2, 1/2)`.
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return 0.0;
    }
    regularized_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// The `q` quantile (q in (0.5, 1)) of Student's t with `df` degrees of
/// freedom, by bisection on the distribution function.
pub fn student_t_quantile(q: f64, df: f64) -> f64 {
    assert!(q > 0.5 && q < 1.0, "quantile {q} outside (0.5, 1)");
    let target = 2.0 * (1.0 - q); // two-sided tail mass at the quantile
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while student_t_two_sided_p(hi, df) > target {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_two_sided_p(mid, df) > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// `ln Γ(x)` for x > 0 (Lanczos, g = 7, 9 terms; ~15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection: Γ(x) Γ(1 − x) = π / sin(πx)
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function `I_x(a, b)`, by its continued
/// fraction (modified Lentz), using the symmetry `I_x(a,b) = 1 − I_{1−x}(b,a)`
/// where the fraction converges slowly.
pub fn regularized_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let fix = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / fix(1.0 - (a + b) * x / (a + 1.0));
    let mut h = d;
    for m in 1..500 {
        let m = m as f64;
        // even step: d_{2m} = m(b − m)x / ((a + 2m − 1)(a + 2m))
        let num = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / fix(1.0 + num * d);
        c = fix(1.0 + num / c);
        h *= d * c;
        // odd step: d_{2m+1} = −(a + m)(a + b + m)x / ((a + 2m)(a + 2m + 1))
        let num = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / fix(1.0 + num * d);
        c = fix(1.0 + num / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b} (tolerance {tol})");
    }

    #[test]
    fn mean_and_sample_std_by_hand() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations sum 32, s² = 32/7
        let s = Summary::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(s.n, 8);
        close(s.mean, 5.0, 1e-15);
        close(s.std.unwrap(), (32.0f64 / 7.0).sqrt(), 1e-15);
        assert_eq!((s.min, s.max), (2.0, 9.0));
        assert_eq!(Summary::of(&[3.5]).unwrap().std, None);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn gamma_at_known_points() {
        close(ln_gamma(1.0), 0.0, 1e-14);
        close(ln_gamma(5.0), 24f64.ln(), 1e-13);
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-14);
        close(ln_gamma(10.5), 1_133_278.388_7f64.ln(), 1e-9);
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        // two-sided 95% critical values of Student's t
        for (df, t) in [
            (1.0, 12.706_204_736),
            (2.0, 4.302_652_730),
            (3.0, 3.182_446_305),
            (4.0, 2.776_445_105),
            (10.0, 2.228_138_852),
            (30.0, 2.042_272_456),
            (1000.0, 1.962_339_081),
        ] {
            close(student_t_quantile(0.975, df), t, 1e-8);
        }
        // t with 1 degree of freedom is Cauchy: P(|T| > 1) = 1/2
        close(student_t_two_sided_p(1.0, 1.0), 0.5, 1e-14);
        // with 2: P(|T| > t) = 1 − t / sqrt(2 + t²)
        close(
            student_t_two_sided_p(1.5, 2.0),
            1.0 - 1.5 / (2.0f64 + 2.25).sqrt(),
            1e-14,
        );
    }

    #[test]
    fn welch_interval_by_hand() {
        // equal variances and sizes: df = 2(n − 1) = 4 exactly
        let a = Summary::of(&[1.0, 2.0, 3.0]).unwrap();
        let b = Summary::of(&[3.0, 4.0, 5.0]).unwrap();
        let w = welch(&a, &b).unwrap();
        let se = (1.0f64 / 3.0 + 1.0 / 3.0).sqrt();
        close(w.diff, -2.0, 1e-15);
        close(w.df, 4.0, 1e-12);
        close(w.t, -2.0 / se, 1e-12);
        close(w.ci_low, -2.0 - 2.776_445_105 * se, 1e-8);
        close(w.ci_high, -2.0 + 2.776_445_105 * se, 1e-8);
        assert!(!w.significant); // the interval [-4.27, 0.27] holds 0
                                 // P(|T_4| > 2.449…) by the closed form of the t₄ distribution
        let t = 2.0 / se;
        let x = t / (4.0 + t * t).sqrt();
        close(w.p, 1.0 - x * (1.5 - 0.5 * x * x), 1e-12);

        // unequal variances: df by Welch–Satterthwaite, worked by hand
        let a = Summary::of(&[10.0, 12.0, 14.0, 16.0]).unwrap(); // mean 13, s² 20/3
        let b = Summary::of(&[1.0, 2.0]).unwrap(); // mean 1.5, s² 0.5
        let (va, vb) = (20.0 / 3.0 / 4.0, 0.5 / 2.0);
        let df = (va + vb) * (va + vb) / (va * va / 3.0 + vb * vb / 1.0);
        let w = welch(&a, &b).unwrap();
        close(w.df, df, 1e-12);
        close(w.diff, 11.5, 1e-14);
        let half = student_t_quantile(0.975, df) * (va + vb).sqrt();
        close(w.ci_low, 11.5 - half, 1e-12);
        assert!(w.significant);

        assert!(welch(&Summary::of(&[1.0]).unwrap(), &b).is_none());
    }
}
