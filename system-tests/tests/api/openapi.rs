//! Every answer the access matrix and the documented-error cases draw, checked against the OpenAPI documents
//! the services serve, and the documents against the route tables (scripts/check_openapi.py).

use std::path::Path;

use serde_json::{json, Value};
use shared_models::testing::unique_name;
use system_tests::services::Services;

use super::{documented, matrix};

/// Checks every answer recorded so far against the OpenAPI documents the services serve, and the documents
/// against the route tables (scripts/check_openapi.py).
async fn check_documents(services: &Services) {
    let answers = services.answers();
    let mut check = serde_json::Map::new();
    for (name, base, routes) in [
        ("producer", &services.producer, producer::routes::api_routes()),
        ("consumer", &services.consumer, consumer::routes::api_routes()),
    ] {
        let document = services.document(base).await;
        let samples: Vec<Value> = answers
                .iter()
                .filter_map(|(method, url, answer)| {
                    let path = url.strip_prefix(base.as_str())?.strip_prefix("/api")?;
                    let path = path.split('?').next().unwrap_or_default();
                    let route = routes
                        .iter()
                        .find(|route| route.method.as_str() == method.as_str() && template_matches(route.path, path))?;
                    Some(json!({
                        "method": method.as_str(), "path": route.path, "status": answer.status, "body": answer.body,
                    }))
                })
                .collect();
        let table: Vec<Value> = routes
            .iter()
            .map(|route| {
                let roles: Vec<&str> = route.access.roles.iter().map(|role| role.as_str()).collect();
                json!({ "method": route.method.as_str(), "path": route.path, "roles": roles })
            })
            .collect();
        check.insert(
            name.into(),
            json!({ "document": document, "routes": table, "samples": samples }),
        );
    }
    let file = std::env::temp_dir().join(format!("{}.json", unique_name("openapi-check")));
    std::fs::write(&file, Value::Object(check).to_string()).expect("write the check");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check_openapi.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(&file)
        .output()
        .expect("python3 runs (make test installs the validators)");
    let _ = std::fs::remove_file(&file);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(output.status.success(), "the OpenAPI check failed:\n{report}");
}

/// Whether a concrete path fits a route template such as `/places/{place_id}/`.
fn template_matches(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(expected, actual)| expected.starts_with('{') || expected == actual)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_drawn_matches_the_openapi_documents() {
    let services = Services::builder().start().await;
    matrix::draw(&services).await;
    documented::draw(&services).await;
    check_documents(&services).await;
}
