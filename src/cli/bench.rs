//! `march bench`: the throughput of one variant on a stated workload.

use anyhow::{anyhow, bail, Result};
use march_runtime::arch::thousands;
use march_runtime::bench::{self, Mode};
use march_runtime::kernels::microkernels::{self, Family};
use march_runtime::kernels::simd::{set_isa, Isa};
use march_runtime::kernels::tally;
use march_runtime::kernels::{bf16_unit, Bf16Unit};
use march_runtime::machine::Machine;
use march_runtime::ops::Matmul;
use march_runtime::registry::{find_or_suggest, Entry};
use march_runtime::session::DeviceKind;
use march_runtime::workload::Workload;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Variant to measure (`march list`).
    #[arg(default_value = "SmallBaseline")]
    variant: String,
    /// Examples per step.
    #[arg(long, default_value_t = Workload::REFERENCE.batch)]
    batch: usize,
    /// Encoder tokens per example.
    #[arg(long, default_value_t = Workload::REFERENCE.enc_len)]
    enc_len: usize,
    /// Decoder tokens per example.
    #[arg(long, default_value_t = Workload::REFERENCE.dec_len)]
    dec_len: usize,
    /// Corpus tokens one example stands for (tokens/s counts these).
    #[arg(long, default_value_t = Workload::REFERENCE.chunk_tokens)]
    chunk_tokens: usize,
    /// Measured steps.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Unmeasured steps first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Forward only (evaluation) instead of a training step.
    #[arg(long)]
    forward: bool,
    /// Precision of the projections' matrix products: f32, or bf16 (Intel
    /// AMX, else AVX-512 BF16; the ceiling is then measured in bf16 too).
    #[arg(long, default_value = "f32")]
    matmul: Matmul,
    /// Build of march's element-wise loops: baseline, avx2 or avx512
    /// (default: the best this CPU runs), to compare them on one machine.
    #[arg(long, value_parser = parse_isa)]
    loops: Option<Isa>,
    /// gemm's f32 microkernels: fma or avx512f (default: gemm's own choice,
    /// the widest this CPU runs). `--loops avx2 --gemm fma` runs what an
    /// AVX2 + FMA machine (an AMD Zen 3) runs, on an AVX-512 one.
    #[arg(long, value_parser = parse_family)]
    gemm: Option<Family>,
    /// cpu, or cuda (a build with --features cuda): the GPU's step, with
    /// its MFU against the GPU's measured f32, TF32 and bf16 peaks.
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
    /// Then as many steps again with every projection and LM-head product
    /// and every attention op timed one by one, and as many more with each
    /// projection product repeated at once on the same operands (`warm`): a
    /// table of them against the ceiling.
    #[arg(long)]
    products: bool,
}

fn parse_isa(s: &str) -> Result<Isa, String> {
    match s {
        "baseline" | "sse2" => Ok(Isa::Baseline),
        "avx2" => Ok(Isa::Avx2),
        "avx512" => Ok(Isa::Avx512),
        _ => Err(format!(
            "unknown loops build `{s}`: use baseline, avx2 or avx512"
        )),
    }
}

fn parse_family(s: &str) -> Result<Family, String> {
    match s {
        "fma" | "avx2" => Ok(Family::Fma),
        "avx512f" | "avx512" => Ok(Family::Avx512f),
        _ => Err(format!(
            "unknown gemm microkernels `{s}`: use fma or avx512f"
        )),
    }
}

fn mb(b: Option<u64>) -> String {
    b.map(|b| format!("{:.0} MB", b as f64 / 1e6))
        .unwrap_or_else(|| "n/a".into())
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let entry = find_or_suggest(&args.variant)?;
    let arch = entry.arch;
    if args.batch == 0 || args.enc_len == 0 || args.dec_len == 0 || args.steps == 0 {
        bail!("--batch, --enc-len, --dec-len and --steps must be at least 1");
    }
    if args.enc_len > arch.max_len || args.dec_len > arch.max_len {
        bail!(
            "{} takes at most {} tokens per sequence (its max_len)",
            arch.name,
            arch.max_len
        );
    }
    let w = Workload {
        batch: args.batch,
        enc_len: args.enc_len,
        dec_len: args.dec_len,
        chunk_tokens: args.chunk_tokens,
    };
    let mode = if args.forward {
        Mode::Forward
    } else {
        Mode::Train
    };
    if args.device == DeviceKind::Cuda {
        if args.matmul != Matmul::F32 {
            bail!("--matmul bf16 is a CPU path (AMX or AVX-512 BF16): on CUDA the products run in f32 (dfdx 0.13 has no bf16)");
        }
        if args.loops.is_some() {
            bail!("--loops chooses the CPU's element-wise loops: it has no meaning with --device cuda");
        }
        if args.gemm.is_some() {
            bail!("--gemm chooses the CPU's matmul microkernels: it has no meaning with --device cuda");
        }
        if args.products {
            bail!("--products times march's CPU products: it has no meaning with --device cuda");
        }
        return run_cuda(args, entry, w, mode);
    }
    if let Some(isa) = args.loops {
        set_isa(isa).map_err(|e| anyhow!("--loops: {e}"))?;
    }
    if let Some(family) = args.gemm {
        microkernels::choose(family).map_err(|e| anyhow!("--gemm: {e}"))?;
    }
    let machine = Machine::here();
    let threads = machine.threads;
    args.matmul
        .check()
        .map_err(|e| anyhow!("--matmul {}: {e}", args.matmul))?;
    eprintln!(
        "{} {}: batch {} × (encoder {}, decoder {}) = {} tokens per step, {} thread(s), {} matmuls; {} warm-up + {} measured steps",
        arch.name,
        mode.name(),
        w.batch,
        w.enc_len,
        w.dec_len,
        thousands(w.tokens() as u64),
        threads,
        args.matmul,
        args.warmup,
        args.steps
    );
    eprintln!("  on {}", machine.summary());
    // the best of five of each shape, before the steps and again after:
    // on a shared host a slow spell during one measurement would lower the
    // ceiling and flatter the step's ratio to its floor
    let shapes = bench::step_products(arch, w);
    let ceiling_now = || {
        bench::matmul_ceiling(&shapes, 5, args.matmul)
            .map_err(|e| anyhow!("--matmul {}: {e}", args.matmul))
    };
    let before = ceiling_now()?;
    let mut step = entry.bench(DeviceKind::Cpu, w, mode, args.matmul)?;
    let (m, median, min, max) = measure_steps(args, &mut step);
    let after = ceiling_now()?;
    let (ceiling, at) = if after.0 > before.0 { after } else { before };
    let flops = bench::flops_per_step(arch, w, mode);
    let gflops = flops / median / 1e9;
    let floor = flops / (ceiling * 1e9);
    let unit = bf16_unit().filter(|_| args.matmul == Matmul::Bf16);
    let bf16 = match unit {
        Some(u @ Bf16Unit::Avx512Bf16) => {
            format!(", twice that in bf16 on {u} (VDPBF16PS: two products per lane)")
        }
        _ => String::new(),
    };
    let fma = match machine.fma_peak_gflops() {
        Some(p) => {
            let (ghz, source) = machine.clock().unwrap_or((0.0, ""));
            let nominal = match (source, machine.mhz) {
                ("measured", Some(mhz)) => format!("; /proc/cpuinfo: {:.2} GHz", mhz / 1e3),
                _ => String::new(),
            };
            format!(
                "; theoretical f32 FMA peak {p:.0} GFLOP/s ({threads} × {} FMA units × {} lanes × 2 at {ghz:.2} GHz, {source}{nominal}){bf16}",
                machine.fma_units(),
                machine.lanes(),
            )
        }
        None => String::new(),
    };
    // what the FMA units deliver, registers only, beside what the ceiling
    // reaches of it
    let fma = match machine.fma_measured_gflops {
        Some(r) if unit.is_none() => format!(
            "{fma}; measured FMA rate {r:.0} GFLOP/s (gemm's width, registers only, every thread), the ceiling {:.0}% of it",
            100.0 * ceiling / r
        ),
        _ => fma,
    };
    let growth = match (m.rss_after_warmup, m.rss_at_end) {
        (Some(a), Some(b)) => format!(
            "{:+.1} MB over the measured steps",
            (b as f64 - a as f64) / 1e6
        ),
        _ => "n/a".into(),
    };
    let phases = phases_text(mode, &m);
    super::list::emit(&format!(
        "{name} {mode}\n  ms/step    {ms:.1} (median; min {min:.1}, max {max:.1})\n  phases     {phases}\n  tokens/s   {tps:.0}\n  GFLOP/s    {gflops:.1} ({gf:.1} GFLOP of matrix products per step)\n  ceiling    {pct:.0}% of this machine's measured {prec} matmul ceiling: {ceiling:.0} GFLOP/s, the best of march's product over the step's shapes (at {am}×{ak}·{ak}×{an}), {threads} thread(s), 5 times each before the steps and after them ({b:.0} and {a:.0} GFLOP/s){fma}\n  floor      {floor_ms:.1} ms (the step's products at the ceiling): the step is {ratio:.2}× its floor\n  machine    {machine}\n  memory     peak resident {peak}; {growth}\n",
        name = arch.name,
        mode = mode.name(),
        ms = median * 1e3,
        min = min * 1e3,
        max = max * 1e3,
        tps = w.tokens() as f64 / median,
        gf = flops / 1e9,
        pct = 100.0 * gflops / ceiling,
        peak = mb(m.peak_rss),
        prec = match unit {
            Some(unit) => format!("bf16 ({unit})"),
            None => args.matmul.to_string(),
        },
        am = at.0,
        ak = at.1,
        an = at.2,
        floor_ms = floor * 1e3,
        b = before.0,
        a = after.0,
        ratio = median / floor,
        machine = machine.summary(),
    ))?;
    if args.products {
        products(args, &mut step, ceiling)?;
    }
    Ok(())
}

/// `--products`: `args.steps` more steps with the products tallied, and
/// the table of them (slowest first) against the `ceiling` (GFLOP/s),
/// with the rest of those steps' mean.
fn products(args: &BenchArgs, step: &mut bench::Step, ceiling: f64) -> Result<()> {
    tally::start(tally::Repeats::Once);
    let measured = bench::measure(step, 0, args.steps, |i| {
        eprint!("\r  products, step {i}/{}", args.steps)
    });
    let tallied = tally::stop();
    eprintln!();
    if tallied.is_empty() {
        bail!("--products: the step ran no product of march's own");
    }
    // as many steps again, each projection product repeated at once: its
    // rate with the operands just touched
    tally::start(tally::Repeats::Warm);
    bench::measure(step, 0, args.steps, |i| {
        eprint!("\r  products repeated warm, step {i}/{}", args.steps)
    });
    let warm = tally::stop();
    eprintln!();
    let warm_rate = |t: &tally::Tallied| {
        warm.iter()
            .find(|w| (w.role, w.heads, w.mkn) == (t.role, t.heads, t.mkn))
            .and_then(|w| w.warm_gflops())
    };
    let step_s = measured.step_s.iter().sum::<f64>() / args.steps as f64;
    let per_step = |x: f64| x / args.steps as f64;
    let mut out = format!(
        "  products   {} more steps, each projection and LM-head product and each attention op timed; `warm`: {} steps more, each projection product run again at once on the same operands:\n             ms/step  calls/step  GFLOP/s  of ceiling     warm  product\n",
        args.steps, args.steps
    );
    // (seconds, flops) of the projections and of the attention
    let (mut linear, mut attention) = ((0.0, 0.0), (0.0, 0.0));
    for t in &tallied {
        let (m, k, n) = t.mkn;
        let sum = if t.role.attention() {
            &mut attention
        } else {
            &mut linear
        };
        sum.0 += t.seconds;
        sum.1 += t.flops();
        let shape = match t.heads {
            1 => format!("{m}×{k}·{k}×{n}"),
            h => format!("{h} heads × {m}×{k}·{k}×{n}, {} a head", t.role.products()),
        };
        let warm = match warm_rate(t) {
            Some(r) => format!("{:7.0}%", 100.0 * r / ceiling),
            None => format!("{:>8}", "—"),
        };
        out += &format!(
            "             {:7.1}  {:10.1}  {:7.0}  {:9.0}%  {warm}  {:<12} {shape}\n",
            per_step(t.seconds) * 1e3,
            per_step(t.calls as f64),
            t.gflops(),
            100.0 * t.gflops() / ceiling,
            t.role.name(),
        );
    }
    let line = |what: &str, (seconds, flops): (f64, f64)| {
        let rate = flops / seconds / 1e9;
        format!(
            "  {what} {:.1} ms a step: {:.1} GFLOP at {rate:.0} GFLOP/s ({:.0}% of the ceiling)",
            per_step(seconds) * 1e3,
            per_step(flops) / 1e9,
            100.0 * rate / ceiling,
        )
    };
    out += &format!(
        "{} of those steps' mean {:.1} ms\n",
        line("products  ", linear),
        step_s * 1e3
    );
    if attention.0 > 0.0 {
        out += &format!(
            "{}, with its softmax and dropout\n",
            line("attention ", attention)
        );
    }
    out += &format!(
        "  the rest   {:.1} ms a step (element-wise ops, norms, embedding, loss, optimizer)\n",
        (step_s - per_step(linear.0 + attention.0)) * 1e3,
    );
    super::list::emit(&out)
}

/// The measured steps, with a progress line; the measurement and its
/// median, shortest and longest step in seconds.
fn measure_steps(args: &BenchArgs, step: &mut bench::Step) -> (bench::Measured, f64, f64, f64) {
    let m = bench::measure(step, args.warmup, args.steps, |i| {
        eprint!("\r  step {i}/{}", args.steps)
    });
    eprintln!();
    let median = m.median_s();
    let min = m.step_s.iter().copied().fold(f64::INFINITY, f64::min);
    let max = m.step_s.iter().copied().fold(0.0, f64::max);
    (m, median, min, max)
}

fn phases_text(mode: Mode, m: &bench::Measured) -> String {
    let ph = m.median_phases();
    match mode {
        Mode::Train => format!(
            "forward {:.1}, backward {:.1}, optimizer {:.1} (gradient norm + AdamW) ms, medians",
            ph.forward * 1e3,
            ph.backward * 1e3,
            ph.optimizer * 1e3
        ),
        Mode::Forward => format!("forward {:.1} ms, median", ph.forward * 1e3),
    }
}

/// `march bench --device cuda`: the step on the GPU, and its MFU against
/// the GPU's own measured peaks.
#[cfg(feature = "cuda")]
fn run_cuda(args: &BenchArgs, entry: &Entry, w: Workload, mode: Mode) -> Result<()> {
    let arch = entry.arch;
    eprintln!(
        "{} {} on CUDA: batch {} × (encoder {}, decoder {}) = {} tokens per step, f32 matmuls; {} warm-up + {} measured steps",
        arch.name,
        mode.name(),
        w.batch,
        w.enc_len,
        w.dec_len,
        thousands(w.tokens() as u64),
        args.warmup,
        args.steps
    );
    const N: usize = 8192;
    let peaks = bench::cuda::peaks(N, 5)?;
    let mut step = entry.bench(DeviceKind::Cuda, w, mode, Matmul::F32)?;
    let (m, median, min, max) = measure_steps(args, &mut step);
    let flops = bench::flops_per_step(arch, w, mode);
    let gflops = flops / median / 1e9;
    super::list::emit(&format!(
        "{name} {mode} on CUDA\n  ms/step    {ms:.2} (median; min {min:.2}, max {max:.2})\n  phases     {phases}\n  tokens/s   {tps:.0}\n  GFLOP/s    {gflops:.0} ({gf:.1} GFLOP of matrix products per step)\n  MFU        {f:.1}% of the GPU's measured f32 peak ({pf:.0} GFLOP/s: cuBLAS sgemm, {N}³, what dfdx runs); {t:.1}% of its TF32 peak ({pt:.0}); {b:.1}% of its bf16 peak ({pb:.0})\n  device     {device}\n  host       peak resident {peak}\n",
        name = arch.name,
        mode = mode.name(),
        ms = median * 1e3,
        min = min * 1e3,
        max = max * 1e3,
        phases = phases_text(mode, &m),
        tps = w.tokens() as f64 / median,
        gf = flops / 1e9,
        f = 100.0 * gflops / peaks.f32,
        pf = peaks.f32,
        t = 100.0 * gflops / peaks.tf32,
        pt = peaks.tf32,
        b = 100.0 * gflops / peaks.bf16,
        pb = peaks.bf16,
        device = peaks.device,
        peak = mb(m.peak_rss),
    ))
}

#[cfg(not(feature = "cuda"))]
fn run_cuda(_: &BenchArgs, _: &Entry, _: Workload, _: Mode) -> Result<()> {
    bail!("this march was built without CUDA: rebuild with `cargo build --release --features cuda`")
}
