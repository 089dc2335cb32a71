//! The access matrix: every `/api/` endpoint of both services (taken from their route tables, so a new
//! endpoint cannot be added without being checked here) x every kind of caller. Every answer is then checked
//! against the services' OpenAPI documents (scripts/check_openapi.py).

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::http::Method;
use serde_json::{json, Value};
use shared_models::testing::{fresh_database, unique_name};
use shared_models::web::routes::ApiRoute;

mod support;

struct Services {
    pool: shared_models::db::PgPool,
    producer: String,
    consumer: String,
    admin: String,
    http: reqwest::Client,
    /// Every answer so far: method, URL, status and body.
    answers: Mutex<Vec<(Method, String, u16, Value)>>,
}

async fn spawn_services() -> Services {
    let (database_url, pool) = tokio::task::spawn_blocking(fresh_database)
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
        pool,
        producer: producer_url,
        consumer: consumer_url,
        admin,
        http: reqwest::Client::new(),
        answers: Mutex::new(Vec::new()),
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
        let body = body.map(|body| body.to_string().into_bytes());
        self.call_raw(method, url, authorization, body).await
    }

    /// Sends the body as it is (labelled JSON) and records the answer.
    async fn call_raw(
        &self,
        method: Method,
        url: &str,
        authorization: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value, bool) {
        let verb = reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method");
        let mut request = self.http.request(verb, url);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let challenged = response.headers().contains_key("www-authenticate");
        let body = response.json().await.unwrap_or(Value::Null);
        if let Ok(mut answers) = self.answers.lock() {
            answers.push((method, url.to_owned(), status, body.clone()));
        }
        (status, body, challenged)
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

    /// The OpenAPI document the service at `base` serves.
    async fn document(&self, base: &str) -> Value {
        self.http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .expect("document")
            .json()
            .await
            .expect("document is JSON")
    }

    /// Checks every answer recorded so far against the OpenAPI documents the services serve, and the
    /// documents against the route tables (scripts/check_openapi.py).
    async fn check_documents(&self) {
        let answers = self
            .answers
            .lock()
            .map(|answers| answers.clone())
            .unwrap_or_default();
        let mut check = serde_json::Map::new();
        for (name, base, routes) in [
            ("producer", &self.producer, producer::routes::api_routes()),
            ("consumer", &self.consumer, consumer::routes::api_routes()),
        ] {
            let document = self.document(base).await;
            let samples: Vec<Value> = answers
                .iter()
                .filter_map(|(method, url, status, body)| {
                    let path = url.strip_prefix(base.as_str())?.strip_prefix("/api")?;
                    let path = path.split('?').next().unwrap_or_default();
                    let route = routes
                        .iter()
                        .find(|route| route.method == method && template_matches(route.path, path))?;
                    Some(json!({
                        "method": method.as_str(), "path": route.path, "status": status, "body": body,
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

/// The documented example of a schema, from a service's document.
async fn documented_example(services: &Services, base: &str, schema: &str) -> Value {
    let document = services.document(base).await;
    let example = document["components"]["schemas"][schema]["example"].clone();
    assert!(example.is_object(), "{schema} has an example");
    example
}

/// Calls that draw the answers the access matrix does not: the documented request examples, and every
/// documented error an endpoint gives for bad input.
async fn exercise_documented_answers(services: &Services, merchant: &str) {
    let (producer, consumer) = (services.producer.as_str(), services.consumer.as_str());
    let merchant = format!("Bearer {merchant}");
    let admin = format!("Bearer {}", services.admin);
    let checks = format!("{producer}/api/checks/");
    let example = documented_example(services, producer, "ReceiptSubmission").await;
    let expect = |call: (u16, Value, bool), status: u16, what: &str| {
        assert_eq!(call.0, status, "{what}: {}", call.1);
    };
    expect(
        services
            .call(Method::POST, &checks, Some(&merchant), Some(example.clone()))
            .await,
        202,
        "the documented receipt example is accepted",
    );
    expect(
        services
            .call(Method::POST, &checks, Some(&merchant), Some(example.clone()))
            .await,
        200,
        "sent again it is a duplicate",
    );
    let mut changed = example.clone();
    changed["vat_amount"] = json!(0.5);
    expect(
        services
            .call(Method::POST, &checks, Some(&merchant), Some(changed))
            .await,
        409,
        "changed content under the same transaction_id",
    );
    let mut invalid = example.clone();
    invalid["transaction_id"] = json!("invalid-1");
    invalid["total_amount"] = json!("1.001");
    expect(
        services
            .call(Method::POST, &checks, Some(&merchant), Some(invalid))
            .await,
        422,
        "an invalid receipt",
    );
    expect(
        services
            .call_raw(Method::POST, &checks, Some(&merchant), Some(b"{".to_vec()))
            .await,
        400,
        "malformed JSON",
    );
    expect(
        services
            .call_raw(
                Method::POST,
                &checks,
                Some(&merchant),
                Some(vec![b' '; 2 * 1024 * 1024]),
            )
            .await,
        413,
        "a body over the limit",
    );
    expect(
        services
            .call(
                Method::POST,
                &format!("{checks}batch/"),
                Some(&merchant),
                Some(json!([])),
            )
            .await,
        422,
        "an empty batch",
    );
    for bad_query in ["?page=0", "?page=abc", "?status=lost", "?from=yesterday"] {
        expect(
            services
                .call(
                    Method::GET,
                    &format!("{checks}{bad_query}"),
                    Some(&merchant),
                    None,
                )
                .await,
            400,
            bad_query,
        );
    }
    expect(
        services
            .call(
                Method::GET,
                &format!("{checks}no-such-receipt/"),
                Some(&merchant),
                None,
            )
            .await,
        404,
        "an unknown receipt",
    );
    let tokens = format!("{producer}/api/tokens/");
    let new_token = documented_example(services, producer, "NewToken").await;
    expect(
        services
            .call(Method::POST, &tokens, Some(&admin), Some(new_token))
            .await,
        201,
        "the documented token example",
    );
    expect(
        services
            .call(
                Method::POST,
                &tokens,
                Some(&admin),
                Some(json!({ "role": "wizard" })),
            )
            .await,
        422,
        "an unknown role",
    );
    expect(
        services
            .call(
                Method::DELETE,
                &format!("{tokens}not-a-token/"),
                Some(&admin),
                None,
            )
            .await,
        404,
        "an unknown token",
    );

    let places = format!("{consumer}/api/places/");
    expect(
        services
            .call(
                Method::GET,
                &format!("{places}?page_size=0"),
                Some(&merchant),
                None,
            )
            .await,
        400,
        "page_size 0",
    );
    expect(
        services
            .call(Method::GET, &format!("{places}nowhere/"), Some(&merchant), None)
            .await,
        404,
        "an unknown place",
    );
    expect(
        services
            .call(
                Method::GET,
                &format!("{places}nowhere/analytics/"),
                Some(&merchant),
                None,
            )
            .await,
        404,
        "analytics of an unknown place",
    );
    expect(
        services
            .call(
                Method::GET,
                &format!("{consumer}/api/analytics/?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
                Some(&merchant),
                None,
            )
            .await,
        200,
        "an inverted period holds nothing",
    );
    expect(
        services
            .call(
                Method::GET,
                &format!("{consumer}/api/analytics/?from=yesterday"),
                Some(&merchant),
                None,
            )
            .await,
        400,
        "an unreadable period bound",
    );
    let recompute = format!("{consumer}/api/analytics/recompute/");
    let request = documented_example(services, consumer, "RecomputeRequest").await;
    expect(
        services
            .call(Method::POST, &recompute, Some(&admin), Some(request))
            .await,
        202,
        "the documented recompute example",
    );
    expect(
        services
            .call_raw(Method::POST, &recompute, Some(&admin), Some(b"[1,".to_vec()))
            .await,
        400,
        "a malformed recompute request",
    );
    let jobs = format!("{consumer}/api/jobs/");
    expect(
        services
            .call(Method::GET, &format!("{jobs}?status=lost"), Some(&admin), None)
            .await,
        400,
        "an unknown job status",
    );
    expect(
        services
            .call(
                Method::GET,
                &format!("{jobs}{}/", uuid::Uuid::new_v4()),
                Some(&admin),
                None,
            )
            .await,
        404,
        "an unknown job",
    );
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
    assert_eq!(checked, 17 * CALLERS.len());

    exercise_documented_answers(&services, &merchant).await;
    services.check_documents().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_a_clear_4xx_and_every_attempt_is_logged() {
    let services = spawn_services().await;
    let (_, merchant) = services.token("merchant", Some("m-1")).await;
    let merchant = format!("Bearer {merchant}");
    let admin = format!("Bearer {}", services.admin);
    let checks = format!("{}/api/checks/", services.producer);

    let mut with_nul = receipt("nul-1");
    with_nul["transaction_id"] = json!("ab\u{0}cd");
    with_nul["note"] = json!({ "k\u{0}": "v\u{0}" });
    let (status, body, _) = services
        .call(Method::POST, &checks, Some(&merchant), Some(with_nul))
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
    let (status, _, _) = services
        .call_raw(Method::POST, &checks, Some(&merchant), Some(raw_nul))
        .await;
    assert_eq!(status, 422);
    let batch = json!([receipt("nul-2"), { "transaction_id": "x\u{0}" }]);
    let (status, body, _) = services
        .call(
            Method::POST,
            &format!("{checks}batch/"),
            Some(&merchant),
            Some(batch),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "accepted");
    assert_eq!(body["results"][1]["status"], "rejected");

    // Every attempt is in the receipt log, the NUL written as its escape.
    let pool = services.pool.clone();
    let logged: Vec<(Option<String>, String)> = tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use shared_models::schema::receipt_log;
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
    let (status, body, _) = services
        .call(
            Method::POST,
            &tokens,
            Some(&admin),
            Some(json!({ "role": "analyst", "name": "n\u{0}" })),
        )
        .await;
    assert_eq!(
        (status, body["details"][0]["field"].as_str()),
        (422, Some("name")),
        "{body}"
    );
    let (status, _, _) = services
        .call(
            Method::POST,
            &tokens,
            Some(&admin),
            Some(json!({ "role": "analyst", "merchant_id": "m-1" })),
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
        let (status, body, _) = services.call(Method::GET, &url, Some(&merchant), None).await;
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
