//! The training loop: the same for every variant.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, TrainState};
use super::config::TrainConfig;
use super::metrics::{Metrics, Record};
use super::step::{train_step, StepError};
use crate::arch::Arch;
use crate::data::{
    cache_dir, corpus, derive_seed, fnv1a, read_cache, synthetic, write_cache, Batcher, Chunks,
    DataPosition, MarchTokenizer, SpanCorruption, TrainStream,
};
use crate::files::{clear_except_lock, write_atomic, DirLock};
use crate::ops::Matmul;
pub use crate::session::DeviceKind;
use crate::session::{Opener, SessionOptions};

/// One `march train` invocation.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub cfg: TrainConfig,
    /// The run directory.
    pub out: PathBuf,
    /// Continue the run in `out` from its checkpoint, with its own
    /// configuration.
    pub resume: bool,
    /// With `resume`: a new total number of steps.
    pub resume_steps: Option<u64>,
    pub device: DeviceKind,
    /// Progress bar / log lines on stderr.
    pub progress: bool,
    /// Stop after this step as if killed (tests).
    pub stop_after: Option<u64>,
    /// Poison the weights before this step, to exercise the NaN guard (tests).
    pub inject_nan_at: Option<u64>,
    /// The run directory's lock, when the caller holds it already (a sweep);
    /// `None`: the run takes it.
    pub lock: Option<std::sync::Arc<DirLock>>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub variant: String,
    pub run_dir: PathBuf,
    pub steps: u64,
    pub tokens: u64,
    pub first_val_loss: Option<f64>,
    pub final_val_loss: Option<f64>,
    pub best_val_loss: Option<f64>,
    pub unigram_entropy: f64,
    pub tokens_per_s: f64,
    pub wall_s: f64,
    pub interrupted: bool,
}

/// The run's description, saved as `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    pub variant: String,
    pub architecture: String,
    pub params_total: u64,
    pub params_live: u64,
    pub flops_per_token: u64,
    pub device: DeviceKind,
    pub data: String,
    pub tokenizer: String,
    pub corpus_tokens: usize,
    pub train_chunks: usize,
    pub validation_chunks: usize,
    pub test_chunks: usize,
    pub encoder_len: usize,
    pub decoder_len: usize,
    pub code_version: String,
    pub train: TrainConfig,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn install_ctrl_c() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted twice: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupted (SIGINT, SIGTERM or SIGHUP): saving a checkpoint after this step (again to quit now)"
            );
        });
    });
}

pub fn code_version() -> String {
    format!(
        "march {}{}",
        env!("CARGO_PKG_VERSION"),
        option_env!("MARCH_GIT_REV")
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    )
}

/// Log to stderr unless quiet.
fn say(opts: &RunOptions, msg: impl AsRef<str>) {
    if opts.progress {
        eprintln!("{}", msg.as_ref());
    }
}

/// The data a run trains on.
pub struct Prepared {
    pub tokenizer: MarchTokenizer,
    pub chunks: Chunks,
    pub data_name: String,
    pub unigram_entropy: f64,
}

/// Corpus → tokenizer → token stream (cached) → chunks.
pub fn prepare_data(
    cfg: &TrainConfig,
    vocab: usize,
    run_dir: &Path,
    opts: &RunOptions,
) -> Result<Prepared> {
    let builtin = cfg.data.is_empty();
    let data_name = if builtin {
        format!("{} ({} documents)", synthetic::NAME, cfg.builtin_documents)
    } else {
        cfg.data
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let t0 = Instant::now();
    let docs = if builtin {
        synthetic::documents(0, cfg.builtin_documents)
    } else {
        corpus::read_documents(&cfg.data)?
    };
    say(
        opts,
        format!(
            "data: {data_name}: {} documents read in {:.1}s",
            docs.len(),
            t0.elapsed().as_secs_f64()
        ),
    );

    let saved = run_dir.join("tokenizer.json");
    let tokenizer = match (&cfg.tokenizer, saved.exists()) {
        (Some(path), _) => MarchTokenizer::load(path)?,
        (None, true) => MarchTokenizer::load(&saved)?,
        (None, false) => {
            let t0 = Instant::now();
            // a sample of up to ~20 MB of text is plenty for a BPE
            let mut budget = 20_000_000usize;
            let sample: Vec<String> = docs
                .iter()
                .take_while(|d| {
                    let ok = budget > 0;
                    budget = budget.saturating_sub(d.len());
                    ok
                })
                .cloned()
                .collect();
            let t = MarchTokenizer::train(&sample, vocab)?;
            say(
                opts,
                format!(
                    "tokenizer: trained a byte-fallback BPE of {vocab} tokens in {:.1}s",
                    t0.elapsed().as_secs_f64()
                ),
            );
            t
        }
    };
    if tokenizer.vocab_size() != vocab {
        bail!(
            "the tokenizer ({}) has {} tokens but the variant's vocabulary is {vocab}: pick a variant with vocab {} or train a tokenizer (omit --tokenizer)",
            tokenizer.source,
            tokenizer.vocab_size(),
            tokenizer.vocab_size()
        );
    }
    tokenizer.save(&saved)?;

    // token stream, cached by corpus, tokenizer and chunk length
    let tok_json = std::fs::read(&saved)?;
    let mut desc = data_name.clone();
    if !builtin {
        for f in corpus::corpus_files(&cfg.data)? {
            let m = std::fs::metadata(&f)?;
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            desc.push_str(&format!("|{}:{}:{mtime}", f.display(), m.len()));
        }
    }
    let key = fnv1a(&[desc.as_bytes(), &tok_json, &cfg.chunk_len.to_le_bytes()]);
    let cache = cache_dir().join(format!("{key:016x}.tokens"));
    let stream = match read_cache(&cache) {
        Some(s) => {
            say(
                opts,
                format!(
                    "data: {} tokens from the cache ({})",
                    crate::arch::thousands(s.len() as u64),
                    cache.display()
                ),
            );
            s
        }
        None => {
            let t0 = Instant::now();
            // in batches, each tokenized on all cores, with progress
            let bar = progress_bar(opts, docs.len() as u64, 0, "documents tokenized");
            let mut stream = Vec::new();
            let mut logged = 0;
            for (i, batch) in docs.chunks(4096).enumerate() {
                for d in tokenizer.encode_all(batch)? {
                    stream.extend_from_slice(&d);
                    stream.push(tokenizer.special.eos);
                }
                let done = (i * 4096 + batch.len()) as u64;
                match &bar {
                    Some(b) => b.set_position(done),
                    None if done * 4 >= (logged + 1) * docs.len() as u64
                        && done < docs.len() as u64 =>
                    {
                        logged += 1;
                        say(
                            opts,
                            format!("data: tokenized {done}/{} documents", docs.len()),
                        );
                    }
                    None => {}
                }
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            say(
                opts,
                format!(
                    "data: tokenized {} tokens in {:.1}s",
                    crate::arch::thousands(stream.len() as u64),
                    t0.elapsed().as_secs_f64()
                ),
            );
            if let Err(e) = write_cache(&cache, &stream) {
                say(
                    opts,
                    format!(
                        "warning: cannot write the token cache {}: {e}",
                        cache.display()
                    ),
                );
            }
            stream
        }
    };
    let chunks = Chunks::from_stream(&stream, cfg.chunk_len, cfg.held_out_chunks);
    if chunks.train.is_empty() {
        bail!(
            "the corpus has {} tokens: too few for even one training chunk of {} after holding out {} chunks twice",
            stream.len(),
            cfg.chunk_len,
            cfg.held_out_chunks
        );
    }
    let noise = SpanCorruption {
        noise_density: cfg.noise_density,
        mean_noise_span: cfg.mean_noise_span,
    };
    let spans = noise.counts(cfg.chunk_len).1;
    if spans > tokenizer.special.sentinels.len() {
        bail!(
            "chunks of {} tokens need {spans} sentinels but the tokenizer has {}: use shorter chunks",
            cfg.chunk_len,
            tokenizer.special.sentinels.len()
        );
    }
    // unigram entropy of the training tokens: the loss a model that ignores context reaches
    let mut counts = vec![0u64; vocab];
    for c in &chunks.train {
        for &t in c {
            counts[t as usize] += 1;
        }
    }
    let n: u64 = counts.iter().sum();
    let unigram_entropy = -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            p * p.ln()
        })
        .sum::<f64>();
    Ok(Prepared {
        tokenizer,
        chunks,
        data_name,
        unigram_entropy,
    })
}

/// Train the variant `arch` (its models opened by `open`) as `opts` says.
pub fn run(arch: &'static Arch, open: Opener, opts: &RunOptions) -> Result<Report> {
    let dir = &opts.out;
    let config_path = dir.join("config.json");
    let ckpt_path = dir.join(checkpoint::FILE);
    // one process per run directory, for the whole run
    let _lock = match &opts.lock {
        Some(held) => held.clone(),
        None => std::sync::Arc::new(DirLock::acquire(dir, "run")?),
    };

    // the configuration: fresh, or the run's own when resuming
    let mut new_length: Option<RunConfig> = None;
    let cfg = if opts.resume {
        if !ckpt_path.exists() {
            bail!(
                "{}: no checkpoint to resume from{}; start the run without --resume",
                dir.display(),
                if config_path.exists() {
                    " (it stopped before its first one: it restarts in place)"
                } else {
                    ""
                }
            );
        }
        let saved: RunConfig = serde_json::from_slice(
            &std::fs::read(&config_path)
                .with_context(|| format!("reading {}", config_path.display()))?,
        )
        .with_context(|| format!("{}: unreadable run configuration", config_path.display()))?;
        if saved.variant != arch.name {
            bail!(
                "{} is a run of {}, not {}",
                dir.display(),
                saved.variant,
                arch.name
            );
        }
        let steps = opts.resume_steps.unwrap_or(saved.train.steps);
        if steps != saved.train.steps {
            // a longer run: recorded once the checkpoint says it is one,
            // before anything trains; the schedule follows the new length
            let mut updated = saved.clone();
            updated.train.steps = steps;
            new_length = Some(updated);
        }
        TrainConfig {
            steps,
            ..saved.train
        }
    } else {
        if ckpt_path.exists() {
            bail!(
                "{} already holds a run: continue it with --resume, or choose another --out",
                dir.display()
            );
        }
        if config_path.exists() {
            // stopped before its first checkpoint: nothing to continue from
            say(
                opts,
                format!(
                    "{}: the run there stopped before its first checkpoint: starting it again",
                    dir.display()
                ),
            );
            clear_except_lock(dir)?;
        }
        // the warmup resolved for this run's length, and recorded
        TrainConfig {
            warmup_steps: Some(opts.cfg.warmup()),
            ..opts.cfg.clone()
        }
    };
    cfg.validate()
        .map_err(|e| anyhow!("invalid configuration: {e}"))?;
    if cfg.matmul != Matmul::F32 && opts.device != DeviceKind::Cpu {
        bail!(
            "--matmul {} is a CPU precision (AMX); on this device the products are f32",
            cfg.matmul
        );
    }
    cfg.matmul
        .check()
        .map_err(|e| anyhow!("--matmul {}: {e}", cfg.matmul))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let data = prepare_data(&cfg, arch.vocab, dir, opts)?;
    let noise = SpanCorruption {
        noise_density: cfg.noise_density,
        mean_noise_span: cfg.mean_noise_span,
    };
    let batcher = Batcher::new(noise, data.tokenizer.special.clone(), cfg.chunk_len);
    if batcher.enc_len > arch.max_len || batcher.dec_len > arch.max_len {
        bail!(
            "chunks of {} tokens make encoder inputs of {} tokens, longer than {}'s max_len {}",
            cfg.chunk_len,
            batcher.enc_len,
            arch.name,
            arch.max_len
        );
    }

    let mut session = open(
        arch,
        &SessionOptions {
            device: opts.device,
            seed: cfg.seed,
            adamw: Some(cfg.adamw),
            matmul: cfg.matmul,
        },
    )?;
    let mut state = TrainState {
        variant: arch.name.to_string(),
        step: 0,
        tokens: 0,
        position: DataPosition { epoch: 0, index: 0 },
        seed: cfg.seed,
        adam_t: 0,
    };
    if opts.resume {
        state = session.load(&ckpt_path)?;
        if state.step >= cfg.steps {
            bail!(
                "{} is finished ({} of {} steps): to train it further, resume with a larger --steps",
                dir.display(),
                state.step,
                cfg.steps
            );
        }
        if let Some(updated) = &new_length {
            write_atomic(
                &config_path,
                serde_json::to_string_pretty(updated)?.as_bytes(),
            )?;
        }
        say(
            opts,
            format!(
                "resuming {} at step {} from {}",
                arch.name,
                state.step,
                ckpt_path.display()
            ),
        );
    } else {
        let run_config = RunConfig {
            variant: arch.name.to_string(),
            architecture: arch.to_string(),
            params_total: arch.params.total,
            params_live: arch.params.live,
            flops_per_token: arch.flops_per_token(),
            device: opts.device,
            data: data.data_name.clone(),
            tokenizer: data.tokenizer.source.clone(),
            corpus_tokens: data.chunks.tokens(),
            train_chunks: data.chunks.train.len(),
            validation_chunks: data.chunks.validation.len(),
            test_chunks: data.chunks.test.len(),
            encoder_len: batcher.enc_len,
            decoder_len: batcher.dec_len,
            code_version: code_version(),
            train: cfg.clone(),
        };
        write_atomic(
            &config_path,
            serde_json::to_string_pretty(&run_config)?.as_bytes(),
        )?;
    }
    let (mut metrics, earlier) =
        Metrics::open(dir, opts.resume.then_some(state.step), arch.params.total)?;
    let mut stream = TrainStream::new(cfg.seed, data.chunks.train.len(), state.position);

    // the same validation batches every time (corruption independent of the run's seed)
    let eval_batches: Vec<_> = data
        .chunks
        .validation
        .chunks(cfg.batch_size)
        .take(cfg.eval_batches)
        .enumerate()
        .map(|(b, chunks)| {
            let seeded: Vec<(&[u32], u64)> = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (
                        c.as_slice(),
                        derive_seed(0x4556_414c, &[b as u64, i as u64]),
                    )
                })
                .collect();
            batcher.batch(&seeded)
        })
        .collect();
    let evaluate = |session: &dyn crate::session::Session| -> f64 {
        let losses: Vec<f64> = eval_batches.iter().map(|b| session.eval_loss(b)).collect();
        losses.iter().sum::<f64>() / losses.len() as f64
    };

    say(
        opts,
        format!(
            "train: {} ({} parameters, {} live) on {}, {} steps of {} chunks{} of {} tokens (encoder {}, decoder {}), unigram entropy {:.3} nats",
            arch.name,
            crate::arch::thousands(arch.params.total),
            crate::arch::thousands(arch.params.live),
            opts.device,
            cfg.steps,
            cfg.batch_size * cfg.grad_accum,
            if cfg.grad_accum > 1 {
                format!(" ({} micro-batches of {})", cfg.grad_accum, cfg.batch_size)
            } else {
                String::new()
            },
            cfg.chunk_len,
            batcher.enc_len,
            batcher.dec_len,
            data.unigram_entropy
        ),
    );
    install_ctrl_c();
    INTERRUPTED.store(false, Ordering::SeqCst);

    let started = Instant::now();
    let tokens_at_start = state.tokens;
    // a resumed run's summary covers the whole run: its earlier evaluations
    // and wall-clock time come from the metrics kept
    let earlier_vals: Vec<f64> = earlier
        .iter()
        .filter_map(|r| match r {
            Record::Eval { val_loss, .. } => Some(*val_loss),
            _ => None,
        })
        .collect();
    let elapsed_before = earlier
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::Train { elapsed_s, .. } => Some(*elapsed_s),
            _ => None,
        })
        .unwrap_or(0.0);
    let mut first_val = earlier_vals.first().copied();
    let mut last_val = earlier_vals.last().copied();
    let mut best_val: Option<f64> = earlier_vals.iter().copied().reduce(f64::min);
    if !opts.resume {
        let v = evaluate(session.as_ref());
        metrics.write(&Record::Eval {
            step: 0,
            tokens: 0,
            val_loss: v,
        })?;
        first_val = Some(v);
        say(opts, format!("step 0: val loss {v:.4}"));
    }
    let bar = progress_bar(opts, cfg.steps, state.step, "");
    let mut interrupted = false;
    let tokens_per_step = (cfg.batch_size * cfg.grad_accum * cfg.chunk_len) as u64;
    let log_every = (cfg.steps / 20).max(1);

    while state.step < cfg.steps {
        let step = state.step + 1;
        if opts.inject_nan_at == Some(step) {
            session.fill_param("embedding", f32::NAN);
        }
        let t0 = Instant::now();
        let micro: Vec<_> = (0..cfg.grad_accum)
            .map(|micro| {
                let picks = stream.take(cfg.batch_size);
                let seeded: Vec<(&[u32], u64)> = picks
                    .iter()
                    .map(|&(c, s)| (data.chunks.train[c].as_slice(), s))
                    .collect();
                let dropout = derive_seed(cfg.seed, &[0x4452_4f50, step, micro as u64]);
                (batcher.batch(&seeded), dropout)
            })
            .collect();
        let lr = cfg.schedule.lr(cfg.lr, step, cfg.warmup(), cfg.steps);
        let outcome = match train_step(session.as_mut(), &micro, lr, cfg.clip_grad_norm) {
            Ok(o) => o,
            Err(StepError::Loss(loss)) => {
                metrics.flush()?;
                bail!("the training loss is {loss} at step {step}: stopping; {}, metrics up to step {} are in {}", last_good(&ckpt_path), state.step, metrics.path.display());
            }
            Err(StepError::GradNorm(norm)) => {
                metrics.flush()?;
                bail!("the gradient norm is {norm} at step {step}: stopping; {}, metrics up to step {} are in {}", last_good(&ckpt_path), state.step, metrics.path.display());
            }
        };
        let (loss, norm) = (outcome.loss, outcome.grad_norm);
        if let Some(why) = diverged(loss, norm, arch.vocab, cfg.divergence_factor) {
            metrics.flush()?;
            bail!("{why} at step {step}: stopping (lower --lr, or set divergence_factor = 0 to train on); {}, metrics up to step {} are in {}", last_good(&ckpt_path), state.step, metrics.path.display());
        }
        state.step = step;
        state.tokens += tokens_per_step;
        state.position = stream.position;
        state.adam_t = session.optimizer_steps();
        let dt = t0.elapsed().as_secs_f64();
        metrics.write(&Record::Train {
            step,
            tokens: state.tokens,
            loss,
            lr,
            grad_norm: norm,
            tokens_per_s: tokens_per_step as f64 / dt,
            elapsed_s: elapsed_before + started.elapsed().as_secs_f64(),
        })?;
        if step.is_multiple_of(cfg.eval_every) || step == cfg.steps {
            let v = evaluate(session.as_ref());
            metrics.write(&Record::Eval {
                step,
                tokens: state.tokens,
                val_loss: v,
            })?;
            last_val = Some(v);
            best_val = Some(best_val.map_or(v, |b| b.min(v)));
            // what an evaluation says is on disk before anything else happens
            metrics.flush()?;
            // a line that stays in the scrollback, above the bar
            let line = format!(
                "step {step}/{}: val loss {v:.4} (train loss {loss:.4}, {:.0}s)",
                cfg.steps,
                started.elapsed().as_secs_f64()
            );
            match &bar {
                Some(b) => b.println(line),
                None => say(opts, line),
            }
        }
        interrupted = INTERRUPTED.load(Ordering::SeqCst);
        if step.is_multiple_of(cfg.checkpoint_every) || step == cfg.steps || interrupted {
            metrics.flush()?;
            // never save weights that are not finite: the checkpoint on disk
            // stays the last good one
            if let Some(name) = session.non_finite_param() {
                bail!("the weights are not finite after step {step} ({name} has NaN or infinite values): stopping without saving them; {}, metrics up to step {step} are in {}", last_good(&ckpt_path), metrics.path.display());
            }
            session.save(dir, &state)?;
        }
        let rate = (state.tokens - tokens_at_start) as f64 / started.elapsed().as_secs_f64();
        match &bar {
            Some(b) => {
                b.set_position(step);
                b.set_message(format!(
                    "loss {loss:.3}{} lr {lr:.1e} |g| {norm:.2} {rate:.0} tok/s",
                    last_val.map(|v| format!(" val {v:.3}")).unwrap_or_default()
                ));
            }
            None if step.is_multiple_of(log_every) => say(
                opts,
                format!(
                    "step {step}/{}: loss {loss:.4} lr {lr:.2e} |g| {norm:.3} {rate:.0} tok/s",
                    cfg.steps
                ),
            ),
            None => {}
        }
        if interrupted {
            say(
                opts,
                format!("interrupted at step {step}: checkpoint saved; continue with --resume"),
            );
            break;
        }
        if opts.stop_after == Some(step) {
            metrics.flush()?;
            break;
        }
    }
    metrics.flush()?;
    if let Some(b) = bar {
        // the bar's last state stays on the terminal
        b.finish();
    }
    let wall = elapsed_before + started.elapsed().as_secs_f64();
    let report = Report {
        variant: arch.name.to_string(),
        run_dir: dir.clone(),
        steps: state.step,
        tokens: state.tokens,
        first_val_loss: first_val,
        final_val_loss: last_val,
        best_val_loss: best_val,
        unigram_entropy: data.unigram_entropy,
        tokens_per_s: state.tokens as f64 / wall,
        wall_s: wall,
        interrupted,
    };
    if state.step == cfg.steps {
        write_atomic(
            &dir.join("summary.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
    }
    Ok(report)
}

/// Why a step's loss and gradient norm mean the run has diverged, if they
/// do: a loss over `factor` × ln(vocab) (a uniform guess scores ln(vocab)),
/// or a gradient of exactly zero with the loss at ln(vocab) — the model
/// collapsed to a constant output and can no longer learn. `factor` 0:
/// never.
pub fn diverged(loss: f64, grad_norm: f64, vocab: usize, factor: f64) -> Option<String> {
    if factor == 0.0 {
        return None;
    }
    let uniform = (vocab as f64).ln();
    if loss > factor * uniform {
        return Some(format!(
            "the training loss {loss:.4e} is over {factor} × ln(vocab) = {:.1}: the run diverged",
            factor * uniform
        ));
    }
    if grad_norm == 0.0 && (loss - uniform).abs() < 0.01 * uniform {
        return Some(format!(
            "the gradient is zero and the loss {loss:.4} is ln(vocab): the model collapsed to a uniform output"
        ));
    }
    None
}

/// What a run that stops on bad numbers says of its checkpoint: only ever
/// weights that were checked finite are saved, so an existing file is good.
fn last_good(ckpt: &Path) -> String {
    if ckpt.exists() {
        format!("the last good checkpoint is {}", ckpt.display())
    } else {
        "no checkpoint was written yet".to_string()
    }
}

/// A progress bar on a terminal (`None` elsewhere: plain log lines instead).
/// `unit` empty: training steps; else a count of `unit`.
fn progress_bar(
    opts: &RunOptions,
    len: u64,
    at: u64,
    unit: &str,
) -> Option<indicatif::ProgressBar> {
    if !opts.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let template = if unit.is_empty() {
        "{spinner} step {pos}/{len} [{bar:30}] {msg} {elapsed} eta {eta}".to_string()
    } else {
        format!("{{spinner}} {{pos}}/{{len}} {unit} [{{bar:30}}] eta {{eta}}")
    };
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_position(at);
    Some(bar)
}
