//! Which of gemm 0.19's f32 microkernel families march's products run, in
//! one place: gemm's own choice by the CPU's features (`avx512f`, else
//! `fma`, else scalar) unless [`choose`] picks a narrower one — so that an
//! AVX-512 machine can run what an AVX2 + FMA machine (an AMD Zen 3) runs,
//! as `--loops` does for march's own loops. `panels.rs` takes the
//! chosen family's kernels, `gemm_on_fma` runs gemm's driver on the `fma`
//! ones where gemm itself would pick `avx512f`, and
//! `machine.rs` reports it.
//!
//! gemm picks its family once and keeps it in a private static, so a
//! narrower family is run through gemm's public generic driver
//! (`gemm_common::gemm::gemm_basic_generic`) with that family's
//! microkernels, as gemm's own per-family entry points do; with the
//! detected family the product goes through `gemm::gemm` itself.

use std::sync::atomic::{AtomicU8, Ordering};

/// One of gemm's f32 microkernel families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// No vector kernels (not x86-64, or no FMA).
    Scalar,
    /// AVX2 + FMA: 16 rows (2 vectors of 8) by 6 columns.
    Fma,
    /// AVX-512: 64 rows (4 vectors of 16) by 6 columns.
    Avx512f,
}

impl Family {
    /// gemm's own name of the family (its module's).
    pub fn name(self) -> &'static str {
        match self {
            Family::Scalar => "scalar",
            Family::Fma => "fma",
            Family::Avx512f => "avx512f",
        }
    }

    fn from_u8(v: u8) -> Family {
        match v {
            2 => Family::Avx512f,
            1 => Family::Fma,
            _ => Family::Scalar,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The family gemm 0.19 itself picks on this CPU.
pub fn detected() -> Family {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Family::Avx512f;
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return Family::Fma;
        }
    }
    Family::Scalar
}

const UNSET: u8 = u8::MAX;
static CHOSEN: AtomicU8 = AtomicU8::new(UNSET);

/// The family march's products run: [`detected`] unless [`choose`] said
/// otherwise.
pub fn chosen() -> Family {
    match CHOSEN.load(Ordering::Relaxed) {
        UNSET => detected(),
        v => Family::from_u8(v),
    }
}

/// Runs `family` from now on (the process's products, its ceiling
/// included); returns the family before. An error where this CPU cannot
/// run it, or for the scalar kernels, which march does not offer.
pub fn choose(family: Family) -> Result<Family, String> {
    let best = detected();
    if family == Family::Scalar {
        return Err("gemm's scalar kernels are not offered: choose fma or avx512f".into());
    }
    if family > best {
        return Err(format!(
            "this CPU cannot run gemm's {family} microkernels (its best are {best})"
        ));
    }
    let before = chosen();
    CHOSEN.store(family as u8, Ordering::Relaxed);
    Ok(before)
}

/// Whether the [`chosen`] family is narrower than gemm's own choice, so
/// that `f32` products must go through [`gemm_on_fma`] rather than
/// `gemm::gemm`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn narrowed() -> bool {
    chosen() != detected()
}

/// `gemm::gemm` for `f32` (the same arguments, `alpha` and `beta` 1,
/// nothing conjugated) on gemm's `fma` kernels, where they are
/// [`chosen`] on a CPU whose gemm picks `avx512f`: what `gemm::gemm` does
/// (a row-major destination computed as `dstᵀ = rhsᵀ · lhsᵀ`; march's
/// strides are never negative), then gemm's generic driver with the
/// family's kernels and vector type, as its own `fma` entry point.
///
/// # Safety
/// As `gemm::gemm`, on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_on_fma(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    [dst_cs, dst_rs]: [isize; 2],
    read_dst: bool,
    lhs: *const f32,
    [lhs_cs, lhs_rs]: [isize; 2],
    rhs: *const f32,
    [rhs_cs, rhs_rs]: [isize; 2],
    parallelism: gemm::Parallelism,
) {
    use ::gemm_f32::microkernel::fma::f32 as fma;
    use gemm_common::simd::{MixedSimd, V3};
    debug_assert!(dst_cs >= 0 && dst_rs >= 0 && lhs_cs >= 0 && rhs_rs >= 0);
    let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) =
        if dst_cs.abs() < dst_rs.abs() {
            (
                n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs,
            )
        } else {
            (
                m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs,
            )
        };
    const N: usize = 8;
    let simd = <V3 as MixedSimd<f32, f32, f32, f32>>::try_new()
        .expect("gemm's fma kernels chosen on a CPU without AVX2 + FMA");
    // SAFETY: the caller's
    unsafe {
        gemm_common::gemm::gemm_basic_generic::<
            _,
            f32,
            N,
            { fma::MR_DIV_N * N },
            { fma::NR },
            { fma::MR_DIV_N },
            { fma::H_M },
            { fma::H_N },
        >(
            simd,
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            read_dst,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            |a, b, c| a * b + c,
            &fma::UKR,
            &fma::H_UKR,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gemm::Parallelism;

    /// Deterministic values in [−1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64)
            .map(|i| {
                let h = super::super::mix64(seed.wrapping_mul(0x9e37_79b9) ^ i);
                (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// `dst [+]= lhs · rhs` in f64, every matrix by `[row stride, column
    /// stride]`.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        (m, k, n): (usize, usize, usize),
        dst: &[f32],
        ds: [isize; 2],
        accumulate: bool,
        lhs: &[f32],
        ls: [isize; 2],
        rhs: &[f32],
        rs: [isize; 2],
    ) -> (Vec<f64>, Vec<f64>) {
        let at =
            |s: [isize; 2], r: usize, c: usize| (r as isize * s[0] + c as isize * s[1]) as usize;
        let (mut want, mut bound) = (vec![0.0; m * n], vec![0.0; m * n]);
        for r in 0..m {
            for c in 0..n {
                let mut s = if accumulate {
                    dst[at(ds, r, c)] as f64
                } else {
                    0.0
                };
                let mut b = s.abs();
                for d in 0..k {
                    let p = lhs[at(ls, r, d)] as f64 * rhs[at(rs, d, c)] as f64;
                    s += p;
                    b += p.abs();
                }
                want[r * n + c] = s;
                bound[r * n + c] = b;
            }
        }
        (want, bound)
    }

    /// gemm's `fma` kernels through [`gemm_on_fma`] give the product to f32
    /// rounding for either orientation of the destination, strided and
    /// transposed factors, depths over several of gemm's blocks, with and
    /// without accumulating (a NaN left in a destination it must not read
    /// would show), on one thread and on three.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_fma_kernels_compute_the_product() {
        if !std::arch::is_x86_feature_detected!("fma") {
            eprintln!("skipped: this CPU has no FMA");
            return;
        }
        let rm = |cols: usize| [cols as isize, 1];
        let cm = |rows: usize| [1, rows as isize];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for &(m, k, n, row_major_dst, lhs_rm, rhs_rm) in &[
            (37, 29, 41, true, true, true),
            (100, 700, 13, false, false, true),
            (9, 1100, 300, true, false, false),
            (230, 32, 230, true, true, false),
            (1, 5, 1, false, true, true),
        ] {
            let ds = if row_major_dst { rm(n) } else { cm(m) };
            let ls = if lhs_rm { rm(k) } else { cm(m) };
            let rs = if rhs_rm { rm(n) } else { cm(k) };
            let (lhs, rhs) = (values(m * k, 1), values(k * n, 2));
            for accumulate in [true, false] {
                let start = match accumulate {
                    true => values(m * n, 3),
                    false => vec![f32::NAN; m * n],
                };
                let (want, bound) =
                    reference((m, k, n), &start, ds, accumulate, &lhs, ls, &rhs, rs);
                for parallelism in [Parallelism::None, Parallelism::Rayon(3)] {
                    let mut got = start.clone();
                    // SAFETY: the buffers hold m×k, k×n and m×n elements
                    // under these strides; the CPU has FMA
                    pool.install(|| unsafe {
                        gemm_on_fma(
                            (m, n, k),
                            got.as_mut_ptr(),
                            [ds[1], ds[0]],
                            accumulate,
                            lhs.as_ptr(),
                            [ls[1], ls[0]],
                            rhs.as_ptr(),
                            [rs[1], rs[0]],
                            parallelism,
                        )
                    });
                    for r in 0..m {
                        for c in 0..n {
                            let g = got[(r as isize * ds[0] + c as isize * ds[1]) as usize] as f64;
                            let (w, b) = (want[r * n + c], bound[r * n + c]);
                            assert!(
                                (g - w).abs() <= f32::EPSILON as f64 * (k as f64 + 2.0) * b.max(f64::MIN_POSITIVE),
                                "{m}×{k}·{k}×{n} ({ds:?} {ls:?} {rs:?}, accumulate {accumulate}) at ({r}, {c}): {g} against {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Where gemm itself picks `fma` (an AVX2 machine), [`gemm_on_fma`]
    /// gives gemm's own bits: it is the same driver on the same kernels.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn on_an_fma_cpu_it_is_gemm_itself() {
        if detected() != Family::Fma {
            eprintln!("skipped: gemm picks {} on this CPU, not fma", detected());
            return;
        }
        let (m, k, n) = (70, 300, 90);
        let (lhs, rhs, start) = (values(m * k, 4), values(k * n, 5), values(m * n, 6));
        let (mut ours, mut gemms) = (start.clone(), start);
        // SAFETY: row-major m×k, k×n and m×n buffers; the CPU has FMA
        unsafe {
            gemm_on_fma(
                (m, n, k),
                ours.as_mut_ptr(),
                [1, n as isize],
                true,
                lhs.as_ptr(),
                [1, k as isize],
                rhs.as_ptr(),
                [1, n as isize],
                Parallelism::None,
            );
            gemm::gemm(
                m,
                n,
                k,
                gemms.as_mut_ptr(),
                1,
                n as isize,
                true,
                lhs.as_ptr(),
                1,
                k as isize,
                rhs.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
        assert!(ours
            .iter()
            .zip(&gemms)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    /// `choose` refuses what it cannot run, and leaves the choice as it was.
    #[test]
    fn choose_refuses_the_scalar_kernels_and_wider_ones_than_the_cpus() {
        let before = chosen();
        assert!(choose(Family::Scalar)
            .unwrap_err()
            .contains("choose fma or avx512f"));
        if detected() < Family::Avx512f {
            let e = choose(Family::Avx512f).unwrap_err();
            assert!(e.contains("cannot run gemm's avx512f"), "{e}");
        }
        assert_eq!(chosen(), before);
    }
}
