//! Links the `cohortdb` executable at a fixed address (`-no-pie`).
//!
//! Measured (`perf stat -r 20`, N=100,000 store, 2026-12-07): a position-independent build makes
//! the dynamic loader rewrite 262,896 relocations in 4.4 MB of `.data.rel.ro` before `main`, about
//! 1,150 copy-on-write page faults and 5-8 ms on every run (`--version` 7.4 -> 1.8 ms, one-shot
//! `af` 47.7 -> 39.7 ms). A command-line tool is started once per question, so that cost counts
//! against plink2's whole run. What is given up: the executable's own image is not randomised;
//! shared libraries, heap, stacks and mmaps still are (docs/serving.md, "Hardening").
//! `COHORTDB_PIE=1 cargo build --release` builds a position-independent executable instead.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=COHORTDB_PIE");
    if std::env::var_os("COHORTDB_PIE").is_none_or(|v| v != "1") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
