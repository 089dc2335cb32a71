//! A whole stack as real processes, in a directory of its own, on free local ports: PostgreSQL, Redis and the
//! tansu broker (started with the helpers `make test` uses), then the producer, consumers and workers built by
//! cargo. Each process can be killed, stopped and started again, which is what the fault suite does. How a
//! stack is configured and started: [`builder`].

mod builder;

pub use builder::StackBuilder;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shared_models::testing::{service_url, unique_name};

/// The scripts' shell helpers (start_postgres, start_redis, start_tansu, ...).
const LIB_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib.sh");

/// First and count of the ports handed out: below Linux's ephemeral range (32768 and up).
const PORTS: (u32, u32) = (20_000, 12_000);

/// A free local port, never the same twice in one process. Not one the kernel picks (binding port 0): those
/// come from the ephemeral range, which the kernel also gives to outgoing connections (a Kafka client's, a
/// pool's), and one of those took a producer's port before it could listen. Where the search starts depends
/// on the process, so test binaries running side by side start apart.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (first, count) = PORTS;
    let start = std::process::id() * 97;
    for _ in 0..count {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(first + start.wrapping_add(offset) % count).expect("a port number");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port from {first} to {}", first + count - 1);
}

/// Runs one of the scripts' helpers, such as `start_postgres DIR PORT`.
fn helper(call: &str, args: &[&str]) {
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(". {LIB_SH}; {call} \"$@\""))
        .arg("helper")
        .args(args)
        .env("TANSU_BIN", service_url("TEST_TANSU_BIN"))
        .status()
        .expect("bash runs");
    assert!(status.success(), "{call} {args:?} failed");
}

/// Where cargo put the binaries of the workspace (next to this test's own executable).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` first",
        path.display()
    );
    path
}

/// A running stack; dropping it stops everything and removes its directory.
pub struct Stack {
    pub dir: PathBuf,
    pub pg_port: u16,
    pub redis_port: u16,
    pub kafka_port: u16,
    pub producer_url: String,
    /// The first consumer's API.
    pub consumer_url: String,
    pub admin_token: String,
    pub database_url: String,
    env: BTreeMap<String, String>,
    durable: bool,
    binaries: Option<PathBuf>,
    ports: BTreeMap<String, u16>,
    processes: Mutex<BTreeMap<String, Child>>,
}

impl Stack {
    pub fn builder() -> StackBuilder {
        StackBuilder::default()
    }

    /// Starts (or starts again) a service: `producer`, `consumer-N` or `worker-N`.
    pub fn start(&self, name: &str) {
        let program = name.split('-').next().unwrap_or(name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("logs").join(format!("{name}.log")))
            .expect("log file");
        let path = match &self.binaries {
            Some(dir) => dir.join(program),
            None => binary(program),
        };
        let mut command = Command::new(path);
        command
            .envs(&self.env)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .stdin(Stdio::null());
        let port = self.ports.get(name).copied().unwrap_or(0);
        match program {
            "producer" => command.env("PRODUCER_ADDR", format!("127.0.0.1:{port}")),
            "consumer" => command.env("CONSUMER_ADDR", format!("127.0.0.1:{port}")),
            _ => command.env("WORKER_NAME", format!("{name}-{}", unique_name("at"))),
        };
        let child = command.spawn().expect("the service starts");
        let mut processes = self
            .processes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(mut replaced) = processes.insert(name.to_owned(), child) {
            let _ = replaced.kill();
            let _ = replaced.wait();
        }
    }

    /// SIGKILL: the process dies at once, mid-whatever it was doing.
    pub fn kill(&self, name: &str) {
        if let Some(mut child) = self.processes.lock().ok().and_then(|mut all| all.remove(name)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the service's process is still running.
    pub fn is_running(&self, name: &str) -> bool {
        self.processes
            .lock()
            .ok()
            .and_then(|mut all| {
                all.get_mut(name)
                    .map(|child| matches!(child.try_wait(), Ok(None)))
            })
            .unwrap_or(false)
    }

    /// The highest resident set size the service's process has reached, in KiB (Linux only).
    pub fn peak_rss_kib(&self, name: &str) -> Option<u64> {
        let pid = self.processes.lock().ok()?.get(name)?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Starts PostgreSQL; durable (benchmarks), with fsync on and autovacuum's passes, checkpoints and
    /// statements over a second logged ([`Stack::postgres_log`]).
    pub fn start_postgres(&self) {
        let settings = if self.durable {
            "PG_FSYNC=on PG_OPTIONS=\"$PG_ACTIVITY_LOG\""
        } else {
            "PG_FSYNC=off"
        };
        helper(
            &format!("{settings} start_postgres"),
            &[&self.path("postgres"), &self.pg_port.to_string()],
        );
    }

    /// PostgreSQL's log so far.
    pub fn postgres_log(&self) -> String {
        std::fs::read_to_string(format!("{}/server.log", self.path("postgres"))).unwrap_or_default()
    }

    /// Stops PostgreSQL at once (`pg_ctl stop -m immediate`): connections break mid-transaction.
    pub fn stop_postgres(&self) {
        helper("stop_postgres_now", &[&self.path("postgres")]);
    }

    pub fn start_redis(&self) {
        helper(
            "start_redis",
            &[&self.path("redis"), &self.redis_port.to_string()],
        );
    }

    /// Restarts Redis: with its data (a clean shutdown that saves it), or without (killed, its files deleted).
    pub fn restart_redis(&self, keep_data: bool, down_for: Duration) {
        let dir = self.path("redis");
        if keep_data {
            helper("stop_redis", &[&dir]);
        } else {
            helper("kill_redis_and_its_data", &[&dir]);
        }
        std::thread::sleep(down_for);
        self.start_redis();
    }

    pub fn start_broker(&self) {
        helper(
            "start_tansu",
            &[&self.dir.display().to_string(), &self.kafka_port.to_string()],
        );
        helper("wait_for_port", &[&self.kafka_port.to_string(), "tansu"]);
    }

    /// Stops the broker (in memory: it comes back empty).
    pub fn stop_broker(&self) {
        helper("stop_pidfile", &[&self.path("tansu.pid")]);
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Waits until a service answers `/ready` (or fails after a minute, with its logs).
    pub async fn wait_ready(&self, base: &str) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http
                .get(format!("{base}/ready"))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{base} never became ready:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The last lines of every service's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.dir.join("logs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            text.push_str(&format!("--- {}\n{tail}\n", entry.file_name().to_string_lossy()));
        }
        text
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Ok(mut processes) = self.processes.lock() {
            for child in processes.values_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.stop_broker();
        helper("stop_redis", &[&self.path("redis")]);
        helper("stop_postgres", &[&self.path("postgres")]);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
