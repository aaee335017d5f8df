//! Subprocess harness: a configuration in a temporary folder, the real `freshet` binary
//! started as a child process (its output appended to a log file inside the data
//! folder), a minimal blocking HTTP client, and reads of the lake through
//! `freshet_lake`.

use freshet_lake::arrow::array::{Array, AsArray};
use freshet_lake::arrow::compute::cast;
use freshet_lake::arrow::datatypes::DataType;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_freshet");

/// Held by every test that runs `freshet demo`: a demo replays its stream in real time
/// and its loop must keep pace, so two at once on a small machine starve each other
/// (a live demo alone takes both cores of the CI machine). Other tests still run
/// beside one.
pub fn one_demo_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static DEMO: std::sync::Mutex<()> = std::sync::Mutex::new(());
    DEMO.lock().unwrap_or_else(|e| e.into_inner())
}

/// A PII hashing key (hex of 32 bytes); it lives in a key file beside the config.
pub const PII_KEY: &str = "5f1d3c2b9a8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817060504";

/// A configuration folder: `<tmp>/freshet.yaml`, `<tmp>/pii.key`, and the data folder
/// `<tmp>/data` holding the lake (`data/lake`) and every log the children write.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub data: PathBuf,
}

impl Env {
    /// `body` is the YAML after the `lake:` section (usually `streams:`); `lake_extra`
    /// is appended under `lake:`.
    pub fn new(lake_extra: &str, body: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("freshet-crash-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let key = dir.path().join("pii.key");
        std::fs::write(&key, PII_KEY).expect("key file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let config = dir.path().join("freshet.yaml");
        let text = format!(
            "lake:\n  path: data/lake\n{lake_extra}\npii:\n  key_env: FRESHET_CRASH_TEST_NO_SUCH_VAR\n  key_file: pii.key\n  key_version: t1\n\n{body}"
        );
        std::fs::write(&config, text).expect("config");
        Self { dir, config, data }
    }

    pub fn lake_root(&self) -> PathBuf {
        self.data.join("lake")
    }

    /// A `freshet --config <cfg> <args>` command whose stdout and stderr go to
    /// `data/<log>` (appended).
    pub fn command(&self, log: &str, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(&self.config).args(args);
        c.env_remove("FRESHET_CONFIG")
            .env_remove("FRESHET_PII_KEY")
            .env_remove("FRESHET_LOG")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join(log))
            .expect("log file");
        c.stdout(Stdio::from(f.try_clone().expect("dup log")));
        c.stderr(Stdio::from(f));
        c
    }

    /// Highest commit version of a table from its `_delta_log` listing (-1 if none).
    pub fn log_version(&self, table: &str) -> i64 {
        let dir = self.lake_root().join(table).join("_delta_log");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return -1;
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let stem = name.strip_suffix(".json")?;
                if stem.len() != 20 {
                    return None;
                }
                stem.parse::<i64>().ok()
            })
            .max()
            .unwrap_or(-1)
    }

    fn open_table(&self, name: &str) -> Result<freshet_lake::Table, String> {
        let lake = freshet_lake::Lake::new(&self.lake_root().display().to_string())
            .map_err(|e| e.to_string())?;
        let url = lake.table_url(name).map_err(|e| e.to_string())?;
        block_on(freshet_lake::Table::open(url)).map_err(|e| e.to_string())
    }

    /// Open the table and read its info (what a restart or a reader would do).
    pub fn table_info(&self, name: &str) -> Result<freshet_lake::TableInfo, String> {
        let t = self.open_table(name)?;
        block_on(t.info(None)).map_err(|e| e.to_string())
    }

    /// Every row of a table, at its latest version.
    pub fn read_table(
        &self,
        name: &str,
    ) -> Result<Vec<freshet_lake::arrow::record_batch::RecordBatch>, String> {
        let t = self.open_table(name)?;
        block_on(t.read(None)).map_err(|e| e.to_string())
    }

    /// One column of a table as strings (nulls as `None`).
    pub fn read_strings(&self, name: &str, column: &str) -> Result<Vec<Option<String>>, String> {
        let mut out = Vec::new();
        for b in self.read_table(name)? {
            let col = b
                .column_by_name(column)
                .ok_or_else(|| format!("{name} has no column {column}"))?;
            let col = cast(col, &DataType::Utf8).map_err(|e| e.to_string())?;
            let s = col.as_string::<i32>();
            for i in 0..s.len() {
                out.push((!s.is_null(i)).then(|| s.value(i).to_string()));
            }
        }
        Ok(out)
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// A running `freshet up`.
pub struct Server {
    pub child: Child,
    pub addr: Option<SocketAddr>,
    addr_file: PathBuf,
}

impl Server {
    /// Start `freshet up --listen 127.0.0.1:0 --addr-file data/addr` without waiting.
    pub fn spawn(env: &Env, vars: &[(&str, &str)]) -> Self {
        let addr_file = env.data.join("addr");
        let _ = std::fs::remove_file(&addr_file);
        let mut c = env.command(
            "server.log",
            &[
                "up",
                "--listen",
                "127.0.0.1:0",
                "--addr-file",
                addr_file.to_str().expect("utf-8 path"),
            ],
        );
        for (k, v) in vars {
            c.env(k, v);
        }
        let child = c.spawn().expect("spawn freshet up");
        Self {
            child,
            addr: None,
            addr_file,
        }
    }

    /// Start and wait until `/readyz` answers 200.
    pub fn start(env: &Env, vars: &[(&str, &str)]) -> Self {
        let mut s = Self::spawn(env, vars);
        s.wait_ready(env, Duration::from_secs(60));
        s
    }

    pub fn wait_ready(&mut self, env: &Env, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let addr = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "freshet up exited with {st} before listening; log:\n{}",
                    tail(&env.data.join("server.log"))
                );
            }
            if let Ok(text) = std::fs::read_to_string(&self.addr_file)
                && let Ok(a) = text.trim().parse::<SocketAddr>()
            {
                break a;
            }
            assert!(
                Instant::now() < deadline,
                "no address file after {timeout:?}; log:\n{}",
                tail(&env.data.join("server.log"))
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        self.addr = Some(addr);
        loop {
            if let Ok((200, _)) = http(addr, "GET", "/readyz", &[], b"", Duration::from_secs(2)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz never answered 200; log:\n{}",
                tail(&env.data.join("server.log"))
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("server not ready")
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        terminate(&mut self.child, Duration::from_secs(60))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// SIGTERM `child`, wait up to `timeout`, then SIGKILL.
pub fn terminate(child: &mut Child, timeout: Duration) -> ExitStatus {
    // SAFETY: plain kill(2) on the pid of a child we own and have not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let st = child.wait().expect("wait");
            panic!("child did not exit within {timeout:?} of SIGTERM ({st})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last lines of a log file, for failure messages.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`). Returns the status
/// and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("incomplete response head"))?;
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let raw = &resp[split + 4..];
    let lower = head.to_ascii_lowercase();
    let body = if lower.contains("transfer-encoding: chunked") {
        dechunk(raw).ok_or_else(|| bad("bad chunked body"))?
    } else {
        if let Some(len) = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            && raw.len() < len
        {
            return Err(bad("truncated body"));
        }
        raw.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).to_string()))
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// `POST /v1/streams/{stream}/events`.
pub fn post_events(
    addr: SocketAddr,
    stream: &str,
    body: &[u8],
    content_type: &str,
    key: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(k) = key {
        headers.push(("Idempotency-Key", k));
    }
    http(
        addr,
        "POST",
        &format!("/v1/streams/{stream}/events"),
        &headers,
        body,
        Duration::from_secs(30),
    )
}

/// A seed from `FRESHET_CRASH_SEED` or the clock, printed so a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let s = std::env::var("FRESHET_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("{test}: seed {s} (set FRESHET_CRASH_SEED={s} to replay)");
    s
}
