//! The DSL's compile errors, one file per error class, with `.stderr`
//! snapshots (regenerate with `TRYBUILD=overwrite cargo test --test ui`), and
//! a one-line variant as a user would write it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
