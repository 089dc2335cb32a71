//! The services in this test's own process: the producer and the consumer (and, when asked, a worker on its
//! own runtime, as its own process would be), on a fresh database, a unique topic and a unique queue.
//! Every answer drawn through [`Services::call`] is recorded, so that a test can check them against the
//! services' OpenAPI documents.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use shared_models::domain::auth::Role;
use shared_models::store::PgPool;
use shared_models::testing::{fresh_database, token, unique_name};
use tokio::sync::watch;

use crate::config;

/// One answer: the status, the JSON body (null when there is none) and whether it challenged the caller
/// (`WWW-Authenticate`).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub challenged: bool,
}

/// The Prometheus text a service at `service_url` serves on `/metrics`.
pub async fn metrics(http: &reqwest::Client, service_url: &str) -> String {
    http.get(format!("{service_url}/metrics"))
        .send()
        .await
        .expect("the metrics answer")
        .text()
        .await
        .expect("the metrics' text")
}

/// A recorded call: method, URL and answer.
pub type Recorded = (reqwest::Method, String, Answer);

/// Which services to start.
pub struct ServicesBuilder {
    partitions: i32,
    worker: bool,
}

impl ServicesBuilder {
    /// Partitions of the receipts topic (1 unless set).
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = partitions;
        self
    }

    /// Runs a worker too, for tests that need rollups recomputed.
    pub fn worker(mut self) -> Self {
        self.worker = true;
        self
    }

    pub async fn start(self) -> Services {
        let (database_url, pool) = tokio::task::spawn_blocking(fresh_database)
            .await
            .expect("a fresh database");
        let database = config::database(database_url);
        let kafka = config::kafka(self.partitions);
        let redis = config::redis();
        let admin = unique_name("rcpt_admin");
        let producer =
            producer::startup::Application::build(config::producer(database.clone(), kafka.clone(), &admin))
                .await
                .expect("the producer starts");
        let producer_url = format!("http://127.0.0.1:{}", producer.port());
        tokio::spawn(producer.run_until_stopped());
        let consumer =
            consumer::startup::Application::build(config::consumer(database.clone(), kafka, redis.clone()))
                .await
                .expect("the consumer starts");
        let consumer_url = format!("http://127.0.0.1:{}", consumer.port());
        tokio::spawn(consumer.run_until_stopped());
        let (stop_worker, worker_stopped) = watch::channel(false);
        if self.worker {
            let worker_config = config::worker(database, redis);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .expect("the worker's runtime");
                if let Err(error) = runtime.block_on(worker::run::run(worker_config, worker_stopped)) {
                    eprintln!("worker stopped: {}", shared_models::report::chain(&error));
                }
            });
        }
        Services {
            pool,
            producer: producer_url,
            consumer: consumer_url,
            admin,
            http: reqwest::Client::new(),
            answers: Mutex::new(Vec::new()),
            _stop_worker: stop_worker,
        }
    }
}

/// Running services, stopped with the test.
pub struct Services {
    pub pool: PgPool,
    /// The producer's base URL.
    pub producer: String,
    /// The consumer's base URL.
    pub consumer: String,
    /// The bootstrap admin token.
    pub admin: String,
    pub http: reqwest::Client,
    answers: Mutex<Vec<Recorded>>,
    _stop_worker: watch::Sender<bool>,
}

impl Services {
    pub fn builder() -> ServicesBuilder {
        ServicesBuilder {
            partitions: 1,
            worker: false,
        }
    }

    /// A token of `role` (for `merchant`, when a merchant token): its id and its secret.
    pub async fn token(&self, role: Role, merchant: Option<&str>) -> (String, String) {
        let pool = self.pool.clone();
        let merchant = merchant.map(str::to_owned);
        let (id, secret) = tokio::task::spawn_blocking(move || token(&pool, role, merchant.as_deref()))
            .await
            .expect("the token task");
        (id.to_string(), secret)
    }

    /// A merchant's token secret.
    pub async fn merchant_token(&self, merchant: &str) -> String {
        self.token(Role::Merchant, Some(merchant)).await.1
    }

    /// Sends a request with an `Authorization` header as given (or none) and a JSON body as given (or
    /// none), and records the answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        authorization: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut request = self.http.request(method.clone(), url);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status().as_u16();
        let challenged = response.headers().contains_key("www-authenticate");
        let body = response.json().await.unwrap_or(Value::Null);
        let answer = Answer {
            status,
            body,
            challenged,
        };
        if let Ok(mut answers) = self.answers.lock() {
            answers.push((method, url.to_owned(), answer.clone()));
        }
        answer
    }

    /// [`Services::call`] with a JSON body.
    pub async fn call_json(
        &self,
        method: reqwest::Method,
        url: &str,
        authorization: Option<&str>,
        body: Value,
    ) -> Answer {
        self.call(method, url, authorization, Some(body.to_string().into_bytes()))
            .await
    }

    /// Every answer [`Services::call`] recorded so far.
    pub fn answers(&self) -> Vec<Recorded> {
        self.answers
            .lock()
            .map(|answers| answers.clone())
            .unwrap_or_default()
    }

    /// Sends a request with a bearer token: the status and the JSON body (null when there is none).
    pub async fn send(&self, request: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .expect("the service answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET` of a path (with its query) on the consumer, with a bearer token.
    pub async fn get_from_consumer(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.consumer)), token)
            .await
    }

    /// Posts one receipt to the producer.
    pub async fn post_receipt(&self, token: &str, receipt: &Value) -> (u16, Value) {
        self.send(
            self.http
                .post(format!("{}/api/checks/", self.producer))
                .json(receipt),
            token,
        )
        .await
    }

    /// The OpenAPI document the service at `base` serves.
    pub async fn document(&self, base: &str) -> Value {
        self.http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .expect("the document")
            .json()
            .await
            .expect("the document is JSON")
    }

    /// Polls `GET /api/analytics/?{query}` until `ready` holds for the body, or fails after 60 s.
    pub async fn analytics_until(&self, token: &str, query: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self
                .get_from_consumer(&format!("/api/analytics/?{query}"), token)
                .await;
            if status == 200 && ready(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "analytics never became ready: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
