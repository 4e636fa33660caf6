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
    /// The first core's clock now (`cpu MHz` of `/proc/cpuinfo`), in MHz.
    pub mhz: Option<f64>,
}

/// FMA units per core assumed for the peak: two on every x86-64 server
/// core march is measured on (Zen 2–4, Skylake-SP and later Xeons).
pub const FMA_UNITS: usize = 2;

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

    /// threads × [`FMA_UNITS`] × lanes × 2 FLOP × clock, in GFLOP/s; `None`
    /// without a clock reading.
    pub fn fma_peak_gflops(&self) -> Option<f64> {
        let ghz = self.mhz? / 1e3;
        Some((self.threads * FMA_UNITS * self.lanes() * 2) as f64 * ghz)
    }

    /// One line: CPU, threads, loops, gemm kernel.
    pub fn summary(&self) -> String {
        format!(
            "{} ({} thread(s)); march's loops: {}; gemm's f32 microkernels: {}",
            self.cpu_model, self.threads, self.loops, self.gemm
        )
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
