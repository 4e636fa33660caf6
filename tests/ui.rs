//! The DSL's compile errors, one file per error class, with `.stderr`
//! snapshots (regenerate with `TRYBUILD=overwrite cargo test --test ui`).
//! Only compile failures: trybuild then type-checks (`cargo check`) and never
//! generates the library's code. A variant declared as a user would write it,
//! compiled and run, is in `tests/variants.rs`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
}
