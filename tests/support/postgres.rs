//! A real PostgreSQL server for tests and benchmarks, from Debian's packages: a private
//! cluster in a temporary folder, on a free port of 127.0.0.1, stopped and removed when the
//! [`PgCluster`] is dropped (and, should the process die first, by a watchdog that stops it
//! when this process is gone). Nothing needs to be running beforehand; when Debian's
//! `postgresql` is not installed and we are root, it is installed.
//!
//! Included with `#[path]` by the tests and benchmarks that need it; only std and the
//! cluster's own `psql`, `initdb`, `postgres` and `pg_ctl` are used.
//!
//! PostgreSQL refuses to run as root: as root, the cluster's folder is given to the
//! `postgres` user the package created and every server program runs as that user through
//! `setpriv` (which execs the program, so the pid the watchdog signals is the server's own;
//! `runuser` would stay in between as a parent that turns every signal into SIGTERM, a
//! "smart" shutdown that waits for every client).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A private PostgreSQL server.
#[allow(dead_code)]
pub struct PgCluster {
    /// Removed on drop.
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    running: bool,
    /// The shell that started the server and stops it if this process dies.
    watchdog: Option<std::process::Child>,
}

/// Whether this process runs as root (PostgreSQL refuses to run as root; it then runs as the
/// `postgres` user the package created).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Debian's PostgreSQL binaries, installed first when missing (as root, once at a time).
fn postgres_bin() -> PathBuf {
    if let Some(bin) = find_bin() {
        return bin;
    }
    assert!(
        is_root(),
        "PostgreSQL is not installed: install Debian's `postgresql` package (apt-get install \
         postgresql), or run as root to let the tests install it"
    );
    // One installer at a time across test processes.
    let lock = Path::new("/tmp/isms-postgresql-install.lock");
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                if let Some(bin) = find_bin() {
                    return bin;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("waiting for another process installing PostgreSQL: {e}"),
        }
    }
    let installed = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
             postgresql >/dev/null",
        ])
        .status();
    let _ = std::fs::remove_file(lock);
    assert!(
        installed.map(|s| s.success()).unwrap_or(false),
        "installing Debian's postgresql package failed"
    );
    find_bin().expect("PostgreSQL's binaries after installing it")
}

/// `program args...`, as the `postgres` user when we are root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Removes the folders of clusters whose process died while `initdb` ran (before a watchdog
/// was there to remove them).
fn remove_abandoned_folders() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("isms-pg-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let data = entry.path().join("data");
        if !Path::new(&format!("/proc/{pid}")).exists() && !data.join("postmaster.pid").exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[allow(dead_code)]
impl PgCluster {
    /// Creates and starts a new cluster.
    pub fn start() -> PgCluster {
        let bin = postgres_bin();
        remove_abandoned_folders();
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "isms-pg-{}-{}-{:x}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::SeqCst),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the cluster's folder");
        if is_root() {
            let chowned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(chowned.success(), "chown of {}", dir.display());
        }
        let init = as_postgres(&bin.join("initdb"))
            .args([
                "--auth=trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .output()
            .expect("running initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let mut cluster = PgCluster {
            dir,
            bin,
            port: free_port(),
            running: false,
            watchdog: None,
        };
        cluster.launch();
        cluster
    }

    /// Starts the server and waits until it answers.
    fn launch(&mut self) {
        // The watchdog stops the server and removes its folder when this process is gone,
        // even after `kill -9` (a cluster kept in a `static` is never dropped).
        let script = format!(
            "{postgres} -D '{data}' -k '{dir}' -p {port} -c listen_addresses=127.0.0.1 \
             -c fsync=on -c max_connections=300 -c shared_buffers=64MB >>'{dir}/log' 2>&1 &
             pg=$!
             while kill -0 {parent} 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 1; done
             if ! kill -0 {parent} 2>/dev/null; then
               kill -INT $pg 2>/dev/null; wait $pg; rm -rf '{dir}'
             fi",
            postgres = if is_root() {
                format!(
                    "setpriv --reuid=postgres --regid=postgres --init-groups -- '{}'",
                    self.bin.join("postgres").display()
                )
            } else {
                format!("'{}'", self.bin.join("postgres").display())
            },
            data = self.dir.join("data").display(),
            dir = self.dir.display(),
            port = self.port,
            parent = std::process::id(),
        );
        let watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting postgres");
        self.watchdog = Some(watchdog);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.answers() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
                panic!("PostgreSQL did not start on port {}:\n{log}", self.port);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.running = true;
    }

    /// Whether the server takes a query.
    fn answers(&self) -> bool {
        self.psql("postgres", "SELECT 1")
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn psql(&self, database: &str, sql: &str) -> std::io::Result<std::process::Output> {
        Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .stdin(Stdio::null())
            .output()
    }

    /// The TCP port the server listens on (on 127.0.0.1); it keeps it across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates the database `name` (letters, digits and `_`).
    pub fn create_database(&self, name: &str) {
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "database name {name:?}"
        );
        let out = self
            .psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .expect("psql");
        assert!(
            out.status.success(),
            "CREATE DATABASE {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `sql` in `database`; its output, unaligned and without headers.
    pub fn query(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-U",
                "postgres",
                "-p",
                &self.port.to_string(),
                "-d",
                database,
            ])
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server (fast shutdown: open connections are cut, nothing in flight is
    /// committed after this returns).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let data = self.dir.join("data");
        let stopped = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "fast", "-w", "-t", "60", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !stopped {
            // pg_ctl failed: stop the server by its pid (immediate shutdown).
            if let Some(pid) = std::fs::read_to_string(data.join("postmaster.pid"))
                .ok()
                .and_then(|f| f.lines().next().map(str::to_string))
            {
                let _ = Command::new("kill")
                    .args(["-QUIT", pid.trim()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // The watchdog ends within a second of the server.
        if let Some(mut watchdog) = self.watchdog.take() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(watchdog.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(watchdog.try_wait(), Ok(None)) {
                let _ = watchdog.kill();
                let _ = watchdog.wait();
            }
        }
        self.running = false;
    }

    /// Starts the server again on the same port, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
