//! The kernels' `f32` inner loops, compiled three times: for the x86-64
//! baseline (SSE2), for AVX2 + FMA (x86-64-v3: every AMD EPYC since Zen
//! and Intel since Haswell) and for AVX-512 (F, DQ, BW, VL with FMA),
//! chosen once at run time by the CPU's features ([`isa`]). Each loop is
//! plain Rust written so that LLVM vectorises it: reductions run over
//! [`LANES`] independent accumulators (one 512-bit register, two 256-bit
//! ones), and `exp` is a polynomial instead of a call into libm. `march` is
//! built for the baseline target, so without this the element-wise work of
//! a step runs four lanes wide (or one, for reductions and `exp`).
//!
//! The kernels' generic scalar loops (still used for `f64`) and these
//! differ by rounding only (`march-runtime/tests/kernels.rs` checks the
//! kernels in f32 against f64). The three builds give bit-identical results
//! (tested below, for every build the CPU can run): LLVM does not contract
//! `a * b + c` into an FMA unless the code says `mul_add`, and it only
//! vectorises the lanes written out, in order. A run's numbers do not
//! depend on the CPU's vector width.

use std::sync::atomic::{AtomicU8, Ordering};

use super::mask::{DrawBuf, DRAW_BLOCK};
use super::DropMask;

/// Accumulators per reduction: one AVX-512 register of `f32`.
pub const LANES: usize = 16;

/// The instruction set a build of the loops is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// The x86-64 baseline (SSE2), or any other architecture.
    Baseline,
    /// AVX2 + FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/DQ/BW/VL + FMA (x86-64-v4).
    Avx512,
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "x86-64 baseline (SSE2)",
            Isa::Avx2 => "AVX2+FMA",
            Isa::Avx512 => "AVX-512",
        }
    }

    fn from_u8(v: u8) -> Isa {
        match v {
            2 => Isa::Avx512,
            1 => Isa::Avx2,
            _ => Isa::Baseline,
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The best build this CPU can run.
pub fn detected() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f")
            && has!("avx512dq")
            && has!("avx512bw")
            && has!("avx512vl")
            && has!("fma")
        {
            return Isa::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

const UNSET: u8 = u8::MAX;
static CHOSEN: AtomicU8 = AtomicU8::new(UNSET);

/// The build the loops run: [`detected`], unless [`set_isa`] chose a
/// lower one.
#[inline]
pub fn isa() -> Isa {
    match CHOSEN.load(Ordering::Relaxed) {
        UNSET => {
            let best = detected();
            CHOSEN.store(best as u8, Ordering::Relaxed);
            best
        }
        v => Isa::from_u8(v),
    }
}

/// Whether this CPU runs the AVX-512 build.
#[inline]
pub fn avx512() -> bool {
    isa() == Isa::Avx512
}

/// Run the loops' `isa` build from now on, in every thread (benchmarks
/// compare builds; tests check that they agree); returns the one chosen
/// before. Refused when the CPU lacks its features.
pub fn set_isa(isa_: Isa) -> Result<Isa, String> {
    let best = detected();
    if isa_ > best {
        return Err(format!(
            "this CPU cannot run the {isa_} build (its best is {best})"
        ));
    }
    let before = isa();
    CHOSEN.store(isa_ as u8, Ordering::Relaxed);
    Ok(before)
}

/// Defines each `pub fn` given four times: in [`portable`] (compiled for
/// the baseline), in `v3` and `v4` (the same body compiled for AVX2 + FMA
/// and for AVX-512) and here, choosing by [`isa`]. Helpers the bodies call
/// must be `#[inline(always)]` to be compiled for each target with them,
/// and the bodies loop with `for`, not with iterator consumers (`sum`,
/// `fold`, `for_each`) over long ranges: those are generic functions LLVM
/// may keep out of line, compiled for the baseline with the loop inside
/// (`objdump -d` of the binary lists what each `v4::` function calls).
macro_rules! multiversion {
    ($(
        $(#[doc = $doc:literal])*
        pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    )*) => {
        /// The loops compiled for the x86-64 baseline: what runs where the
        /// CPU lacks AVX2. Every build gives bit-identical results.
        pub mod portable {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[doc = $doc])*
                #[inline(always)]
                pub fn $name($($arg: $ty),*) $(-> $ret)? $body
            )*
        }

        #[cfg(target_arch = "x86_64")]
        mod v3 {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[target_feature(enable = "avx2,fma")]
                pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    super::portable::$name($($arg),*)
                }
            )*
        }

        #[cfg(target_arch = "x86_64")]
        mod v4 {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
                pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    super::portable::$name($($arg),*)
                }
            )*
        }

        $(
            $(#[doc = $doc])*
            pub fn $name($($arg: $ty),*) $(-> $ret)? {
                #[cfg(target_arch = "x86_64")]
                match isa() {
                    // SAFETY: `isa` only names builds whose features the CPU has
                    Isa::Avx512 => return unsafe { v4::$name($($arg),*) },
                    Isa::Avx2 => return unsafe { v3::$name($($arg),*) },
                    Isa::Baseline => {}
                }
                portable::$name($($arg),*)
            }
        )*
    };
}

/// `dst[j] ← src[j] · s` where element `offset + j` is drawn kept and
/// `pass(src[j])`, else 0, with that recorded in `kept`: the loop of
/// [`dropout_keep`] and [`relu_dropout_keep`], inlined into each build.
#[inline(always)]
fn keep_where(
    mask: &DropMask,
    src: &[f32],
    dst: &mut [f32],
    kept: &mut [u8],
    offset: u64,
    pass: impl Fn(f32) -> bool,
) {
    assert!(src.len() == dst.len() && kept.len() == dst.len());
    let (s, t) = (mask.scale as f32, mask.threshold());
    let mut buf: DrawBuf = [0; DRAW_BLOCK + 4];
    let blocks = dst.chunks_mut(DRAW_BLOCK).zip(src.chunks(DRAW_BLOCK));
    for (b, ((d, x), k)) in blocks.zip(kept.chunks_mut(DRAW_BLOCK)).enumerate() {
        let r = mask.draws(offset + (b * DRAW_BLOCK) as u64, d.len(), &mut buf);
        for (((d, &x), k), &r) in d.iter_mut().zip(x).zip(k.iter_mut()).zip(r) {
            let keep = (u32::from(r) >= t) & pass(x);
            *k = keep as u8;
            *d = if keep { x * s } else { 0.0 };
        }
    }
}

/// `eˣ` to about 2 ulp (Cephes' `expf` polynomial on `x − n·ln 2`, the
/// power of two put in the exponent bits) for `x` in [−87.3, 88]; 0 below
/// (where `f32` underflows), `+∞` above (`e⁸⁸` is within 3× of `f32::MAX`;
/// the kernels only take `exp` of `x − max ≤ 0`), NaN for NaN.
/// Branch-free, so it vectorises.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5 · 2²³: adding it rounds to an integer held in the low mantissa bits
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const LO: f32 = -87.336_54;
    const HI: f32 = 88.0;
    let xc = x.clamp(LO, HI);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2ⁿ: n + 127 in the exponent field (n ∈ [−126, 127] after the clamp)
    let two_n = f32::from_bits(((t.to_bits() as i32 - 0x4B40_0000 + 127) << 23) as u32);
    let e = y * two_n;
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else if x.is_nan() {
        x
    } else {
        e
    }
}

/// `x` rounded to bf16 (nearest, ties to even; NaN stays a quiet NaN),
/// branch-free.
#[inline(always)]
pub fn bf16(x: f32) -> u16 {
    let b = x.to_bits();
    let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
    let quiet = ((b >> 16) | 0x40) as u16;
    if x.is_nan() {
        quiet
    } else {
        rounded
    }
}

/// Sums the lanes of an accumulator in a fixed order.
#[inline(always)]
fn sum_lanes(acc: [f32; LANES]) -> f32 {
    acc.iter().sum()
}

/// `⟨a, b⟩` over [`LANES`] accumulators.
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (a, b) in ca.zip(cb) {
        for j in 0..LANES {
            acc[j] += a[j] * b[j];
        }
    }
    let mut s = sum_lanes(acc);
    for (&a, &b) in ra.iter().zip(rb) {
        s += a * b;
    }
    s
}

/// The scalars of an AdamW update, as `f32`.
#[derive(Debug, Clone, Copy)]
pub struct AdamWScalars {
    pub beta1: f32,
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    pub grad_scale: f32,
    /// `1 / (1 − β₂ᵗ)`.
    pub inv_bc2: f32,
    pub eps: f32,
    /// `1 − lr · weight_decay`.
    pub keep: f32,
    /// `−lr / (1 − β₁ᵗ)`.
    pub step: f32,
}

multiversion! {
    /// `max(x)`; −∞ for an empty slice. NaNs are skipped (they reach the
    /// result through the `exp` that follows).
    pub fn max(x: &[f32]) -> f32 {
        let mut acc = [f32::NEG_INFINITY; LANES];
        let chunks = x.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for j in 0..LANES {
                acc[j] = if c[j] > acc[j] { c[j] } else { acc[j] };
            }
        }
        let mut m = f32::NEG_INFINITY;
        for &v in acc.iter().chain(rest) {
            m = if v > m { v } else { m };
        }
        m
    }

    /// `x ← x + b`; returns `max(x)` after the addition.
    pub fn add_max(x: &mut [f32], b: &[f32]) -> f32 {
        assert_eq!(x.len(), b.len());
        for (x, &b) in x.iter_mut().zip(b) {
            *x += b;
        }
        max(x)
    }

    /// `x ← e^(x − shift)`; returns `Σ x` after.
    pub fn exp_shifted(x: &mut [f32], shift: f32) -> f32 {
        let mut acc = [0.0f32; LANES];
        let mut chunks = x.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for j in 0..LANES {
                c[j] = exp(c[j] - shift);
                acc[j] += c[j];
            }
        }
        let mut s = sum_lanes(acc);
        // the tail (a 230-wide attention row has 6) through the vector
        // loop too, padded; added one by one as before
        let rest = chunks.into_remainder();
        if rest.is_empty() {
            return s;
        }
        let mut tail = [shift; LANES];
        tail[..rest.len()].copy_from_slice(rest);
        for t in tail.iter_mut() {
            *t = exp(*t - shift);
        }
        for (v, &t) in rest.iter_mut().zip(&tail) {
            *v = t;
            s += t;
        }
        s
    }

    /// `dst ← e^(src − shift)`; returns `Σ dst` (lanes summed in `f64`).
    pub fn exp_shifted_into(dst: &mut [f32], src: &[f32], shift: f32) -> f64 {
        assert_eq!(dst.len(), src.len());
        let mut acc = [0.0f32; LANES];
        let mut d = dst.chunks_exact_mut(LANES);
        let mut s = src.chunks_exact(LANES);
        for (d, s) in (&mut d).zip(&mut s) {
            for j in 0..LANES {
                d[j] = exp(s[j] - shift);
                acc[j] += d[j];
            }
        }
        let mut sum: f64 = acc.iter().map(|&a| a as f64).sum();
        for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
            *d = exp(s - shift);
            sum += *d as f64;
        }
        sum
    }

    /// `Σ e^(x − shift)` (lanes summed in `f64`).
    pub fn exp_shifted_sum(x: &[f32], shift: f32) -> f64 {
        let mut acc = [0.0f32; LANES];
        let chunks = x.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for j in 0..LANES {
                acc[j] += exp(c[j] - shift);
            }
        }
        let mut sum: f64 = acc.iter().map(|&a| a as f64).sum();
        for &v in rest {
            sum += exp(v - shift) as f64;
        }
        sum
    }

    /// `x ← s · x`.
    pub fn scale(x: &mut [f32], s: f32) {
        for v in x.iter_mut() {
            *v *= s;
        }
    }

    /// `x ← x + s · y`.
    pub fn axpy(x: &mut [f32], s: f32, y: &[f32]) {
        assert_eq!(x.len(), y.len());
        for (x, &y) in x.iter_mut().zip(y) {
            *x += s * y;
        }
    }

    /// [`axpy`] into a zero `x`, without reading it: `x ← 0 + s · y`.
    pub fn axpy_set(x: &mut [f32], s: f32, y: &[f32]) {
        assert_eq!(x.len(), y.len());
        for (x, &y) in x.iter_mut().zip(y) {
            *x = 0.0 + s * y;
        }
    }

    /// `⟨a, b⟩`.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot_lanes(a, b)
    }

    /// `Σ x²`, accumulated in `f64` per block of 1,024 (for gradient norms
    /// over millions of elements).
    pub fn sum_squares_f64(x: &[f32]) -> f64 {
        // a `for` loop, not `.map(..).sum()`: that `fold` is a generic
        // function LLVM kept out of line, compiled for the baseline, so
        // every build ran the SSE2 loop
        let mut s = 0.0f64;
        for c in x.chunks(1024) {
            s += dot_lanes(c, c) as f64;
        }
        s
    }

    /// The softmax's backward on one row: `dp ← p ⊙ (dp − ⟨dp, p⟩)`.
    pub fn softmax_backward(dp: &mut [f32], p: &[f32]) {
        let d = dot_lanes(dp, p);
        for (g, &p) in dp.iter_mut().zip(p) {
            *g = p * (*g - d);
        }
    }

    /// One RMS-norm row: `y ← inv · x ⊙ w` with `inv = 1/√(mean(x²) + eps)`;
    /// returns `inv`.
    pub fn rms_norm_row(y: &mut [f32], x: &[f32], w: &[f32], eps: f32) -> f32 {
        let inv = 1.0 / (dot_lanes(x, x) / x.len() as f32 + eps).sqrt();
        for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
            *y = inv * x * w;
        }
        inv
    }

    /// One RMS-norm row's backward: `gx += inv·w⊙gy − x · inv³/M · ⟨gy⊙w, x⟩`
    /// and `dw += inv · gy ⊙ x`.
    pub fn rms_norm_backward_row(
        gx: &mut [f32],
        dw: &mut [f32],
        gy: &[f32],
        x: &[f32],
        w: &[f32],
        inv: f32,
    ) {
        let m = x.len();
        assert!(gx.len() == m && dw.len() == m && gy.len() == m && w.len() == m);
        // ⟨gy ⊙ w, x⟩ over the lanes (by chunks: indexed, the loop ran
        // one lane at a time)
        let mut acc = [0.0f32; LANES];
        let (cg, cw, cx) = (gy.chunks_exact(LANES), w.chunks_exact(LANES), x.chunks_exact(LANES));
        let (rg, rw, rx) = (cg.remainder(), cw.remainder(), cx.remainder());
        for ((g, w), x) in cg.zip(cw).zip(cx) {
            for j in 0..LANES {
                acc[j] += g[j] * w[j] * x[j];
            }
        }
        let mut d = sum_lanes(acc);
        for ((&g, &w), &x) in rg.iter().zip(rw).zip(rx) {
            d += g * w * x;
        }
        let c = inv * inv * inv * d / m as f32;
        for j in 0..m {
            gx[j] += inv * w[j] * gy[j] - x[j] * c;
            dw[j] += gy[j] * x[j] * inv;
        }
    }

    /// `dst[j] ← src[j] · mask(offset + j)`.
    pub fn dropout(mask: &DropMask, src: &[f32], dst: &mut [f32], offset: u64) {
        assert_eq!(src.len(), dst.len());
        let (s, t) = (mask.scale as f32, mask.threshold());
        let mut buf: DrawBuf = [0; DRAW_BLOCK + 4];
        for (b, (d, x)) in dst.chunks_mut(DRAW_BLOCK).zip(src.chunks(DRAW_BLOCK)).enumerate() {
            let r = mask.draws(offset + (b * DRAW_BLOCK) as u64, d.len(), &mut buf);
            for ((d, &x), &r) in d.iter_mut().zip(x).zip(r) {
                *d = if u32::from(r) >= t { x * s } else { 0.0 };
            }
        }
    }

    /// [`dropout`], also writing each element's draw into `kept` (1 kept,
    /// 0 dropped) for the backward's [`kept_scale`]s: the hash is taken
    /// once, not once per pass (on AVX2, without 64-bit lane multiplies,
    /// it is most of the op's cost). Measured on one thread of the Intel
    /// Xeon (family 6 model 167), a 230 × 230 block: 0.83–0.85 ns an
    /// element in the AVX2 build with a hash per element, 0.43–0.44 with
    /// four elements' draws per hash ([`DropMask`]); 0.34–0.35 and
    /// 0.28–0.29 in the AVX-512 build.
    pub fn dropout_keep(mask: &DropMask, src: &[f32], dst: &mut [f32], kept: &mut [u8], offset: u64) {
        keep_where(mask, src, dst, kept, offset, |_| true)
    }

    /// `dst[j] ← src[j] · mask(offset + j) + res[j]`, the draws written into
    /// `kept` as [`dropout_keep`] does: a sub-layer's dropout and the
    /// residual add after it in one pass.
    pub fn dropout_keep_add(
        mask: &DropMask,
        src: &[f32],
        res: &[f32],
        dst: &mut [f32],
        kept: &mut [u8],
        offset: u64,
    ) {
        assert!(src.len() == dst.len() && res.len() == dst.len() && kept.len() == dst.len());
        let (s, t) = (mask.scale as f32, mask.threshold());
        let mut buf: DrawBuf = [0; DRAW_BLOCK + 4];
        let blocks = dst.chunks_mut(DRAW_BLOCK).zip(src.chunks(DRAW_BLOCK));
        let blocks = blocks.zip(res.chunks(DRAW_BLOCK)).zip(kept.chunks_mut(DRAW_BLOCK));
        for (b, (((d, x), res), k)) in blocks.enumerate() {
            let draws = mask.draws(offset + (b * DRAW_BLOCK) as u64, d.len(), &mut buf);
            let rows = d.iter_mut().zip(x).zip(res).zip(k.iter_mut()).zip(draws);
            for ((((d, &x), &r), k), &draw) in rows {
                let keep = u32::from(draw) >= t;
                *k = keep as u8;
                *d = (if keep { x * s } else { 0.0 }) + r;
            }
        }
    }

    /// `dst[j] ← relu(src[j]) · mask(offset + j)`, writing into `kept`
    /// whether the element passed both (drawn kept and positive): the
    /// backward's gradient is [`kept_scale_add`] of those bytes.
    pub fn relu_dropout_keep(mask: &DropMask, src: &[f32], dst: &mut [f32], kept: &mut [u8], offset: u64) {
        keep_where(mask, src, dst, kept, offset, |x| x > 0.0)
    }

    /// `dst[j] ← src[j] · s` where `kept[j]`, else 0: [`dropout`] with the
    /// draws [`dropout_keep`] recorded.
    pub fn kept_scale(kept: &[u8], s: f32, src: &[f32], dst: &mut [f32]) {
        assert!(src.len() == dst.len() && kept.len() == dst.len());
        for ((d, &x), &k) in dst.iter_mut().zip(src).zip(kept) {
            *d = if k != 0 { x * s } else { 0.0 };
        }
    }

    /// `x[j] ← x[j] · s` where `kept[j]`, else 0.
    pub fn kept_scale_in_place(kept: &[u8], s: f32, x: &mut [f32]) {
        assert_eq!(kept.len(), x.len());
        for (v, &k) in x.iter_mut().zip(kept) {
            *v = if k != 0 { *v * s } else { 0.0 };
        }
    }

    /// `gx[j] += gy[j] · s` where `kept[j]`, else `+= 0`: [`dropout_backward`]
    /// with the recorded draws.
    pub fn kept_scale_add(kept: &[u8], s: f32, gx: &mut [f32], gy: &[f32]) {
        assert!(gx.len() == gy.len() && kept.len() == gx.len());
        for ((g, &y), &k) in gx.iter_mut().zip(gy).zip(kept) {
            *g += if k != 0 { y * s } else { 0.0 };
        }
    }

    /// [`kept_scale_add`] into a zero `gx`, without reading it: `gx[j] ←
    /// 0 + gy[j] · s` where `kept[j]`, else `0 + 0`.
    pub fn kept_scale_set(kept: &[u8], s: f32, gx: &mut [f32], gy: &[f32]) {
        assert!(gx.len() == gy.len() && kept.len() == gx.len());
        for ((g, &y), &k) in gx.iter_mut().zip(gy).zip(kept) {
            *g = 0.0 + if k != 0 { y * s } else { 0.0 };
        }
    }

    /// The input embedding's gradient of one dropout's input, added:
    /// `gx[j] += 0 + g·s` where `kept[j]` (else `+= 0`), `g = 0 + c · gy[j]`
    /// under the mean's factor `c`, else `gy[j]`; without a dropout
    /// (`s = None`) `gx[j] += g`. The composition's operations in its order,
    /// signed zeros included (`kernels/embedding.rs`).
    pub fn embedding_grad_add(kept: &[u8], s: Option<f32>, c: Option<f32>, gx: &mut [f32], gy: &[f32]) {
        assert_eq!(gx.len(), gy.len());
        match (s, c) {
            (Some(s), Some(c)) => {
                assert_eq!(kept.len(), gx.len());
                for ((g, &y), &k) in gx.iter_mut().zip(gy).zip(kept) {
                    *g += if k != 0 { 0.0 + (0.0 + c * y) * s } else { 0.0 };
                }
            }
            (Some(s), None) => {
                assert_eq!(kept.len(), gx.len());
                for ((g, &y), &k) in gx.iter_mut().zip(gy).zip(kept) {
                    *g += if k != 0 { 0.0 + y * s } else { 0.0 };
                }
            }
            (None, Some(c)) => {
                for (g, &y) in gx.iter_mut().zip(gy) {
                    *g += 0.0 + c * y;
                }
            }
            (None, None) => {
                for (g, &y) in gx.iter_mut().zip(gy) {
                    *g += y;
                }
            }
        }
    }

    /// `x[j] ← x[j] · mask(offset + j)`.
    pub fn dropout_in_place(mask: &DropMask, x: &mut [f32], offset: u64) {
        let (s, t) = (mask.scale as f32, mask.threshold());
        let mut buf: DrawBuf = [0; DRAW_BLOCK + 4];
        for (b, x) in x.chunks_mut(DRAW_BLOCK).enumerate() {
            let r = mask.draws(offset + (b * DRAW_BLOCK) as u64, x.len(), &mut buf);
            for (v, &r) in x.iter_mut().zip(r) {
                *v = if u32::from(r) >= t { *v * s } else { 0.0 };
            }
        }
    }

    /// `gx[j] += gy[j] · mask(offset + j)`: dropout's backward.
    pub fn dropout_backward(mask: &DropMask, gx: &mut [f32], gy: &[f32], offset: u64) {
        assert_eq!(gx.len(), gy.len());
        let (s, t) = (mask.scale as f32, mask.threshold());
        let mut buf: DrawBuf = [0; DRAW_BLOCK + 4];
        for (b, (gx, gy)) in gx.chunks_mut(DRAW_BLOCK).zip(gy.chunks(DRAW_BLOCK)).enumerate() {
            let r = mask.draws(offset + (b * DRAW_BLOCK) as u64, gx.len(), &mut buf);
            for ((g, &y), &r) in gx.iter_mut().zip(gy).zip(r) {
                *g += if u32::from(r) >= t { y * s } else { 0.0 };
            }
        }
    }

    /// AdamW on one block: moments and parameters updated in place, the
    /// gradient read and zeroed in the same pass (the step consumes it).
    pub fn adamw(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &mut [f32], s: AdamWScalars) {
        let n = p.len();
        assert!(m.len() == n && v.len() == n && g.len() == n);
        for i in 0..n {
            let gi = g[i];
            g[i] = 0.0;
            let g = gi * s.grad_scale;
            m[i] = s.beta1 * m[i] + s.one_minus_beta1 * g;
            v[i] = s.beta2 * v[i] + s.one_minus_beta2 * (g * g);
            let update = m[i] / ((v[i] * s.inv_bc2).sqrt() + s.eps);
            p[i] = s.keep * p[i] + s.step * update;
        }
    }

    /// `dst ← bf16(src)`, rounded to nearest even (NaN stays NaN).
    pub fn to_bf16(dst: &mut [u16], src: &[f32]) {
        assert_eq!(dst.len(), src.len());
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = bf16(x);
        }
    }

    /// `k` rows of `cols` ≤ 16 values (row `kk` at `src[kk·rs..]`) as the
    /// pairs AMX and `VDPBF16PS` read: `dst[q·16 + c] ← bf16(row 2q + 1
    /// [c]) · 2¹⁶ + bf16(row 2q [c])`, a missing odd row (odd `k`) zeros;
    /// `dst[q·16 + c]` for `c ≥ cols` untouched.
    pub fn interleave_bf16(dst: &mut [u32], src: &[f32], rs: usize, k: usize, cols: usize) {
        assert!(cols <= 16 && dst.len() >= k.div_ceil(2) * 16);
        if k == 0 {
            return;
        }
        assert!(src.len() >= (k - 1) * rs + cols);
        for (q, d) in dst.chunks_exact_mut(16).take(k.div_ceil(2)).enumerate() {
            let even = &src[2 * q * rs..2 * q * rs + cols];
            if 2 * q + 1 < k {
                let odd = &src[(2 * q + 1) * rs..(2 * q + 1) * rs + cols];
                for ((d, &e), &o) in d.iter_mut().zip(even).zip(odd) {
                    *d = ((bf16(o) as u32) << 16) | bf16(e) as u32;
                }
            } else {
                for (d, &e) in d.iter_mut().zip(even) {
                    *d = bf16(e) as u32;
                }
            }
        }
    }

    /// Whether every element is zero.
    pub fn all_zero(x: &[f32]) -> bool {
        x.chunks(4096).all(|c| c.iter().fold(0u32, |a, v| a | (v.to_bits() << 1)) == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_to_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 4.0 * f32::EPSILON as f64, "relative error {worst}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn reductions_match_scalar_loops() {
        let x: Vec<f32> = (0..1000)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let y: Vec<f32> = (0..1000)
            .map(|i| ((i * 13 % 89) as f32 - 44.0) / 11.0)
            .collect();
        let want_max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(max(&x), want_max);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
        let want_dot: f64 = x.iter().zip(&y).map(|(&a, &b)| a as f64 * b as f64).sum();
        assert!((dot(&x, &y) as f64 - want_dot).abs() < 1e-4 * want_dot.abs().max(1.0));
        let want_sq: f64 = x.iter().map(|&a| (a as f64).powi(2)).sum();
        assert!((sum_squares_f64(&x) - want_sq).abs() < 1e-5 * want_sq);
        let want_exp: f64 = x.iter().map(|&a| ((a - want_max) as f64).exp()).sum();
        assert!((exp_shifted_sum(&x, want_max) - want_exp).abs() < 1e-5 * want_exp);
        let mut e = x.clone();
        let s = exp_shifted(&mut e, want_max);
        assert!((s as f64 - want_exp).abs() < 1e-5 * want_exp);
        // every length's tail: the scalar `exp` of each element and the
        // lanes' sum, then the tail's, one by one (the bits of the loop
        // as first written, where the tail ran element by element)
        for n in 0..2 * LANES + 3 {
            let mut got = x[..n].to_vec();
            let sum = exp_shifted(&mut got, 1.5);
            let want: Vec<f32> = x[..n].iter().map(|&v| exp(v - 1.5)).collect();
            let full = n / LANES * LANES;
            let mut acc = [0.0f32; LANES];
            for c in want[..full].chunks(LANES) {
                for j in 0..LANES {
                    acc[j] += c[j];
                }
            }
            let want_sum = want[full..].iter().fold(sum_lanes(acc), |s, &v| s + v);
            assert_eq!(
                (bits(&got), sum.to_bits()),
                (bits(&want), want_sum.to_bits()),
                "{n}"
            );
        }
        assert!(all_zero(&[0.0, -0.0, 0.0]));
        assert!(!all_zero(&[0.0, 1e-30]));
    }

    /// Deterministic values in about [−scale, scale].
    fn data(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        (0..n as u64)
            .map(|i| {
                let h = (seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .wrapping_mul(0xbf58_476d_1ce4_e5b9);
                ((h >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    /// Every build this CPU can run (AVX2 on an AVX2 machine, AVX2 and
    /// AVX-512 on an AVX-512 one) gives the portable build's results bit for
    /// bit: a run does not depend on the CPU's vector width.
    #[test]
    fn every_build_is_bit_identical_to_the_portable_one() {
        let best = detected();
        let before = isa();
        let mut compared = Vec::new();
        for build in Isa::ALL.into_iter().filter(|&i| i <= best) {
            set_isa(build).unwrap();
            assert_eq!(isa(), build);
            compare_with_portable();
            compared.push(build.name());
        }
        set_isa(before).unwrap();
        assert!(set_isa(Isa::Avx512).is_ok() == (best == Isa::Avx512));
        set_isa(before).unwrap();
        eprintln!("builds compared with the portable one: {compared:?}");
    }

    fn compare_with_portable() {
        let n = 1003; // lanes and a ragged end
        let (x, y, w) = (data(n, 1, 5.0), data(n, 2, 1.0), data(n, 3, 1.0));
        // bf16 conversions: against the scalar rounding, odd k and a
        // partial column block (20 rows of stride 50, 13 columns)
        let (mut h, mut h0) = (vec![0u16; n], vec![0u16; n]);
        to_bf16(&mut h, &x);
        portable::to_bf16(&mut h0, &x);
        assert_eq!(h, h0);
        assert!(h.iter().zip(&x).all(|(&h, &x)| h == bf16(x)));
        for (k, cols) in [(19, 13), (20, 16), (1, 1)] {
            let (mut p, mut p0) = (vec![7u32; 10 * 16], vec![7u32; 10 * 16]);
            interleave_bf16(&mut p, &x, 50, k, cols);
            portable::interleave_bf16(&mut p0, &x, 50, k, cols);
            assert_eq!(p, p0);
            for q in 0..k.div_ceil(2) {
                for c in 0..16 {
                    let odd = if 2 * q + 1 < k {
                        bf16(x[(2 * q + 1) * 50 + c]) as u32
                    } else {
                        0
                    };
                    let want = if c < cols {
                        (odd << 16) | bf16(x[2 * q * 50 + c]) as u32
                    } else {
                        7
                    };
                    assert_eq!(p[q * 16 + c], want, "k {k}, pair {q}, column {c}");
                }
            }
        }
        assert_eq!(max(&x).to_bits(), portable::max(&x).to_bits());
        assert_eq!(dot(&x, &y).to_bits(), portable::dot(&x, &y).to_bits());
        assert_eq!(sum_squares_f64(&x), portable::sum_squares_f64(&x));
        assert_eq!(exp_shifted_sum(&x, 5.0), portable::exp_shifted_sum(&x, 5.0));
        assert!(all_zero(&vec![0.0; n]) && !all_zero(&x) && !portable::all_zero(&x));
        let (mut a, mut b) = (x.clone(), x.clone());
        assert_eq!(
            add_max(&mut a, &y).to_bits(),
            portable::add_max(&mut b, &y).to_bits()
        );
        assert_eq!(
            exp_shifted(&mut a, 3.0).to_bits(),
            portable::exp_shifted(&mut b, 3.0).to_bits()
        );
        assert_eq!(bits(&a), bits(&b));
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        assert_eq!(
            exp_shifted_into(&mut a, &x, 5.0),
            portable::exp_shifted_into(&mut b, &x, 5.0)
        );
        assert_eq!(bits(&a), bits(&b));
        scale(&mut a, 0.37);
        portable::scale(&mut b, 0.37);
        axpy(&mut a, -1.3, &y);
        portable::axpy(&mut b, -1.3, &y);
        softmax_backward(&mut a, &w);
        portable::softmax_backward(&mut b, &w);
        assert_eq!(bits(&a), bits(&b));
        let (mut ya, mut yb) = (vec![0.0; n], vec![0.0; n]);
        let inv = rms_norm_row(&mut ya, &x, &w, 1e-6);
        assert_eq!(
            inv.to_bits(),
            portable::rms_norm_row(&mut yb, &x, &w, 1e-6).to_bits()
        );
        assert_eq!(bits(&ya), bits(&yb));
        let (mut ga, mut gb, mut da, mut db) = (y.clone(), y.clone(), w.clone(), w.clone());
        rms_norm_backward_row(&mut ga, &mut da, &x, &y, &w, inv);
        portable::rms_norm_backward_row(&mut gb, &mut db, &x, &y, &w, inv);
        assert_eq!((bits(&ga), bits(&da)), (bits(&gb), bits(&db)));
        let mask = DropMask::new(0x5eed, 0.1);
        dropout(&mask, &x, &mut ya, 77);
        portable::dropout(&mask, &x, &mut yb, 77);
        dropout_in_place(&mask, &mut ga, 5);
        portable::dropout_in_place(&mask, &mut gb, 5);
        dropout_backward(&mask, &mut da, &y, 9);
        portable::dropout_backward(&mask, &mut db, &y, 9);
        assert_eq!(
            (bits(&ya), bits(&ga), bits(&da)),
            (bits(&yb), bits(&gb), bits(&db))
        );
        // the recorded draws: the same values as the hash's, in every build
        let (mut ka, mut kb) = (vec![7u8; n], vec![7u8; n]);
        dropout_keep(&mask, &x, &mut ya, &mut ka, 77);
        portable::dropout_keep(&mask, &x, &mut yb, &mut kb, 77);
        assert_eq!((bits(&ya), &ka), (bits(&yb), &kb));
        let mut want = vec![0.0; n];
        portable::dropout(&mask, &x, &mut want, 77);
        assert_eq!(bits(&ya), bits(&want));
        let s = mask.scale as f32;
        kept_scale(&ka, s, &x, &mut ya);
        portable::kept_scale(&kb, s, &x, &mut yb);
        assert_eq!((bits(&ya), bits(&yb)), (bits(&want), bits(&want)));
        let (mut ga, mut gb, mut gw) = (y.clone(), y.clone(), y.clone());
        kept_scale_in_place(&ka, s, &mut ga);
        portable::kept_scale_in_place(&kb, s, &mut gb);
        portable::dropout_in_place(&mask, &mut gw, 77);
        assert_eq!((bits(&ga), bits(&gb)), (bits(&gw), bits(&gw)));
        let (mut da, mut db, mut dw) = (w.clone(), w.clone(), w.clone());
        kept_scale_add(&ka, s, &mut da, &y);
        portable::kept_scale_add(&kb, s, &mut db, &y);
        portable::dropout_backward(&mask, &mut dw, &y, 77);
        assert_eq!((bits(&da), bits(&db)), (bits(&dw), bits(&dw)));
        // the embedding's gradient, each form: every build alike, and the
        // scalar expression's bits (signed zeros included: `y` has some)
        for (s, c) in [
            (Some(s), Some(0.5)),
            (Some(s), None),
            (None, Some(0.5)),
            (None, None),
        ] {
            let (mut da, mut db) = (w.clone(), w.clone());
            embedding_grad_add(&ka, s, c, &mut da, &y);
            portable::embedding_grad_add(&kb, s, c, &mut db, &y);
            let want: Vec<f32> = (w.iter().zip(&y).zip(&ka))
                .map(|((&d, &y), &k)| {
                    let g = c.map_or(y, |c| 0.0 + c * y);
                    d + match s {
                        Some(s) if k != 0 => 0.0 + g * s,
                        Some(_) => 0.0,
                        None => g,
                    }
                })
                .collect();
            assert_eq!((bits(&da), bits(&db)), (bits(&want), bits(&want)));
        }
        // the fused residual add: dropout's values plus the residual
        let (mut ka, mut kb) = (vec![7u8; n], vec![7u8; n]);
        dropout_keep_add(&mask, &x, &w, &mut ya, &mut ka, 77);
        portable::dropout_keep_add(&mask, &x, &w, &mut yb, &mut kb, 77);
        let plus: Vec<f32> = want.iter().zip(&w).map(|(d, r)| d + r).collect();
        assert_eq!((bits(&ya), &ka), (bits(&yb), &kb));
        assert_eq!(bits(&ya), bits(&plus));
        // relu then dropout: the draws of positive elements only
        relu_dropout_keep(&mask, &x, &mut ya, &mut ka, 77);
        portable::relu_dropout_keep(&mask, &x, &mut yb, &mut kb, 77);
        assert_eq!((bits(&ya), &ka), (bits(&yb), &kb));
        let relu: Vec<f32> = x.iter().map(|&v| v.max(0.0)).collect();
        portable::dropout(&mask, &relu, &mut want, 77);
        assert!(ya.iter().zip(&want).all(|(a, b)| a == b));
        assert!(ka.iter().zip(&x).all(|(&k, &v)| k == 0 || v > 0.0));
        assert!(ka.contains(&1) && x.iter().any(|&v| v > 0.0));
        let sc = AdamWScalars {
            beta1: 0.9,
            one_minus_beta1: 0.1,
            beta2: 0.95,
            one_minus_beta2: 0.05,
            grad_scale: 0.5,
            inv_bc2: 1.7,
            eps: 1e-8,
            keep: 0.999,
            step: -1e-3,
        };
        let (mut pa, mut ma, mut va) = (
            x.clone(),
            y.clone(),
            w.iter().map(|v| v * v).collect::<Vec<_>>(),
        );
        let (mut pb, mut mb, mut vb) = (pa.clone(), ma.clone(), va.clone());
        let (mut ga, mut gb) = (y.clone(), y.clone());
        adamw(&mut pa, &mut ma, &mut va, &mut ga, sc);
        portable::adamw(&mut pb, &mut mb, &mut vb, &mut gb, sc);
        assert_eq!(
            (bits(&pa), bits(&ma), bits(&va)),
            (bits(&pb), bits(&mb), bits(&vb))
        );
        assert!(ga.iter().chain(&gb).all(|&g| g.to_bits() == 0), "consumed");
    }
}
