//! The analytics against an oracle: thousands of random receipts, summed exactly by the test itself, must
//! match what the API reports for every period, place and merchant.

use serde_json::{json, Value};

use super::{spawn_services, Services};

mod series;
mod summaries;

use series::series_match;
use summaries::{merchant_summaries_match, summaries_and_places_match};

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
        use shared_models::domain::money::{mean, Money};
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

/// The places of the generated receipts, with their merchants.
const PLACES: [(&str, &str); 5] = [
    ("p-1", "m-a"),
    ("p-2", "m-a"),
    ("p-3", "m-b"),
    ("p-4", "m-b"),
    ("p-5", "m-c"),
];

/// Where the generated receipts fall: 39 days from 2024-01-25, across two month ends and the leap day.
const FIRST_DAY: &str = "2024-01-25T00:00:00Z";
const DAYS: u64 = 39;

/// 2000 receipts over [`DAYS`] days from [`FIRST_DAY`], as request bodies and as the oracle sees them.
fn generate() -> (Vec<Value>, Vec<Generated>) {
    use rust_decimal::Decimal;
    use shared_models::domain::money::round_cents;

    let categories = [
        "Groceries",
        "groceries ",
        "ELECTRONICS",
        "toys",
        " Books",
        "garden",
    ];
    let start: chrono::DateTime<chrono::Utc> = FIRST_DAY.parse().expect("time");
    let mut random = Xorshift(0x5eed_1234_abcd_0001);
    let mut generated = Vec::new();
    let mut bodies = Vec::new();
    for index in 0..2000 {
        let (place, merchant) = PLACES[random.below(PLACES.len() as u64) as usize];
        let at = start + chrono::TimeDelta::milliseconds(random.below(DAYS * 24 * 3600 * 1000) as i64);
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
    (bodies, generated)
}

/// Periods that read every tier: all time, months with ragged days and hours around them, the leap day,
/// a whole month, hours within one day, one partial hour, and open ends; the late receipt's month and day.
const PERIODS: [(Option<&str>, Option<&str>); 11] = [
    (None, None),
    (Some("2024-01-30T10:15:00Z"), Some("2024-03-02T05:30:00.25Z")),
    (Some("2024-02-29T00:00:00Z"), Some("2024-03-01T00:00:00Z")),
    (Some("2024-02-01T00:00:00Z"), Some("2024-03-01T00:00:00Z")),
    (Some("2024-02-29T03:17:00Z"), Some("2024-02-29T21:45:10Z")),
    (Some("2024-03-02T10:05:00Z"), Some("2024-03-02T10:48:30Z")),
    (Some("2024-02-15T12:34:56Z"), None),
    (None, Some("2024-02-10T00:00:00.5Z")),
    (Some("2023-11-01T00:00:00Z"), Some("2023-12-01T00:00:00Z")),
    (Some("2023-11-15T00:00:00Z"), Some("2023-11-16T00:00:00Z")),
    (Some("2023-10-31T23:00:00Z"), Some("2024-01-31T00:00:00Z")),
];

/// The receipt sent months after its purchase: place p-2 of merchant m-a, on 2023-11-15.
fn late_receipt() -> (Value, Generated) {
    use rust_decimal::Decimal;
    let body = shared_models::testing::ReceiptBody::new("oracle-late")
        .merchant("m-a")
        .place("p-2")
        .at("2023-11-15T08:30:00Z")
        .line("sku", "3", "4.99", "Garden")
        .vat("1.00")
        .with("tips_amount", json!("0.50"));
    let generated = Generated {
        place: "p-2",
        at: "2023-11-15T08:30:00Z".parse().expect("time"),
        total: body.lines_total(),
        vat: Decimal::new(100, 2),
        tips: Decimal::new(50, 2),
        lines: vec![("garden".to_owned(), body.lines_total())],
    };
    (body.build(), generated)
}

fn period_bound(text: Option<&str>) -> Option<chrono::DateTime<chrono::Utc>> {
    text.map(|text| text.parse().expect("time"))
}

/// What the oracle expects of the receipts of `places` in `[from, to)`.
fn expected_over(generated: &[Generated], places: &[&str], from: Option<&str>, to: Option<&str>) -> Expected {
    let (low, high) = (period_bound(from), period_bound(to));
    let mut expected = Expected::default();
    generated
        .iter()
        .filter(|receipt| places.contains(&receipt.place))
        .filter(|receipt| {
            low.is_none_or(|low| receipt.at >= low) && high.is_none_or(|high| receipt.at < high)
        })
        .for_each(|receipt| expected.add(receipt));
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analytics_match_an_independent_exact_computation_for_thousands_of_random_receipts() {
    let services = spawn_services().await;
    let (bodies, generated) = generate();
    for chunk in bodies.chunks(500) {
        let (status, body) = services
            .send(
                services
                    .http
                    .post(format!("{}/api/checks/batch/", services.producer))
                    .json(&chunk),
                &services.admin,
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

    let admin = services.admin.clone();
    services
        .analytics_until(&admin, "", |body| body["summary"]["total_purchases"] == 2000)
        .await;
    summaries_and_places_match(&services, &generated).await;
    merchant_summaries_match(&services, &generated).await;

    // A receipt that arrives months late updates its hour, its day and its month, at every level.
    let (late_body, late) = late_receipt();
    let (status, body) = services.post_receipt(&admin, &late_body).await;
    assert_eq!(status, 202, "{body}");
    let mut generated = generated;
    generated.push(late);
    services
        .analytics_until(&admin, "", |body| body["summary"]["total_purchases"] == 2001)
        .await;
    summaries_and_places_match(&services, &generated).await;
    merchant_summaries_match(&services, &generated).await;
    series_match(&services, &generated).await;
    csv_lists_every_place(&services).await;
    dates_and_bad_periods(&services).await;

    // A burst of 2000 receipts is coalesced into a few recompute jobs, one per consumer batch.
    let mut conn = services.pool.get().expect("connection");
    use diesel::prelude::*;
    let bucket_jobs: i64 = shared_models::store::schema::jobs::table
        .filter(shared_models::store::schema::jobs::kind.eq("buckets"))
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert!(
        (1..=100).contains(&bucket_jobs),
        "{bucket_jobs} recompute jobs for 2000 receipts"
    );
}

/// The overview as CSV holds every place in scope, whatever the page size.
async fn csv_lists_every_place(services: &Services) {
    let overview_csv = services
        .http
        .get(format!(
            "{}/api/analytics/?format=csv&page_size=1",
            services.consumer
        ))
        .bearer_auth(&services.admin)
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
        1 + PLACES.len(),
        "every place in scope, whatever the page size"
    );
}

/// Analysts type dates: a date is midnight UTC, an empty parameter is absent, an inverted period is empty, and
/// a date that does not exist is a 400.
async fn dates_and_bad_periods(services: &Services) {
    let admin = &services.admin;
    let (_, by_dates) = services
        .get_from_consumer(
            "/api/analytics/?from=2024-03-02&to=2024-03-03&category=&page=",
            admin,
        )
        .await;
    let (_, by_instants) = services
        .get_from_consumer(
            "/api/analytics/?from=2024-03-02T00:00:00Z&to=2024-03-03T00:00:00Z",
            admin,
        )
        .await;
    assert_eq!(by_dates["summary"], by_instants["summary"]);
    assert!(by_dates["summary"]["total_purchases"].as_i64() > Some(0));
    let (status, inverted) = services
        .get_from_consumer(
            "/api/analytics/?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z",
            admin,
        )
        .await;
    assert_eq!(
        (status, inverted["summary"]["total_purchases"].clone()),
        (200, json!(0))
    );

    refused_as_bad_requests(
        services,
        "/api/analytics/?",
        &["from=yesterday", "to=2024-13-01", "from=2024-03-02T25:00:00Z"],
    )
    .await;
}

/// Each query on `endpoint` (a path ending in `?`) is answered 400 `bad_request`.
async fn refused_as_bad_requests(services: &Services, endpoint: &str, queries: &[&str]) {
    for query in queries {
        let (status, body) = services
            .get_from_consumer(&format!("{endpoint}{query}"), &services.admin)
            .await;
        assert_eq!(
            (status, body["error"].clone()),
            (400, json!("bad_request")),
            "{query}: {body}"
        );
    }
}
