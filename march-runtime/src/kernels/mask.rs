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

/// One dropout's mask over a tensor's elements in row-major order: element
/// `i` is kept, and scaled by `1 / (1 − p)`, when the hash of
/// `(stream, i)` is at least `p` of the 64-bit range.
#[derive(Debug, Clone, Copy)]
pub struct DropMask {
    stream: u64,
    threshold: u64,
    /// `1 / (1 − p)`.
    pub scale: f64,
}

impl DropMask {
    /// The mask of stream `stream` dropping with probability `p` (in [0, 1)).
    pub fn new(stream: u64, p: f64) -> Self {
        DropMask {
            stream,
            // keep where the element's uniform draw is at least p
            threshold: (p * (u64::MAX as f64)) as u64,
            scale: 1.0 / (1.0 - p),
        }
    }

    /// Whether element `i` is kept.
    #[inline(always)]
    pub fn keep(&self, i: u64) -> bool {
        mix64(self.stream.wrapping_add(i)) >= self.threshold
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
