//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/data` beside the project (or `$MARCH_SHARED_DATA`).
pub fn shared_data() -> PathBuf {
    let dir = std::env::var_os("MARCH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    assert!(
        dir.join("march-tokenizer.json").exists(),
        "the shared test data is missing: expected {} (set MARCH_SHARED_DATA to its folder)",
        dir.display()
    );
    dir
}

/// A fresh, empty temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("march-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
