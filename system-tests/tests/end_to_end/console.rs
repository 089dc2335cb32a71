//! The web console in a real browser: what it shows must be what the API says, for each role.

use serde_json::json;

use super::{spawn_services, spec_receipt};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_shows_a_merchant_the_apis_figures_and_an_admin_the_fleet_in_a_real_browser() {
    let services = spawn_services().await;
    let merchant = services.merchant_token("console-a").await;
    let other = services.merchant_token("console-b").await;
    let now = chrono::Utc::now();
    let mut count = 0;
    for (token, place, receipts) in [
        (&merchant, "cafe-a1", 12),
        (&merchant, "cafe-a2", 7),
        (&other, "shop-b1", 5),
    ] {
        for index in 0..receipts {
            let mut receipt = spec_receipt(&format!("{place}-{index}"));
            receipt["place_id"] = json!(place);
            receipt["place_name"] = json!(format!("Place {place}"));
            receipt["timestamp"] = json!((now - chrono::TimeDelta::hours(3 + 7 * index)).to_rfc3339());
            let (status, body) = services.post_receipt(token, &receipt).await;
            assert_eq!(status, 202, "{body}");
            if token == &merchant {
                count += 1;
            }
        }
    }
    services
        .analytics_until(&merchant, "", |body| body["summary"]["total_purchases"] == count)
        .await;
    let screenshots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&screenshots).expect("screenshot directory");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/console_check.mjs");
    let mut check = std::process::Command::new("node");
    check
        .arg(&script)
        .env("CONSUMER_URL", &services.consumer)
        .env("MERCHANT_TOKEN", &merchant)
        .env("ADMIN_TOKEN", &services.admin)
        .env("OWN_PLACE", "cafe-a1")
        .env("FOREIGN_PLACE", "shop-b1")
        .env(
            "PLAYWRIGHT_DIR",
            shared_models::testing::service_url("PLAYWRIGHT_DIR"),
        )
        .env("SCREENSHOT_DIR", &screenshots);
    let output = tokio::task::spawn_blocking(move || check.output())
        .await
        .expect("the browser check's task")
        .expect("node runs the browser check (make test installs Chromium and playwright-core)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the console check failed:\n{report}");
    println!("{report}screenshots in {}", screenshots.display());
}
