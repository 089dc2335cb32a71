//! Configuring a stack (how many consumers and workers, extra environment, durable PostgreSQL and the
//! services' own timings for benchmarks, another build's binaries) and starting it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use shared_models::testing::unique_name;

use super::{free_port, Stack};

/// How many of each service a stack runs, and what their environment adds.
pub struct StackBuilder {
    consumers: usize,
    workers: usize,
    env: Vec<(String, String)>,
    production: bool,
    binaries: Option<PathBuf>,
}

impl Default for StackBuilder {
    fn default() -> Self {
        StackBuilder {
            consumers: 1,
            workers: 1,
            env: Vec::new(),
            production: false,
            binaries: None,
        }
    }
}

impl StackBuilder {
    pub fn consumers(mut self, count: usize) -> Self {
        self.consumers = count;
        self
    }

    pub fn workers(mut self, count: usize) -> Self {
        self.workers = count;
        self
    }

    /// Sets a variable for every service.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// As in production, for benchmarks: PostgreSQL with fsync on (tests run it with fsync off; its
    /// autovacuum's passes, checkpoints and slow statements logged), and the
    /// services' own default timings instead of the quicker ones tests use (a pipeline reconcile every 5 s
    /// that publishes again what the consumer has not stored within 20 s would add load to a backlog).
    pub fn as_in_production(mut self) -> Self {
        self.production = true;
        self
    }

    /// Runs the services' binaries from `BENCH_BIN_DIR` when it is set, instead of cargo's (to measure
    /// another build on the same machine in the same way).
    pub fn binaries_from_bench_dir(mut self) -> Self {
        self.binaries = std::env::var_os("BENCH_BIN_DIR").map(PathBuf::from);
        self
    }

    /// Starts everything and waits until both APIs are ready.
    pub async fn start(self) -> Stack {
        let dir = std::env::temp_dir().join(unique_name("stack"));
        std::fs::create_dir_all(dir.join("logs")).expect("stack directory");
        let (pg_port, redis_port, kafka_port) = (free_port(), free_port(), free_port());
        let admin_token = unique_name("rcpt_admin");
        let database_url = format!("postgres://postgres@127.0.0.1:{pg_port}/postgres");
        let mut env: BTreeMap<String, String> = [
            ("DATABASE_URL", database_url.clone()),
            ("REDIS_URL", format!("redis://127.0.0.1:{redis_port}/")),
            ("KAFKA_BROKERS", format!("127.0.0.1:{kafka_port}")),
            ("BOOTSTRAP_ADMIN_TOKEN", admin_token.clone()),
            ("RUST_LOG", "warn".into()),
            // As the image sets it (docs/configuration.md, "The allocator").
            ("MALLOC_ARENA_MAX", "2".into()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        if !self.production {
            env.extend(
                [
                    ("DATABASE_POOL_SIZE", "8"),
                    ("TOKEN_CACHE_SECONDS", "5"),
                    ("RELAY_POLL_MS", "50"),
                    ("RECONCILE_INTERVAL_SECONDS", "5"),
                    ("RECONCILE_GRACE_SECONDS", "20"),
                    ("KAFKA_SESSION_TIMEOUT_MS", "20000"),
                    ("CONSUMER_BATCH_MS", "50"),
                    ("CONSUMER_LAG_INTERVAL_MS", "1000"),
                    ("CONSUMER_RECOMPUTE_INTERVAL_MS", "5000"),
                    ("WORKER_POLL_MS", "100"),
                ]
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
            );
        }
        env.extend(self.env);
        let producer_port = free_port();
        let consumer_ports: Vec<u16> = (0..self.consumers).map(|_| free_port()).collect();
        let stack = Stack {
            dir,
            pg_port,
            redis_port,
            kafka_port,
            producer_url: format!("http://127.0.0.1:{producer_port}"),
            consumer_url: format!("http://127.0.0.1:{}", consumer_ports[0]),
            admin_token,
            database_url,
            env,
            durable: self.production,
            binaries: self.binaries,
            ports: std::iter::once(("producer".to_owned(), producer_port))
                .chain(
                    consumer_ports
                        .iter()
                        .enumerate()
                        .map(|(index, port)| (format!("consumer-{}", index + 1), *port)),
                )
                .collect(),
            processes: Mutex::new(BTreeMap::new()),
        };
        stack.start_postgres();
        stack.start_redis();
        stack.start_broker();
        stack.start("producer");
        stack.wait_ready(&stack.producer_url).await;
        for index in 1..=self.consumers {
            stack.start(&format!("consumer-{index}"));
        }
        for index in 1..=self.workers {
            stack.start(&format!("worker-{index}"));
        }
        stack.wait_ready(&stack.consumer_url).await;
        stack
    }
}
