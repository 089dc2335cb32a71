//! The oracle's time series: hour and day buckets against the receipts the test generated.

use chrono::DurationRound;
use serde_json::Value;

use super::{refused_as_bad_requests, Expected, Generated, PLACES};
use system_tests::services::Services;

/// The time series, hour and day buckets, exact at ragged edges, empty buckets as zeros, scoped by merchant.
pub(super) async fn series_match(services: &Services, generated: &[Generated]) {
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
        .get_from_consumer(
            "/api/analytics/timeseries/?bucket=hour&place_id=p-3&from=2024-02-28T22:17:23Z&to=2024-03-01T03:42:05.5Z",
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
        .get_from_consumer(
            "/api/analytics/timeseries/?bucket=day&from=2024-01-28&to=2024-03-03T12:00:00Z",
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
        .get_from_consumer(
            "/api/analytics/timeseries/?bucket=day&from=2024-01-20T06:00:00Z&to=2024-03-10",
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
        .get_from_consumer(
            "/api/analytics/timeseries/?place_id=p-3&from=2024-03-01&to=2024-03-04",
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
    refused_as_bad_requests(
        services,
        "/api/analytics/timeseries/?",
        &[
            "bucket=week",
            "bucket=hour&from=2024-01-01&to=2024-03-01",
            "from=yesterday",
        ],
    )
    .await;
}
