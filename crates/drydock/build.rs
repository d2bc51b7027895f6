//! Link-time settings of the `drydock` binary.
//!
//! A scan is a short process, so start-up counts: on Linux with glibc the
//! binary's 40,000-odd relative relocations are packed (`DT_RELR`, binutils
//! ≥ 2.38, glibc ≥ 2.36), which the loader applies in a fraction of the time
//! and pages that plain `RELA` entries take.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
