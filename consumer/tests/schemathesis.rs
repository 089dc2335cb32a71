//! Both services fuzzed by schemathesis (pinned, from PyPI, installed by `make test`) from their own OpenAPI
//! documents, with every check: no input may answer 5xx, every answer must match the document, requests the
//! document calls valid must be accepted and those it calls invalid refused, undeclared methods answer 405.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use shared_models::testing::{fresh_database, service_url, unique_name};

mod support;

/// The seed of every run, so a failure can be replayed.
const SEED: &str = "20261125";
/// Cases per operation and generation phase.
const EXAMPLES: &str = "60";

struct Services {
    producer: String,
    consumer: String,
    admin: String,
    http: reqwest::Client,
}

async fn spawn_services() -> Services {
    let (database_url, _) = tokio::task::spawn_blocking(fresh_database)
        .await
        .expect("database");
    let database = support::database(database_url);
    let kafka = support::kafka(1);
    let admin = unique_name("rcpt_admin");
    let producer =
        producer::startup::Application::build(support::producer(database.clone(), kafka.clone(), &admin))
            .await
            .expect("producer starts");
    let producer_url = format!("http://127.0.0.1:{}", producer.port());
    tokio::spawn(producer.run_until_stopped());
    let consumer =
        consumer::startup::Application::build(support::consumer(database, kafka, support::redis()))
            .await
            .expect("consumer starts");
    let consumer_url = format!("http://127.0.0.1:{}", consumer.port());
    tokio::spawn(consumer.run_until_stopped());
    Services {
        producer: producer_url,
        consumer: consumer_url,
        admin,
        http: reqwest::Client::new(),
    }
}

impl Services {
    async fn post(&self, url: &str, token: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn merchant_token(&self, merchant_id: &str) -> String {
        let (status, body) = self
            .post(
                &format!("{}/api/tokens/", self.producer),
                &self.admin,
                json!({ "role": "merchant", "merchant_id": merchant_id }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }
}

/// Runs schemathesis against a service's document with a token; the run's own report is printed, and the
/// test fails on any failure it finds.
fn schemathesis(base: &str, token: &str, only_paths: Option<&str>) {
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    let mut command = Command::new("python3");
    command
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(hooks.join("schemathesis.toml"))
        .args(["run", &format!("{base}/openapi.json")])
        .args(["--url", base])
        .args(["--checks", "all"])
        .args(["--seed", SEED, "--max-examples", EXAMPLES])
        .args(["--generation-database", "none", "--no-color", "--workers", "2"])
        .env("SCHEMATHESIS_TOKEN", token)
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env(
            "PYTHONPATH",
            format!("{}:{}", hooks.display(), service_url("SCHEMATHESIS_PYTHONPATH")),
        );
    if let Some(paths) = only_paths {
        command.args(["--include-path-regex", paths]);
    }
    let output = command
        .output()
        .expect("python3 runs schemathesis (make test installs it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "schemathesis found failures against {base}:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_nothing_wrong_with_either_service() {
    let services = spawn_services().await;
    let merchant = services.merchant_token("m-fuzz").await;
    // The merchant has two places, so every receipt must name its place, as the document says.
    for (transaction_id, place_id) in [("seed-1", "fuzz-a"), ("seed-2", "fuzz-b")] {
        let (status, body) = services
            .post(
                &format!("{}/api/checks/", services.producer),
                &merchant,
                json!({
                    "transaction_id": transaction_id, "place_id": place_id,
                    "timestamp": "2026-01-01T10:00:00Z", "payment_method": "cash",
                    "items": [{ "product_id": "p", "quantity": 1, "price": "1.00", "category": "food" }],
                    "total_amount": "1.00", "vat_amount": "0.10"
                }),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let (producer, consumer) = (services.producer.clone(), services.consumer.clone());
    let admin = services.admin.clone();
    tokio::task::spawn_blocking(move || {
        // Receipts and the receipt log as a merchant submits them (an admin must name the merchant).
        schemathesis(&producer, &merchant, Some("^/api/checks/"));
        // Token management as the admin it is for.
        schemathesis(&producer, &admin, Some("^/api/tokens/"));
        schemathesis(&consumer, &admin, None);
    })
    .await
    .expect("schemathesis runs");
}
