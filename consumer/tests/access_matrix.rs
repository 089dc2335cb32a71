//! The access matrix: every `/api/` endpoint of both services (taken from their route tables, so a new
//! endpoint cannot be added without being checked here) x every kind of caller.

use std::time::Duration;

use actix_web::http::Method;
use serde_json::{json, Value};
use shared_models::http::ApiRoute;
use shared_models::testing::{fresh_database, unique_name};

mod support;

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
    async fn call(
        &self,
        method: Method,
        url: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, bool) {
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method");
        let mut request = self.http.request(method, url);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let challenged = response.headers().contains_key("www-authenticate");
        (status, response.json().await.unwrap_or(Value::Null), challenged)
    }

    async fn token(&self, role: &str, merchant_id: Option<&str>) -> (String, String) {
        let (status, body, _) = self
            .call(
                Method::POST,
                &format!("{}/api/tokens/", self.producer),
                Some(&format!("Bearer {}", self.admin)),
                Some(json!({ "role": role, "merchant_id": merchant_id })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().expect("id").to_owned(),
            body["token"].as_str().expect("token").to_owned(),
        )
    }
}

fn receipt(transaction_id: &str) -> Value {
    json!({
        "transaction_id": transaction_id, "merchant_id": "m-1", "place_id": "store-1",
        "timestamp": "2024-02-07T12:34:56Z",
        "items": [{ "product_id": "p", "quantity": 1, "price": "2.50", "category": "food" }],
        "total_amount": "2.50", "vat_amount": "0.25", "payment_method": "cash"
    })
}

/// The callers of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    NoToken,
    MalformedHeader,
    UnknownToken,
    RevokedToken,
    Merchant,
    OtherMerchant,
    Analyst,
    Admin,
}

const CALLERS: [Caller; 8] = [
    Caller::NoToken,
    Caller::MalformedHeader,
    Caller::UnknownToken,
    Caller::RevokedToken,
    Caller::Merchant,
    Caller::OtherMerchant,
    Caller::Analyst,
    Caller::Admin,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_endpoint_answers_every_kind_of_caller_as_the_route_table_says() {
    let services = spawn_services().await;
    let (_, merchant) = services.token("merchant", Some("m-1")).await;
    let (_, other_merchant) = services.token("merchant", Some("m-2")).await;
    let (_, analyst) = services.token("analyst", None).await;
    let (revoked_id, revoked) = services.token("analyst", None).await;
    let admin = services.admin.clone();
    let (status, _, _) = services
        .call(
            Method::DELETE,
            &format!("{}/api/tokens/{revoked_id}/", services.producer),
            Some(&format!("Bearer {admin}")),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body, _) = services
        .call(
            Method::POST,
            &format!("{}/api/checks/", services.producer),
            Some(&format!("Bearer {merchant}")),
            Some(receipt("t-1")),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, job, _) = services
        .call(
            Method::POST,
            &format!("{}/api/analytics/recompute/", services.consumer),
            Some(&format!("Bearer {admin}")),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let job_id = job["job_id"].as_str().expect("job id").to_owned();

    let tables: [(&str, Vec<ApiRoute>); 2] = [
        (services.producer.as_str(), producer::routes::api_routes()),
        (services.consumer.as_str(), consumer::routes::api_routes()),
    ];
    let mut checked = 0;
    let mut counter = 0;
    for (base, routes) in tables {
        for route in routes {
            for caller in CALLERS {
                counter += 1;
                let authorization = match caller {
                    Caller::NoToken => None,
                    Caller::MalformedHeader => Some(format!("Basic {merchant}")),
                    Caller::UnknownToken => Some("Bearer rcpt_not_a_real_token".to_owned()),
                    Caller::RevokedToken => Some(format!("Token {revoked}")),
                    Caller::Merchant => Some(format!("Token {merchant}")),
                    Caller::OtherMerchant => Some(format!("Bearer {other_merchant}")),
                    Caller::Analyst => Some(format!("Bearer {analyst}")),
                    Caller::Admin => Some(format!("Bearer {admin}")),
                };
                let id = if route.path.starts_with("/tokens/") {
                    services.token("analyst", None).await.0
                } else {
                    job_id.clone()
                };
                let path = route
                    .path
                    .replace("{transaction_id}", "t-1")
                    .replace("{place_id}", "store-1")
                    .replace("{id}", &id);
                let body = match (route.method.clone(), route.path) {
                    (Method::POST, "/checks/") => Some(receipt(&format!("m-{counter}"))),
                    (Method::POST, "/checks/batch/") => Some(json!([receipt(&format!("b-{counter}"))])),
                    (Method::POST, "/tokens/") => Some(json!({ "role": "analyst" })),
                    (Method::POST, _) => Some(json!({})),
                    _ => None,
                };
                let url = format!("{base}/api{path}");
                let (status, body, challenged) = services
                    .call(route.method.clone(), &url, authorization.as_deref(), body)
                    .await;
                let what = format!("{} {} as {caller:?}: {status} {body}", route.method, route.path);
                let role = match caller {
                    Caller::Merchant | Caller::OtherMerchant => Some(shared_models::auth::Role::Merchant),
                    Caller::Analyst => Some(shared_models::auth::Role::Analyst),
                    Caller::Admin => Some(shared_models::auth::Role::Admin),
                    _ => None,
                };
                match role {
                    None => {
                        assert_eq!(status, 401, "{what}");
                        assert!(challenged, "{what}: no WWW-Authenticate");
                        assert_eq!(body["error"], "unauthorized", "{what}");
                    }
                    Some(role) if !route.access.roles.contains(&role) => {
                        assert_eq!(status, 403, "{what}");
                        assert_eq!(body["error"], "forbidden", "{what}");
                        assert!(body["missing_permission"].is_string(), "{what}");
                    }
                    Some(_) if caller == Caller::OtherMerchant && route.access.merchant_scoped => {
                        // Nothing of merchant m-1's: no receipt, place or log entry of theirs, nothing stored.
                        let foreign = |result: &Value| {
                            result["merchant_id"] == "m-1"
                                || result["place_id"] == "store-1"
                                || matches!(result["status"].as_str(), Some("accepted" | "duplicate"))
                        };
                        let sees_nothing = matches!(status, 403 | 404)
                            || (status == 200
                                && body["results"]
                                    .as_array()
                                    .is_some_and(|results| !results.iter().any(foreign)));
                        assert!(
                            sees_nothing,
                            "{what}: another merchant's data must stay out of reach"
                        );
                    }
                    Some(_) => assert!((200..300).contains(&status), "{what}"),
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 14 * CALLERS.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_working_once_its_cache_entry_expires() {
    let services = spawn_services().await;
    let (id, token) = services.token("analyst", None).await;
    let places = format!("{}/api/places/", services.consumer);
    assert_eq!(
        services
            .call(Method::GET, &places, Some(&format!("Bearer {token}")), None)
            .await
            .0,
        200
    );
    let admin = format!("Bearer {}", services.admin);
    let revoke = format!("{}/api/tokens/{id}/", services.producer);
    assert_eq!(
        services.call(Method::DELETE, &revoke, Some(&admin), None).await.0,
        204
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, challenged) = services
        .call(Method::GET, &places, Some(&format!("Bearer {token}")), None)
        .await;
    assert_eq!((status, challenged), (401, true));
    let (_, listed, _) = services
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
