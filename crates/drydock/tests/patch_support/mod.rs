//! Running `drydock patch` from the patch test suites.

use std::path::Path;
use std::process::{Command, Output};

/// `drydock ARGS --data-dir DATA`, its output collected.
pub fn drydock(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("DRYDOCK_LOG", "warn")
        .output()
        .unwrap()
}

/// The standard output of a run that must have succeeded.
pub fn succeed(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "drydock failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `drydock patch IMAGE --update-all --tag TAG`, in sandbox mode
/// (`--run-maintainer-scripts`) when `sandbox` is set.
pub fn patch_update_all(data: &Path, image: &str, tag: &str, sandbox: bool) -> Output {
    let mut args = vec!["patch", image, "--update-all", "--tag", tag];
    if sandbox {
        args.push("--run-maintainer-scripts");
    }
    drydock(data, &args)
}
