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

    /// threads × [`Machine::fma_units`] × lanes × 2 FLOP × clock, in
    /// GFLOP/s; `None` without a clock reading.
    pub fn fma_peak_gflops(&self) -> Option<f64> {
        let ghz = self.mhz? / 1e3;
        Some((self.threads * self.fma_units() * self.lanes() * 2) as f64 * ghz)
    }

    /// One line: CPU (with its family and model), threads, loops, gemm
    /// kernel.
    pub fn summary(&self) -> String {
        let id = match (self.family, self.model) {
            (Some(f), Some(m)) => format!(", family {f} model {m}"),
            _ => String::new(),
        };
        format!(
            "{}{id} ({} thread(s)); march's loops: {}; gemm's f32 microkernels: {}",
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
}
