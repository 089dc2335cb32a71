//! The documented answer to each kind of bad input: every status an endpoint's document lists for a request
//! it refuses is drawn here at least once, with the documented examples accepted.

use reqwest::Method;
use serde_json::json;
use shared_models::domain::auth::Role;
use system_tests::services::{Answer, Services};

use super::documented_example;

/// Each documented case: what it is, the status the document gives it, and the answer.
pub async fn draw(services: &Services) -> Vec<(String, u16, Answer)> {
    let (_, merchant) = services.token(Role::Merchant, Some("m-1")).await;
    let (producer, consumer) = (services.producer.as_str(), services.consumer.as_str());
    let merchant = format!("Bearer {merchant}");
    let admin = format!("Bearer {}", services.admin);
    let checks = format!("{producer}/api/checks/");
    let example = documented_example(services, producer, "ReceiptSubmission").await;
    let mut drawn = Vec::new();
    let answer = services
        .call_json(Method::POST, &checks, Some(&merchant), example.clone())
        .await;
    drawn.push((
        "the documented receipt example is accepted".to_owned(),
        202,
        answer,
    ));
    let answer = services
        .call_json(Method::POST, &checks, Some(&merchant), example.clone())
        .await;
    drawn.push(("sent again it is a duplicate".to_owned(), 200, answer));
    let mut changed = example.clone();
    changed["vat_amount"] = json!(0.5);
    let answer = services
        .call_json(Method::POST, &checks, Some(&merchant), changed)
        .await;
    drawn.push((
        "changed content under the same transaction_id".to_owned(),
        409,
        answer,
    ));
    let mut invalid = example.clone();
    invalid["transaction_id"] = json!("invalid-1");
    invalid["total_amount"] = json!("1.001");
    let answer = services
        .call_json(Method::POST, &checks, Some(&merchant), invalid)
        .await;
    drawn.push(("an invalid receipt".to_owned(), 422, answer));
    let answer = services
        .call(Method::POST, &checks, Some(&merchant), Some(b"{".to_vec()))
        .await;
    drawn.push(("malformed JSON".to_owned(), 400, answer));
    let answer = services
        .call(
            Method::POST,
            &checks,
            Some(&merchant),
            Some(vec![b' '; 2 * 1024 * 1024]),
        )
        .await;
    drawn.push(("a body over the limit".to_owned(), 413, answer));
    let answer = services
        .call_json(
            Method::POST,
            &format!("{checks}batch/"),
            Some(&merchant),
            json!([]),
        )
        .await;
    drawn.push(("an empty batch".to_owned(), 422, answer));
    for bad_query in ["?page=0", "?page=abc", "?status=lost", "?from=yesterday"] {
        let answer = services
            .call(
                Method::GET,
                &format!("{checks}{bad_query}"),
                Some(&merchant),
                None,
            )
            .await;
        drawn.push((bad_query.to_owned(), 400, answer));
    }
    let answer = services
        .call(
            Method::GET,
            &format!("{checks}no-such-receipt/"),
            Some(&merchant),
            None,
        )
        .await;
    drawn.push(("an unknown receipt".to_owned(), 404, answer));
    let tokens = format!("{producer}/api/tokens/");
    let new_token = documented_example(services, producer, "NewToken").await;
    let answer = services
        .call_json(Method::POST, &tokens, Some(&admin), new_token)
        .await;
    drawn.push(("the documented token example".to_owned(), 201, answer));
    let answer = services
        .call_json(Method::POST, &tokens, Some(&admin), json!({ "role": "wizard" }))
        .await;
    drawn.push(("an unknown role".to_owned(), 422, answer));
    let answer = services
        .call(
            Method::DELETE,
            &format!("{tokens}not-a-token/"),
            Some(&admin),
            None,
        )
        .await;
    drawn.push(("an unknown token".to_owned(), 404, answer));

    let places = format!("{consumer}/api/places/");
    let answer = services
        .call(
            Method::GET,
            &format!("{places}?page_size=0"),
            Some(&merchant),
            None,
        )
        .await;
    drawn.push(("page_size 0".to_owned(), 400, answer));
    let answer = services
        .call(Method::GET, &format!("{places}nowhere/"), Some(&merchant), None)
        .await;
    drawn.push(("an unknown place".to_owned(), 404, answer));
    let answer = services
        .call(
            Method::GET,
            &format!("{places}nowhere/analytics/"),
            Some(&merchant),
            None,
        )
        .await;
    drawn.push(("analytics of an unknown place".to_owned(), 404, answer));
    let answer = services
        .call(
            Method::GET,
            &format!("{consumer}/api/analytics/?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
            Some(&merchant),
            None,
        )
        .await;
    drawn.push(("an inverted period holds nothing".to_owned(), 200, answer));
    let answer = services
        .call(
            Method::GET,
            &format!("{consumer}/api/analytics/?from=yesterday"),
            Some(&merchant),
            None,
        )
        .await;
    drawn.push(("an unreadable period bound".to_owned(), 400, answer));
    let recompute = format!("{consumer}/api/analytics/recompute/");
    let request = documented_example(services, consumer, "RecomputeRequest").await;
    let answer = services
        .call_json(Method::POST, &recompute, Some(&admin), request)
        .await;
    drawn.push(("the documented recompute example".to_owned(), 202, answer));
    let answer = services
        .call(Method::POST, &recompute, Some(&admin), Some(b"[1,".to_vec()))
        .await;
    drawn.push(("a malformed recompute request".to_owned(), 400, answer));
    let jobs = format!("{consumer}/api/jobs/");
    let answer = services
        .call(Method::GET, &format!("{jobs}?status=lost"), Some(&admin), None)
        .await;
    drawn.push(("an unknown job status".to_owned(), 400, answer));
    let answer = services
        .call(
            Method::GET,
            &format!("{jobs}{}/", uuid::Uuid::new_v4()),
            Some(&admin),
            None,
        )
        .await;
    drawn.push(("an unknown job".to_owned(), 404, answer));
    drawn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_error_is_answered_as_documented() {
    let services = Services::builder().start().await;
    let drawn = draw(&services).await;
    let wrong: Vec<String> = drawn
        .iter()
        .filter(|(_, status, answer)| answer.status != *status)
        .map(|(what, status, answer)| {
            format!("{what}: {} (documented {status}) {}", answer.status, answer.body)
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "answers not as documented:\n{}",
        wrong.join("\n")
    );
}
