//! Compile-time checks of `#[circuit_breaker]`: every mistake gets a rustc-style message
//! pointing at the offending token (`tests/ui/fail`), and every supported shape of function
//! compiles and runs (`tests/ui/pass`). Paths are relative to this package (`tests/`).
//!
//! Regenerate the expected messages with `TRYBUILD=overwrite`, then read every `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}
