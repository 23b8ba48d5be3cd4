//! The `isms` binary itself: it starts, lists every command, and exits with the documented
//! codes. (Having an integration test here also makes `cargo test --workspace` build the
//! binary that the end-to-end tests under the repository's `tests/` drive.)

use std::process::Command;

fn isms(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_isms"))
        .args(args)
        .output()
        .expect("run isms")
}

#[test]
fn help_lists_every_command() {
    let out = isms(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for command in [
        "init", "serve", "key", "submit", "evidence", "register", "diff", "log", "verify",
        "export", "prove", "report", "demo",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(command)),
            "`isms --help` does not list {command}:\n{text}"
        );
    }
}

#[test]
fn a_usage_error_exits_2_with_the_cause() {
    let out = isms(&["register", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.is_empty());
}

#[test]
fn verifying_a_missing_bundle_is_an_error_not_a_failed_verification() {
    let out = isms(&[
        "verify",
        "--offline",
        "no-such.bundle",
        "--ledger-key",
        "00",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
