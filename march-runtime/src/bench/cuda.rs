//! The GPU's measured matrix-product peaks, for `march bench --device
//! cuda`'s MFU: square cuBLAS products on a handle of march's own (dfdx
//! keeps its handle private) in f32 — what dfdx's matmuls run, plain
//! sgemm —, in TF32 (the same handle in `CUBLAS_TF32_TENSOR_OP_MATH`: what
//! they would reach if dfdx's handle could be set so) and in bf16 with f32
//! accumulation (what a mixed-precision scheme would reach).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Result};
use cudarc::cublas::{sys, CudaBlas, Gemm, GemmConfig};
use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::DeviceRepr;
use cudarc::driver::{CudaDevice, CudaSlice, DevicePtr, DevicePtrMut, ValidAsZeroBits};

/// The device and its measured peaks, in GFLOP/s.
#[derive(Debug, Clone)]
pub struct Peaks {
    /// e.g. "CUDA device 0: compute capability 9.0, 132 SMs at 1.98 GHz".
    pub device: String,
    /// The square size measured.
    pub n: usize,
    pub f32: f64,
    pub tf32: f64,
    pub bf16: f64,
}

fn attr(dev: &CudaDevice, a: Attr) -> Result<i32> {
    dev.attribute(a).map_err(|e| anyhow!("{e:?}"))
}

/// Best of `reps` timed batches of 4 products `n × n · n × n` each.
fn best_rate<T, F>(dev: &Arc<CudaDevice>, n: usize, reps: usize, mut gemm: F) -> Result<f64>
where
    T: DeviceRepr + ValidAsZeroBits,
    F: FnMut(&CudaSlice<T>, &CudaSlice<T>, &mut CudaSlice<T>) -> Result<()>,
{
    let a = dev.alloc_zeros::<T>(n * n).map_err(|e| anyhow!("{e:?}"))?;
    let b = dev.alloc_zeros::<T>(n * n).map_err(|e| anyhow!("{e:?}"))?;
    let mut c = dev.alloc_zeros::<T>(n * n).map_err(|e| anyhow!("{e:?}"))?;
    gemm(&a, &b, &mut c)?; // warm-up: cuBLAS picks its kernel
    dev.synchronize().map_err(|e| anyhow!("{e:?}"))?;
    let mut best = 0.0f64;
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        for _ in 0..4 {
            gemm(&a, &b, &mut c)?;
        }
        dev.synchronize().map_err(|e| anyhow!("{e:?}"))?;
        let s = t0.elapsed().as_secs_f64();
        best = best.max(4.0 * 2.0 * (n as f64).powi(3) / s / 1e9);
    }
    Ok(best)
}

fn config<T>(n: usize, one: T, zero: T) -> GemmConfig<T> {
    let n = n as i32;
    GemmConfig {
        transa: sys::cublasOperation_t::CUBLAS_OP_N,
        transb: sys::cublasOperation_t::CUBLAS_OP_N,
        m: n,
        n,
        k: n,
        alpha: one,
        lda: n,
        ldb: n,
        beta: zero,
        ldc: n,
    }
}

fn run<T, A: DevicePtr<T>, B: DevicePtr<T>, C: DevicePtrMut<T>>(
    blas: &CudaBlas,
    cfg: GemmConfig<T>,
    a: &A,
    b: &B,
    c: &mut C,
) -> Result<()>
where
    CudaBlas: Gemm<T>,
{
    // SAFETY: a, b and c hold n × n elements each, as `cfg` says
    unsafe { blas.gemm(cfg, a, b, c) }.map_err(|e| anyhow!("cuBLAS: {e:?}"))
}

/// Measure device 0's peaks at `n × n` (8192 by default in `march bench`).
pub fn peaks(n: usize, reps: usize) -> Result<Peaks> {
    crate::session::cuda_devices()?;
    let dev = CudaDevice::new(0).map_err(|e| anyhow!("opening CUDA device 0: {e:?}"))?;
    let device = format!(
        "CUDA device 0: compute capability {}.{}, {} SMs at {:.2} GHz",
        attr(&dev, Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
        attr(&dev, Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        attr(&dev, Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
        attr(&dev, Attr::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)? as f64 / 1e6,
    );
    let blas = CudaBlas::new(dev.clone()).map_err(|e| anyhow!("cuBLAS: {e:?}"))?;
    let f32 = best_rate::<f32, _>(&dev, n, reps, |a, b, c| {
        run(&blas, config(n, 1.0f32, 0.0), a, b, c)
    })?;
    let set_math = |mode| {
        // SAFETY: the handle is live; the math mode is a plain setting of it
        unsafe { sys::cublasSetMathMode(*blas.handle(), mode) }
            .result()
            .map_err(|e| anyhow!("cublasSetMathMode: {e:?}"))
    };
    set_math(sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH)?;
    let tf32 = best_rate::<f32, _>(&dev, n, reps, |a, b, c| {
        run(&blas, config(n, 1.0f32, 0.0), a, b, c)
    })?;
    set_math(sys::cublasMath_t::CUBLAS_DEFAULT_MATH)?;
    let (one, zero) = (half::bf16::from_f32(1.0), half::bf16::from_f32(0.0));
    let bf16 = best_rate::<half::bf16, _>(&dev, n, reps, |a, b, c| {
        run(&blas, config(n, one, zero), a, b, c)
    })?;
    Ok(Peaks {
        device,
        n,
        f32,
        tf32,
        bf16,
    })
}
