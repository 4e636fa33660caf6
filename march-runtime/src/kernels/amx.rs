//! Matrix products in bf16 on Intel AMX (Sapphire Rapids and later), with
//! `f32` operands and results: `dst (m × n) [+]= lhs (m × k) · rhs (k × n)`
//! where both factors are rounded to bf16 (round to nearest even) and the
//! products are summed in `f32` by the tile unit (`TDPBF16PS`).
//!
//! This is the bf16 matmul of mixed-precision training (PyTorch's CPU
//! autocast does the same for its linear layers, then also rounds the
//! output to bf16; here the output, the master weights, the gradients'
//! storage and everything else stay `f32`). Only the matrix products of
//! [`linear`](super::linear) take it, and only when asked
//! ([`Ctx::with_matmul`](crate::layers::Ctx::with_matmul)): it changes the numbers, to bf16's
//! 8 significant bits per factor.
//!
//! Layout. Both factors are packed into 16 × 32 bf16 tiles (1 KiB): the
//! left one row-major, the right one in the pair-interleaved ("VNNI")
//! layout the tile unit reads, rows of `k` padded with zeros to a multiple
//! of 32 and `m`, `n` to multiples of 32. Each task computes one 32-row
//! block against a group of 32-column blocks, 2 × 2 accumulator tiles at a
//! time over the whole of `k`. The AMX instructions are written with
//! `asm!` (Rust's AMX intrinsics are unstable); Linux grants a process the
//! tile state on request ([`available`]).

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::sync::OnceLock;

use rayon::prelude::*;

use super::simd;

/// Rows and columns of one accumulator tile (`f32`), rows of an operand tile.
pub(super) const T: usize = 16;
/// bf16 elements of `k` per operand tile row (64 bytes).
pub(super) const KT: usize = 32;
/// bf16 elements of one operand tile.
pub(super) const TILE: usize = T * KT;
/// Column blocks (of 32) per task.
const GROUP: usize = 8;

/// Whether this process can run AMX bf16 products: the CPU has AMX-TILE and
/// AMX-BF16 and the kernel granted the tile data state
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, asked once).
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    // CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE
    let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
    if edx & (1 << 22) == 0 || edx & (1 << 24) == 0 {
        return false;
    }
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    extern "C" {
        fn syscall(number: i64, ...) -> i64;
    }
    // SAFETY: a permission request; it changes nothing but this process's
    // permitted extended state
    unsafe { syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// `x` rounded to bf16 (nearest, ties to even; NaN stays NaN).
#[inline]
pub fn bf16_bits(x: f32) -> u16 {
    simd::bf16(x)
}

/// The `f32` value of a bf16.
#[inline]
pub fn bf16_value(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// A strided `f32` matrix: element `(i, j)` at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub struct Strided {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}
// SAFETY: read-only views shared by the packing tasks
unsafe impl Send for Strided {}
unsafe impl Sync for Strided {}

impl Strided {
    /// Element `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` is inside the matrix.
    #[inline]
    unsafe fn at(&self, i: usize, j: usize) -> f32 {
        *self.addr(i, j)
    }

    /// The address of element `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` is inside the matrix.
    #[inline]
    unsafe fn addr(&self, i: usize, j: usize) -> *const f32 {
        self.ptr.offset(i as isize * self.rs + j as isize * self.cs)
    }
}

#[derive(Clone, Copy)]
pub(super) struct Out(pub(super) *mut f32, pub(super) isize, pub(super) isize);
// SAFETY: each task writes its own block of rows
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The address of element `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` is inside the matrix.
    #[inline]
    pub(super) unsafe fn at(&self, i: usize, j: usize) -> *mut f32 {
        self.0.offset(i as isize * self.1 + j as isize * self.2)
    }

    /// Row `i`, columns `j0..j0 + src.len()`, set to `src` or, with
    /// `accumulate`, incremented by it. Not read unless `accumulate` (an
    /// uninitialised destination is fine then).
    ///
    /// # Safety
    /// The elements are inside the matrix; no other thread writes them.
    pub(super) unsafe fn put_row(&self, i: usize, j0: usize, src: &[f32], accumulate: bool) {
        let d = self.at(i, j0);
        if self.2 == 1 && !accumulate {
            std::ptr::copy_nonoverlapping(src.as_ptr(), d, src.len());
        } else if self.2 == 1 {
            let d = std::slice::from_raw_parts_mut(d, src.len());
            d.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
        } else {
            for (col, &v) in src.iter().enumerate() {
                let d = d.offset(col as isize * self.2);
                *d = if accumulate { *d + v } else { v };
            }
        }
    }
}

/// A buffer of `n` zeros handed to `fill` in chunks of `chunk` elements
/// (the last one shorter where `chunk` does not divide `n`) on the rayon
/// pool, chunk `i` as `fill(i, chunk)`: each chunk is zeroed by its own
/// task just before it is filled, where `vec![0; n]` would zero the whole
/// buffer on one thread first (packing the LM head's 30,000 × 512 factor:
/// 31 MB).
fn zeroed_chunks<E: Copy + Send>(
    n: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [E]) + Sync,
) -> Vec<E> {
    assert!(chunk > 0);
    let mut p: Vec<E> = Vec::with_capacity(n);
    let base = super::SendPtr(p.as_mut_ptr());
    (0..n.div_ceil(chunk)).into_par_iter().for_each(|i| {
        let len = chunk.min(n - i * chunk);
        // SAFETY: elements i·chunk.. i·chunk + len lie in the capacity and
        // belong to this task alone; `E` is an integer type here (u16,
        // u32), for which all-zero bytes are a value, so the chunk is
        // initialised before it is referenced
        let tiles = unsafe {
            let at = base.get().add(i * chunk);
            std::ptr::write_bytes(at, 0, len);
            std::slice::from_raw_parts_mut(at, len)
        };
        fill(i, tiles);
    });
    // SAFETY: the chunks cover all n elements, each zeroed above
    unsafe { p.set_len(n) };
    p
}

/// Row tiles converted together where the left factor's columns are
/// contiguous: a column's 128 rows are read at once (one page per `k`,
/// not one per row tile).
const COLUMN_RUN_TILES: usize = 8;

/// `lhs` (m × k) as row tiles: tile `(mt, kb)` at `(mt·kb_count + kb)·TILE`,
/// row-major 16 × 32.
pub(super) fn pack_lhs(a: Strided, m: usize, k: usize, m_tiles: usize, kbs: usize) -> Vec<u16> {
    let n = m_tiles * kbs * TILE;
    if a.cs != 1 && a.rs == 1 {
        // columns are contiguous: convert a run of rows of each column at
        // once, then scatter them down the run's tiles
        return zeroed_chunks(
            n,
            COLUMN_RUN_TILES * kbs * TILE,
            |run_i, tiles: &mut [u16]| {
                let i0 = run_i * COLUMN_RUN_TILES * T;
                let rows = (COLUMN_RUN_TILES * T).min(m.saturating_sub(i0));
                if rows == 0 {
                    return;
                }
                let mut run = [0u16; COLUMN_RUN_TILES * T];
                for kk in 0..k {
                    // SAFETY: rows i0..i0 + rows of column kk are inside m × k
                    let col = unsafe { std::slice::from_raw_parts(a.addr(i0, kk), rows) };
                    simd::to_bf16(&mut run[..rows], col);
                    let at = (kk / KT) * TILE + kk % KT;
                    for (r, &h) in run[..rows].iter().enumerate() {
                        tiles[(r / T) * kbs * TILE + at + (r % T) * KT] = h;
                    }
                }
            },
        );
    }
    zeroed_chunks(n, kbs * TILE, |mt, tiles: &mut [u16]| {
        let rows = T.min(m.saturating_sub(mt * T));
        for r in 0..rows {
            let i = mt * T + r;
            if a.cs == 1 {
                // SAFETY: row i is k contiguous elements of the matrix
                let row = unsafe { std::slice::from_raw_parts(a.ptr.offset(i as isize * a.rs), k) };
                for (kb, seg) in row.chunks(KT).enumerate() {
                    let at = kb * TILE + r * KT;
                    simd::to_bf16(&mut tiles[at..at + seg.len()], seg);
                }
            } else {
                for kk in 0..k {
                    // SAFETY: (i, kk) is inside the m × k matrix
                    let v = unsafe { a.at(i, kk) };
                    tiles[(kk / KT) * TILE + r * KT + kk % KT] = bf16_bits(v);
                }
            }
        }
    })
}

/// `rhs` (k × n) as column tiles in the pair-interleaved layout: tile
/// `(nt, kb)` at `(nt·kb_count + kb)·TILE`, element `(kk, j)` of the tile at
/// `(kk / 2)·32 + 2j + kk % 2` (as `u32`s: pair `kk / 2`, column `j` at
/// `(kk / 2)·16 + j`).
pub(super) fn pack_rhs(b: Strided, k: usize, n: usize, n_tiles: usize, kbs: usize) -> Vec<u32> {
    zeroed_chunks(
        n_tiles * kbs * TILE / 2,
        kbs * TILE / 2,
        |nt, tiles: &mut [u32]| {
            let j0 = nt * T;
            let cols = T.min(n.saturating_sub(j0));
            if cols == 0 {
                return;
            }
            // tiles of one column block, consecutive in k: pair q of the
            // block's k at u32 offset q·16 (16 columns per pair row)
            if b.cs == 1 && b.rs >= 0 && k > 0 {
                // rows of the right factor are contiguous: pairs of rows
                // interleaved, the block's whole k in one pass
                // SAFETY: rows 0..k, columns j0..j0 + cols, are inside k × n
                let rows = unsafe {
                    std::slice::from_raw_parts(b.addr(0, j0), (k - 1) * b.rs as usize + cols)
                };
                simd::interleave_bf16(tiles, rows, b.rs as usize, k, cols);
            } else if b.rs == 1 {
                // columns of the right factor are contiguous: a column
                // converted to bf16 is already its sequence of pairs
                let mut pairs = vec![0u16; 2 * k.div_ceil(2)];
                for c in 0..cols {
                    // SAFETY: column j0 + c, rows 0..k, is inside k × n
                    let col = unsafe {
                        std::slice::from_raw_parts(b.ptr.offset((j0 + c) as isize * b.cs), k)
                    };
                    simd::to_bf16(&mut pairs[..k], col);
                    for (q, pair) in pairs.chunks_exact(2).enumerate() {
                        tiles[q * T + c] = ((pair[1] as u32) << 16) | pair[0] as u32;
                    }
                }
            } else {
                for kk in 0..k {
                    for c in 0..cols {
                        // SAFETY: (kk, j0 + c) is inside the k × n matrix
                        let v = bf16_bits(unsafe { b.at(kk, j0 + c) }) as u32;
                        tiles[(kk / 2) * T + c] |= v << (16 * (kk % 2));
                    }
                }
            }
        },
    )
}

/// The tile configuration: tiles 0–3 accumulate (16 rows × 64 bytes of
/// `f32`), 4–5 hold left tiles, 6–7 right tiles (16 rows × 64 bytes).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// `dst (m × n) [+]= bf16(lhs) · bf16(rhs)`, `f32` sums. `dst` is given by
/// its pointer and `[row stride, column stride]`.
///
/// # Safety
/// [`available`] must hold; every pointer must address the whole matrix
/// its strides describe, and `dst` must not alias `lhs` or `rhs`.
#[cfg(target_arch = "x86_64")]
pub unsafe fn matmul(
    (m, k, n): (usize, usize, usize),
    dst: *mut f32,
    [dst_rs, dst_cs]: [isize; 2],
    accumulate: bool,
    lhs: Strided,
    rhs: Strided,
) {
    debug_assert!(available());
    if m == 0 || n == 0 {
        return;
    }
    let kbs = k.div_ceil(KT).max(1);
    let m_tiles = 2 * m.div_ceil(2 * T);
    let n_tiles = 2 * n.div_ceil(2 * T);
    let a = pack_lhs(lhs, m, k, m_tiles, kbs);
    let b = pack_rhs(rhs, k, n, n_tiles, kbs);
    let (m_blocks, n_blocks) = (m_tiles / 2, n_tiles / 2);
    let groups = n_blocks.div_ceil(GROUP);
    let out = Out(dst, dst_rs, dst_cs);
    (0..m_blocks * groups).into_par_iter().for_each(|task| {
        // a group of right panels stays in cache while the left blocks pass
        let (g, mb) = (task / m_blocks, task % m_blocks);
        let mut c = [0f32; 4 * T * T];
        // SAFETY: AMX is available (caller); the packed tiles lie inside
        // `a` and `b` (block indices below their tile counts); `c` holds
        // the four accumulator tiles; each task writes its own rows of
        // `dst`, inside m × n
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly));
            for nb in g * GROUP..((g + 1) * GROUP).min(n_blocks) {
                block(&a, &b, mb, nb, kbs, &mut c);
                for (t, tile) in c.chunks(T * T).enumerate() {
                    let (i0, j0) = (mb * 2 * T + (t / 2) * T, nb * 2 * T + (t % 2) * T);
                    let cols = T.min(n.saturating_sub(j0));
                    for r in 0..T.min(m.saturating_sub(i0)) {
                        out.put_row(i0 + r, j0, &tile[r * T..r * T + cols], accumulate);
                    }
                }
            }
            std::arch::asm!("tilerelease", options(nostack, nomem));
        }
    });
}

/// AMX exists on x86-64 only: [`available`] is false elsewhere.
///
/// # Safety
/// Never to be called (see [`available`]).
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn matmul(
    _: (usize, usize, usize),
    _: *mut f32,
    _: [isize; 2],
    _: bool,
    _: Strided,
    _: Strided,
) {
    unreachable!("AMX products need x86-64, where `amx::available` holds")
}

/// One 32 × 32 block of the product over all of `k`: left tiles `2mb`,
/// `2mb + 1`, right tiles `2nb`, `2nb + 1`; the four 16 × 16 results into
/// `c` (top-left, top-right, bottom-left, bottom-right).
///
/// # Safety
/// The tile configuration is loaded; the block indices are in range.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn block(a: &[u16], b: &[u32], mb: usize, nb: usize, kbs: usize, c: &mut [f32; 4 * T * T]) {
    let stride = 64usize;
    let a0 = a.as_ptr().add(2 * mb * kbs * TILE);
    let a1 = a0.add(kbs * TILE);
    // the right tiles as u32 pairs: half the offsets
    let b0 = b.as_ptr().add(2 * nb * kbs * TILE / 2);
    let b1 = b0.add(kbs * TILE / 2);
    std::arch::asm!(
        "tilezero tmm0",
        "tilezero tmm1",
        "tilezero tmm2",
        "tilezero tmm3",
        options(nostack, nomem)
    );
    for kb in 0..kbs {
        let o = kb * TILE;
        std::arch::asm!(
            "tileloadd tmm4, [{a0} + {s}*1]",
            "tileloadd tmm5, [{a1} + {s}*1]",
            "tileloadd tmm6, [{b0} + {s}*1]",
            "tileloadd tmm7, [{b1} + {s}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a0 = in(reg) a0.add(o),
            a1 = in(reg) a1.add(o),
            b0 = in(reg) b0.add(o / 2),
            b1 = in(reg) b1.add(o / 2),
            s = in(reg) stride,
            options(nostack, readonly)
        );
    }
    let cp = c.as_mut_ptr();
    std::arch::asm!(
        "tilestored [{c0} + {s}*1], tmm0",
        "tilestored [{c1} + {s}*1], tmm1",
        "tilestored [{c2} + {s}*1], tmm2",
        "tilestored [{c3} + {s}*1], tmm3",
        c0 = in(reg) cp,
        c1 = in(reg) cp.add(T * T),
        c2 = in(reg) cp.add(2 * T * T),
        c3 = in(reg) cp.add(3 * T * T),
        s = in(reg) stride,
        options(nostack)
    );
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        assert_eq!(
            bf16_value(bf16_bits(1.0 + 1.0 / 256.0)),
            1.0,
            "a tie: to even"
        );
        assert_eq!(
            bf16_value(bf16_bits(1.0 + 3.0 / 256.0)),
            1.0 + 4.0 / 256.0,
            "a tie: to even"
        );
        assert_eq!(bf16_value(bf16_bits(1.0 + 1.1 / 256.0)), 1.0 + 2.0 / 256.0);
        assert_eq!(bf16_value(bf16_bits(-2.5)), -2.5);
        assert!(bf16_value(bf16_bits(f32::NAN)).is_nan());
        assert_eq!(bf16_value(bf16_bits(f32::INFINITY)), f32::INFINITY);
    }

    /// The product against an f64 reference on the bf16-rounded factors:
    /// ragged shapes (odd `k`), every storage order of both factors (each
    /// packing path), with and without accumulation.
    #[test]
    fn amx_product_matches_the_reference_on_rounded_factors() {
        if !available() {
            eprintln!("no AMX on this machine: the AMX product is not exercised");
            return;
        }
        for mkn in [(45, 71, 83), (37, 1100, 300)] {
            product_matches_the_reference(mkn, matmul);
        }
    }

    /// The left factor's row tiles on any CPU (the AMX product itself
    /// needs AMX): every storage order, and the column path's runs with a
    /// short last one (m = 150: 10 tiles, runs of 8), element by element
    /// against the layout, padding zero.
    #[test]
    fn left_tiles_hold_each_element_where_the_layout_says() {
        for (m, k) in [(150usize, 45usize), (7, 3), (16, 32)] {
            let (m_tiles, kbs) = (m.div_ceil(T), k.div_ceil(KT));
            let at = |i: usize, kk: usize| ((i * 31 + kk * 7) % 97) as f32 - 48.5;
            for order in 0..3 {
                let (buf, view) = store(m, k, order, at);
                let p = pack_lhs(view(&buf), m, k, m_tiles, kbs);
                assert_eq!(p.len(), m_tiles * kbs * TILE);
                for mt in 0..m_tiles {
                    for kb in 0..kbs {
                        for r in 0..T {
                            for c in 0..KT {
                                let (i, kk) = (mt * T + r, kb * KT + c);
                                let want = if i < m && kk < k {
                                    bf16_bits(at(i, kk))
                                } else {
                                    0
                                };
                                let got = p[(mt * kbs + kb) * TILE + r * KT + c];
                                assert_eq!(got, want, "{m}×{k} order {order}: ({i}, {kk})");
                            }
                        }
                    }
                }
            }
        }
    }

    /// The signature of a bf16 product ([`matmul`], `dpbf16::matmul`).
    pub(in crate::kernels) type Product =
        unsafe fn((usize, usize, usize), *mut f32, [isize; 2], bool, Strided, Strided);

    /// `product` against an f64 reference on the bf16-rounded factors, for
    /// every storage order of both factors (each packing path), with and
    /// without accumulation, on a row-major and a column-major destination.
    pub(in crate::kernels) fn product_matches_the_reference(
        (m, k, n): (usize, usize, usize),
        product: Product,
    ) {
        let val = |i: usize, s: u64| {
            let h = (i as u64 ^ (s << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        // logical A (m × k) and B (k × n), element values by position
        let a_at = |i: usize, kk: usize| val(i * k + kk, 1);
        let b_at = |kk: usize, j: usize| val(kk * n + j, 2);
        let c0: Vec<f32> = (0..m * n).map(|i| val(i, 3)).collect();
        let r = |x: f32| bf16_value(bf16_bits(x)) as f64;
        let want_at =
            |i: usize, j: usize| -> f64 { (0..k).map(|kk| r(a_at(i, kk)) * r(b_at(kk, j))).sum() };
        let want: Vec<f64> = (0..m * n).map(|x| want_at(x / n, x % n)).collect();
        // storage: row-major, column-major, or row-major with a padded row
        // (neither stride 1 for the padded transposed case)
        for a_order in 0..3 {
            for b_order in 0..3 {
                let (a_buf, a_view) = store(m, k, a_order, a_at);
                let (b_buf, b_view) = store(k, n, b_order, b_at);
                for (accumulate, dst_order) in [(false, 0), (true, 0), (true, 1)] {
                    // the destination as `dst_order` stores it
                    let (mut c, c_view) = store(m, n, dst_order, |i, j| c0[i * n + j]);
                    let cv = c_view(&c);
                    // SAFETY: the views address their buffers; the product
                    // is available (the caller checked)
                    unsafe {
                        product(
                            (m, k, n),
                            c.as_mut_ptr(),
                            [cv.rs, cv.cs],
                            accumulate,
                            a_view(&a_buf),
                            b_view(&b_buf),
                        );
                    }
                    for i in 0..m {
                        for j in 0..n {
                            let base = if accumulate {
                                c0[i * n + j] as f64
                            } else {
                                0.0
                            };
                            let want = base + want[i * n + j];
                            let got = c[i * cv.rs as usize + j * cv.cs as usize] as f64;
                            assert!(
                                (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                                "{m}×{k}×{n}, orders {a_order}/{b_order}/{dst_order} ({i}, {j}): {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// A rows × cols matrix stored in `order` (0 row-major, 1 column-major,
    /// 2 column-major with every column padded by 3: strides (2·rows+3, 2)
    /// on a doubled buffer, neither 1), and a view builder.
    pub(in crate::kernels) fn store(
        rows: usize,
        cols: usize,
        order: usize,
        at: impl Fn(usize, usize) -> f32,
    ) -> (Vec<f32>, impl Fn(&[f32]) -> Strided) {
        let (rs, cs, len) = match order {
            0 => (cols, 1, rows * cols),
            1 => (1, rows, rows * cols),
            _ => (2, 2 * rows + 3, cols * (2 * rows + 3)),
        };
        let mut buf = vec![f32::NAN; len];
        for i in 0..rows {
            for j in 0..cols {
                buf[i * rs + j * cs] = at(i, j);
            }
        }
        let view = move |b: &[f32]| Strided {
            ptr: b.as_ptr(),
            rs: rs as isize,
            cs: cs as isize,
        };
        (buf, view)
    }
}
