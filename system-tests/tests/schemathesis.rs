//! Both services fuzzed by schemathesis (pinned, from PyPI, installed by `make test`) from their own OpenAPI
//! documents, with every check: no input may answer 5xx, every answer must match the document, requests the
//! document calls valid must be accepted and those it calls invalid refused, undeclared methods answer 405.

use std::path::Path;
use std::process::Command;

use shared_models::testing::{service_url, ReceiptBody};
use system_tests::services::Services;

/// The seed of every run, so a failure can be replayed.
const SEED: &str = "20261125";
/// Cases per operation and generation phase.
const EXAMPLES: &str = "60";

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
    let services = Services::builder().start().await;
    let merchant = services.merchant_token("m-fuzz").await;
    // The merchant has two places, so every receipt must name its place, as the document says.
    for (transaction_id, place_id) in [("seed-1", "fuzz-a"), ("seed-2", "fuzz-b")] {
        let receipt = ReceiptBody::new(transaction_id)
            .place(place_id)
            .at("2026-01-01T10:00:00Z")
            .vat("0.10");
        let (status, body) = services.post_receipt(&merchant, &receipt.build()).await;
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
