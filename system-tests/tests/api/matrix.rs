//! The access matrix: every `/api/` endpoint of both services (taken from their route tables, so a new
//! endpoint cannot be added without being checked here) x every kind of caller.

use reqwest::Method;
use serde_json::{json, Value};
use shared_models::domain::auth::Role;
use shared_models::web::auth::Access;
use system_tests::services::{Answer, Services};

use super::receipt;

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

/// Endpoints of both services' route tables.
const ENDPOINTS: usize = 17;

/// One cell of the matrix: an endpoint, a caller, and the answer.
pub struct Case {
    method: Method,
    path: &'static str,
    access: Access,
    caller: Caller,
    answer: Answer,
}

impl Case {
    /// What the route table says this caller gets, or why the answer breaks it.
    fn judge(&self) -> Result<(), String> {
        let Answer {
            status,
            body,
            challenged,
        } = &self.answer;
        let what = format!(
            "{} {} as {:?}: {status} {body}",
            self.method, self.path, self.caller
        );
        let role = match self.caller {
            Caller::Merchant | Caller::OtherMerchant => Some(Role::Merchant),
            Caller::Analyst => Some(Role::Analyst),
            Caller::Admin => Some(Role::Admin),
            _ => None,
        };
        let holds = match role {
            None => *status == 401 && *challenged && body["error"] == "unauthorized",
            Some(role) if !self.access.roles.contains(&role) => {
                *status == 403 && body["error"] == "forbidden" && body["missing_permission"].is_string()
            }
            Some(_) if self.caller == Caller::OtherMerchant && self.access.merchant_scoped => {
                // Nothing of merchant m-1's: no receipt, place or log entry of theirs, nothing stored.
                let foreign = |result: &Value| {
                    result["merchant_id"] == "m-1"
                        || result["place_id"] == "store-1"
                        || matches!(result["status"].as_str(), Some("accepted" | "duplicate"))
                };
                matches!(status, 403 | 404)
                    || (*status == 200
                        && body["results"]
                            .as_array()
                            .is_some_and(|results| !results.iter().any(foreign)))
            }
            Some(_) => (200..300).contains(status),
        };
        if holds {
            Ok(())
        } else {
            Err(what)
        }
    }
}

/// Calls every endpoint as every caller, on services holding one receipt of merchant m-1 and one job.
pub async fn draw(services: &Services) -> Vec<Case> {
    let (_, merchant) = services.token(Role::Merchant, Some("m-1")).await;
    let (_, other_merchant) = services.token(Role::Merchant, Some("m-2")).await;
    let (_, analyst) = services.token(Role::Analyst, None).await;
    let (revoked_id, revoked) = services.token(Role::Analyst, None).await;
    let admin = format!("Bearer {}", services.admin);
    let revoke = services
        .call(
            Method::DELETE,
            &format!("{}/api/tokens/{revoked_id}/", services.producer),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoke.status, 204);
    let submitted = services
        .call_json(
            Method::POST,
            &format!("{}/api/checks/", services.producer),
            Some(&format!("Bearer {merchant}")),
            receipt("t-1"),
        )
        .await;
    assert_eq!(submitted.status, 202, "{}", submitted.body);
    let job = services
        .call_json(
            Method::POST,
            &format!("{}/api/analytics/recompute/", services.consumer),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(job.status, 202, "{}", job.body);
    let job_id = job.body["job_id"].as_str().expect("job id").to_owned();

    let tables = [
        (services.producer.as_str(), producer::routes::api_routes()),
        (services.consumer.as_str(), consumer::routes::api_routes()),
    ];
    let mut cases = Vec::new();
    for (base, routes) in tables {
        for route in routes {
            let method = Method::from_bytes(route.method.as_str().as_bytes()).expect("a method");
            for caller in CALLERS {
                let authorization = match caller {
                    Caller::NoToken => None,
                    Caller::MalformedHeader => Some(format!("Basic {merchant}")),
                    Caller::UnknownToken => Some("Bearer rcpt_not_a_real_token".to_owned()),
                    Caller::RevokedToken => Some(format!("Token {revoked}")),
                    Caller::Merchant => Some(format!("Token {merchant}")),
                    Caller::OtherMerchant => Some(format!("Bearer {other_merchant}")),
                    Caller::Analyst => Some(format!("Bearer {analyst}")),
                    Caller::Admin => Some(admin.clone()),
                };
                let id = if route.path.starts_with("/tokens/") {
                    services.token(Role::Analyst, None).await.0
                } else {
                    job_id.clone()
                };
                let path = route
                    .path
                    .replace("{transaction_id}", "t-1")
                    .replace("{place_id}", "store-1")
                    .replace("{id}", &id);
                let unique = cases.len();
                let body = match (method.clone(), route.path) {
                    (Method::POST, "/checks/") => Some(receipt(&format!("m-{unique}"))),
                    (Method::POST, "/checks/batch/") => Some(json!([receipt(&format!("b-{unique}"))])),
                    (Method::POST, "/tokens/") => Some(json!({ "role": "analyst" })),
                    (Method::POST, _) => Some(json!({})),
                    _ => None,
                };
                let url = format!("{base}/api{path}");
                let answer = services
                    .call(
                        method.clone(),
                        &url,
                        authorization.as_deref(),
                        body.map(|body| body.to_string().into_bytes()),
                    )
                    .await;
                cases.push(Case {
                    method: method.clone(),
                    path: route.path,
                    access: route.access,
                    caller,
                    answer,
                });
            }
        }
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_endpoint_answers_every_kind_of_caller_as_the_route_table_says() {
    let services = Services::builder().start().await;
    let cases = draw(&services).await;
    assert_eq!(
        cases.len(),
        ENDPOINTS * CALLERS.len(),
        "every endpoint x every caller"
    );
    let wrong: Vec<String> = cases.iter().filter_map(|case| case.judge().err()).collect();
    assert!(
        wrong.is_empty(),
        "{} of {} answers break the route table:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
