//! Training: determinism, exact resume, the NaN guard, TensorBoard files, and
//! a short real run on WikiText-2 with the original tokenizer.

#[path = "../common/mod.rs"]
mod common;
mod evaluation;
mod sweep;

use common::{shared_data, temp_dir};
use march_runtime::train::metrics::{read, Record};
use march_runtime::train::tensorboard::{read_scalars, read_texts};
use march_runtime::train::{DeviceKind, Report, RunOptions, TrainConfig};
use march_runtime::{march_model, Variant};

/// Train the registered variant `V`.
fn run<V: Variant>(opts: &RunOptions) -> anyhow::Result<Report> {
    march_runtime::registry::find(V::ARCH.name)
        .expect("registered")
        .train(opts)
}

/// A small model for the built-in corpus (trained tokenizer of 1,024 tokens).
#[march_model(
    dim_model = 32,
    layers = 2,
    heads = 2,
    dim_qkv = 16,
    dim_ff = 64,
    vocab = 1024,
    max_len = 128,
    budget = 74_112
)]
struct Mini;

/// The same at the original tokenizer's vocabulary.
#[march_model(base = Mini, vocab = 30_000, dim_model = 64, dim_qkv = 32, dim_ff = 128, budget_exempt = "test model")]
struct MiniOriginalVocab;

fn options(out: &std::path::Path, cfg: TrainConfig) -> RunOptions {
    RunOptions {
        cfg,
        out: out.to_path_buf(),
        resume: false,
        resume_steps: None,
        device: DeviceKind::Cpu,
        progress: false,
        stop_after: None,
        inject_nan_at: None,
        lock: None,
    }
}

fn smoke() -> TrainConfig {
    TrainConfig {
        builtin_documents: 1500,
        steps: 8,
        eval_every: 4,
        checkpoint_every: 4,
        ..TrainConfig::preset("smoke").unwrap()
    }
}

/// The metrics without wall-clock fields.
fn losses(dir: &std::path::Path) -> Vec<(u64, String, f64)> {
    read(&dir.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .map(|r| match r {
            Record::Train {
                step,
                loss,
                grad_norm,
                ..
            } => (step, format!("train {grad_norm:e}"), loss),
            Record::Eval { step, val_loss, .. } => (step, "eval".to_string(), val_loss),
            Record::Final {
                step,
                val_loss,
                test_loss,
                ..
            } => (step, format!("final test {test_loss:e}"), val_loss),
        })
        .collect()
}

#[test]
fn same_seed_same_losses_bit_for_bit() {
    let (a, b, c) = (temp_dir("det-a"), temp_dir("det-b"), temp_dir("det-c"));
    run::<Mini>(&options(&a, smoke())).unwrap();
    run::<Mini>(&options(&b, smoke())).unwrap();
    run::<Mini>(&options(&c, TrainConfig { seed: 1, ..smoke() })).unwrap();
    assert_eq!(losses(&a), losses(&b));
    assert_ne!(losses(&a), losses(&c));
}

/// bf16 matmuls (AMX or AVX-512 BF16): deterministic too, close to the
/// f32 run, and refused with a clear error on a machine with neither.
#[test]
fn bf16_matmuls_train_deterministically() {
    use march_runtime::kernels::{bf16_unit, Matmul};
    let (a, b, f) = (temp_dir("bf16-a"), temp_dir("bf16-b"), temp_dir("bf16-f32"));
    let cfg = TrainConfig {
        matmul: Matmul::Bf16,
        ..smoke()
    };
    let Some(unit) = bf16_unit() else {
        let err = run::<Mini>(&options(&a, cfg)).unwrap_err().to_string();
        assert!(err.contains("AMX") && err.contains("AVX-512 BF16"), "{err}");
        return;
    };
    eprintln!("bf16 products on {unit}");
    run::<Mini>(&options(&a, cfg.clone())).unwrap();
    run::<Mini>(&options(&b, cfg)).unwrap();
    run::<Mini>(&options(&f, smoke())).unwrap();
    let (la, lf) = (losses(&a), losses(&f));
    assert_eq!(la, losses(&b));
    assert_ne!(la, lf, "the bf16 run rounds its products");
    for ((_, _, x), (_, _, y)) in la.iter().zip(&lf) {
        assert!((x - y).abs() < 0.05 * y.abs(), "{x} vs {y}");
    }
}

#[test]
fn resume_continues_exactly() {
    let (full, part) = (temp_dir("resume-full"), temp_dir("resume-part"));
    let cfg = TrainConfig {
        grad_accum: 2,
        ..smoke()
    };
    let whole = run::<Mini>(&options(&full, cfg.clone())).unwrap();
    // killed after step 6 (last checkpoint at 4): steps 5-6 are redone
    let killed = run::<Mini>(&RunOptions {
        stop_after: Some(6),
        ..options(&part, cfg.clone())
    })
    .unwrap();
    assert_eq!(killed.steps, 6);
    let resumed = run::<Mini>(&RunOptions {
        resume: true,
        ..options(&part, cfg)
    })
    .unwrap();
    assert_eq!(resumed.steps, 8);
    assert_eq!(losses(&full), losses(&part));
    assert_eq!(whole.final_val_loss, resumed.final_val_loss);
    let ckpt_a = std::fs::read(full.join("checkpoint.safetensors")).unwrap();
    let ckpt_b = std::fs::read(part.join("checkpoint.safetensors")).unwrap();
    assert!(ckpt_a == ckpt_b, "the final checkpoints differ");
}

#[test]
fn a_nan_loss_stops_cleanly_and_keeps_what_was_written() {
    let dir = temp_dir("nan");
    let err = run::<Mini>(&RunOptions {
        inject_nan_at: Some(6),
        ..options(&dir, smoke())
    })
    .expect_err("the run must stop");
    let msg = err.to_string();
    assert!(
        msg.contains("step 6") && msg.contains("NaN") && msg.contains("checkpoint"),
        "{msg}"
    );
    // metrics up to step 5 are intact, the checkpoint of step 4 resumes
    let records = read(&dir.join("metrics.jsonl")).unwrap();
    assert_eq!(records.iter().map(Record::step).max(), Some(5));
    let again = run::<Mini>(&RunOptions {
        resume: true,
        ..options(&dir, smoke())
    })
    .unwrap();
    assert_eq!(again.steps, 8);
    assert!(again.final_val_loss.unwrap().is_finite());
}

#[test]
fn run_directory_has_everything() {
    let dir = temp_dir("rundir");
    let report = run::<Mini>(&options(&dir, smoke())).unwrap();
    for f in [
        "config.json",
        "tokenizer.json",
        "metrics.jsonl",
        "checkpoint.safetensors",
        "summary.json",
    ] {
        assert!(dir.join(f).exists(), "{f} is missing");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["variant"], "Mini");
    assert_eq!(config["params_total"], Mini::PARAMS.total);
    assert!(config["data"].as_str().unwrap().contains("synthetic"));
    // TensorBoard: the original's tags, CRCs valid
    let tb = std::fs::read_dir(dir.join("tensorboard"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let scalars = read_scalars(&tb).unwrap();
    let tags: std::collections::BTreeSet<&str> =
        scalars.iter().map(|(t, _, _)| t.as_str()).collect();
    for t in [
        "train/loss",
        "eval/loss",
        "train/num_params",
        "train/learning_rate",
        "train/grad_norm",
        "train/tokens_per_s",
        "train/epoch",
        "eval/runtime_s",
    ] {
        assert!(tags.contains(t), "no {t} in {tags:?}");
    }
    // the hyperparameters, as a text summary: the variant and every setting
    let texts = read_texts(&tb).unwrap();
    let (_, _, hparams) = texts.iter().find(|(t, _, _)| t == "hparams").unwrap();
    assert!(hparams.contains("| variant | Mini |"), "{hparams}");
    assert!(hparams.contains("| lr | "), "{hparams}");
    assert!(hparams.contains("| steps | "), "{hparams}");
    let n = scalars.iter().filter(|(t, _, _)| t == "train/loss").count();
    assert_eq!(n as u64, report.steps);
    // starting again in the same directory is refused
    let err = run::<Mini>(&options(&dir, smoke()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--resume"), "{err}");
    // a tokenizer of the wrong size is refused, naming both sizes
    let other = temp_dir("wrong-vocab");
    let cfg = TrainConfig {
        tokenizer: Some(shared_data().join("march-tokenizer.json")),
        ..smoke()
    };
    let err = run::<Mini>(&options(&other, cfg))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("30000") && err.contains("1024"), "{err}");
}

#[test]
fn builtin_corpus_is_learnable() {
    let dir = temp_dir("learn");
    let cfg = TrainConfig {
        builtin_documents: 4000,
        steps: 200,
        batch_size: 8,
        eval_every: 50,
        warmup_steps: Some(10),
        lr: 3e-3,
        ..smoke()
    };
    let r = run::<Mini>(&options(&dir, cfg)).unwrap();
    let (first, last) = (r.first_val_loss.unwrap(), r.final_val_loss.unwrap());
    eprintln!(
        "built-in corpus: validation loss {first} → {last}, unigram entropy {}",
        r.unigram_entropy
    );
    assert!(last < first - 2.0, "validation loss {first} → {last}");
    assert!(
        last < r.unigram_entropy - 0.5,
        "loss {last} is not well below the unigram entropy {}",
        r.unigram_entropy
    );
}

#[test]
fn wikitext_with_the_original_tokenizer() {
    let dir = temp_dir("wikitext");
    let cfg = TrainConfig {
        data: vec![shared_data().join("wikitext-2/valid.txt")],
        tokenizer: Some(shared_data().join("march-tokenizer.json")),
        chunk_len: 64,
        held_out_tokens: 1024,
        steps: 30,
        batch_size: 8,
        eval_every: 15,
        lr: 3e-3,
        warmup_steps: Some(3),
        ..smoke()
    };
    let r = run::<MiniOriginalVocab>(&options(&dir, cfg)).unwrap();
    let (first, last) = (r.first_val_loss.unwrap(), r.final_val_loss.unwrap());
    assert!(last < first - 1.0, "validation loss {first} → {last}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert!(config["tokenizer"]
        .as_str()
        .unwrap()
        .ends_with("march-tokenizer.json"));
    assert_eq!(MiniOriginalVocab::ARCH.vocab, 30_000);
}

/// Every `f32` of a safetensors file's data section.
fn checkpoint_values(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn weights_that_overflow_are_never_saved() {
    // an absurd learning rate: the loss of step 1 is finite, the weights
    // after its update are not (the old guard saved them as "good")
    let dir = temp_dir("lr-overflow");
    let cfg = TrainConfig {
        lr: 1e38,
        checkpoint_every: 1,
        // this test is about the weights guard, not the divergence guard
        divergence_factor: 0.0,
        ..smoke()
    };
    let err = run::<Mini>(&options(&dir, cfg)).expect_err("the run must stop");
    let msg = err.to_string();
    assert!(msg.contains("not finite") || msg.contains("NaN"), "{msg}");
    let ckpt = dir.join("checkpoint.safetensors");
    if ckpt.exists() {
        assert!(
            checkpoint_values(&ckpt).iter().all(|v| v.is_finite()),
            "a checkpoint with non-finite values was saved: {msg}"
        );
        assert!(msg.contains("last good checkpoint"), "{msg}");
    } else {
        assert!(msg.contains("no checkpoint was written yet"), "{msg}");
    }
}

#[test]
fn a_run_directory_is_held_by_one_process() {
    let dir = temp_dir("locked");
    let held = march_runtime::files::DirLock::acquire(&dir, "run").unwrap();
    let err = run::<Mini>(&options(&dir, smoke())).expect_err("the directory is held");
    assert!(
        err.to_string().contains("in use by another march process"),
        "{err}"
    );
    assert!(!dir.join("config.json").exists(), "nothing was written");
    drop(held);
    run::<Mini>(&options(&dir, smoke())).unwrap();
}

#[test]
fn a_run_stopped_before_its_first_checkpoint_restarts_in_place() {
    let dir = temp_dir("no-checkpoint");
    let cfg = TrainConfig {
        checkpoint_every: 100,
        ..smoke()
    };
    run::<Mini>(&RunOptions {
        stop_after: Some(2),
        ..options(&dir, cfg.clone())
    })
    .unwrap();
    assert!(dir.join("config.json").exists() && !dir.join("checkpoint.safetensors").exists());
    // --resume has nothing to resume and says what to do
    let err = run::<Mini>(&RunOptions {
        resume: true,
        ..options(&dir, cfg.clone())
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("restarts in place"), "{err}");
    // starting it again is the way: it trains from step 0, from scratch
    let again = run::<Mini>(&options(&dir, cfg.clone())).unwrap();
    assert_eq!(again.steps, 8);
    let fresh = temp_dir("no-checkpoint-fresh");
    run::<Mini>(&options(&fresh, cfg)).unwrap();
    assert_eq!(losses(&dir), losses(&fresh));
}

#[test]
fn bad_optimizer_settings_are_refused() {
    let base = smoke();
    let err = base
        .merge_toml("[adamw]\nbetas = [0.9, 0.95]\neps = 1e-8\nweight_decay = 0.1\nlr = 3\n")
        .unwrap_err();
    assert!(err.contains("lr"), "unknown key under [adamw]: {err}");
    // a typo gets the nearest key
    let err = base.merge_toml("stepz = 4\n").unwrap_err();
    assert!(err.contains("did you mean `steps`?"), "{err}");
    for (toml, what) in [
        ("[adamw]\nbetas = [1.0, 1.0]\n", "adamw.betas"),
        ("[adamw]\neps = -1.0\n", "adamw.eps"),
        ("held_out_tokens = 0\n", "held_out_tokens"),
        ("clip_grad_norm = -1.0\n", "clip_grad_norm"),
    ] {
        let cfg = base.merge_toml(toml).unwrap();
        let err = cfg.validate().unwrap_err();
        assert!(err.contains(what), "{toml}: {err}");
    }
}

#[test]
fn a_corrupt_checkpoint_is_refused_on_resume() {
    let dir = temp_dir("corrupt");
    let cfg = smoke();
    run::<Mini>(&RunOptions {
        stop_after: Some(4),
        ..options(&dir, cfg.clone())
    })
    .unwrap();
    let ckpt = dir.join("checkpoint.safetensors");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    // flip bytes in the middle of the tensor data: the file still parses
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&ckpt, bytes).unwrap();
    let err = run::<Mini>(&RunOptions {
        resume: true,
        ..options(&dir, cfg)
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("corrupt") && err.contains("checksum"), "{err}");
}

#[test]
fn a_diverging_run_stops_with_an_error() {
    let dir = temp_dir("diverge");
    let cfg = TrainConfig {
        lr: 1e4,
        clip_grad_norm: 0.0,
        steps: 40,
        ..smoke()
    };
    let err = run::<Mini>(&options(&dir, cfg))
        .expect_err("a diverging run must not end as a success")
        .to_string();
    assert!(
        err.contains("diverged") || err.contains("collapsed"),
        "{err}"
    );
    assert!(
        !dir.join("summary.json").exists(),
        "no summary: not a finished run"
    );
}

#[test]
fn the_divergence_rule() {
    use march_runtime::train::trainer::diverged;
    let uniform = (30_000f64).ln();
    assert!(diverged(7.7e7, 3.0, 30_000, 4.0).is_some());
    assert!(diverged(uniform, 0.0, 30_000, 4.0).is_some());
    assert!(diverged(uniform, 0.5, 30_000, 4.0).is_none());
    assert!(diverged(3.9 * uniform, 1.0, 30_000, 4.0).is_none());
    assert!(diverged(7.7e7, 0.0, 30_000, 0.0).is_none(), "0: never");
}

#[test]
fn a_finished_run_resumes_only_to_train_further_and_its_summary_covers_all() {
    let dir = temp_dir("finished");
    let first = run::<Mini>(&options(&dir, smoke())).unwrap();
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    // the same length again: refused, and nothing rewritten
    let err = run::<Mini>(&RunOptions {
        resume: true,
        ..options(&dir, smoke())
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("is finished") && err.contains("--steps"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.json")).unwrap(),
        summary
    );
    // longer: it continues, the config records the new length, the summary
    // covers the whole run
    let longer = run::<Mini>(&RunOptions {
        resume: true,
        resume_steps: Some(12),
        ..options(&dir, smoke())
    })
    .unwrap();
    assert_eq!(longer.steps, 12);
    assert_eq!(longer.first_val_loss, first.first_val_loss);
    assert!(longer.best_val_loss.unwrap() <= first.best_val_loss.unwrap());
    assert!(longer.wall_s > first.wall_s, "{longer:?} vs {first:?}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["steps"], 12);
}

#[test]
fn warmup_follows_the_run_length_and_is_recorded() {
    let cpu = TrainConfig::preset("cpu").unwrap();
    assert_eq!(cpu.warmup(), 30, "10% of 300 steps");
    assert_eq!(
        TrainConfig {
            steps: 12,
            ..cpu.clone()
        }
        .warmup(),
        1
    );
    let explicit = TrainConfig {
        steps: 12,
        warmup_steps: Some(5),
        ..cpu
    };
    assert_eq!(explicit.warmup(), 5);
    let dir = temp_dir("warmup");
    let cfg = TrainConfig {
        warmup_steps: None,
        warmup_fraction: 0.25,
        ..smoke()
    };
    run::<Mini>(&options(&dir, cfg)).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["train"]["warmup_steps"], 2,
        "25% of 8 steps, resolved"
    );
    // the learning rate peaks at the end of the warmup
    let lrs: Vec<f64> = read(&dir.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Train { lr, .. } => Some(lr),
            _ => None,
        })
        .collect();
    let peak = lrs.iter().copied().fold(0.0, f64::max);
    assert_eq!(peak, lrs[1], "{lrs:?}");
}

/// A full disk while the checkpoint is written (its temporary file made a
/// link to `/dev/full`, which refuses every write with ENOSPC): the error
/// says so in words, not in Rust's Debug form; the temporary is gone; the
/// last checkpoint is whole, and the run resumes from it to the same end.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_said_in_words_and_loses_nothing() {
    let cfg = smoke();
    let (full, dir) = (temp_dir("full-disk-whole"), temp_dir("full-disk"));
    let whole = run::<Mini>(&options(&full, cfg.clone())).unwrap();
    run::<Mini>(&RunOptions {
        stop_after: Some(4),
        ..options(&dir, cfg.clone())
    })
    .unwrap();
    let tmp = dir.join("checkpoint.safetensors.tmp");
    std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
    let err = run::<Mini>(&RunOptions {
        resume: true,
        ..options(&dir, cfg.clone())
    })
    .expect_err("the disk is full");
    let shown = format!("{err:#}");
    assert!(shown.contains("No space left on device"), "{shown}");
    assert!(
        !shown.contains("StorageFull") && !shown.contains("Os {"),
        "{shown}"
    );
    assert!(std::fs::symlink_metadata(&tmp).is_err(), "temporary left");
    let resumed = run::<Mini>(&RunOptions {
        resume: true,
        ..options(&dir, cfg)
    })
    .unwrap();
    assert_eq!(resumed.final_val_loss, whole.final_val_loss);
    assert_eq!(losses(&full), losses(&dir));
}

/// A tokenizer trained for a corpus is kept in the cache: the next run on
/// the same corpus and vocabulary takes it instead of training again, and
/// it is the tokenizer training would give (the same file, the same run).
#[test]
fn a_trained_tokenizer_is_trained_once_per_corpus() {
    let dir = temp_dir("tokenizer-once");
    // a copy made now: a corpus the cache has not seen
    let corpus = dir.join("valid.txt");
    std::fs::copy(shared_data().join("wikitext-2/valid.txt"), &corpus).unwrap();
    let cfg = TrainConfig {
        data: vec![corpus],
        ..smoke()
    };
    let (a, b) = (dir.join("a"), dir.join("b"));
    let start = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    run::<Mini>(&options(&a, cfg.clone())).unwrap();
    let trained = std::fs::read(a.join("tokenizer.json")).unwrap();
    // (earlier runs of this test left theirs, for copies made then)
    let kept_now = std::fs::read_dir(march_runtime::data::cache_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tokenizer.json"))
        .filter(|p| std::fs::metadata(p).unwrap().modified().unwrap() >= start)
        .filter(|p| std::fs::read(p).unwrap() == trained)
        .count();
    assert!(kept_now >= 1, "kept in the cache");
    run::<Mini>(&options(&b, cfg)).unwrap();
    assert_eq!(std::fs::read(b.join("tokenizer.json")).unwrap(), trained);
    let config = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap()
    };
    assert_eq!(config(&a)["tokenizer"], config(&b)["tokenizer"]);
    assert_eq!(losses(&a), losses(&b));
}
