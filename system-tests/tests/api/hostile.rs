//! Hostile input: text PostgreSQL cannot store, anywhere in a receipt, a batch, a token or a URL, gets a clear
//! 4xx and never a 5xx; every attempt is logged; undeclared methods get 405 with `Allow`.

use reqwest::Method;
use serde_json::{json, Value};
use shared_models::domain::auth::Role;
use system_tests::services::{Answer, Services};

use super::receipt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_a_clear_4xx_and_every_attempt_is_logged() {
    let services = Services::builder().start().await;
    let (_, merchant) = services.token(Role::Merchant, Some("m-1")).await;
    let merchant = format!("Bearer {merchant}");
    let admin = format!("Bearer {}", services.admin);
    let checks = format!("{}/api/checks/", services.producer);

    let mut with_nul = receipt("nul-1");
    with_nul["transaction_id"] = json!("ab\u{0}cd");
    with_nul["note"] = json!({ "k\u{0}": "v\u{0}" });
    let Answer { status, body, .. } = services
        .call_json(Method::POST, &checks, Some(&merchant), with_nul)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("invalid_characters")),
        "{body}"
    );
    let fields: Vec<&str> = body["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|detail| detail["field"].as_str())
        .collect();
    for field in ["transaction_id", "note.k\\u0000", "note.k\\u0000"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let raw_nul = br#"{"transaction_id": "raw\u0000", "items": "\u0000"}"#.to_vec();
    let Answer { status, .. } = services
        .call(Method::POST, &checks, Some(&merchant), Some(raw_nul))
        .await;
    assert_eq!(status, 422);
    let batch = json!([receipt("nul-2"), { "transaction_id": "x\u{0}" }]);
    let Answer { status, body, .. } = services
        .call_json(Method::POST, &format!("{checks}batch/"), Some(&merchant), batch)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "accepted");
    assert_eq!(body["results"][1]["status"], "rejected");

    // Every attempt is in the receipt log, the NUL written as its escape.
    let pool = services.pool.clone();
    let logged: Vec<(Option<String>, String)> = tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use shared_models::store::schema::receipt_log;
        let mut conn = pool.get().expect("connection");
        receipt_log::table
            .select((receipt_log::transaction_id, receipt_log::outcome))
            .order(receipt_log::id)
            .load(&mut conn)
            .expect("log")
    })
    .await
    .expect("log read");
    let transaction_ids: Vec<Option<&str>> = logged.iter().map(|(id, _)| id.as_deref()).collect();
    for expected in ["ab\\u0000cd", "raw\\u0000", "nul-2", "x\\u0000"] {
        assert!(
            transaction_ids.contains(&Some(expected)),
            "{expected} logged: {logged:?}"
        );
    }

    let tokens = format!("{}/api/tokens/", services.producer);
    let Answer { status, body, .. } = services
        .call_json(
            Method::POST,
            &tokens,
            Some(&admin),
            json!({ "role": "analyst", "name": "n\u{0}" }),
        )
        .await;
    assert_eq!(
        (status, body["details"][0]["field"].as_str()),
        (422, Some("name")),
        "{body}"
    );
    let Answer { status, .. } = services
        .call_json(
            Method::POST,
            &tokens,
            Some(&admin),
            json!({ "role": "analyst", "merchant_id": "m-1" }),
        )
        .await;
    assert_eq!(status, 422, "an analyst token belongs to no merchant");

    let consumer = &services.consumer;
    for (url, expected) in [
        (format!("{consumer}/api/places/?search=a%00b"), 400),
        (format!("{consumer}/api/places/%00/"), 404),
        (
            format!("{consumer}/api/places/store-1/analytics/?category=%00"),
            400,
        ),
        (format!("{consumer}/api/analytics/?place_id=%00"), 400),
        (format!("{checks}%00/"), 404),
        (format!("{checks}?status=%00"), 400),
        (format!("{consumer}/api/analytics/?page=99999999999999999"), 400),
        (format!("{consumer}/api/no-such-thing/"), 404),
    ] {
        let Answer { status, body, .. } = services.call(Method::GET, &url, Some(&merchant), None).await;
        assert_eq!(status, expected, "{url}: {body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{url}: {body}"
        );
    }

    // An undeclared method on a declared path: 405 naming the methods it serves.
    let response = services
        .http
        .patch(format!("{consumer}/api/places/"))
        .header("authorization", &merchant)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|value| value.to_str().ok()),
        Some("GET")
    );
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"], "method_not_allowed");
    let response = services
        .http
        .put(&checks)
        .header("authorization", &merchant)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 405);
    let allow = response
        .headers()
        .get("allow")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}
