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
