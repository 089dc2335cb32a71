//! The analytics against an oracle: thousands of random receipts, summed exactly by the test itself, must
//! match what the API reports for every period, place and merchant.

use chrono::DurationRound;
use serde_json::{json, Value};

use super::{spawn_services, Services};

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

/// A merchant's summary (read from the merchant tier) for every period, and one category's figures.
async fn merchant_summaries_match(services: &Services, generated: &[Generated]) {
    for merchant in ["m-a", "m-b"] {
        let token = services.merchant_token(merchant).await;
        let places: Vec<&str> = PLACES
            .iter()
            .filter(|(_, owner)| *owner == merchant)
            .map(|(place, _)| *place)
            .collect();
        for (from, to) in PERIODS {
            let mut query = Vec::new();
            query.extend(from.map(|from| format!("from={from}")));
            query.extend(to.map(|to| format!("to={to}")));
            let body = services.analytics_until(&token, &query.join("&"), |_| true).await;
            assert_eq!(
                body["summary"],
                expected_over(generated, &places, from, to).json(),
                "{merchant} over {from:?}..{to:?}"
            );
        }
        let body = services
            .analytics_until(&token, "category=GARDEN&from=2023-11-01", |_| true)
            .await;
        let expected = expected_over(generated, &places, Some("2023-11-01T00:00:00Z"), None).json();
        assert_eq!(
            body["summary"]["category_analytics"],
            json!({ "garden": expected["category_analytics"]["garden"] }),
            "{merchant}: one category"
        );
    }
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

/// The overview and one place's analytics, for ragged and open periods.
async fn summaries_and_places_match(services: &Services, generated: &[Generated]) {
    let admin = &services.admin;
    for (from, to) in PERIODS {
        let (low, high) = (period_bound(from), period_bound(to));
        let mut summary = Expected::default();
        let mut per_place: std::collections::BTreeMap<&str, Expected> = std::collections::BTreeMap::new();
        for receipt in generated {
            if low.is_some_and(|low| receipt.at < low) || high.is_some_and(|high| receipt.at >= high) {
                continue;
            }
            summary.add(receipt);
            per_place.entry(receipt.place).or_default().add(receipt);
        }
        let mut query = vec!["page_size=500".to_owned()];
        query.extend(from.map(|from| format!("from={from}")));
        query.extend(to.map(|to| format!("to={to}")));
        let body = services.analytics_until(admin, &query.join("&"), |_| true).await;
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

    // Pages of three places, followed by their `next` links, hold every place once and in order.
    let ids = |page: &Value| -> Vec<String> {
        page["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|result| result["place_id"].as_str().expect("place id").to_owned())
            .collect()
    };
    let whole = ids(&services.analytics_until(admin, "page_size=500", |_| true).await);
    assert!(whole.len() > 3, "more places than one page holds");
    let mut paged = Vec::new();
    let mut next = Some(format!("{}/api/analytics/?page_size=3", services.consumer));
    while let Some(url) = next {
        let (status, page) = services.send(services.http.get(url), admin).await;
        assert_eq!(status, 200);
        assert_eq!(page["count"], whole.len());
        paged.extend(ids(&page));
        next = page["next"].as_str().map(str::to_owned);
    }
    assert_eq!(paged, whole);

    let (status, one) = services
        .send(
            services.http.get(format!(
                "{}/api/places/p-3/analytics/?from=2024-03-02T10:05:00Z&to=2024-03-03T00:00:00Z",
                services.consumer
            )),
            admin,
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
}

/// The time series, hour and day buckets, exact at ragged edges, empty buckets as zeros, scoped by merchant.
async fn series_match(services: &Services, generated: &[Generated]) {
    let admin = &services.admin;
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
    let all_places: Vec<&str> = PLACES.iter().map(|(place, _)| *place).collect();
    let (low, high): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = (
        "2024-02-28T22:17:23Z".parse().expect("time"),
        "2024-03-01T03:42:05.5Z".parse().expect("time"),
    );
    let (status, hourly) = services
        .send(
            services.http.get(format!(
                "{}/api/analytics/timeseries/?bucket=hour&place_id=p-3&from={}&to={}",
                services.consumer, "2024-02-28T22:17:23Z", "2024-03-01T03:42:05.5Z"
            )),
            admin,
        )
        .await;
    assert_eq!(status, 200, "{hourly}");
    compare(
        &hourly,
        series_expected(Some("p-3"), &all_places, chrono::TimeDelta::hours(1), low, high),
        "hourly p-3",
    );
    let merchant_a = services.merchant_token("m-a").await;
    let (status, daily) = services
        .send(
            services.http.get(format!(
                "{}/api/analytics/timeseries/?bucket=day&from=2024-01-28&to=2024-03-03T12:00:00Z",
                services.consumer
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
            "2024-01-28T00:00:00Z".parse().expect("time"),
            "2024-03-03T12:00:00Z".parse().expect("time"),
        ),
        "daily for merchant m-a",
    );
    let (status, every_place) = services
        .send(
            services.http.get(format!(
                "{}/api/analytics/timeseries/?bucket=day&from=2024-01-20T06:00:00Z&to=2024-03-10",
                services.consumer
            )),
            admin,
        )
        .await;
    assert_eq!(status, 200, "{every_place}");
    compare(
        &every_place,
        series_expected(
            None,
            &all_places,
            chrono::TimeDelta::days(1),
            "2024-01-20T06:00:00Z".parse().expect("time"),
            "2024-03-10T00:00:00Z".parse().expect("time"),
        ),
        "daily for every place",
    );
    let csv = services
        .http
        .get(format!(
            "{}/api/analytics/timeseries/?bucket=day&from=2024-01-28&to=2024-03-03T12:00:00Z",
            services.consumer
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
            "2024-01-28T00:00:00Z,{},{},{},{},{}",
            first["total_purchases"],
            first["total_amount"],
            first["total_vat"],
            first["total_tips"],
            first["average_receipt"]
        ),
        "money with two decimals, as in JSON"
    );
    let (status, foreign) = services
        .send(
            services.http.get(format!(
                "{}/api/analytics/timeseries/?place_id=p-3&from=2024-03-01&to=2024-03-04",
                services.consumer
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
        let (status, body) = services
            .send(
                services
                    .http
                    .get(format!("{}/api/analytics/timeseries/?{bad}", services.consumer)),
                admin,
            )
            .await;
        assert_eq!(
            (status, body["error"].clone()),
            (400, json!("bad_request")),
            "{bad}: {body}"
        );
    }
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
        .send(
            services.http.get(format!(
                "{}/api/analytics/?from=2024-03-02&to=2024-03-03&category=&page=",
                services.consumer
            )),
            admin,
        )
        .await;
    let (_, by_instants) = services
        .send(
            services.http.get(format!(
                "{}/api/analytics/?from=2024-03-02T00:00:00Z&to=2024-03-03T00:00:00Z",
                services.consumer
            )),
            admin,
        )
        .await;
    assert_eq!(by_dates["summary"], by_instants["summary"]);
    assert!(by_dates["summary"]["total_purchases"].as_i64() > Some(0));
    let (status, inverted) = services
        .send(
            services.http.get(format!(
                "{}/api/analytics/?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z",
                services.consumer
            )),
            admin,
        )
        .await;
    assert_eq!(
        (status, inverted["summary"]["total_purchases"].clone()),
        (200, json!(0))
    );

    for bad in ["from=yesterday", "to=2024-13-01", "from=2024-03-02T25:00:00Z"] {
        let (status, body) = services
            .send(
                services
                    .http
                    .get(format!("{}/api/analytics/?{bad}", services.consumer)),
                admin,
            )
            .await;
        assert_eq!(
            (status, body["error"].clone()),
            (400, json!("bad_request")),
            "{bad}"
        );
    }
}
