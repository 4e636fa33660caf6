//! `alloc::keep_freed_memory`: a block above glibc's 32 MiB mmap-threshold
//! cap, freed and allocated again on the main thread, reuses the same pages
//! instead of page-faulting a fresh `mmap` in (the seed-scale step's logits
//! and embedding gradient are such blocks). `harness = false`: libtest would
//! run it on a spawned thread, whose arena glibc maps such blocks for
//! afresh whatever `mallopt` says.

/// The process's minor page faults so far (`/proc/self/stat`, field 10).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // the command name (field 2) is parenthesised and may hold spaces
    let after_name = &stat[stat.rfind(')').expect("a ')' in /proc/self/stat") + 2..];
    after_name
        .split(' ')
        .nth(7)
        .expect("field 10")
        .parse()
        .expect("a number")
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn main() {
    print!("test a_large_block_freed_and_allocated_again_is_not_faulted_in_again ... ");
    const PAGE: usize = 4096;
    const BYTES: usize = 96 << 20; // three times the mmap-threshold cap
    march_runtime::alloc::keep_freed_memory();
    let touch = || {
        let mut block = vec![0u8; BYTES];
        for i in (0..BYTES).step_by(PAGE) {
            block[i] = 1;
        }
        std::hint::black_box(&block);
    };
    touch(); // the first time its pages come in
    let before = minor_faults();
    touch();
    let faults = minor_faults() - before;
    // a fresh mapping faults once per page: 24,576 here
    assert!(
        faults < (BYTES / PAGE / 16) as u64,
        "{faults} page faults for a {} MiB block allocated a second time: it was mapped afresh",
        BYTES >> 20
    );
    println!("ok ({faults} page faults the second time)");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() {
    println!("skipped: keep_freed_memory tunes glibc's malloc only");
}
