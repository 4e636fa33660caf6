//! Sweeps and reports: the statistics against hand-computed values on fixed
//! run files, a sweep killed and resumed giving the same report as an
//! uninterrupted one, slices, plots, and named errors for broken runs.

use std::path::{Path, PathBuf};

use crate::common::temp_dir;
use march_runtime::march_model;
use march_runtime::report::{self, Comparison};
use march_runtime::sweep::{self, run_state, RunState, Slice, SweepOptions, SweepSpec};
use march_runtime::train::metrics::Record;
use march_runtime::train::run_dir::RunConfig;
use march_runtime::train::{DeviceKind, Report, TrainConfig};

use super::Mini;

/// A second variant for the sweeps: only its initialisation differs from
/// `Mini`, so it shares `Mini`'s model type (no extra compile time).
#[march_model(base = Mini, position_init = unit)]
struct MiniUnitPositions;

fn smoke() -> TrainConfig {
    TrainConfig {
        builtin_documents: 1500,
        steps: 6,
        eval_every: 3,
        checkpoint_every: 3,
        ..TrainConfig::preset("smoke").unwrap()
    }
}

fn spec() -> SweepSpec {
    SweepSpec::new(
        &["Mini".into(), "miniunitpositions".into()],
        vec![0, 1],
        smoke(),
    )
    .unwrap()
}

fn options(dir: &Path, stop_after: Option<(usize, u64)>) -> SweepOptions {
    SweepOptions {
        dir: dir.to_path_buf(),
        slice: Slice::ALL,
        device: DeviceKind::Cpu,
        progress: false,
        stop_after,
    }
}

/// The report without what depends on the clock or the directory.
fn comparable(mut c: Comparison) -> Comparison {
    for v in &mut c.variants {
        v.run_dirs.clear();
        v.tokens_per_s = v.final_val_loss;
        v.wall_s = v.final_val_loss;
    }
    c
}

#[test]
fn killed_and_resumed_sweep_gives_the_same_report() {
    let (a, b) = (temp_dir("sweep-a"), temp_dir("sweep-b"));
    let (spec_a, runs_a) = sweep::open(&a, Some(spec())).unwrap();
    assert_eq!(spec_a.variants, ["Mini", "MiniUnitPositions"]);
    assert_eq!(runs_a.len(), 4);
    let done = sweep::run(&spec_a, &runs_a, &options(&a, None)).unwrap();
    assert_eq!((done.trained.len(), done.failed.len()), (4, 0));

    // b: killed inside its second run after step 4 (checkpoint at step 3)…
    let (spec_b, runs_b) = sweep::open(&b, Some(spec())).unwrap();
    let first = sweep::run(&spec_b, &runs_b, &options(&b, Some((1, 4)))).unwrap();
    assert!(first.stopped);
    assert_eq!(first.trained.len(), 1);
    let second_run = b.join(&runs_b[1].dir);
    assert_eq!(run_state(&second_run), RunState::Resumable);
    // …then in its third run before any checkpoint…
    let again = sweep::open(&b, None).unwrap();
    assert_eq!(again.0, spec_b);
    let second = sweep::run(&spec_b, &runs_b, &options(&b, Some((1, 1)))).unwrap();
    assert!(second.stopped);
    assert_eq!((second.skipped.len(), second.resumed.len()), (1, 1));
    assert_eq!(run_state(&b.join(&runs_b[2].dir)), RunState::NoCheckpoint);
    // …and finished.
    let third = sweep::run(&spec_b, &runs_b, &options(&b, None)).unwrap();
    assert_eq!(
        (third.skipped.len(), third.trained.len(), third.failed.len()),
        (2, 2, 0)
    );

    let ra = report::compare(std::slice::from_ref(&a), None, &[]).unwrap();
    let rb = report::compare(std::slice::from_ref(&b), None, &[]).unwrap();
    assert!(ra.errors.is_empty() && ra.differences.is_empty(), "{ra:?}");
    assert_eq!(ra.variants.len(), 2);
    assert_eq!(ra.baseline.as_deref(), Some("Mini"));
    assert_eq!(ra.variants[0].seeds, [0, 1]);
    assert!(ra.variants[1].vs_control.is_some());
    assert_eq!(comparable(ra.clone()), comparable(rb));

    // the same variant and seed see the same data in both sweeps; another seed does not
    let losses = |dir: &Path| std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    // the evaluations, without their wall-clock seconds
    let strip = |s: String| -> Vec<serde_json::Value> {
        s.lines()
            .filter(|l| l.contains("\"eval\""))
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("eval_s");
                v
            })
            .collect()
    };
    assert_eq!(
        strip(losses(&a.join(&runs_a[0].dir))),
        strip(losses(&b.join(&runs_b[0].dir)))
    );
    assert_ne!(
        strip(losses(&a.join(&runs_a[0].dir))),
        strip(losses(&a.join(&runs_a[2].dir)))
    );

    // a different sweep in the same directory is refused, naming what to do
    let other = SweepSpec::new(&["Mini".into()], vec![0], smoke()).unwrap();
    let err = sweep::open(&a, Some(other)).unwrap_err().to_string();
    assert!(err.contains("holds a different sweep"), "{err}");

    // plots and files
    let out = a.join("report");
    let written = report::write(&ra, &out, "march report").unwrap();
    // the curves, loss against parameters, and the Δ forest plot: SVG and PNG each
    assert_eq!(written.plots.len(), 6);
    for p in &written.plots {
        let bytes = std::fs::read(p).unwrap();
        assert!(
            bytes.len() > 5_000,
            "{} is {} bytes",
            p.display(),
            bytes.len()
        );
        if p.extension().unwrap() == "png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        } else {
            let svg = String::from_utf8(bytes).unwrap();
            assert!(svg.contains("<svg") && svg.contains("MiniUnitPositions"));
        }
    }
    let md = std::fs::read_to_string(&written.markdown).unwrap();
    assert!(md.contains("| MiniUnitPositions | 2 |"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written.json).unwrap()).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&ra).unwrap()).unwrap();
    assert_eq!(json, expected);
}

#[test]
fn slices_split_the_runs_between_machines() {
    let dir = temp_dir("sweep-slices");
    let spec = SweepSpec::new(&["Mini".into()], vec![3, 4, 5], smoke()).unwrap();
    let (spec, runs) = sweep::open(&dir, Some(spec)).unwrap();
    let text = std::fs::read_to_string(dir.join("runs.txt")).unwrap();
    assert!(text.contains("Mini 4 Mini-seed4\n"), "{text}");
    let slice = |s: &str| SweepOptions {
        slice: s.parse().unwrap(),
        ..options(&dir, None)
    };
    let one = sweep::run(&spec, &runs, &slice("1/2")).unwrap();
    assert_eq!(one.trained.len(), 1);
    assert_eq!(run_state(&dir.join("Mini-seed4")), RunState::Done);
    assert_eq!(run_state(&dir.join("Mini-seed3")), RunState::New);
    let zero = sweep::run(&spec, &runs, &slice("0/2")).unwrap();
    assert_eq!(zero.trained.len(), 2);
    let cmp = report::compare(&[dir], None, &[]).unwrap();
    assert_eq!(cmp.variants[0].seeds, [3, 4, 5]);
    assert!(cmp.variants[0].vs_control.is_none()); // the baseline itself

    for bad in ["2/2", "1", "a/b", "0/0"] {
        assert!(bad.parse::<Slice>().is_err(), "{bad}");
    }
}

/// A finished run directory with chosen losses, written field by field.
fn fake_run(dir: &Path, variant: &str, seed: u64, finals: f64, best: f64) -> PathBuf {
    let run = dir.join(format!("{variant}-seed{seed}"));
    std::fs::create_dir_all(&run).unwrap();
    let config = RunConfig {
        variant: variant.into(),
        architecture: String::new(),
        params_total: 1000,
        params_live: 900,
        flops_per_token: 6000,
        device: DeviceKind::Cpu,
        data: "fixture".into(),
        tokenizer: "fixture".into(),
        corpus_tokens: 0,
        train_chunks: 0,
        validation_chunks: 0,
        test_chunks: 0,
        held_out: "fixture".into(),
        encoder_len: 0,
        decoder_len: 0,
        code_version: String::new(),
        train: TrainConfig {
            seed,
            steps: 2,
            ..TrainConfig::preset("cpu").unwrap()
        },
    };
    std::fs::write(
        run.join("config.json"),
        serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    let records = [
        Record::Eval {
            step: 0,
            tokens: 0,
            val_loss: 9.0,
            eval_s: 0.0,
        },
        Record::Eval {
            step: 1,
            tokens: 100,
            val_loss: best,
            eval_s: 0.0,
        },
        Record::Eval {
            step: 2,
            tokens: 200,
            val_loss: finals,
            eval_s: 0.0,
        },
    ];
    let lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    std::fs::write(run.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
    let summary = Report {
        variant: variant.into(),
        run_dir: run.clone(),
        steps: 2,
        tokens: 200,
        first_val_loss: Some(9.0),
        final_val_loss: Some(finals),
        best_val_loss: Some(best.min(finals)),
        test_loss: Some(finals + 0.5),
        val_targets: Some(1000),
        test_targets: Some(1000),
        unigram_entropy: 5.0,
        tokens_per_s: 1000.0 + seed as f64,
        wall_s: 2.0,
        interrupted: false,
    };
    std::fs::write(
        run.join("summary.json"),
        serde_json::to_string(&summary).unwrap(),
    )
    .unwrap();
    run
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
}

#[test]
fn report_statistics_match_hand_computation() {
    let dir = temp_dir("report-stats");
    for (seed, (b, v)) in [(4.0, 3.8), (4.2, 3.9), (4.1, 3.7)].into_iter().enumerate() {
        fake_run(&dir, "Base", seed as u64, b, b + 0.5);
        fake_run(&dir, "Wide", seed as u64, v, v - 0.1);
    }
    fake_run(&dir, "Single", 0, 5.0, 5.0);
    let cmp = report::compare(std::slice::from_ref(&dir), Some("base"), &[]).unwrap();
    assert_eq!(cmp.baseline.as_deref(), Some("Base"));
    let names: Vec<&str> = cmp.variants.iter().map(|v| v.variant.as_str()).collect();
    assert_eq!(names, ["Base", "Single", "Wide"]);
    let (base, wide) = (&cmp.variants[0], &cmp.variants[2]);
    // Base: 4.0, 4.2, 4.1 → mean 4.1, s = sqrt((0.01 + 0.01 + 0) / 2) = 0.1
    close(base.final_val_loss.mean, 4.1);
    close(base.test_loss.as_ref().unwrap().mean, 4.6);
    close(base.final_val_loss.std.unwrap(), 0.1);
    // Wide: 3.8, 3.9, 3.7 → mean 3.8, s = 0.1; best: 3.7, 3.8, 3.6 → mean 3.7
    close(wide.final_val_loss.mean, 3.8);
    close(wide.final_val_loss.std.unwrap(), 0.1);
    close(wide.best_val_loss.mean, 3.7);
    // Welch: diff −0.3, se = sqrt(0.01/3 + 0.01/3) = 0.0816497, df = 4,
    // t(0.975, 4) = 2.7764451 → half-width 0.2266951
    let w = wide.vs_control.unwrap();
    close(w.diff, -0.3);
    close(w.df, 4.0);
    close(w.ci_low, -0.526_695_1);
    close(w.ci_high, -0.073_304_9);
    assert!(w.significant);
    close(wide.tokens_per_s.mean, 1001.0);
    // the curve: mean and range over seeds at each evaluation
    let last = wide.curve.last().unwrap();
    assert_eq!(last.tokens, 200);
    close(last.mean, 3.8);
    close(last.min, 3.7);
    close(last.max, 3.9);
    // one seed: no interval
    assert!(cmp.variants[1].vs_control.is_none());
    assert!(cmp.variants[1].final_val_loss.std.is_none());
}

#[test]
fn broken_runs_are_named_and_the_rest_reported() {
    let dir = temp_dir("report-broken");
    fake_run(&dir, "Base", 0, 4.0, 4.0);
    fake_run(&dir, "Base", 1, 4.2, 4.2);
    let unfinished = fake_run(&dir, "Base", 2, 4.1, 4.1);
    std::fs::remove_file(unfinished.join("summary.json")).unwrap();
    let corrupt = fake_run(&dir, "Wide", 0, 3.0, 3.0);
    std::fs::write(corrupt.join("summary.json"), "{ not json").unwrap();
    let garbage = fake_run(&dir, "Wide", 1, 3.0, 3.0);
    std::fs::write(garbage.join("metrics.jsonl"), "garbage\n").unwrap();

    let cmp = report::compare(std::slice::from_ref(&dir), None, &[]).unwrap();
    assert_eq!(cmp.variants.len(), 1);
    assert_eq!(cmp.variants[0].seeds, [0, 1]);
    assert_eq!(cmp.errors.len(), 3, "{:?}", cmp.errors);
    let all = cmp.errors.join("\n");
    for (dir, what) in [
        (&unfinished, "unfinished run of Base (2 of 2 steps"),
        (&corrupt, "summary.json is corrupt"),
        (&garbage, "unreadable metrics"),
    ] {
        assert!(all.contains(&format!("{}: {what}", dir.display())), "{all}");
    }
    // a directory without runs, and one that does not exist
    let empty = temp_dir("report-empty");
    let cmp = report::compare(&[empty.clone(), dir.join("nope")], None, &[]).unwrap();
    assert!(cmp.variants.is_empty());
    assert!(
        cmp.errors[0].contains("holds no run directory"),
        "{:?}",
        cmp.errors
    );
    assert!(
        cmp.errors[1].contains("no such directory"),
        "{:?}",
        cmp.errors
    );
    // an unknown baseline is an error that lists the variants
    let err = report::compare(&[dir], Some("Nope"), &[]).unwrap_err();
    assert!(err.to_string().contains("(Base)"), "{err}");
}

#[test]
fn runs_of_different_settings_are_never_seeds_of_one_another() {
    let dir = temp_dir("report-settings");
    fake_run(&dir.join("short"), "SmallBaseline", 0, 6.0, 6.0);
    fake_run(&dir.join("short"), "SmallBaseline", 1, 6.2, 6.1);
    let long = fake_run(&dir.join("long"), "SmallBaseline", 0, 5.0, 5.0);
    // the same variant and seed, trained for longer
    let path = long.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["train"]["steps"] = 120.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let cmp = report::compare(&[dir], None, &[]).unwrap();
    let rows: Vec<(&str, &[u64])> = cmp
        .variants
        .iter()
        .map(|v| (v.variant.as_str(), v.seeds.as_slice()))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // (the warmup, 10% of the run, follows from the length: not a setting
    // of its own)
    let row = |label: &str| rows.iter().find(|(l, _)| *l == label).map(|r| r.1);
    assert_eq!(
        row("SmallBaseline (steps 2)"),
        Some(&[0, 1][..]),
        "{rows:?}"
    );
    assert_eq!(row("SmallBaseline (steps 120)"), Some(&[0][..]), "{rows:?}");
    assert!(
        cmp.differences.contains(&"steps: 120 / 2".to_string()),
        "{:?}",
        cmp.differences
    );
    // the baseline is the first group of the baseline variant; the other
    // group has one seed, so no interval against it
    assert_eq!(cmp.baseline.as_deref(), rows.first().map(|r| r.0));

    // any training setting tells runs apart, a nested one too
    let dir = temp_dir("report-settings-nested");
    fake_run(&dir.join("a"), "Base", 0, 6.0, 6.0);
    let other = fake_run(&dir.join("b"), "Base", 1, 6.2, 6.1);
    let path = other.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["train"]["adamw"]["weight_decay"] = 0.5.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let cmp = report::compare(&[dir], None, &[]).unwrap();
    let labels: Vec<&str> = cmp.variants.iter().map(|v| v.variant.as_str()).collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(
        labels.contains(&"Base (adamw.weight_decay 0.5)"),
        "{labels:?}"
    );
}

#[test]
fn holm_matches_hand_computation() {
    use march_runtime::report::holm::holm;
    // sorted: 0.005 (×4 = 0.02 ≤ α/4 = 0.0125? 0.005 yes), 0.01 (×3 = 0.03,
    // 0.01 ≤ 0.0167 yes), 0.03 (×2 = 0.06, 0.03 ≤ 0.025 no: stop), 0.04
    // (×1 = 0.04, adjusted max(0.06, 0.04) = 0.06)
    let h = holm(&[0.01, 0.04, 0.03, 0.005], 0.05);
    let adjusted: Vec<f64> = h.iter().map(|h| h.p_adjusted).collect();
    for (a, b) in adjusted.iter().zip([0.03, 0.06, 0.06, 0.02]) {
        close(*a, b);
    }
    let survives: Vec<bool> = h.iter().map(|h| h.survives).collect();
    assert_eq!(survives, [true, false, false, true]);
    // one test: Holm is the test itself; capped at 1
    assert!(holm(&[0.04], 0.05)[0].survives);
    close(holm(&[0.6, 0.7], 0.05)[1].p_adjusted, 1.0);
}

#[test]
fn spearman_and_its_bootstrap_match_hand_computation() {
    use march_runtime::report::rank::{rank_agreement, ranks, spearman};
    assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    // ranks a = 1…5, b = [1, 2, 3.5, 5, 3.5]; deviations from 3:
    // a [−2, −1, 0, 1, 2], b [−2, −1, 0.5, 2, 0.5]; Σab = 8, Σa² = 10,
    // Σb² = 9.5 → ρ = 8 / √95
    let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
    close(rho, 8.0 / 95f64.sqrt());
    close(
        spearman(&[1.0, 2.0, 3.0], &[30.0, 20.0, 10.0]).unwrap(),
        -1.0,
    );
    assert!(spearman(&[1.0, 2.0], &[1.0, 2.0]).is_none());
    assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
    // seeds that never overlap: every resample orders the variants the same
    let seeds = vec![vec![1.0, 1.1, 1.2], vec![2.0, 2.1], vec![3.0, 3.2, 3.1]];
    let a = rank_agreement(&seeds, &[10.0, 30.0, 20.0], 500, 7).unwrap();
    close(a.rho, 0.5);
    close(a.ci_low, 0.5);
    close(a.ci_high, 0.5);
    assert_eq!((a.n, a.resamples), (3, 500));
    // overlapping seeds: an interval around ρ, the same on every call
    let seeds = vec![vec![1.0, 2.5, 1.2], vec![2.0, 1.1], vec![3.0, 0.9, 3.1]];
    let a = rank_agreement(&seeds, &[1.0, 2.0, 3.0], 2000, 7).unwrap();
    assert!(a.ci_low < a.rho && a.rho <= a.ci_high, "{a:?}");
    assert!(a.ci_low >= -1.0 && a.ci_high <= 1.0);
    assert_eq!(rank_agreement(&seeds, &[1.0, 2.0, 3.0], 2000, 7), Some(a));
}

#[test]
fn controls_holm_and_a_reference_in_the_report() {
    use march_runtime::report::{compare_with, CompareOptions, Reference};
    let dir = temp_dir("report-controls");
    // Base ≈ 4.1, Control ≈ 4.3, Glu ≈ 4.2: Glu is worse than Base but
    // better than its control
    for (seed, (b, c, g)) in [(4.0, 4.3, 4.2), (4.2, 4.4, 4.25), (4.1, 4.2, 4.15)]
        .into_iter()
        .enumerate()
    {
        fake_run(&dir, "Base", seed as u64, b, b);
        fake_run(&dir, "Control", seed as u64, c, c);
        fake_run(&dir, "Glu", seed as u64, g, g);
    }
    let reference = Reference {
        name: "original.txt".into(),
        values: Reference::parse("# the original\nbase 5.785\nControl 5.812\nGlu 5.792\n").unwrap(),
    };
    let cmp = compare_with(
        std::slice::from_ref(&dir),
        &CompareOptions {
            controls: vec![("glu".into(), "control".into())],
            reference: Some(reference),
            ..CompareOptions::default()
        },
    )
    .unwrap();
    let row = |n: &str| cmp.variants.iter().find(|v| v.variant == n).unwrap();
    assert_eq!(row("Base").control, None);
    assert_eq!(row("Control").control.as_deref(), Some("Base"));
    assert_eq!(row("Glu").control.as_deref(), Some("Control"));
    // Glu − Control: means 4.2 − 4.3 = −0.1
    close(row("Glu").vs_control.unwrap().diff, -0.1);
    // Holm over the two comparisons made
    let ps = [
        row("Control").vs_control.unwrap().p,
        row("Glu").vs_control.unwrap().p,
    ];
    let expected = march_runtime::report::holm::holm(&ps, 0.05);
    assert_eq!(row("Control").holm, Some(expected[0]));
    assert_eq!(row("Glu").holm, Some(expected[1]));
    // the reference: case-insensitive names; ρ of the means (4.1, 4.3, 4.2)
    // against (5.785, 5.812, 5.792): the same order, ρ = 1
    assert_eq!(row("Base").reference, Some(5.785));
    let a = cmp.rank_agreement.unwrap();
    assert_eq!(a.n, 3);
    close(a.rho, 1.0);
    let md = march_runtime::report::markdown::render(&cmp, "", &[], &dir);
    assert!(md.contains("| Glu | 3 |"), "{md}");
    assert!(md.contains("| Control | -0.1000 ["), "{md}");
    assert!(
        md.contains("Rank agreement with original.txt: Spearman's ρ = 1.000 over the 3 variants"),
        "{md}"
    );
    // a control that is not there is an error naming the runs
    let err = compare_with(
        std::slice::from_ref(&dir),
        &CompareOptions {
            controls: vec![("Glu".into(), "Nope".into())],
            ..CompareOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`Nope` is not among the runs compared (Base, "),
        "{err}"
    );
    // bad reference files say where
    assert!(Reference::parse("Base 5.7 extra\n")
        .unwrap_err()
        .to_string()
        .contains("line 1"));
    assert!(Reference::parse("Base x\n")
        .unwrap_err()
        .to_string()
        .contains("`x` is not a number"));
    assert_eq!(
        Reference::parse("{\"Base\": 5.785}").unwrap()["Base"],
        5.785
    );
}

/// What a run directory's files can become (a kill during a write, two
/// writers, a copy cut short, an edit): every byte-prefix of each file at a
/// few lengths, each file twice over, every line twice, the lines
/// reversed. `march report` reads them all without a panic: each run is
/// either reported or named with what is wrong, and the report is written.
#[test]
fn the_report_survives_whatever_is_in_a_run_directory() {
    let dir = temp_dir("report-fuzz");
    for seed in 0..2 {
        fake_run(&dir, "Base", seed, 4.0 + 0.1 * seed as f64, 4.0);
        fake_run(&dir, "Wide", seed, 3.5 + 0.1 * seed as f64, 3.5);
    }
    let victim = dir.join("Wide-seed1");
    let mut cases = 0;
    for file in ["config.json", "metrics.jsonl", "summary.json"] {
        let path = victim.join(file);
        let original = std::fs::read(&path).unwrap();
        let text = String::from_utf8(original.clone()).unwrap();
        let n = original.len();
        let mut variants: Vec<(String, Vec<u8>)> = [0, 1, n / 3, n / 2, n - 2, n - 1]
            .into_iter()
            .map(|k| (format!("first {k} of {n} bytes"), original[..k].to_vec()))
            .collect();
        variants.push(("twice over".into(), [&original[..], &original[..]].concat()));
        let lines: Vec<&str> = text.lines().collect();
        variants.push((
            "every line twice".into(),
            lines
                .iter()
                .flat_map(|l| [*l, *l])
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes(),
        ));
        variants.push((
            "lines reversed".into(),
            lines
                .iter()
                .rev()
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes(),
        ));
        variants.push(("not UTF-8".into(), vec![0xff, 0xfe, b'{', b'\n']));
        for (what, bytes) in variants {
            std::fs::write(&path, &bytes).unwrap();
            let out = dir.join("report-out");
            let _ = std::fs::remove_dir_all(&out);
            let result = std::panic::catch_unwind(|| {
                let cmp = report::compare(std::slice::from_ref(&dir), None, &[])?;
                report::write(&cmp, &out, "march report")?;
                anyhow::Ok(cmp)
            });
            let cmp = match result {
                Ok(Ok(cmp)) => cmp,
                Ok(Err(e)) => panic!("{file}, {what}: the report failed: {e:#}"),
                Err(_) => panic!("{file}, {what}: the report panicked"),
            };
            // the other runs are always reported; the victim is reported
            // or named
            let seeds = |v: &str| {
                cmp.variants
                    .iter()
                    .find(|r| r.variant == v)
                    .map(|r| r.seeds.clone())
                    .unwrap_or_default()
            };
            assert_eq!(seeds("Base"), [0, 1], "{file}, {what}");
            let wide = seeds("Wide");
            let named = cmp
                .errors
                .iter()
                .any(|e| e.contains(&victim.display().to_string()));
            assert!(
                wide == [0, 1] || (wide == [0] && named),
                "{file}, {what}: Wide seeds {wide:?}, errors {:?}",
                cmp.errors
            );
            // reported, its curve is the run's: one point per evaluation,
            // in order of tokens
            if wide == [0, 1] {
                let w = cmp.variants.iter().find(|r| r.variant == "Wide").unwrap();
                let tokens: Vec<u64> = w.curve.iter().map(|p| p.tokens).collect();
                assert_eq!(tokens, [0, 100, 200], "{file}, {what}");
            }
            assert!(out.join("report.md").exists() && out.join("val_loss.svg").exists());
            cases += 1;
        }
        std::fs::write(&path, &original).unwrap();
    }
    assert_eq!(cases, 30);
}

/// A sweep over settings as well as variants: 2 variants × 2 learning
/// rates × 2 seeds, each run trained and recorded with its own settings;
/// the report's rows are (variant, lr), seeds never mixed across settings,
/// and it names each variant's best lr, picked on validation and compared
/// on test.
#[test]
fn a_grid_sweep_reports_each_variant_at_its_best_setting() {
    use march_runtime::sweep::Axis;
    let dir = temp_dir("sweep-grid");
    let variants = ["Mini".to_string(), "MiniUnitPositions".to_string()];
    let grid = |g: &str| vec![g.parse::<Axis>().unwrap()];
    let spec = SweepSpec::new(&variants, vec![0, 1], smoke())
        .unwrap()
        .with_grid(grid("lr=3e-4,3e-3"))
        .unwrap();
    let (spec, runs) = sweep::open(&dir, Some(spec)).unwrap();
    assert_eq!(runs.len(), 8);
    assert_eq!(runs[1].dir, "Mini-lr3e-3-seed0");
    assert_eq!(runs[1].settings, [("lr".to_string(), "3e-3".to_string())]);
    let out = sweep::run(&spec, &runs, &options(&dir, None)).unwrap();
    assert_eq!(
        (out.trained.len(), out.failed.len()),
        (8, 0),
        "{:?}",
        out.failed
    );
    for r in &runs {
        let c: RunConfig =
            serde_json::from_slice(&std::fs::read(dir.join(&r.dir).join("config.json")).unwrap())
                .unwrap();
        let lr: f64 = r.settings[0].1.parse().unwrap();
        assert_eq!((c.train.lr, c.train.seed), (lr, r.seed), "{}", r.dir);
    }
    // reopened from its files alone: the same sweep and runs; another grid
    // in the same directory is refused
    let (again, again_runs) = sweep::open(&dir, None).unwrap();
    assert_eq!((&again, &again_runs), (&spec, &runs));
    let other = SweepSpec::new(&variants, vec![0, 1], smoke())
        .unwrap()
        .with_grid(grid("lr=1e-3"))
        .unwrap();
    assert!(sweep::open(&dir, Some(other)).is_err());

    let cmp = report::compare(std::slice::from_ref(&dir), None, &[]).unwrap();
    assert!(cmp.errors.is_empty(), "{:?}", cmp.errors);
    assert_eq!(cmp.variants.len(), 4, "rows: (variant, lr)");
    for v in &cmp.variants {
        assert_eq!(v.seeds, [0, 1], "{}", v.variant);
        assert!(v.variant.contains("(lr "), "{}", v.variant);
    }
    assert_eq!(cmp.best_settings.len(), 2);
    for (b, name) in cmp.best_settings.iter().zip(&variants) {
        assert_eq!(&b.variant, name);
        let rows: Vec<_> = cmp
            .variants
            .iter()
            .filter(|v| v.variant.starts_with(&format!("{name} (")))
            .collect();
        assert_eq!(rows.len(), 2);
        let best = rows
            .iter()
            .min_by(|a, b| a.final_val_loss.mean.total_cmp(&b.final_val_loss.mean))
            .unwrap();
        assert_eq!(b.row, best.variant, "picked on validation");
        assert_eq!(b.test_loss, best.test_loss, "reported on test");
    }
    assert!(
        cmp.best_settings[0].vs_baseline_test.is_none(),
        "Mini is the baseline"
    );
    assert!(cmp.best_settings[1].vs_baseline_test.is_some());
    let out = dir.join("report");
    report::write(&cmp, &out, "march report").unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("Picked on validation"), "{md}");
    for b in &cmp.best_settings {
        let lr = b.row.split("(lr ").nth(1).unwrap().trim_end_matches(')');
        assert!(
            md.contains(&format!("| {} | lr {lr} | 2 |", b.variant)),
            "{md}"
        );
    }

    // a bad axis is refused before anything trains, saying what to write
    assert!("lr".parse::<Axis>().unwrap_err().contains("KEY=V1,V2"));
    assert!("seed=1,2".parse::<Axis>().unwrap_err().contains("--seeds"));
    assert!("lr=1e-3,1e-3"
        .parse::<Axis>()
        .unwrap_err()
        .contains("twice"));
    let refused = |g: &str| {
        format!(
            "{:#}",
            SweepSpec::new(&variants, vec![0], smoke())
                .unwrap()
                .with_grid(grid(g))
                .unwrap_err()
        )
    };
    assert!(
        refused("lrr=1e-3").contains("lrr"),
        "{}",
        refused("lrr=1e-3")
    );
    assert!(refused("batch_size=0").contains("batch_size"));
}

/// A run another process holds (a second slice started twice, a run
/// started by hand) is left to it, counted as held, and its directory
/// untouched; the next call trains it.
#[test]
fn a_sweep_leaves_a_held_run_to_its_holder() {
    let dir = temp_dir("sweep-held");
    let (spec, runs) = sweep::open(&dir, Some(spec())).unwrap();
    let held_dir = dir.join(&runs[0].dir);
    let held = march_runtime::files::DirLock::acquire(&held_dir, "run").unwrap();
    let out = sweep::run(&spec, &runs, &options(&dir, None)).unwrap();
    assert_eq!((out.held.len(), out.trained.len()), (1, 3));
    assert!(!held_dir.join("config.json").exists(), "left untouched");
    drop(held);
    let out = sweep::run(&spec, &runs, &options(&dir, None)).unwrap();
    assert_eq!((out.trained.len(), out.skipped.len()), (1, 3));
}
