//! Where a figure came from: the CPU's model, the threads a step runs on,
//! which build of march's element-wise loops runs and which of gemm's
//! microkernels, and the f32 FMA peak of those threads: computed from the
//! clock, and measured.

use crate::kernels::microkernels;
use crate::kernels::simd::{self, Isa};

/// The machine a benchmark ran on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo` (or the architecture elsewhere).
    pub cpu_model: String,
    /// Threads of the step (rayon's pool).
    pub threads: usize,
    /// The build of march's loops that runs ([`simd::isa`]).
    pub loops: Isa,
    /// gemm 0.19's f32 microkernel family on this CPU.
    pub gemm: &'static str,
    /// The first core's clock as `/proc/cpuinfo` reports it (`cpu MHz`), in
    /// MHz: under a hypervisor, the nominal clock, not the boost.
    pub mhz: Option<f64>,
    /// The clock the step's threads run at, measured ([`measured_clock_ghz`]),
    /// in GHz.
    pub clock_ghz: Option<f64>,
    /// The FMA units' rate on all the step's threads at once, measured
    /// ([`measured_fma_gflops`]), in GFLOP/s.
    pub fma_measured_gflops: Option<f64>,
    /// `vendor_id`, `cpu family` and `model` of `/proc/cpuinfo`, e.g.
    /// ("AuthenticAMD", 25, 17): Zen 4; the model name alone may be just
    /// "AMD EPYC" under a hypervisor.
    pub vendor: String,
    pub family: Option<u32>,
    pub model: Option<u32>,
}

impl Machine {
    pub fn here() -> Machine {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            info.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let gemm = gemm_kernel();
        Machine {
            cpu_model: field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string()),
            threads: rayon::current_num_threads(),
            loops: simd::isa(),
            gemm,
            mhz: field("cpu MHz").and_then(|v| v.parse().ok()),
            clock_ghz: measured_clock_ghz(),
            fma_measured_gflops: measured_fma_gflops(gemm),
            vendor: field("vendor_id").unwrap_or_default(),
            family: field("cpu family").and_then(|v| v.parse().ok()),
            model: field("model").and_then(|v| v.parse().ok()),
        }
    }

    /// FMA instructions of gemm's width each core issues per cycle: two on
    /// the x86-64 server cores march is measured on (Zen 2–3 at 256 bits,
    /// Skylake-SP and later Xeons at 512), but one at 512 bits on Zen 4
    /// (family 25 with AVX-512), which runs a 512-bit FMA as two 256-bit
    /// halves on its two FMA pipes.
    pub fn fma_units(&self) -> usize {
        let zen4 = self.vendor == "AuthenticAMD" && self.family == Some(25);
        if zen4 && self.gemm == "avx512f" {
            1
        } else {
            2
        }
    }

    /// f32 lanes of one vector register of the widest FMA gemm uses.
    pub fn lanes(&self) -> usize {
        match self.gemm {
            "avx512f" => 16,
            "fma" => 8,
            _ => 4,
        }
    }

    /// The clock the peak is computed at, in GHz, and where it came from:
    /// the measured one, else `/proc/cpuinfo`'s.
    pub fn clock(&self) -> Option<(f64, &'static str)> {
        match (self.clock_ghz, self.mhz) {
            (Some(g), _) => Some((g, "measured")),
            (None, Some(m)) => Some((m / 1e3, "/proc/cpuinfo")),
            (None, None) => None,
        }
    }

    /// threads × [`Machine::fma_units`] × lanes × 2 FLOP × [`Machine::clock`],
    /// in GFLOP/s; `None` without a clock.
    pub fn fma_peak_gflops(&self) -> Option<f64> {
        let (ghz, _) = self.clock()?;
        Some((self.threads * self.fma_units() * self.lanes() * 2) as f64 * ghz)
    }

    /// One line: CPU (with its family and model), threads, loops, gemm
    /// kernel.
    pub fn summary(&self) -> String {
        let id = match (self.family, self.model) {
            (Some(f), Some(m)) => format!(", family {f} model {m}"),
            _ => String::new(),
        };
        let clock = match self.clock_ghz {
            Some(g) => format!(" at {g:.2} GHz measured"),
            None => String::new(),
        };
        format!(
            "{}{id} ({} thread(s){clock}); march's loops: {}; gemm's f32 microkernels: {}",
            self.cpu_model, self.threads, self.loops, self.gemm
        )
    }
}

/// The clock of the step's threads while all of them are busy, in GHz: on
/// every pool thread at once, a chain of dependent 64-bit integer adds
/// (one per cycle on every x86-64 core: each waits for the one before it)
/// timed over 2²⁵ adds, best of 5 rounds, the slowest thread's rate. Unlike
/// `cpu MHz`, which a hypervisor reports as the nominal clock, this
/// includes the boost; a core that clocks down for wide vector work (some
/// Xeons under AVX-512) runs gemm below it. `None` off x86-64.
pub fn measured_clock_ghz() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        const ITERS: u64 = 1 << 21; // × 16 adds
        let best = (0..5)
            .map(|_| {
                rayon::broadcast(|_| {
                    let t = std::time::Instant::now();
                    add_chain(ITERS);
                    (ITERS * 16) as f64 / t.elapsed().as_secs_f64() / 1e9
                })
                .into_iter()
                .fold(f64::INFINITY, f64::min)
            })
            .fold(0.0, f64::max);
        best.is_finite().then_some(best)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// `16 · iters` dependent adds: 16 cycles an iteration (the loop counter is
/// a separate chain, its `sub`/`jnz` fused and issued beside them). Each add
/// takes its addend from a register: Intel's cores from Golden Cove on
/// (Sapphire Rapids Xeons) fold a chain of `add reg, imm` in the renamer
/// and retire several a cycle, which read as a 20 GHz clock on one such
/// Xeon (7 December 2026); a register operand is not folded.
#[cfg(target_arch = "x86_64")]
fn add_chain(iters: u64) {
    // SAFETY: registers only; no memory, no stack
    unsafe {
        std::arch::asm!(
            "2:",
            "add {x}, {one}", "add {x}, {one}", "add {x}, {one}", "add {x}, {one}",
            "add {x}, {one}", "add {x}, {one}", "add {x}, {one}", "add {x}, {one}",
            "add {x}, {one}", "add {x}, {one}", "add {x}, {one}", "add {x}, {one}",
            "add {x}, {one}", "add {x}, {one}", "add {x}, {one}", "add {x}, {one}",
            "sub {n}, 1",
            "jnz 2b",
            x = inout(reg) 0u64 => _,
            n = inout(reg) iters.max(1) => _,
            one = in(reg) std::hint::black_box(1u64),
            options(nomem, nostack),
        );
    }
}

/// Independent FMA chains of the measuring loop at each width: as many
/// accumulators as gemm's microkernels hold (4 × 6 of the 32 AVX-512
/// registers, 2 × 6 of AVX2's 16, so that none is spilled), more than any
/// x86-64 core needs to hide its FMA latency (4–5 cycles × 2 pipes).
const CHAINS_512: usize = 24;
const CHAINS_256: usize = 12;

/// The f32 FMA rate of the step's threads while all of them are busy, in
/// GFLOP/s: on every pool thread at once, a loop of independent FMAs of
/// gemm's width (`kernel`: `avx512f`, 24 chains of 512 bits, or `fma`, 12
/// of 256) on registers only, 2²² iterations, best of 3 rounds, the
/// slowest thread's rate × the threads. It is what the FMA units deliver at
/// the clock they run wide vector work at: below the computed peak where a
/// core clocks down for AVX-512, or where it issues fewer FMAs a cycle than
/// [`Machine::fma_units`] assumes; no matrix product can beat it. `None`
/// for gemm's scalar kernels.
pub fn measured_fma_gflops(kernel: &str) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let (chains, lanes) = match kernel {
            "avx512f" => (CHAINS_512, 16),
            "fma" => (CHAINS_256, 8),
            _ => return None,
        };
        const ITERS: u64 = 1 << 22;
        let flop = (ITERS as usize * chains * lanes * 2) as f64;
        let best = (0..3)
            .map(|_| {
                let rates = rayon::broadcast(|_| {
                    let t = std::time::Instant::now();
                    std::hint::black_box(fma_chains(kernel, ITERS));
                    flop / t.elapsed().as_secs_f64() / 1e9
                });
                let slowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
                slowest * rates.len() as f64
            })
            .fold(0.0, f64::max);
        best.is_finite().then_some(best)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = kernel;
        None
    }
}

/// `acc ← a·acc + b` on [`CHAINS_512`] or [`CHAINS_256`] registers of
/// `kernel`'s width, `iters` times, with `a` = `b` = 1 kept opaque (so
/// that each stays an FMA the compiler cannot fold into an add): every
/// lane ends at `iters` (exactly, below 2²⁴). Returns the sum of every
/// lane of every accumulator (so that no chain is dead code): chains ·
/// lanes · `iters`; 0 for a kernel this CPU lacks.
#[cfg(target_arch = "x86_64")]
fn fma_chains(kernel: &str, iters: u64) -> f32 {
    use std::arch::is_x86_feature_detected as has;
    let (a, b) = std::hint::black_box((1.0f32, 1.0f32));
    match kernel {
        // SAFETY: the features each loop is compiled for are present
        "avx512f" if has!("avx512f") => unsafe { fma_chains_512(iters, a, b) },
        "fma" if has!("avx2") && has!("fma") => unsafe { fma_chains_256(iters, a, b) },
        _ => 0.0,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn fma_chains_512(iters: u64, a: f32, b: f32) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(a), _mm512_set1_ps(b));
    let mut acc = [_mm512_setzero_ps(); CHAINS_512];
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(a, *x, b);
        }
    }
    let sum = acc
        .iter()
        .fold(_mm512_setzero_ps(), |s, &x| _mm512_add_ps(s, x));
    _mm512_reduce_add_ps(sum)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains_256(iters: u64, a: f32, b: f32) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(a), _mm256_set1_ps(b));
    let mut acc = [_mm256_setzero_ps(); CHAINS_256];
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(a, *x, b);
        }
    }
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &x| _mm256_add_ps(s, x));
    let mut lanes = [0.0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
    lanes.iter().sum()
}

/// The f32 microkernels march's products run: gemm 0.19's own choice by
/// `avx512f`, then `fma` (gemm-common 0.19, `gemm.rs`, `init_gemm_fn`;
/// march enables its `x86-v4` feature, so the first is compiled in),
/// unless `--gemm` narrowed it ([`microkernels::choose`]).
fn gemm_kernel() -> &'static str {
    microkernels::chosen().name()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(vendor: &str, family: u32, gemm: &'static str) -> Machine {
        Machine {
            cpu_model: "test".into(),
            threads: 2,
            loops: Isa::Baseline,
            gemm,
            mhz: Some(2600.0),
            clock_ghz: None,
            fma_measured_gflops: None,
            vendor: vendor.into(),
            family: Some(family),
            model: Some(17),
        }
    }

    #[test]
    fn zen4_issues_one_512_bit_fma_per_cycle() {
        let zen4 = machine("AuthenticAMD", 25, "avx512f");
        assert_eq!(zen4.fma_units(), 1);
        // 2 threads × 1 × 16 lanes × 2 FLOP × 2.6 GHz
        assert!((zen4.fma_peak_gflops().unwrap() - 166.4).abs() < 1e-9);
        assert_eq!(machine("AuthenticAMD", 25, "fma").fma_units(), 2);
        assert_eq!(machine("AuthenticAMD", 26, "avx512f").fma_units(), 2);
        assert_eq!(machine("GenuineIntel", 6, "avx512f").fma_units(), 2);
    }

    #[test]
    fn the_measured_clock_is_preferred_to_cpuinfo() {
        let mut m = machine("AuthenticAMD", 26, "avx512f");
        assert_eq!(m.clock(), Some((2.6, "/proc/cpuinfo")));
        m.clock_ghz = Some(3.5);
        assert_eq!(m.clock(), Some((3.5, "measured")));
        // 2 threads × 2 × 16 lanes × 2 FLOP × 3.5 GHz
        assert!((m.fma_peak_gflops().unwrap() - 448.0).abs() < 1e-9);
    }

    /// The add chain runs one add per cycle: its rate is a clock a CPU can
    /// have (a wrong chain, e.g. adds the core runs in parallel, would read
    /// several times the clock).
    /// The measuring loop computes what it says, for each width this CPU
    /// has, and its rate per thread is one a core at the measured clock
    /// can have: at most two FMAs of that width a cycle (a quarter of the
    /// clock's margin for its measurement), at least a quarter of that. A
    /// loop whose chains the compiler had dropped as dead code read 3× the
    /// bound on a Xeon.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_fma_loop_runs_its_chains_and_gives_a_rate() {
        use std::arch::is_x86_feature_detected as has;
        for (kernel, chains, lanes, present) in [
            ("avx512f", CHAINS_512, 16, has!("avx512f")),
            ("fma", CHAINS_256, 8, has!("avx2") && has!("fma")),
        ] {
            if !present {
                continue;
            }
            let all = (chains * lanes * 1000) as f32;
            assert_eq!(fma_chains(kernel, 1000), all, "{kernel}");
            // the other tests of this binary share the cores: a measurement
            // they preempt reads slow, never fast, the clock's as well as the
            // rate's, so the best of a few of each stands for the machine
            let (mut clock, mut best) = (0.0f64, 0.0f64);
            let threads = rayon::current_num_threads() as f64;
            for _ in 0..5 {
                clock = clock.max(measured_clock_ghz().unwrap());
                best = best.max(measured_fma_gflops(kernel).unwrap() / threads);
                let most = (2 * lanes * 2) as f64 * clock * 1.25;
                if (most / 4.0..most).contains(&best) {
                    break;
                }
            }
            let most = (2 * lanes * 2) as f64 * clock * 1.25;
            assert!(
                (most / 4.0..most).contains(&best),
                "{kernel}: {best:.0} GFLOP/s a thread, outside [{:.0}, {most:.0})",
                most / 4.0
            );
        }
        assert_eq!(measured_fma_gflops("scalar"), None);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_measured_clock_is_a_plausible_clock() {
        let ghz = measured_clock_ghz().unwrap();
        assert!((0.5..7.0).contains(&ghz), "{ghz} GHz");
    }
}
