//! `examples/my_experiments.rs`: a user's own variants get march's whole
//! command line, beside the library's, without touching march's source.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// The example's binary, which `cargo test` builds beside the test
/// binaries (`target/<profile>/examples/`).
fn example() -> Command {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin: PathBuf = profile_dir
        .join("examples")
        .join(format!("my_experiments{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} was not built (cargo test builds examples)",
        bin.display()
    );
    let mut c = Command::new(bin);
    c.env("MARCH_CACHE", std::env::temp_dir().join("march-test-cache"));
    c
}

#[test]
fn a_users_variants_list_and_train_from_their_own_binary() {
    let out = example().arg("list").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for name in [
        "MySmallSwiGLUMoreHeads",
        "MyReGLUFewerHeads",
        "MySmallReGLUFewerHeads",
        "SmallBaseline",
        "Baseline",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} not listed:\n{stdout}"
        );
    }
    let dir = common::temp_dir("example-train");
    let run = dir.join("run");
    let out = example()
        .args([
            "train",
            "MySmallSwiGLUMoreHeads",
            "--preset",
            "smoke",
            "--quiet",
            "--out",
            run.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("MySmallSwiGLUMoreHeads: 6 steps"));
    assert!(run.join("summary.json").exists());
}
