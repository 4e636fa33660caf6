//! Evaluation: held-out splits drawn across the corpus or read from their
//! own files, the whole splits at the end of a run, and `march eval`.

use super::common::{shared_data, temp_dir};
use super::{options, run, smoke, Mini, MiniOriginalVocab};
use march_runtime::data::{cut, draw, MarchTokenizer};
use march_runtime::registry::find;
use march_runtime::train::data::{corpus_chunks, prepare_data};
use march_runtime::train::evaluate::EvalTarget;
use march_runtime::train::metrics::{read, Record};
use march_runtime::train::{DeviceKind, TrainConfig};
use march_runtime::Variant;

#[test]
fn held_out_chunks_are_drawn_across_the_corpus() {
    let chunks: Vec<Vec<u32>> = (0..1000u32).map(|i| vec![i]).collect();
    let (drawn, rest) = draw(chunks.clone(), &[100, 50]);
    let (val, test) = (&drawn[0], &drawn[1]);
    assert_eq!((val.len(), test.len(), rest.len()), (100, 50, 850));
    // disjoint, and together every chunk once
    let mut all: Vec<u32> = val.iter().chain(test).chain(&rest).map(|c| c[0]).collect();
    all.sort();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    // the training chunks keep their order
    assert!(rest.windows(2).all(|w| w[0][0] < w[1][0]));
    // not the corpus's beginning: spread over all of it
    let quarter = |q: u32| val.iter().filter(|c| c[0] / 250 == q).count();
    for q in 0..4 {
        assert!(
            (10..=45).contains(&quarter(q)),
            "{} of 100 validation chunks in quarter {q}",
            quarter(q)
        );
    }
    // the same draw every time: runs on one corpus share their splits
    assert_eq!(draw(chunks, &[100, 50]).0, drawn);
}

#[test]
fn splits_from_the_corpus_and_from_their_own_files() {
    let tokenizer = shared_data().join("march-tokenizer.json");
    let shakespeare = shared_data().join("tinyshakespeare/input.txt");
    let wikitext = shared_data().join("wikitext-2/valid.txt");
    let base = TrainConfig {
        data: vec![shakespeare.clone()],
        tokenizer: Some(tokenizer.clone()),
        chunk_len: 64,
        held_out_tokens: 64 * 100,
        ..smoke()
    };
    let vocab = MiniOriginalVocab::ARCH.vocab;
    // drawn from the corpus: disjoint from the training chunks
    let d = prepare_data(&base, vocab, &temp_dir("split-corpus"), false).unwrap();
    assert_eq!((d.chunks.validation.len(), d.chunks.test.len()), (100, 100));
    let train_chunks = d.chunks.train.to_vecs().unwrap();
    let train: std::collections::HashSet<&Vec<u32>> = train_chunks.iter().collect();
    assert!(d
        .chunks
        .validation
        .iter()
        .chain(&d.chunks.test)
        .all(|c| !train.contains(c)));
    assert!(
        d.held_out.contains("drawn across the training corpus"),
        "{}",
        d.held_out
    );
    // validation from its own file: its chunks, none of the training
    // corpus held out for it; test still drawn from the corpus
    let cfg = TrainConfig {
        validation: vec![wikitext.clone()],
        ..base.clone()
    };
    let f = prepare_data(&cfg, vocab, &temp_dir("split-files"), false).unwrap();
    let tok = MarchTokenizer::load(&tokenizer).unwrap();
    let from_file = corpus_chunks(
        std::slice::from_ref(&wikitext),
        &tok,
        64,
        Some(64 * 100),
        false,
    )
    .unwrap();
    assert_eq!(f.chunks.validation, from_file);
    assert_eq!(f.chunks.test.len(), 100);
    assert_eq!(f.chunks.train.len(), d.chunks.train.len() + 100);
    assert!(f.held_out.contains("valid.txt"), "{}", f.held_out);
    // without a cap, every chunk of the file
    let all = corpus_chunks(&[wikitext], &tok, 64, None, false).unwrap();
    assert!(all.len() > 100);
    // the layout of older runs: the first chunks, validation then test
    let legacy = TrainConfig {
        held_out_chunks: Some(7),
        ..base
    };
    let l = prepare_data(&legacy, vocab, &temp_dir("split-legacy"), false).unwrap();
    let first = cut(
        &tok.encode_all(&march_runtime::data::corpus::read_documents(&[shakespeare]).unwrap())
            .unwrap()
            .into_iter()
            .flat_map(|mut d| {
                d.push(tok.special.eos);
                d
            })
            .collect::<Vec<u32>>(),
        64,
    );
    assert_eq!(l.chunks.validation, first[..7].to_vec());
    assert_eq!(l.chunks.test, first[7..14].to_vec());
    // the original's: test first, then validation
    let original = TrainConfig {
        held_out_test_first: true,
        ..legacy
    };
    let o = prepare_data(&original, vocab, &temp_dir("split-original"), false).unwrap();
    assert_eq!(o.chunks.test, first[..7].to_vec());
    assert_eq!(o.chunks.validation, first[7..14].to_vec());
    assert_eq!(
        o.chunks.train.to_vecs().unwrap(),
        l.chunks.train.to_vecs().unwrap()
    );
}

#[test]
fn the_original_preset_as_the_original_ran() {
    // march/config/default_training_arguments.json and
    // march/datasets/wikipedia.py at the original's 97234f0
    let o = TrainConfig::preset("original").unwrap();
    assert_eq!(o.seed, 42);
    assert_eq!(o.clip_grad_norm, 1.0);
    assert!(o.adamw.decay_norms && o.adamw.weight_decay == 0.1);
    assert_eq!(o.adamw.betas, (0.9, 0.95));
    assert_eq!(
        (o.held_out_chunks, o.held_out_test_first),
        (Some(1000), true)
    );
    // every evaluation reads all 1,000 validation chunks
    assert_eq!(o.eval_every, 20);
    assert!(o.eval_batches * o.batch_size >= 1000);
    assert_eq!(o.batch_size * o.grad_accum * o.chunk_len, 1 << 20);
    assert_eq!((o.steps, o.lr), (1000, 1e-4));
    o.validate().unwrap();
}

#[test]
fn a_finished_run_is_evaluated_whole_and_march_eval_agrees() {
    let dir = temp_dir("eval-run");
    let cfg = TrainConfig {
        held_out_tokens: 64 * 20,
        ..smoke()
    };
    let r = run::<Mini>(&options(&dir, cfg)).unwrap();
    let records = read(&dir.join("metrics.jsonl")).unwrap();
    let Some(Record::Final {
        step,
        val_loss,
        val_targets,
        test_loss,
        test_targets,
        ..
    }) = records.last().cloned()
    else {
        panic!("the last record is not the final evaluation: {records:?}");
    };
    assert_eq!(step, r.steps);
    assert_eq!(r.final_val_loss, Some(val_loss));
    assert_eq!(r.test_loss, Some(test_loss));
    assert_eq!(
        (r.val_targets, r.test_targets),
        (Some(val_targets), Some(test_targets))
    );
    // 20 chunks each, more targets than the 4 chunks evaluated during the run
    let during = records
        .iter()
        .filter(|r| matches!(r, Record::Eval { .. }))
        .count();
    assert!(during >= 2);
    assert!(
        val_targets > 4 * 8 && test_targets > 4 * 8,
        "{val_targets} {test_targets}"
    );
    // march eval reads the checkpoint and finds the same numbers, bit for bit
    let entry = find("Mini").unwrap();
    let e = entry
        .evaluate(&dir, &EvalTarget::default(), DeviceKind::Cpu, false)
        .unwrap();
    assert_eq!(e.step, r.steps);
    let names: Vec<&str> = e.results.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["validation", "test"]);
    assert_eq!(e.results[0].loss.loss, val_loss);
    assert_eq!(e.results[1].loss.loss, test_loss);
    assert_eq!(e.results[0].chunks, 20);
    let se = e.results[0].loss.standard_error;
    assert!(se > 0.0 && se < 1.0, "standard error {se}");
    // perplexity is e^loss
    assert_eq!(e.results[0].loss.perplexity(), val_loss.exp());
    // and on any corpus, capped in tokens
    let other = entry
        .evaluate(
            &dir,
            &EvalTarget {
                data: vec![shared_data().join("tinyshakespeare/input.txt")],
                max_tokens: Some(64 * 5),
            },
            DeviceKind::Cpu,
            false,
        )
        .unwrap();
    assert_eq!(other.results.len(), 1);
    assert_eq!(other.results[0].chunks, 5);
    assert!(other.results[0].loss.loss.is_finite());
    // evaluating wrote nothing into the run
    let after = read(&dir.join("metrics.jsonl")).unwrap();
    assert_eq!(after, records);
}

/// Peak memory does not grow with the corpus: a corpus of over 1 GB (the
/// Gutenberg training books four times over, 1.12 GB of JSON Lines, 280M
/// tokens) is tokenized into the token store and cut into chunks within
/// 1 GiB of resident memory. Ignored by default (about six minutes of two
/// cores, 1.7 GB of temporary disk): `cargo test --release --test train --
/// --ignored peak_memory`.
#[test]
#[ignore]
fn peak_memory_does_not_grow_with_the_corpus() {
    use std::io::Write;
    let dir = temp_dir("big-corpus");
    let corpus = dir.join("gutenberg-x4.jsonl");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&corpus).unwrap());
        for _ in 0..4 {
            let mut gz = flate2::read::MultiGzDecoder::new(
                std::fs::File::open(shared_data().join("gutenberg/train.jsonl.gz")).unwrap(),
            );
            std::io::copy(&mut gz, &mut out).unwrap();
        }
        out.flush().unwrap();
    }
    assert!(std::fs::metadata(&corpus).unwrap().len() > 1_000_000_000);
    // its own cache: the store is written, not found
    std::env::set_var("MARCH_CACHE", dir.join("cache"));
    let tokenizer = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/reproduction/gutenberg/tokenizer.json");
    let cfg = TrainConfig {
        data: vec![corpus],
        tokenizer: Some(tokenizer),
        ..TrainConfig::preset("cpu").unwrap()
    };
    let d = prepare_data(&cfg, 8192, &dir.join("run"), false).unwrap();
    assert!(d.chunks.tokens() > 280_000_000, "{}", d.chunks.tokens());
    // one batch's chunks, as training reads them
    assert_eq!(d.chunks.train.get(12_345).unwrap().len(), 128);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    eprintln!("peak resident memory: {} MB", peak_kb / 1024);
    assert!(peak_kb < 1 << 20, "peak resident memory {peak_kb} kB");
    std::fs::remove_dir_all(&dir).unwrap();
}
