//! Allocator settings for training.
//!
//! A train step allocates and frees hundreds of large tensors (activations,
//! gradients, kernel buffers). With glibc's defaults, most blocks above a
//! dynamic threshold are fresh `mmap`s that the kernel page-faults and
//! zeroes on first touch, and freed heap memory is trimmed back to the
//! kernel: ~15% of a baseline step's samples were page faults, `memset` and
//! page clearing. [`keep_freed_memory`] serves every block from the heap
//! (no `mmap` per block) and keeps freed memory in the process, so the next
//! step reuses the same pages.
//!
//! "Every block" matters: glibc caps the mmap threshold at 32 MiB, and a
//! seed-scale step has larger tensors (the logits and their gradient,
//! 8 × 52 × 30,000 f32 = 50 MB each; the dense embedding gradient,
//! 30,000 × 512 = 61 MB). With the threshold alone, whether such a block
//! came from the heap's free top or from a fresh `mmap` depended on the
//! allocation history: `march bench Baseline` page-faulted ~36,600 times
//! (143 MB) per step. With no `mmap` at all it faults 0 times per step.
//! (This holds on the main thread, where dfdx allocates the tensors; glibc
//! still maps afresh a block too large for a spawned thread's arena. The
//! `march` binary therefore makes its main thread one of rayon's workers
//! rather than running its command on a spawned one: 50 MB less peak
//! memory for `march bench Baseline`.)
//! The cost: memory freed after the data is loaded stays in the process
//! (reused by the tensors, not returned). Measured: see the README's
//! performance section.
//!
//! [`ParallelZeroing`], the `march` binary's global allocator, clears large
//! zeroed blocks (dfdx's gradient buffers) on every thread of the pool, and
//! skips clearing the ones a kernel is about to write whole
//! ([`unzeroed`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Tunes glibc's malloc as described in the module docs. A no-op on other
/// targets. Call once, early (the `march` binary does, as do the benches).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's mallopt(3) parameters
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_TOP_PAD: i32 = -2;
        const M_MMAP_THRESHOLD: i32 = -3;
        const M_MMAP_MAX: i32 = -4;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes allocator parameters; called before
        // the allocations it affects, valid values (the mmap threshold's
        // maximum on 64-bit glibc is 32 MiB; M_MMAP_MAX 0 is documented as
        // "disables use of mmap")
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            // no block by mmap, whatever its size (the threshold above
            // still turns off glibc's dynamic threshold)
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
            mallopt(M_TOP_PAD, 256 << 20);
        }
    }
}

std::thread_local! {
    /// This thread's [`unzeroed`] state: [`IDLE`], [`ARMED`] or [`SERVED`].
    static UNZEROED: std::cell::Cell<u8> = const { std::cell::Cell::new(IDLE) };
}
/// Zeroed blocks are zeroed.
const IDLE: u8 = 0;
/// The next zeroed block on this thread may come unzeroed.
const ARMED: u8 = 1;
/// One did.
const SERVED: u8 = 2;

/// Whether [`ParallelZeroing`] serves [`unzeroed`] callers unzeroed blocks.
static SERVE: AtomicBool = AtomicBool::new(true);
/// Blocks it has served so.
static SERVED_BLOCKS: AtomicUsize = AtomicUsize::new(0);

/// Whether [`ParallelZeroing`] lets [`unzeroed`] callers' blocks skip their
/// clearing (on by default); off, every zeroed block is zeroed, as the
/// system allocator's: the comparison `tests/unzeroed.rs` makes.
pub fn serve_unzeroed(on: bool) {
    SERVE.store(on, Ordering::Relaxed);
}

/// How many blocks [`ParallelZeroing`] has handed out unzeroed.
pub fn unzeroed_served() -> usize {
    SERVED_BLOCKS.load(Ordering::Relaxed)
}

/// Runs `alloc`, letting the one zeroed allocation it makes on this thread
/// skip its clearing; returns `alloc`'s result and whether a block came
/// unzeroed.
///
/// dfdx allocates every gradient buffer zeroed, for the backward ops to
/// add into; a kernel whose backward writes the whole of a gradient that
/// did not exist yet wants it unzeroed: a step of `SmallBaseline` at
/// batch 16 cleared 146 MB of gradient buffers and kernel scratch of at
/// least 64 KiB, of which 3 MB now (the rest first written by march's
/// kernels). Only where [`ParallelZeroing`] is the global allocator (the
/// `march` binary, the benches, `tests/unzeroed.rs`) does a block come
/// unzeroed; elsewhere this returns
/// `false` and the kernel adds into zeros as before, giving the same bits
/// (every kernel's write is the value its add into `+0` gives).
///
/// # Safety
/// `alloc` makes at most one zeroed allocation, a buffer of `f32` or
/// `f64` values the caller then owns; where this returns `true`, that buffer's contents
/// are arbitrary bytes until written, and the caller writes every element
/// before anything reads one.
pub unsafe fn unzeroed<R>(alloc: impl FnOnce() -> R) -> (R, bool) {
    /// Back to [`IDLE`] however `alloc` ends.
    struct Disarm;
    impl Drop for Disarm {
        fn drop(&mut self) {
            UNZEROED.with(|u| u.set(IDLE));
        }
    }
    if SERVE.load(Ordering::Relaxed) {
        UNZEROED.with(|u| u.set(ARMED));
    }
    let disarm = Disarm;
    let r = alloc();
    let served = UNZEROED.with(|u| u.get()) == SERVED;
    drop(disarm);
    (r, served)
}

/// Whether this zeroed request may skip its clearing ([`unzeroed`] armed on
/// this thread); marks it served.
fn take_unzeroed() -> bool {
    UNZEROED
        .try_with(|u| {
            let armed = u.get() == ARMED;
            if armed {
                u.set(SERVED);
            }
            armed
        })
        .unwrap_or(false)
}

/// The system allocator, with large zeroed blocks cleared by every thread
/// of the rayon pool instead of one (or not at all, where [`unzeroed`]
/// says the block is about to be written whole): dfdx allocates each intermediate's
/// gradient buffer zeroed (`vec![0; n]`, a `calloc`), on the thread that
/// runs the backward, while the pool's other threads wait. Only a request
/// of at least [`ParallelZeroing::MIN`] bytes made on a pool thread is
/// split; anything else is the system allocator's. Install with
/// `#[global_allocator]` (the `march` binary does).
///
/// While its parts run, the allocating thread may run other tasks of the
/// pool (rayon's join steals): as with any parallel loop, a large zeroed
/// allocation must not be made while holding a lock those tasks take.
/// march's kernels make none under a lock.
pub struct ParallelZeroing;

impl ParallelZeroing {
    /// Below this, one thread's `memset` is as fast as a hand-off.
    pub const MIN: usize = 1 << 20;
    /// Bytes per task: a multiple of the cache line.
    const PART: usize = 256 << 10;
}

/// `n` bytes at `p` set to zero by the rayon pool's threads, in parts of
/// [`ParallelZeroing::PART`] (the last one short).
///
/// # Safety
/// `p` must address `n` writable bytes that nothing else uses meanwhile.
unsafe fn zero_in_parallel(p: *mut u8, n: usize) {
    use rayon::prelude::*;
    let at = p as usize;
    // (a range's parallel loop allocates nothing itself: no re-entry
    // beyond the small blocks rayon's bookkeeping may take)
    (0..n.div_ceil(ParallelZeroing::PART))
        .into_par_iter()
        .for_each(|i| {
            let start = i * ParallelZeroing::PART;
            let len = ParallelZeroing::PART.min(n - start);
            // SAFETY: bytes [start, start + len) of the caller's block, each
            // part written by one task
            unsafe { std::ptr::write_bytes((at + start) as *mut u8, 0, len) };
        });
}

// SAFETY: every block comes from `System` and goes back to it with its
// layout; `alloc_zeroed` returns it with all `layout.size()` bytes zero,
// but for the one block an [`unzeroed`] caller asked for, which that
// caller writes whole before anything reads it
unsafe impl std::alloc::GlobalAlloc for ParallelZeroing {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let n = layout.size();
        if take_unzeroed() {
            SERVED_BLOCKS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: `unzeroed`'s caller writes the block before reading it
            return unsafe { std::alloc::System.alloc(layout) };
        }
        if n < Self::MIN || rayon::current_thread_index().is_none() {
            return unsafe { std::alloc::System.alloc_zeroed(layout) };
        }
        let p = unsafe { std::alloc::System.alloc(layout) };
        if p.is_null() {
            return p;
        }
        // SAFETY: the block just allocated, `n` bytes, nothing else's yet
        unsafe { zero_in_parallel(p, n) };
        p
    }
}

#[cfg(test)]
mod tests {
    use super::{zero_in_parallel, ParallelZeroing};
    use std::alloc::{GlobalAlloc, Layout};

    /// Dirty buffers cleared on the pool: every byte zero, the last part
    /// short; nothing past the end touched.
    #[test]
    fn zeroing_on_the_pool_clears_every_part() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for n in [1, ParallelZeroing::PART, 3 * ParallelZeroing::PART + 4100] {
            let mut buf = vec![0xA5u8; n + 1];
            // SAFETY: the first n bytes of `buf`, borrowed by nothing else
            pool.install(|| unsafe { zero_in_parallel(buf.as_mut_ptr(), n) });
            assert!(buf[..n].iter().all(|&b| b == 0), "{n} bytes not all zero");
            assert_eq!(buf[n], 0xA5, "the byte past the end");
        }
    }

    /// `alloc_zeroed` gives zeroed blocks on a pool thread and off it,
    /// above and below the split's threshold (whether glibc reuses a dirty
    /// block here is its choice: the clearing itself is tested above).
    #[test]
    fn zeroed_blocks_are_zero_on_and_off_the_pool() {
        let sizes = [ParallelZeroing::MIN - 64, ParallelZeroing::MIN, 50 << 20];
        let check = || {
            for &n in &sizes {
                let layout = Layout::from_size_align(n, 64).unwrap();
                // SAFETY: a valid non-zero layout; each block freed with it
                unsafe {
                    let p = ParallelZeroing.alloc(layout);
                    std::ptr::write_bytes(p, 0xA5, n);
                    ParallelZeroing.dealloc(p, layout);
                    let z = ParallelZeroing.alloc_zeroed(layout);
                    assert!(!z.is_null());
                    assert!(std::slice::from_raw_parts(z, n).iter().all(|&b| b == 0));
                    ParallelZeroing.dealloc(z, layout);
                }
            }
        };
        check();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            assert!(rayon::current_thread_index().is_some());
            check()
        });
    }
}
