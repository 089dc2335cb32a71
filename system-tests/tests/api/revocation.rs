//! A revoked token stops working on every replica once its cache entry expires, and no secret is ever listed.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use shared_models::domain::auth::Role;
use system_tests::services::{Answer, Services};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_working_once_its_cache_entry_expires() {
    let services = Services::builder().start().await;
    let (id, token) = services.token(Role::Analyst, None).await;
    let places = format!("{}/api/places/", services.consumer);
    assert_eq!(
        services
            .call(Method::GET, &places, Some(&format!("Bearer {token}")), None)
            .await
            .status,
        200
    );
    let admin = format!("Bearer {}", services.admin);
    let revoke = format!("{}/api/tokens/{id}/", services.producer);
    assert_eq!(
        services
            .call(Method::DELETE, &revoke, Some(&admin), None)
            .await
            .status,
        204
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let Answer {
        status, challenged, ..
    } = services
        .call(Method::GET, &places, Some(&format!("Bearer {token}")), None)
        .await;
    assert_eq!((status, challenged), (401, true));
    let Answer { body: listed, .. } = services
        .call(
            Method::GET,
            &format!("{}/api/tokens/", services.producer),
            Some(&admin),
            None,
        )
        .await;
    let entry = listed["results"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["id"] == json!(id))
        .cloned();
    let entry = entry.expect("listed");
    assert!(entry["revoked_at"].is_string());
    assert!(
        entry.get("token").is_none() && entry.get("token_hash").is_none(),
        "no secrets listed: {entry}"
    );
}
