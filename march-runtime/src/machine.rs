//! Where a figure came from: the CPU's model, the threads a step runs on,
//! which build of march's element-wise loops runs and which of gemm's
//! microkernels, and the theoretical f32 FMA peak of those threads.

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
        Machine {
            cpu_model: field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string()),
            threads: rayon::current_num_threads(),
            loops: simd::isa(),
            gemm: gemm_kernel(),
            mhz: field("cpu MHz").and_then(|v| v.parse().ok()),
            clock_ghz: measured_clock_ghz(),
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

/// gemm 0.19 picks its f32 kernels by `avx512f`, then `fma`
/// (gemm-common 0.19, `gemm.rs`, `init_gemm_fn`); march enables its
/// `x86-v4` feature, so the first is compiled in.
fn gemm_kernel() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return "fma";
        }
    }
    "scalar"
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
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_measured_clock_is_a_plausible_clock() {
        let ghz = measured_clock_ghz().unwrap();
        assert!((0.5..7.0).contains(&ghz), "{ghz} GHz");
    }
}
