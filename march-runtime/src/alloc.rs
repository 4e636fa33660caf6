//! Allocator settings for training.
//!
//! A train step allocates and frees hundreds of large tensors (activations,
//! gradients, kernel buffers). With glibc's defaults, most blocks above a
//! dynamic threshold are fresh `mmap`s that the kernel page-faults and
//! zeroes on first touch, and freed heap memory is trimmed back to the
//! kernel: ~15% of a baseline step's samples were page faults, `memset` and
//! page clearing. [`keep_freed_memory`] keeps blocks up to 32 MiB on the heap
//! and freed memory in the process, so the next step reuses the same pages.
//! Measured on the baseline step (2 cores, `march bench Baseline`): see the
//! README's performance section.

/// Tunes glibc's malloc as described in the module docs. A no-op on other
/// targets. Call once, early (the `march` binary does, as do the benches).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's mallopt(3) parameters
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_TOP_PAD: i32 = -2;
        const M_MMAP_THRESHOLD: i32 = -3;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes allocator parameters; called before
        // the allocations it affects, valid values (the mmap threshold's
        // maximum on 64-bit glibc is 32 MiB)
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
            mallopt(M_TOP_PAD, 256 << 20);
        }
    }
}
