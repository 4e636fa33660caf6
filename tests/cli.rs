//! The `march` command line: listing, errors on bad input, a smoke training,
//! and Ctrl-C.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::temp_dir;

fn march() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_march"));
    c.env("MARCH_CACHE", std::env::temp_dir().join("march-test-cache"));
    c
}

fn output(args: &[&str]) -> (bool, String, String) {
    let out = march().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_shows_every_variant_with_its_counts() {
    let (ok, stdout, _) = output(&["list"]);
    assert!(ok);
    for (name, count) in [
        ("Baseline ", "36,340,224"),
        ("MoreHeadsLessLayers ", "34,764,800"),
        ("MoreHeadsLessQKVDimLessLayers ", "32,143,360"),
        ("SiLUGatedLinearUnit ", "36,337,152"),
        ("SmallBaseline ", "2,394,240"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}in\n{stdout}"));
        assert!(line.contains(count), "{line}");
    }
    assert!(stdout.contains("EXEMPT"));
}

#[test]
fn bad_input_gives_one_line_errors() {
    for (args, expect) in [
        (vec!["show", "Nope"], "unknown variant `Nope`"),
        (vec!["train", "Nope"], "unknown variant `Nope`"),
        (
            vec!["train", "SmalBaseline"],
            "unknown variant `SmalBaseline`; did you mean `SmallBaseline`?",
        ),
        (
            vec!["bench", "baseleine"],
            "unknown variant `baseleine`; did you mean `Baseline`?",
        ),
        (vec!["train", "--preset", "fast"], "unknown preset `fast`"),
        (vec!["train", "--steps", "0"], "steps must be at least 1"),
        (
            vec![
                "train",
                "--data",
                "/nonexistent/corpus.txt",
                "--preset",
                "smoke",
            ],
            "/nonexistent/corpus.txt",
        ),
        (
            vec![
                "train",
                "--tokenizer",
                "/nonexistent/t.json",
                "--preset",
                "smoke",
            ],
            "/nonexistent/t.json",
        ),
        (
            vec!["sweep", "--out", "/nonexistent/sweep"],
            "/nonexistent/sweep holds no sweep",
        ),
        (
            vec!["sweep", "Nope", "--out", "/nonexistent/sweep"],
            "unknown variant `Nope`",
        ),
        (
            vec![
                "sweep",
                "SmallBaseline",
                "--out",
                "/nonexistent/sweep",
                "--slice",
                "3/2",
            ],
            "slice `3/2`: write K/N",
        ),
        (
            vec!["report", "/nonexistent/runs"],
            "no finished run to report on: /nonexistent/runs: no such directory",
        ),
        (vec!["bench", "Nope"], "unknown variant `Nope`"),
        (
            vec!["bench", "SmallBaseline", "--gemm", "scalar"],
            "unknown gemm microkernels `scalar`: use fma or avx512f",
        ),
        (
            vec!["bench", "SmallBaseline", "--device", "cuda", "--products"],
            "--products times march's CPU products",
        ),
        (
            vec!["eval", "/nonexistent/run"],
            "/nonexistent/run/config.json: no run",
        ),
    ] {
        let out = temp_dir("bad-input");
        let mut full = args.clone();
        full.extend(
            ["--out", out.to_str().unwrap()]
                .iter()
                .filter(|_| args[0] == "train"),
        );
        let (ok, _, stderr) = output(&full);
        assert!(!ok, "{args:?} succeeded");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
        assert!(errors[0].contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn smoke_training_and_config_file() {
    let dir = temp_dir("cli-smoke");
    std::fs::write(
        dir.join("c.toml"),
        "steps = 4\nlr = 0.002\n[adamw]\nweight_decay = 0.0\n",
    )
    .unwrap();
    let out = dir.join("run");
    let (ok, stdout, stderr) = output(&[
        "train",
        "--preset",
        "smoke",
        "--config",
        dir.join("c.toml").to_str().unwrap(),
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("SmallBaseline: 4 steps"), "{stdout}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["steps"], 4);
    assert_eq!(config["train"]["lr"], 0.002);
    assert_eq!(config["train"]["seed"], 3);
    assert_eq!(config["train"]["adamw"]["weight_decay"], 0.0);
    assert_eq!(
        config["train"]["adamw"]["betas"][1], 0.95,
        "fields not in the file keep the preset's"
    );
    // an unknown field in the file is an error
    std::fs::write(dir.join("bad.toml"), "stepz = 4\n").unwrap();
    let (ok, _, stderr) = output(&["train", "--config", dir.join("bad.toml").to_str().unwrap()]);
    assert!(!ok && stderr.contains("stepz"), "{stderr}");
}

#[test]
fn sigint_saves_a_checkpoint_and_exits_130() {
    stopped_by_signal_saves_and_resumes("INT");
}

/// What Slurm sends on preemption or at the time limit.
#[test]
fn sigterm_saves_a_checkpoint_and_exits_130() {
    stopped_by_signal_saves_and_resumes("TERM");
}

#[test]
fn sighup_saves_a_checkpoint_and_exits_130() {
    stopped_by_signal_saves_and_resumes("HUP");
}

/// Send `signal` (`TERM`, `INT`…) to `child` and wait for it: its output
/// and its standard error as text.
fn stop_with(child: std::process::Child, signal: &str) -> (std::process::Output, String) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    (result, stderr)
}

fn stopped_by_signal_saves_and_resumes(signal: &str) {
    let dir = temp_dir(&format!("sig{signal}"));
    let out = dir.join("run");
    let child = march()
        .args([
            "train",
            "--preset",
            "smoke",
            "--steps",
            "100000",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait until it is training
    let start = Instant::now();
    while std::fs::read_to_string(out.join("metrics.jsonl"))
        .map(|m| m.lines().count())
        .unwrap_or(0)
        < 5
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "training did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (result, stderr) = stop_with(child, signal);
    // not a success: the run is unfinished
    assert_eq!(result.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("checkpoint saved"), "{stderr}");
    assert!(
        stderr.lines().last().unwrap_or("").contains("--resume"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&result.stdout).contains("(interrupted)"));
    assert!(out.join("checkpoint.safetensors").exists());
    // and it resumes, for two more steps
    let done = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .matches("\"kind\":\"train\"")
        .count();
    let total = (done + 2).to_string();
    let (ok, stdout, stderr) = output(&[
        "train",
        "--resume",
        "--steps",
        &total,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("{total} steps")), "{stdout}");
}

/// A finished smoke-preset run of the default variant, and what
/// `march train` printed.
fn smoke_run(name: &str) -> (std::path::PathBuf, String) {
    let run = temp_dir(name).join("run");
    let (ok, stdout, stderr) = output(&[
        "train",
        "--preset",
        "smoke",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    (run, stdout)
}

#[test]
fn sample_infills_spans_from_a_trained_run() {
    let (run, _) = smoke_run("sample");
    let (ok, stdout, stderr) = output(&[
        "sample",
        run.to_str().unwrap(),
        "The <extra_id_0> of France is Paris.",
        "<extra_id_0> lives in <extra_id_1>.",
    ]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("  ")).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("The [") && lines[0].ends_with("] of France is Paris."),
        "{stdout}"
    );
    assert!(lines[1].contains("] lives in ["), "{stdout}");
    assert!(stderr.contains("greedy"), "{stderr}");
    // from standard input, one text a line
    let mut child = march()
        .args([
            "sample",
            run.to_str().unwrap(),
            "--interactive",
            "--temperature",
            "0.8",
            "--top-k",
            "5",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"The <extra_id_0> of France is Paris.\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("] of France is Paris."));
    // no texts: a one-line error
    let (ok, _, stderr) = output(&["sample", run.to_str().unwrap()]);
    assert!(!ok && stderr.contains("--interactive"), "{stderr}");
}

#[test]
fn eval_reports_a_runs_splits_with_perplexity() {
    let (run, stdout) = smoke_run("eval");
    assert!(stdout.contains(", test loss "), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    let (ok, stdout, stderr) = output(&["eval", run.to_str().unwrap(), "--quiet"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let val = format!("{:.4}", summary["final_val_loss"].as_f64().unwrap());
    let test = format!("{:.4}", summary["test_loss"].as_f64().unwrap());
    assert!(
        lines[1].starts_with(&format!("validation: loss {val} ± ")),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(&format!("test: loss {test} ± ")),
        "{stdout}"
    );
    assert!(lines[1].contains("perplexity"), "{stdout}");
    // JSON, each batch's loss with it
    let (ok, stdout, _) = output(&["eval", run.to_str().unwrap(), "--quiet", "--json"]);
    assert!(ok);
    let e: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(!e["results"][0]["batches"].as_array().unwrap().is_empty());
    // --max-tokens without --data: a one-line error
    let (ok, _, stderr) = output(&["eval", run.to_str().unwrap(), "--max-tokens", "64"]);
    assert!(
        !ok && stderr.contains("--max-tokens limits a --data corpus"),
        "{stderr}"
    );
}

/// A signal while a corpus is tokenized (minutes at scale) stops it at
/// once: exit 130, a message that says nothing was saved, and neither a
/// store nor its temporary file left in the cache.
#[test]
fn sigterm_while_tokenizing_stops_cleanly() {
    let dir = temp_dir("sig-tokenizing");
    let cache = dir.join("cache");
    let shared = common::shared_data();
    let child = march()
        .env("MARCH_CACHE", &cache)
        .args([
            "train",
            "SmallBaseline",
            "--preset",
            "smoke",
            "--data",
            shared.join("gutenberg/train.jsonl.gz").to_str().unwrap(),
            "--tokenizer",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/docs/reproduction/gutenberg/tokenizer.json"
            ),
            "--out",
            dir.join("run").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let files = || -> Vec<String> {
        std::fs::read_dir(&cache)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };
    // wait until the store is being written
    let start = Instant::now();
    while !files().iter().any(|f| f.ends_with(".tmp")) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no tokenization"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (result, stderr) = stop_with(child, "TERM");
    assert_eq!(result.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted while tokenizing"), "{stderr}");
    assert!(files().is_empty(), "left in the cache: {:?}", files());
}
