//! A real, throwaway PostgreSQL server for the tests (the Rust twin of
//! `interop/pg_server.py`'s `Postgres`): Debian's PostgreSQL binaries, a fresh cluster in
//! its own folder under `/tmp`, on 127.0.0.1, with password (SCRAM) authentication over
//! TCP for the user [`USER`]. Used by `crates/registry/tests` to run the store contract
//! on Postgres as well as SQLite.
//!
//! Postgres refuses to run as root; when the tests run as root the cluster is owned by
//! and run as the `postgres` user the Debian package creates (`setpriv`).
//!
//! Nothing outlives the test process: `postgres` is started by a small `sh` guard that
//! reads a pipe from the test process; when the pipe closes (the [`PgServer`] is dropped,
//! or the process ends however it ends, a panic or a kill included) the guard stops the
//! server (fast shutdown), waits for it and removes the folder. The guard runs in a
//! process group of its own, so a Ctrl-C at the terminal reaches the test process only
//! and the guard still gets to clean up.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The superuser of the test cluster.
pub const USER: &str = "freshet";
/// Its password (only ever over TCP, with SCRAM).
pub const PASSWORD: &str = "pw-Kq83-never-logged";

/// The folder holding `initdb`, `postgres`, `pg_isready` and `createdb`: the highest
/// version under `/usr/lib/postgresql/*/bin`, else wherever `initdb` on `PATH` really
/// is. Panics, saying how to install it, when there is none.
pub fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("initdb"))
            .find(|p| p.is_file())
    });
    if let Some(initdb) = on_path {
        // A symlink in /usr/local/bin says where the other binaries are.
        let initdb = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        return initdb.parent().expect("initdb's folder").to_path_buf();
    }
    panic!(
        "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb and no initdb on PATH \
         (apt-get install postgresql; .ci/run installs it)"
    );
}

/// Whether this process runs as root (its effective uid, from `/proc/self/status`).
fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

fn chown_to_postgres(path: &Path) {
    let out = Command::new("chown")
        .arg("postgres")
        .arg(path)
        .output()
        .expect("run chown");
    assert!(
        out.status.success(),
        "chown postgres {}: {} (the postgres user comes with apt-get install postgresql)",
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// `program`, run as the `postgres` user when this process is root.
fn as_postgres(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The guard: starts the server (the arguments after the script), stops it when its
/// stdin closes, waits for it, removes `$FRESHET_PG_ROOT` and exits. A server that
/// stops on its own ends the guard too, which is how a failed start shows.
const GUARD: &str = r#"
exec 3<&0
"$@" </dev/null &
pg=$!
{ read _ <&3; kill -INT "$pg" 2>/dev/null; } &
reader=$!
wait "$pg"
status=$?
kill "$reader" 2>/dev/null
rm -rf "$FRESHET_PG_ROOT"
exit "$status"
"#;

/// A running PostgreSQL server; stopped, and its data removed, when dropped.
pub struct PgServer {
    root: PathBuf,
    port: u16,
    bin: PathBuf,
    /// The `sh` guard; closing its stdin stops the server.
    guard: Child,
}

impl PgServer {
    /// A new cluster on a free port, ready to accept connections. Panics when
    /// PostgreSQL is not installed or does not start.
    pub fn start() -> PgServer {
        let bin = bin_dir();
        let as_root = running_as_root();
        // A port taken by another process between free_port() and the server binding
        // it: the guard ends, with the folder; a new cluster is tried.
        let mut last = String::new();
        for _ in 0..3 {
            match PgServer::attempt(&bin, as_root) {
                Ok(server) => return server,
                Err(why) => last = why,
            }
        }
        panic!("postgres did not start; its log:\n{last}");
    }

    /// `initdb` in a new folder, then the guard and the server on a free port; waits
    /// until it accepts connections. `Err(log)` when it stopped or never became ready
    /// (the folder is gone then).
    fn attempt(bin: &Path, as_root: bool) -> Result<PgServer, String> {
        // Its own folder under /tmp, where the postgres user can reach it.
        let root = tempfile::Builder::new()
            .prefix("freshet-pg-")
            .tempdir_in("/tmp")
            .expect("a folder under /tmp")
            .keep();
        let data = root.join("data");
        let pwfile = root.join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).expect("write the password file");
        if as_root {
            chown_to_postgres(&root);
            chown_to_postgres(&pwfile);
        }
        let out = as_postgres(as_root, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "-E",
                "UTF8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                let how = if as_root {
                    "setpriv … initdb"
                } else {
                    "initdb"
                };
                panic!("cannot run {how}: {e}")
            });
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&root);
            panic!(
                "initdb failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let port = free_port();
        // Read and write: it is read back through this handle, after the guard removed
        // it with the folder if the server did not start.
        let log = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(root.join("server.log"))
            .expect("create the server log");
        let log_copy = log.try_clone().expect("log");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(GUARD).arg("freshet-pg-guard");
        let server_cmd = as_postgres(as_root, &bin.join("postgres"));
        cmd.arg(server_cmd.get_program())
            .args(server_cmd.get_args())
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&root)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=300",
            ])
            .env("FRESHET_PG_ROOT", &root)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let read_log = || {
            let mut bytes = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = log_copy.read_at(&mut buf, bytes.len() as u64) {
                bytes.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let guard = cmd.spawn().expect("spawn sh (the postgres guard)");
        let mut server = PgServer {
            root: root.clone(),
            port,
            bin: bin.to_path_buf(),
            guard,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-t", "1", "-h", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.guard.try_wait() {
                return Err(format!("(the server ended: {status})\n{}", read_log()));
            }
            if Instant::now() > deadline {
                drop(server);
                return Err(format!("(not ready after 60 s)\n{}", read_log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One server for the whole test process, started by the first caller. It stops
    /// when the process ends (see the module's doc): give each test a database of its
    /// own with [`PgServer::create_database`].
    pub fn shared() -> &'static PgServer {
        static SHARED: OnceLock<PgServer> = OnceLock::new();
        SHARED.get_or_init(PgServer::start)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the `postgres` database, as [`USER`] with its password, without TLS.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    fn url_of(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// A new, empty database with a name no other has had on this server; its URL.
    pub fn create_database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!("freshet_test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", USER, "-w", &name])
            .env("PGPASSWORD", PASSWORD)
            .env("PGSSLMODE", "disable")
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        self.url_of(&name)
    }
}

impl Drop for PgServer {
    /// Closes the guard's stdin: it stops the server (fast shutdown), waits for it and
    /// removes the folder; this waits for the guard.
    fn drop(&mut self) {
        drop(self.guard.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(None) = self.guard.try_wait() {
            if Instant::now() > deadline {
                let _ = self.guard.kill();
                let _ = self.guard.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The guard removed the folder once the server was down; this only catches a
        // guard that could not.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(port: u16) -> bool {
        Command::new(bin_dir().join("pg_isready"))
            .args(["-q", "-t", "2", "-h", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .status()
            .is_ok_and(|s| s.success())
    }

    #[test]
    fn a_dropped_server_is_stopped_and_its_folder_removed() {
        let server = PgServer::start();
        let (port, root) = (server.port(), server.root.clone());
        assert!(accepts(port));
        let a = server.create_database();
        let b = server.create_database();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{port}/")));
        drop(server);
        assert!(!accepts(port), "still accepting on {port}");
        assert!(!root.exists(), "{} is still there", root.display());
    }
}
