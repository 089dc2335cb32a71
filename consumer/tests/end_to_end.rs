//! The whole pipeline through real services: receipts posted to the producer reach the consumer's
//! analytics through the outbox, the Kafka broker, PostgreSQL and the worker's rollups.

use std::time::{Duration, Instant};

use chrono::DurationRound;

use serde_json::{json, Value};
use shared_models::testing::{fresh_database, unique_name};
use tokio::sync::watch;
use worker::config::WorkerConfig;

mod support;

struct Stack {
    pool: shared_models::db::PgPool,
    producer: String,
    consumer: String,
    admin_token: String,
    http: reqwest::Client,
    _stop_worker: watch::Sender<bool>,
}

/// Partitions of the receipts topic.
const PARTITIONS: i32 = 3;

async fn spawn_stack() -> Stack {
    let (database_url, pool) = tokio::task::spawn_blocking(fresh_database)
        .await
        .expect("database");
    let database = support::database(database_url);
    let kafka = support::kafka(PARTITIONS);
    let redis = support::redis();
    let admin_token = unique_name("rcpt_admin");

    let producer = producer::startup::Application::build(support::producer(
        database.clone(),
        kafka.clone(),
        &admin_token,
    ))
    .await
    .expect("producer starts");
    let producer_url = format!("http://127.0.0.1:{}", producer.port());
    tokio::spawn(producer.run_until_stopped());

    let consumer =
        consumer::startup::Application::build(support::consumer(database.clone(), kafka, redis.clone()))
            .await
            .expect("consumer starts");
    let consumer_url = format!("http://127.0.0.1:{}", consumer.port());
    tokio::spawn(consumer.run_until_stopped());

    let (stop_worker, worker_stopped) = watch::channel(false);
    let worker_config = WorkerConfig {
        database,
        redis,
        hourly_schedule: "0 0 * * * *".into(),
        reconcile_lookback_hours: 2,
        job_retries: 2,
        poll_ms: 100,
        concurrency: 2,
        metrics_addr: None,
        worker_name: Some(unique_name("worker")),
    };
    // The worker runs on its own thread and runtime, as its own process would.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        if let Err(error) = runtime.block_on(worker::run::run(worker_config, worker_stopped)) {
            eprintln!("worker stopped: {error}");
        }
    });

    Stack {
        pool,
        producer: producer_url,
        consumer: consumer_url,
        admin_token,
        http: reqwest::Client::new(),
        _stop_worker: stop_worker,
    }
}

impl Stack {
    async fn send(&self, request: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
        let response = request.bearer_auth(token).send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn merchant_token(&self, merchant_id: &str) -> String {
        let (status, body) = self
            .send(
                self.http
                    .post(format!("{}/api/tokens/", self.producer))
                    .json(&json!({
                        "role": "merchant", "merchant_id": merchant_id, "name": "e2e"
                    })),
                &self.admin_token,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token shown once").to_owned()
    }

    async fn post_receipt(&self, token: &str, receipt: &Value) -> (u16, Value) {
        self.send(
            self.http
                .post(format!("{}/api/checks/", self.producer))
                .json(receipt),
            token,
        )
        .await
    }

    /// Polls analytics until `ready` holds for the body, or fails after 60 s.
    async fn analytics_until(&self, token: &str, query: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self
                .send(
                    self.http.get(format!("{}/api/analytics/?{query}", self.consumer)),
                    token,
                )
                .await;
            if status == 200 && ready(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "analytics never became ready: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A money figure as the API writes it: a JSON number with exactly two decimals.
fn money(literal: &str) -> Value {
    serde_json::from_str(literal).expect("a JSON number")
}

fn spec_receipt(transaction_id: &str) -> Value {
    json!({
        "transaction_id": transaction_id,
        "timestamp": "2024-02-07T12:34:56",
        "place_id": "store-abc",
        "place_name": "Store ABC",
        "items": [
            { "product_id": "product_id_1", "quantity": 2, "price": 10.99, "category": "groceries" },
            { "product_id": "product_id_2", "quantity": 1, "price": 5.49, "category": "electronics" }
        ],
        "total_amount": 27.47,
        "vat_amount": 2.47,
        "tips_amount": 3.0,
        "payment_method": "credit_card",
        "loyalty_card": "kept as an extra field"
    })
}

fn weighed_receipt(transaction_id: &str) -> Value {
    json!({
        "transaction_id": transaction_id,
        "timestamp": "2024-02-07T14:10:00+00:00",
        "place_id": "store-abc",
        "items": [{ "product_id": "apples", "quantity": "1.5", "price": "0.99", "category": " Groceries " }],
        "total_amount": "1.49",
        "vat_amount": 0.1,
        "payment_method": "CASH"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_posted_to_the_producer_show_up_exactly_in_the_consumers_analytics() {
    let stack = spawn_stack().await;
    let merchant = stack.merchant_token("merchant-1").await;

    let (status, body) = stack.post_receipt(&merchant, &spec_receipt("t-1")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    let (status, body) = stack.post_receipt(&merchant, &spec_receipt("t-1")).await;
    assert_eq!(
        (status, body["status"].clone()),
        (200, json!("duplicate")),
        "{body}"
    );
    let mut changed = spec_receipt("t-1");
    changed["tips_amount"] = json!(4);
    let (status, body) = stack.post_receipt(&merchant, &changed).await;
    assert_eq!(
        (status, body["error"].clone()),
        (409, json!("transaction_conflict")),
        "{body}"
    );
    let (status, body) = stack.post_receipt(&merchant, &weighed_receipt("t-2")).await;
    assert_eq!(status, 202, "{body}");

    // All time is answered from the worker's hourly rollups alone, so this waits for the worker too.
    let all_time = stack
        .analytics_until(&merchant, "", |body| body["summary"]["total_purchases"] == 2)
        .await;
    let summary = &all_time["summary"];
    assert_eq!(summary["total_amount"], money("28.96"));
    assert_eq!(summary["average_receipt"], money("14.48"));
    assert_eq!(
        summary["taxes_amount"],
        json!({ "total_vat": money("2.57"), "total_tips": money("3.00") })
    );
    assert_eq!(
        summary["category_analytics"]["groceries"],
        json!({ "total_spent": money("23.47"), "average_receipt": money("11.74") })
    );
    assert_eq!(
        summary["category_analytics"]["electronics"],
        json!({ "total_spent": money("5.49"), "average_receipt": money("5.49") })
    );
    assert_eq!(all_time["count"], 1);
    assert_eq!(all_time["results"][0]["place_id"], "store-abc");
    assert_eq!(all_time["results"][0]["place_name"], "Store ABC");

    // A period with ragged edges: 12:30 to 14:05 holds the first receipt only (edge scan + rollup of 13:00).
    let period = stack
        .analytics_until(
            &merchant,
            "from=2024-02-07T12:30:00Z&to=2024-02-07T14:05:00Z",
            |_| true,
        )
        .await;
    assert_eq!(period["summary"]["total_purchases"], 1, "{period}");
    assert_eq!(period["summary"]["total_amount"], money("27.47"));
    // A period inside one hour.
    let inside = stack
        .analytics_until(
            &merchant,
            "from=2024-02-07T14:09:00Z&to=2024-02-07T14:11:00Z",
            |_| true,
        )
        .await;
    assert_eq!(inside["summary"]["total_purchases"], 1, "{inside}");
    assert_eq!(
        inside["summary"]["category_analytics"]["groceries"]["total_spent"],
        money("1.49")
    );
    // Places: search by id or name, case-insensitively.
    for (search, count) in [("store ab", 1), ("STORE-ABC", 1), ("zzz", 0)] {
        let (status, body) = stack
            .send(
                stack.http.get(format!(
                    "{}/api/places/?search={}",
                    stack.consumer,
                    search.replace(' ', "%20")
                )),
                &merchant,
            )
            .await;
        assert_eq!(
            (status, body["count"].clone()),
            (200, json!(count)),
            "search {search}: {body}"
        );
    }
    let (_, place) = stack
        .send(
            stack
                .http
                .get(format!("{}/api/places/store-abc/", stack.consumer)),
            &merchant,
        )
        .await;
    assert_eq!(place["total_purchases"], 2);
    assert_eq!(place["first_purchase_at"], "2024-02-07T12:34:56Z");
    assert_eq!(place["last_purchase_at"], "2024-02-07T14:10:00Z");

    // An empty period gives zeros.
    let empty = stack
        .analytics_until(&merchant, "from=2030-01-01T00:00:00Z", |_| true)
        .await;
    assert_eq!(empty["summary"]["total_purchases"], 0);
    assert_eq!(empty["summary"]["average_receipt"], money("0.00"));

    // Everything is stored, so `/metrics` reports no lag on any partition of the topic.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let metrics = stack
            .http
            .get(format!("{}/metrics", stack.consumer))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let lag: Vec<&str> = metrics
            .lines()
            .filter(|line| line.starts_with("consumer_lag_messages{"))
            .collect();
        if lag.len() == PARTITIONS as usize && lag.iter().all(|line| line.ends_with(" 0")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lag of {PARTITIONS} partitions should be reported as 0: {lag:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merchants_cannot_use_or_see_another_merchants_place() {
    let stack = spawn_stack().await;
    let owner = stack.merchant_token("owner").await;
    let other = stack.merchant_token("other").await;

    assert_eq!(stack.post_receipt(&owner, &spec_receipt("o-1")).await.0, 202);
    let (status, body) = stack.post_receipt(&other, &spec_receipt("x-1")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");

    let (status, _) = stack
        .send(
            stack
                .http
                .get(format!("{}/api/places/store-abc/", stack.consumer)),
            &other,
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = stack
        .send(stack.http.get(format!("{}/api/places/", stack.consumer)), &other)
        .await;
    assert_eq!((status, body["count"].clone()), (200, json!(0)));

    let response = stack
        .http
        .get(format!("{}/api/places/", stack.consumer))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
}

/// A small deterministic generator, so a failure can be replayed.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// One generated receipt, as the oracle sees it.
struct Generated {
    place: &'static str,
    at: chrono::DateTime<chrono::Utc>,
    total: rust_decimal::Decimal,
    vat: rust_decimal::Decimal,
    tips: rust_decimal::Decimal,
    lines: Vec<(String, rust_decimal::Decimal)>,
}

/// Exact figures computed independently of the service.
#[derive(Default)]
struct Expected {
    purchases: i64,
    total: rust_decimal::Decimal,
    vat: rust_decimal::Decimal,
    tips: rust_decimal::Decimal,
    categories: std::collections::BTreeMap<String, (i64, rust_decimal::Decimal)>,
}

impl Expected {
    fn add(&mut self, receipt: &Generated) {
        self.purchases += 1;
        self.total += receipt.total;
        self.vat += receipt.vat;
        self.tips += receipt.tips;
        let mut seen = std::collections::BTreeSet::new();
        for (category, amount) in &receipt.lines {
            let entry = self.categories.entry(category.clone()).or_default();
            entry.1 += *amount;
            if seen.insert(category.clone()) {
                entry.0 += 1;
            }
        }
    }

    fn json(&self) -> Value {
        use shared_models::money::{mean, Money};
        let money = |value| serde_json::to_value(Money::from_exact(value)).expect("money");
        json!({
            "total_purchases": self.purchases,
            "total_amount": money(self.total),
            "average_receipt": serde_json::to_value(mean(self.total, self.purchases)).expect("money"),
            "taxes_amount": { "total_vat": money(self.vat), "total_tips": money(self.tips) },
            "category_analytics": self.categories.iter().map(|(name, (receipts, spent))| {
                (name.clone(), json!({
                    "total_spent": money(*spent),
                    "average_receipt": serde_json::to_value(mean(*spent, *receipts)).expect("money"),
                }))
            }).collect::<serde_json::Map<String, Value>>(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analytics_match_an_independent_exact_computation_for_thousands_of_random_receipts() {
    use rust_decimal::Decimal;
    use shared_models::money::round_cents;

    let stack = spawn_stack().await;
    let places = [
        ("p-1", "m-a"),
        ("p-2", "m-a"),
        ("p-3", "m-b"),
        ("p-4", "m-b"),
        ("p-5", "m-c"),
    ];
    let categories = [
        "Groceries",
        "groceries ",
        "ELECTRONICS",
        "toys",
        " Books",
        "garden",
    ];
    let start: chrono::DateTime<chrono::Utc> = "2024-03-01T00:00:00Z".parse().expect("time");
    let mut random = Xorshift(0x5eed_1234_abcd_0001);
    let mut generated = Vec::new();
    let mut bodies = Vec::new();
    for index in 0..2000 {
        let (place, merchant) = places[random.below(places.len() as u64) as usize];
        let at = start + chrono::TimeDelta::milliseconds(random.below(3 * 24 * 3600 * 1000) as i64);
        let mut items = Vec::new();
        let mut lines = Vec::new();
        for _ in 0..1 + random.below(4) {
            let quantity = Decimal::new(1 + random.below(5000) as i64, random.below(4) as u32);
            let price = Decimal::new(random.below(20_000) as i64, 2);
            let category = categories[random.below(categories.len() as u64) as usize];
            lines.push((category.trim().to_lowercase(), round_cents(quantity * price)));
            items.push(json!({ "product_id": "sku", "quantity": quantity.to_string(), "price": price.to_string(), "category": category }));
        }
        let total: Decimal = lines.iter().map(|(_, amount)| *amount).sum();
        let vat = round_cents(total * Decimal::new(random.below(25) as i64, 2));
        let tips = Decimal::new(random.below(500) as i64, 2);
        bodies.push(json!({
            "transaction_id": format!("oracle-{index}"), "merchant_id": merchant, "place_id": place,
            "timestamp": at.to_rfc3339(), "items": items, "total_amount": total.to_string(),
            "vat_amount": vat.to_string(), "tips_amount": tips.to_string(), "payment_method": "card"
        }));
        generated.push(Generated {
            place,
            at,
            total,
            vat,
            tips,
            lines,
        });
    }
    for chunk in bodies.chunks(500) {
        let (status, body) = stack
            .send(
                stack
                    .http
                    .post(format!("{}/api/checks/batch/", stack.producer))
                    .json(&chunk),
                &stack.admin_token,
            )
            .await;
        assert_eq!(status, 200);
        let accepted = body["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter(|r| r["status"] == "accepted")
            .count();
        assert_eq!(accepted, chunk.len(), "{body}");
    }

    let admin = stack.admin_token.clone();
    stack
        .analytics_until(&admin, "", |body| body["summary"]["total_purchases"] == 2000)
        .await;
    let periods = [
        (None, None),
        (Some("2024-03-01T05:17:23Z"), Some("2024-03-02T19:42:05.5Z")),
        (Some("2024-03-02T10:05:00Z"), Some("2024-03-02T10:48:30Z")),
        (Some("2024-03-02T00:00:00Z"), None),
        (None, Some("2024-03-01T12:34:56.789Z")),
    ];
    for (from, to) in periods {
        let bound = |text: Option<&str>| {
            text.map(|text| text.parse::<chrono::DateTime<chrono::Utc>>().expect("time"))
        };
        let (low, high) = (bound(from), bound(to));
        let mut summary = Expected::default();
        let mut per_place: std::collections::BTreeMap<&str, Expected> = std::collections::BTreeMap::new();
        for receipt in &generated {
            if low.is_some_and(|low| receipt.at < low) || high.is_some_and(|high| receipt.at >= high) {
                continue;
            }
            summary.add(receipt);
            per_place.entry(receipt.place).or_default().add(receipt);
        }
        let mut query = vec!["page_size=500".to_owned()];
        query.extend(from.map(|from| format!("from={from}")));
        query.extend(to.map(|to| format!("to={to}")));
        let body = stack.analytics_until(&admin, &query.join("&"), |_| true).await;
        let what = format!("period {from:?}..{to:?}");
        let mut actual_summary = body["summary"].clone();
        assert_eq!(actual_summary.as_object_mut().map(|o| o.len()), Some(5), "{what}");
        assert_eq!(actual_summary, summary.json(), "{what}: summary");
        for result in body["results"].as_array().expect("results") {
            let place = result["place_id"].as_str().expect("place id");
            let mut actual = result.clone();
            if let Some(object) = actual.as_object_mut() {
                object.remove("place_id");
                object.remove("place_name");
            }
            let expected = per_place.remove(place).unwrap_or_default();
            assert_eq!(actual, expected.json(), "{what}: place {place}");
        }
        assert!(per_place.is_empty(), "{what}: places missing from the results");
    }

    let (status, one) = stack
        .send(
            stack.http.get(format!(
                "{}/api/places/p-3/analytics/?from=2024-03-02T10:05:00Z&to=2024-03-03T00:00:00Z",
                stack.consumer
            )),
            &admin,
        )
        .await;
    assert_eq!(status, 200);
    let mut expected = Expected::default();
    let (low, high): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = (
        "2024-03-02T10:05:00Z".parse().expect("time"),
        "2024-03-03T00:00:00Z".parse().expect("time"),
    );
    generated
        .iter()
        .filter(|r| r.place == "p-3" && r.at >= low && r.at < high)
        .for_each(|r| expected.add(r));
    assert_eq!(one["total_purchases"], expected.purchases);
    assert_eq!(one["category_analytics"], expected.json()["category_analytics"]);

    // Over time: hour and day buckets, exact at ragged edges, empty buckets as zeros, scoped by merchant.
    let series_expected = |place: Option<&str>,
                           merchant_places: &[&str],
                           bucket: chrono::TimeDelta,
                           low: chrono::DateTime<chrono::Utc>,
                           high: chrono::DateTime<chrono::Utc>| {
        let first = low.duration_trunc(bucket).expect("bucket");
        let mut expected: Vec<(chrono::DateTime<chrono::Utc>, Expected)> = Vec::new();
        let mut start = first;
        while start < high {
            let mut figures = Expected::default();
            generated
                .iter()
                .filter(|r| place.is_none_or(|place| r.place == place))
                .filter(|r| merchant_places.contains(&r.place))
                .filter(|r| r.at >= low && r.at < high && r.at >= start && r.at < start + bucket)
                .for_each(|r| figures.add(r));
            expected.push((start, figures));
            start += bucket;
        }
        expected
    };
    let compare = |body: &Value, expected: Vec<(chrono::DateTime<chrono::Utc>, Expected)>, what: &str| {
        let results = body["results"].as_array().expect("results");
        assert_eq!(results.len(), expected.len(), "{what}: {body}");
        for (result, (start, figures)) in results.iter().zip(expected) {
            let at: chrono::DateTime<chrono::Utc> =
                result["start"].as_str().expect("start").parse().expect("time");
            assert_eq!(at, start, "{what}");
            let json = figures.json();
            assert_eq!(
                result["total_purchases"], json["total_purchases"],
                "{what} at {start}"
            );
            assert_eq!(result["total_amount"], json["total_amount"], "{what} at {start}");
            assert_eq!(
                result["total_vat"], json["taxes_amount"]["total_vat"],
                "{what} at {start}"
            );
            assert_eq!(
                result["total_tips"], json["taxes_amount"]["total_tips"],
                "{what} at {start}"
            );
            assert_eq!(
                result["average_receipt"], json["average_receipt"],
                "{what} at {start}"
            );
        }
    };
    let all_places: Vec<&str> = places.iter().map(|(place, _)| *place).collect();
    let (low, high): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = (
        "2024-03-01T05:17:23Z".parse().expect("time"),
        "2024-03-02T19:42:05.5Z".parse().expect("time"),
    );
    let (status, hourly) = stack
        .send(
            stack.http.get(format!(
                "{}/api/analytics/timeseries/?bucket=hour&place_id=p-3&from={}&to={}",
                stack.consumer, "2024-03-01T05:17:23Z", "2024-03-02T19:42:05.5Z"
            )),
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{hourly}");
    compare(
        &hourly,
        series_expected(Some("p-3"), &all_places, chrono::TimeDelta::hours(1), low, high),
        "hourly p-3",
    );
    let merchant_a = stack.merchant_token("m-a").await;
    let (status, daily) = stack
        .send(
            stack.http.get(format!(
                "{}/api/analytics/timeseries/?bucket=day&from=2024-02-28&to=2024-03-05T12:00:00Z",
                stack.consumer
            )),
            &merchant_a,
        )
        .await;
    assert_eq!(status, 200, "{daily}");
    compare(
        &daily,
        series_expected(
            None,
            &["p-1", "p-2"],
            chrono::TimeDelta::days(1),
            "2024-02-28T00:00:00Z".parse().expect("time"),
            "2024-03-05T12:00:00Z".parse().expect("time"),
        ),
        "daily for merchant m-a",
    );
    let csv = stack
        .http
        .get(format!(
            "{}/api/analytics/timeseries/?bucket=day&from=2024-02-28&to=2024-03-05T12:00:00Z",
            stack.consumer
        ))
        .bearer_auth(&merchant_a)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("csv");
    assert!(csv.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/csv"));
    let csv = csv.text().await.expect("text");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "start,total_purchases,total_amount,total_vat,total_tips,average_receipt"
    );
    assert_eq!(lines.len(), 1 + daily["results"].as_array().map_or(0, Vec::len));
    let first = &daily["results"][0];
    assert_eq!(
        lines[1],
        format!(
            "2024-02-28T00:00:00Z,{},{},{},{},{}",
            first["total_purchases"],
            first["total_amount"],
            first["total_vat"],
            first["total_tips"],
            first["average_receipt"]
        ),
        "money with two decimals, as in JSON"
    );
    let (status, foreign) = stack
        .send(
            stack.http.get(format!(
                "{}/api/analytics/timeseries/?place_id=p-3&from=2024-03-01&to=2024-03-04",
                stack.consumer
            )),
            &merchant_a,
        )
        .await;
    assert_eq!(status, 200);
    let counted: i64 = foreign["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|bucket| bucket["total_purchases"].as_i64())
        .sum();
    assert_eq!(
        counted, 0,
        "another merchant's place counts nothing for m-a: {foreign}"
    );
    for bad in [
        "bucket=week",
        "bucket=hour&from=2024-01-01&to=2024-03-01",
        "from=yesterday",
    ] {
        let (status, body) = stack
            .send(
                stack
                    .http
                    .get(format!("{}/api/analytics/timeseries/?{bad}", stack.consumer)),
                &admin,
            )
            .await;
        assert_eq!(
            (status, body["error"].clone()),
            (400, json!("bad_request")),
            "{bad}: {body}"
        );
    }
    let overview_csv = stack
        .http
        .get(format!(
            "{}/api/analytics/?format=csv&page_size=1",
            stack.consumer
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("text");
    let rows: Vec<&str> = overview_csv.lines().collect();
    assert_eq!(
        rows[0],
        "place_id,place_name,total_purchases,total_amount,average_receipt,total_vat,total_tips"
    );
    assert_eq!(
        rows.len(),
        1 + places.len(),
        "every place in scope, whatever the page size"
    );

    // Analysts type dates: a date is midnight UTC, an empty parameter is absent, an inverted period is empty.
    let (_, by_dates) = stack
        .send(
            stack.http.get(format!(
                "{}/api/analytics/?from=2024-03-02&to=2024-03-03&category=&page=",
                stack.consumer
            )),
            &admin,
        )
        .await;
    let (_, by_instants) = stack
        .send(
            stack.http.get(format!(
                "{}/api/analytics/?from=2024-03-02T00:00:00Z&to=2024-03-03T00:00:00Z",
                stack.consumer
            )),
            &admin,
        )
        .await;
    assert_eq!(by_dates["summary"], by_instants["summary"]);
    assert!(by_dates["summary"]["total_purchases"].as_i64() > Some(0));
    let (status, inverted) = stack
        .send(
            stack.http.get(format!(
                "{}/api/analytics/?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z",
                stack.consumer
            )),
            &admin,
        )
        .await;
    assert_eq!(
        (status, inverted["summary"]["total_purchases"].clone()),
        (200, json!(0))
    );

    for bad in ["from=yesterday", "to=2024-13-01", "from=2024-03-02T25:00:00Z"] {
        let (status, body) = stack
            .send(
                stack.http.get(format!("{}/api/analytics/?{bad}", stack.consumer)),
                &admin,
            )
            .await;
        assert_eq!(
            (status, body["error"].clone()),
            (400, json!("bad_request")),
            "{bad}"
        );
    }

    // A burst of 2000 receipts is coalesced into a few recompute jobs, one per consumer batch.
    let mut conn = stack.pool.get().expect("connection");
    use diesel::prelude::*;
    let bucket_jobs: i64 = shared_models::schema::jobs::table
        .filter(shared_models::schema::jobs::kind.eq("buckets"))
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert!(
        (1..=100).contains(&bucket_jobs),
        "{bucket_jobs} recompute jobs for 2000 receipts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_shows_a_merchant_the_apis_figures_and_an_admin_the_fleet_in_a_real_browser() {
    let stack = spawn_stack().await;
    let merchant = stack.merchant_token("console-a").await;
    let other = stack.merchant_token("console-b").await;
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
            let (status, body) = stack.post_receipt(token, &receipt).await;
            assert_eq!(status, 202, "{body}");
            if token == &merchant {
                count += 1;
            }
        }
    }
    stack
        .analytics_until(&merchant, "", |body| body["summary"]["total_purchases"] == count)
        .await;
    let screenshots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&screenshots).expect("screenshot directory");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/console_check.mjs");
    let mut check = std::process::Command::new("node");
    check
        .arg(&script)
        .env("CONSUMER_URL", &stack.consumer)
        .env("MERCHANT_TOKEN", &merchant)
        .env("ADMIN_TOKEN", &stack.admin_token)
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
