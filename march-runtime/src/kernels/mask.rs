//! Dropout masks from a counter-based hash: element `i` of a stream is
//! kept or dropped by a pure function of `(stream, i)`.

use super::{f32s, f32s_mut, simd};
use crate::tensor::Float;

/// SplitMix64's finaliser: a bijective 64-bit mix.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Elements of a [`DropMask::draws`] block.
pub const DRAW_BLOCK: usize = 256;

/// Scratch for one [`DropMask::draws`] block: the fields of every hash the
/// block's elements fall in (up to three before its first element).
pub type DrawBuf = [u16; DRAW_BLOCK + 4];

/// One dropout's mask over a tensor's elements in row-major order. Element
/// `i`'s draw is a uniform 16-bit number: the field `i mod 4` (bits
/// `16·(i mod 4)` up) of [`mix64`]`(stream + ⌊i/4⌋)`, so one hash draws four
/// neighbouring elements. The element is kept, and scaled by `1 / (1 − p)`,
/// when its draw is at least `p · 2¹⁶` rounded: a drop probability within
/// 2⁻¹⁷ of `p` (`0.1` drops `6554 / 65536 = 0.100006`).
///
/// Four draws per hash rather than one: the 64-bit multiplies of the hash
/// have no AVX2 instruction (each is three 32-bit ones), and one draw per
/// hash made a dropout's loop cost more than the rest of its op (0.83–0.85
/// ns an element on AVX2, 0.43–0.44 with four; see `simd::dropout_keep`).
#[derive(Debug, Clone, Copy)]
pub struct DropMask {
    stream: u64,
    /// Kept where the draw is at least this (in [0, 2¹⁶]).
    threshold: u32,
    /// `1 / (1 − p)`.
    pub scale: f64,
}

impl DropMask {
    /// The mask of stream `stream` dropping with probability `p` (in [0, 1)).
    pub fn new(stream: u64, p: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&p),
            "a drop probability in [0, 1), not {p}"
        );
        DropMask {
            stream,
            threshold: (p * 65536.0).round() as u32,
            scale: 1.0 / (1.0 - p),
        }
    }

    /// Element `i`'s draw, uniform in [0, 2¹⁶).
    #[inline(always)]
    pub fn draw(&self, i: u64) -> u16 {
        (mix64(self.stream.wrapping_add(i / 4)) >> (16 * (i % 4))) as u16
    }

    /// The least draw that keeps an element.
    #[inline(always)]
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Whether element `i` is kept.
    #[inline(always)]
    pub fn keep(&self, i: u64) -> bool {
        u32::from(self.draw(i)) >= self.threshold
    }

    /// The draws of elements `first .. first + len` (`len` at most
    /// [`DRAW_BLOCK`]), computed in `buf` a hash at a time: what the
    /// vector loops read in place of [`DropMask::draw`] per element.
    #[inline(always)]
    pub fn draws<'a>(&self, first: u64, len: usize, buf: &'a mut DrawBuf) -> &'a [u16] {
        assert!(len <= DRAW_BLOCK);
        let (hash0, phase) = (first / 4, (first % 4) as usize);
        let hashes = (phase + len).div_ceil(4);
        for (q, f) in buf.chunks_exact_mut(4).take(hashes).enumerate() {
            let h = mix64(self.stream.wrapping_add(hash0 + q as u64));
            f[0] = h as u16;
            f[1] = (h >> 16) as u16;
            f[2] = (h >> 32) as u16;
            f[3] = (h >> 48) as u16;
        }
        &buf[phase..phase + len]
    }

    /// `dst[j] = src[j] · mask(offset + j)` (`scale` or 0).
    pub fn apply<E: Float>(&self, src: &[E], dst: &mut [E], offset: u64) {
        if let (Some(src), Some(dst)) = (f32s(src), f32s_mut(dst)) {
            return simd::dropout(self, src, dst, offset);
        }
        let scale = E::from_f64(self.scale).unwrap();
        for (j, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
            *d = if self.keep(offset + j as u64) {
                s * scale
            } else {
                E::zero()
            };
        }
    }

    /// [`DropMask::apply`], also recording each element's draw in `kept`
    /// (1 kept, 0 dropped) for [`apply_kept`] and friends in the backward.
    pub fn apply_recording<E: Float>(
        &self,
        src: &[E],
        dst: &mut [E],
        kept: &mut [u8],
        offset: u64,
    ) {
        if let (Some(src), Some(dst)) = (f32s(src), f32s_mut(dst)) {
            return simd::dropout_keep(self, src, dst, kept, offset);
        }
        self.record_scalar(src, dst, kept, offset, |_| true);
    }

    /// The loops of `apply_*recording` outside `f32`: `kept[j]` is the draw
    /// and `pass(src[j])`, `dst[j]` [`apply_kept`] of those bytes.
    fn record_scalar<E: Float>(
        &self,
        src: &[E],
        dst: &mut [E],
        kept: &mut [u8],
        offset: u64,
        pass: impl Fn(E) -> bool,
    ) {
        assert!(src.len() == dst.len() && kept.len() == dst.len());
        for ((k, &s), j) in kept.iter_mut().zip(src).zip(0..) {
            *k = (self.keep(offset + j) && pass(s)) as u8;
        }
        apply_kept(kept, self.scale, src, dst);
    }

    /// `dst[j] = src[j] · mask(offset + j) + res[j]`, recording the draws
    /// as [`DropMask::apply_recording`] does: dropout then a residual add.
    pub fn apply_recording_add<E: Float>(
        &self,
        src: &[E],
        res: &[E],
        dst: &mut [E],
        kept: &mut [u8],
        offset: u64,
    ) {
        if let (Some(src), Some(res), Some(dst)) = (f32s(src), f32s(res), f32s_mut(dst)) {
            return simd::dropout_keep_add(self, src, res, dst, kept, offset);
        }
        self.apply_recording(src, dst, kept, offset);
        for (d, &r) in dst.iter_mut().zip(res) {
            *d += r;
        }
    }

    /// `dst[j] = relu(src[j]) · mask(offset + j)`, recording in `kept`
    /// whether element `j` was drawn kept and is positive: the bytes
    /// [`apply_kept_add`] turns into the gradient.
    pub fn apply_relu_recording<E: Float>(
        &self,
        src: &[E],
        dst: &mut [E],
        kept: &mut [u8],
        offset: u64,
    ) {
        if let (Some(src), Some(dst)) = (f32s(src), f32s_mut(dst)) {
            return simd::relu_dropout_keep(self, src, dst, kept, offset);
        }
        self.record_scalar(src, dst, kept, offset, |s| s > E::zero());
    }
}

/// `dst[j] = src[j] · scale` where `kept[j]` (as [`DropMask::apply_recording`]
/// recorded), else 0: the same values as [`DropMask::apply`].
pub fn apply_kept<E: Float>(kept: &[u8], scale: f64, src: &[E], dst: &mut [E]) {
    if let (Some(src), Some(dst)) = (f32s(src), f32s_mut(dst)) {
        return simd::kept_scale(kept, scale as f32, src, dst);
    }
    assert!(src.len() == dst.len() && kept.len() == dst.len());
    let scale = E::from_f64(scale).unwrap();
    for ((d, &s), &k) in dst.iter_mut().zip(src).zip(kept) {
        *d = if k != 0 { s * scale } else { E::zero() };
    }
}

/// `x[j] ← x[j] · scale` where `kept[j]`, else 0.
pub fn apply_kept_in_place<E: Float>(kept: &[u8], scale: f64, x: &mut [E]) {
    if let Some(x) = f32s_mut(x) {
        return simd::kept_scale_in_place(kept, scale as f32, x);
    }
    assert_eq!(kept.len(), x.len());
    let scale = E::from_f64(scale).unwrap();
    for (v, &k) in x.iter_mut().zip(kept) {
        *v = if k != 0 { *v * scale } else { E::zero() };
    }
}

/// [`apply_kept_add`] into a zero `gx`, without reading it: `gx[j] = 0 +
/// gy[j] · scale` where `kept[j]`, else `+0` (for an unzeroed gradient
/// buffer, [`crate::alloc::unzeroed`]).
pub fn apply_kept_set<E: Float>(kept: &[u8], scale: f64, gx: &mut [E], gy: &[E]) {
    if let (Some(gx), Some(gy)) = (f32s_mut(gx), f32s(gy)) {
        return simd::kept_scale_set(kept, scale as f32, gx, gy);
    }
    assert!(gx.len() == gy.len() && kept.len() == gx.len());
    let scale = E::from_f64(scale).unwrap();
    for ((g, &y), &k) in gx.iter_mut().zip(gy).zip(kept) {
        *g = if k != 0 {
            E::zero() + y * scale
        } else {
            E::zero()
        };
    }
}

/// `gx[j] += gy[j] · scale` where `kept[j]`: dropout's backward.
pub fn apply_kept_add<E: Float>(kept: &[u8], scale: f64, gx: &mut [E], gy: &[E]) {
    if let (Some(gx), Some(gy)) = (f32s_mut(gx), f32s(gy)) {
        return simd::kept_scale_add(kept, scale as f32, gx, gy);
    }
    assert!(gx.len() == gy.len() && kept.len() == gx.len());
    let scale = E::from_f64(scale).unwrap();
    for ((g, &y), &k) in gx.iter_mut().zip(gy).zip(kept) {
        if k != 0 {
            *g += y * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{mix64, DrawBuf, DropMask, DRAW_BLOCK};

    /// A block's draws are the elements' own, whatever the first element's
    /// place in its hash and the block's length; the vector loops' masks
    /// are [`DropMask::keep`]'s at every offset.
    #[test]
    fn blocks_of_draws_are_each_elements_draw() {
        let mask = DropMask::new(0x0123_4567_89ab_cdef, 0.3);
        let mut buf: DrawBuf = [0; DRAW_BLOCK + 4];
        for first in [0u64, 1, 2, 3, 4, 5, 1 << 40, u64::MAX - 300] {
            for len in [0, 1, 3, 4, 5, 17, DRAW_BLOCK - 1, DRAW_BLOCK] {
                let got = mask.draws(first, len, &mut buf).to_vec();
                let want: Vec<u16> = (0..len as u64)
                    .map(|j| mask.draw(first.wrapping_add(j)))
                    .collect();
                assert_eq!(got, want, "first {first}, len {len}");
            }
        }
        // the fields of one hash, low bits first
        let h = mix64(0x0123_4567_89ab_cdef + 5);
        let fields: Vec<u16> = (20..24).map(|i| mask.draw(i)).collect();
        assert_eq!(
            fields,
            [
                h as u16,
                (h >> 16) as u16,
                (h >> 32) as u16,
                (h >> 48) as u16
            ]
        );
        let x: Vec<f32> = (0..3 * DRAW_BLOCK + 7).map(|i| i as f32 - 300.0).collect();
        for offset in [0u64, 1, 2, 3, 6, 1001] {
            let mut y = vec![f32::NAN; x.len()];
            let mut kept = vec![7u8; x.len()];
            mask.apply_recording(&x, &mut y, &mut kept, offset);
            for (j, ((&x, &y), &k)) in x.iter().zip(&y).zip(&kept).enumerate() {
                let keep = mask.keep(offset + j as u64);
                assert_eq!(k, keep as u8, "offset {offset}, element {j}");
                let want = if keep { x * mask.scale as f32 } else { 0.0 };
                assert_eq!(y.to_bits(), want.to_bits(), "offset {offset}, element {j}");
            }
        }
    }

    /// `p · 2¹⁶` rounded: 0 keeps everything, 0.1 drops 6554 of 65536.
    #[test]
    fn thresholds_round_the_probability() {
        assert_eq!(DropMask::new(1, 0.0).threshold(), 0);
        assert_eq!(DropMask::new(1, 0.1).threshold(), 6554);
        assert_eq!(DropMask::new(1, 0.5).threshold(), 32768);
        assert!((0..10_000).all(|i| DropMask::new(9, 0.0).keep(i)));
        assert!(std::panic::catch_unwind(|| DropMask::new(1, 1.0)).is_err());
    }

    /// The draws behave as independent uniform ones where a broken hash
    /// or field split would show: the kept fraction, neighbours within a
    /// hash and across two (pairs kept together), two streams against
    /// each other, and the draws' spread over 64 equal bins — each within
    /// 5 standard deviations of what independent draws give (χ² for the
    /// bins: below its 99.99th percentile).
    #[test]
    fn draws_look_independent_and_uniform() {
        let n = 1u64 << 20;
        for p in [0.1, 0.5] {
            let (a, b) = (DropMask::new(mix64(11), p), DropMask::new(mix64(12), p));
            let q = 1.0 - (a.threshold() as f64) / 65536.0;
            let within = |count: u64, prob: f64, trials: u64, what: &str| {
                let mean = prob * trials as f64;
                let sd = (trials as f64 * prob * (1.0 - prob)).sqrt();
                assert!(
                    (count as f64 - mean).abs() < 5.0 * sd,
                    "p {p}, {what}: {count} against {mean:.0} ± {sd:.0}"
                );
            };
            within((0..n).filter(|&i| a.keep(i)).count() as u64, q, n, "kept");
            for (lag, what) in [
                (1, "neighbours"),
                (2, "two apart"),
                (3, "three apart"),
                (4, "next hash"),
            ] {
                let both = (0..n).filter(|&i| a.keep(i) && a.keep(i + lag)).count() as u64;
                within(both, q * q, n, what);
            }
            let both = (0..n).filter(|&i| a.keep(i) && b.keep(i)).count() as u64;
            within(both, q * q, n, "two streams");
            let mut bins = [0u64; 64];
            for i in 0..n {
                bins[(a.draw(i) >> 10) as usize] += 1;
            }
            let e = n as f64 / 64.0;
            let chi2: f64 = bins.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
            assert!(
                chi2 < 112.0,
                "p {p}: χ² {chi2:.1} over 63 degrees of freedom"
            );
        }
    }
}
