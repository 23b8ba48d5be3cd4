//! Shared set-up for the end-to-end CLI tests: the real `isms` binary (built by `cargo test`
//! beside the test executables), fresh temp dirs, and a real `isms serve` on 127.0.0.1 with an
//! ephemeral port, stopped when the test ends (ripgrep's `tests/util.rs` is the model).
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `isms` binary: test executables live in target/<profile>/deps, the binary one up.
pub fn isms_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = dir.join(format!("isms{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// A command for the binary with a clean environment for its own variables.
pub fn isms(dir: &Path) -> Command {
    let mut cmd = Command::new(isms_bin());
    cmd.current_dir(dir)
        .env_remove("ISMS_SERVER")
        .env_remove("ISMS_KEY")
        // A served request logs one line; thousands of them would bury a failing test's output.
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// The result of one run, with the text of both streams.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `isms args...` in `dir`.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    isms(dir).args(args).output().expect("running isms").into()
}

/// Runs `isms args...` and insists on exit code 0; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let r = run(dir, args);
    assert_eq!(
        r.code, 0,
        "isms {args:?} exited {}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    );
    r.stdout
}

/// A running `isms serve`; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Server {
    /// Starts `isms serve --data data` on an ephemeral port and waits for its address line.
    pub fn start(dir: &Path, data: &str) -> Server {
        Self::start_with(dir, data, &[])
    }

    /// As [`Server::start`], with more `isms serve` flags.
    pub fn start_with(dir: &Path, data: &str, flags: &[&str]) -> Server {
        let mut args = vec!["serve", "--data", data, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(flags);
        Self::spawn(dir, &args, "isms: serving on ")
    }

    /// Starts `isms witness serve --data data` on an ephemeral port.
    pub fn start_witness(dir: &Path, data: &str) -> Server {
        Self::spawn(
            dir,
            &[
                "witness",
                "serve",
                "--data",
                data,
                "--listen",
                "127.0.0.1:0",
            ],
            "isms witness: serving on ",
        )
    }

    /// Runs `isms args...` and waits for the stdout line `<ready_prefix><address>`.
    pub fn spawn(dir: &Path, args: &[&str], ready_prefix: &'static str) -> Server {
        let (child, addrs) = Self::spawn_reporting(dir, args, &[ready_prefix]);
        Server {
            child,
            url: format!("http://{}", addrs[0]),
        }
    }

    /// Starts `isms serve` with the console on an ephemeral port (`--http`); returns the
    /// server (its gRPC URL in `url`) and the console's base URL (`http://host:port`).
    pub fn start_console(dir: &Path, data: &str, flags: &[&str]) -> (Server, String) {
        let mut args = vec![
            "serve",
            "--data",
            data,
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(flags);
        let (child, addrs) =
            Self::spawn_reporting(dir, &args, &["isms: serving on ", "isms: console on "]);
        let console = addrs[1].trim_end_matches('/').to_string();
        (
            Server {
                child,
                url: format!("http://{}", addrs[0]),
            },
            console,
        )
    }

    /// Runs `isms args...` and waits until it printed a line starting with each prefix;
    /// returns the process and what followed each prefix, in the prefixes' order.
    fn spawn_reporting(
        dir: &Path,
        args: &[&str],
        prefixes: &[&'static str],
    ) -> (Child, Vec<String>) {
        let mut child = isms(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning isms");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let wanted: Vec<&'static str> = prefixes.to_vec();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                for (i, prefix) in wanted.iter().enumerate() {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        let _ = tx.send((i, rest.trim().to_string()));
                    }
                }
            }
        });
        let mut found: Vec<Option<String>> = vec![None; prefixes.len()];
        let deadline = Instant::now() + Duration::from_secs(60);
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((i, text)) => found[i] = Some(text),
                Err(_) => {
                    let _ = child.kill();
                    panic!("isms {args:?} did not print {prefixes:?}");
                }
            }
        }
        (child, found.into_iter().flatten().collect())
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Waits at most `limit` for the server to exit by itself; its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        wait_with_limit(&mut self.child, limit)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (`kill -9`): no chance to flush or finish anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh ledger: `isms init --data data` in a new temp dir.
pub fn init_ledger() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    ok(
        dir.path(),
        &["init", "--data", "data", "--name", "Example Ltd"],
    );
    dir
}

/// Waits for `child` at most `limit`, killing it after; returns whether it exited in time.
pub fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The repository root (for fixtures).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Appends `n` evidence events signed by the key in `signer_file` straight into the stopped
/// ledger of `dir/data` (1,000 per batch): a long history without a server.
pub fn grow_store(dir: &Path, signer_file: &str, n: usize) {
    use prost::Message as _;
    let read_key = |file: &str| {
        let hex_key = std::fs::read_to_string(dir.join(file)).unwrap();
        let bytes: [u8; 32] = hex::decode(hex_key.trim()).unwrap().try_into().unwrap();
        ed25519_dalek::SigningKey::from_bytes(&bytes)
    };
    let store = ledger::Ledger::open(
        dir.join("data").join(isms_cli::server::STORE_DIR),
        ledger::LedgerConfig::default(),
        Some(read_key("data/ledger.key")),
    )
    .expect("open the store");
    let agent = read_key(signer_file);
    let now = ledger::UnixMicros::now().0;
    for chunk in 0..n.div_ceil(1000) {
        let events = (0..1000.min(n - chunk * 1000))
            .map(|i| {
                let id = format!("bulk-{chunk}-{i}");
                let body = isms_proto::v1::EventBody {
                    ledger_id: store.ledger_id().0.to_vec(),
                    event_id: id.clone(),
                    effective_at_us: now,
                    client_time_us: now,
                    expected_version: None,
                    artifacts: Vec::new(),
                    payload: Some(isms_proto::v1::event_body::Payload::Isms(
                        isms_proto::v1::IsmsEvent {
                            kind: Some(isms_proto::v1::isms_event::Kind::EvidenceSubmitted(
                                isms_proto::v1::EvidenceSubmitted {
                                    evidence_id: id,
                                    controls: vec!["A.8.8".into()],
                                    artifact_blake3: Vec::new(),
                                    result: isms_proto::v1::CheckResult::Pass as i32,
                                    collected_at_us: now,
                                    summary: "bulk scan".into(),
                                },
                            )),
                        },
                    )),
                };
                ledger::SignedEvent::sign(&agent, body.encode_to_vec())
            })
            .collect();
        for result in store.append(events) {
            result.expect("bulk append");
        }
    }
}

/// Makes the key file `name` (and `name.pub`) in `dir` and enrols it through the server at
/// `url` with the admin key of `dir/data`, as `subject` holding `role`.
pub fn enrol_key(dir: &Path, url: &str, name: &str, subject: &str, role: &str) {
    ok(dir, &["key", "new", "--out", name]);
    ok(
        dir,
        &[
            "key",
            "enroll",
            "--server",
            url,
            "--key",
            "data/admin.key",
            "--public-key",
            &format!("{name}.pub"),
            "--subject",
            subject,
            "--role",
            role,
        ],
    );
}

/// The heat map's band colours (see `isms_cli::report::BAND_COLOURS`).
pub const BANDS: [(&str, [u8; 3]); 3] = isms_cli::report::BAND_COLOURS;

/// A program on the PATH, by any of its names.
pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Debian's Chromium, if installed.
pub fn find_chromium() -> Option<PathBuf> {
    find_program(&["chromium", "chromium-browser"])
}

/// Counts a PNG's pixels within a small distance of each heat map band colour.
pub fn band_pixels(png_path: &Path) -> [usize; 3] {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).expect("screenshot"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let mut counts = [0; 3];
    for px in buf[..info.buffer_size()].chunks_exact(channels) {
        for (i, (_, rgb)) in BANDS.iter().enumerate() {
            if px[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(*b) <= 3) {
                counts[i] += 1;
            }
        }
    }
    counts
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct HttpAnswer {
    /// Its status code.
    pub status: u16,
    /// Its headers.
    pub headers: http::HeaderMap,
    /// Its body as text.
    pub body: String,
}

/// GET `url` with the given request headers, over a real HTTP/1.1 connection.
pub fn http_get(url: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    use http_body_util::BodyExt as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let mut request = http::Request::get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = client
            .request(
                request
                    .body(http_body_util::Empty::new())
                    .expect("a request"),
            )
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body")
            .to_bytes();
        HttpAnswer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    })
}

/// A register's rows as `isms register NAME --json` prints them, read with `key`.
pub fn register_rows(dir: &Path, url: &str, key: &str, register: &str) -> Vec<serde_json::Value> {
    let out = ok(
        dir,
        &[
            "register", register, "--server", url, "--key", key, "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("register JSON");
    v["rows"].as_array().expect("rows").clone()
}

/// The row whose `column` is `id`.
pub fn row_with<'a>(
    rows: &'a [serde_json::Value],
    column: &str,
    id: &str,
) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r[column] == id)
        .unwrap_or_else(|| panic!("no {column} {id} in {rows:?}"))
}
