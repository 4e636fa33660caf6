//! The training loop: the same for every variant.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::data::prepare_data;
use super::evaluate;
use super::metrics::{hparams_markdown, Metrics, Record};
use super::progress::{self, clear_interrupt, install_ctrl_c, progress_bar, say};
use super::run_dir::{code_version, configure, last_good, RunConfig};
use super::step::{train_step, StepError};
use crate::arch::Arch;
use crate::checkpoint::{self, TrainState};
use crate::data::{derive_seed, Batcher, DataPosition, TrainStream};
use crate::files::{write_atomic, DirLock};
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
    /// Validation loss at step 0, on the evaluation subset
    /// (`eval_batches`).
    pub first_val_loss: Option<f64>,
    /// A finished run: its loss on the whole validation split at the end
    /// (runs made before whole-split evaluation: the subset's last).
    pub final_val_loss: Option<f64>,
    /// The lowest validation loss of the evaluations during the run, on
    /// the subset.
    pub best_val_loss: Option<f64>,
    /// A finished run: its loss on the whole test split at the end.
    #[serde(default)]
    pub test_loss: Option<f64>,
    /// Target tokens of the whole validation and test splits.
    #[serde(default)]
    pub val_targets: Option<u64>,
    #[serde(default)]
    pub test_targets: Option<u64>,
    pub unigram_entropy: f64,
    pub tokens_per_s: f64,
    pub wall_s: f64,
    pub interrupted: bool,
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
    let (cfg, new_length) = configure(
        arch.name,
        &opts.cfg,
        opts.resume,
        opts.resume_steps,
        dir,
        opts.progress,
    )?;
    cfg.validate()
        .map_err(|e| anyhow!("invalid configuration: {e}"))?;
    if cfg.matmul != Matmul::F32 && opts.device != DeviceKind::Cpu {
        bail!(
            "--matmul {} is a CPU precision (AMX or AVX-512 BF16); on this device the products are f32",
            cfg.matmul
        );
    }
    cfg.matmul
        .check()
        .map_err(|e| anyhow!("--matmul {}: {e}", cfg.matmul))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    // signals are heard from here on: a long tokenization stops cleanly too
    install_ctrl_c();
    clear_interrupt();
    let data = prepare_data(&cfg, arch.vocab, dir, opts.progress)?;
    let noise = cfg.span_corruption();
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
        if state.step >= cfg.steps && new_length.is_some() {
            bail!(
                "{} has trained {} steps: --steps {} would end it where it already is; give more than {}",
                dir.display(),
                state.step,
                cfg.steps,
                state.step
            );
        }
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
            opts.progress,
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
            held_out: data.held_out.clone(),
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
    let hparams = hparams_markdown(
        arch.name,
        &crate::arch::keys::to_dsl(arch),
        arch.params.total,
        &cfg,
    );
    let (mut metrics, earlier) = Metrics::open(
        dir,
        opts.resume.then_some(state.step),
        arch.params.total,
        &hparams,
    )?;
    let train_chunks = data.chunks.train.len().max(1) as f64;
    let mut stream = TrainStream::new(cfg.seed, data.chunks.train.len(), state.position);

    // the same validation batches every time (corruption independent of the
    // run's seed); the last evaluation reads the whole splits
    let batch_size = cfg.batch_size;
    let eval_chunks = cfg.eval_batches * batch_size;
    let during = evaluate::batches(
        &batcher,
        &data.chunks.validation[..eval_chunks.min(data.chunks.validation.len())],
        batch_size,
    );
    let evaluate = |session: &dyn crate::session::Session| -> (f64, f64) {
        let l = evaluate::loss(session, &during);
        (l.loss, l.seconds)
    };

    say(
        opts.progress,
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
        let (v, eval_s) = evaluate(session.as_ref());
        metrics.write(&Record::Eval {
            step: 0,
            tokens: 0,
            val_loss: v,
            eval_s,
        })?;
        first_val = Some(v);
        say(opts.progress, format!("step 0: val loss {v:.4}"));
    }
    let bar = progress_bar(opts.progress, cfg.steps, state.step, "");
    let mut interrupted = false;
    let tokens_per_step = (cfg.batch_size * cfg.grad_accum * cfg.chunk_len) as u64;
    let log_every = (cfg.steps / 20).max(1);

    while state.step < cfg.steps {
        let step = state.step + 1;
        if opts.inject_nan_at == Some(step) {
            session.fill_param("embedding", f32::NAN);
        }
        let t0 = Instant::now();
        let micro = (0..cfg.grad_accum)
            .map(|micro| -> Result<_> {
                let picks = stream.take(cfg.batch_size);
                let chunks = picks
                    .iter()
                    .map(|&(c, _)| data.chunks.train.get(c))
                    .collect::<std::io::Result<Vec<_>>>()?;
                let seeded: Vec<(&[u32], u64)> = chunks
                    .iter()
                    .zip(&picks)
                    .map(|(c, &(_, s))| (c.as_slice(), s))
                    .collect();
                let dropout = derive_seed(cfg.seed, &[0x4452_4f50, step, micro as u64]);
                Ok((batcher.batch(&seeded), dropout))
            })
            .collect::<Result<Vec<_>>>()?;
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
            epoch: state.position.epoch as f64 + state.position.index as f64 / train_chunks,
        })?;
        if step.is_multiple_of(cfg.eval_every) || step == cfg.steps {
            let (v, eval_s) = evaluate(session.as_ref());
            metrics.write(&Record::Eval {
                step,
                tokens: state.tokens,
                val_loss: v,
                eval_s,
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
                None => say(opts.progress, line),
            }
        }
        interrupted = progress::interrupted();
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
                opts.progress,
                format!(
                    "step {step}/{}: loss {loss:.4} lr {lr:.2e} |g| {norm:.3} {rate:.0} tok/s",
                    cfg.steps
                ),
            ),
            None => {}
        }
        if interrupted {
            say(
                opts.progress,
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
    // a finished run: the whole validation and test splits
    let mut held_out = None;
    if state.step == cfg.steps {
        let split = |chunks: &[Vec<u32>]| {
            evaluate::loss(
                session.as_ref(),
                &evaluate::batches(&batcher, chunks, batch_size),
            )
        };
        let val = split(&data.chunks.validation);
        let test = split(&data.chunks.test);
        metrics.write(&Record::Final {
            step: state.step,
            tokens: state.tokens,
            val_loss: val.loss,
            val_targets: val.targets,
            test_loss: test.loss,
            test_targets: test.targets,
            eval_s: val.seconds + test.seconds,
        })?;
        metrics.flush()?;
        say(
            opts.progress,
            format!(
                "step {}: the whole validation split {:.4} (perplexity {:.2}, {} targets), test {:.4} (perplexity {:.2}, {} targets), {:.0}s",
                state.step,
                val.loss,
                val.perplexity(),
                crate::arch::thousands(val.targets),
                test.loss,
                test.perplexity(),
                crate::arch::thousands(test.targets),
                val.seconds + test.seconds
            ),
        );
        held_out = Some((val, test));
    }
    let wall = elapsed_before + started.elapsed().as_secs_f64();
    let report = Report {
        variant: arch.name.to_string(),
        run_dir: dir.clone(),
        steps: state.step,
        tokens: state.tokens,
        first_val_loss: first_val,
        final_val_loss: held_out.map(|(v, _)| v.loss).or(last_val),
        best_val_loss: best_val,
        test_loss: held_out.map(|(_, t)| t.loss),
        val_targets: held_out.map(|(v, _)| v.targets),
        test_targets: held_out.map(|(_, t)| t.targets),
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
