//! The oracle's summaries: the overview, each place's and each merchant's analytics for every period.

use serde_json::{json, Value};
use system_tests::services::Services;

use super::{expected_over, period_bound, Expected, Generated, PERIODS, PLACES};

/// A merchant's summary (read from the merchant tier) for every period, and one category's figures.
pub(super) async fn merchant_summaries_match(services: &Services, generated: &[Generated]) {
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

/// The overview and one place's analytics, for ragged and open periods.
pub(super) async fn summaries_and_places_match(services: &Services, generated: &[Generated]) {
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
        let period: String = [
            from.map(|from| format!("&from={from}")),
            to.map(|to| format!("&to={to}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let what = format!("period {from:?}..{to:?}");

        // One place named: its figures are both the summary and its one result.
        let one = services
            .analytics_until(admin, &format!("place_id=p-3{period}"), |_| true)
            .await;
        let expected = per_place
            .get("p-3")
            .map_or_else(|| Expected::default().json(), Expected::json);
        assert_eq!(one["summary"], expected, "{what}: p-3's summary");
        assert_eq!(one["count"], 1, "{what}: p-3");
        assert_eq!(one["results"][0]["place_id"], "p-3", "{what}");
        assert_eq!(figures_of(&one["results"][0]), expected, "{what}: p-3's result");

        let body = services
            .analytics_until(admin, &format!("page_size=500{period}"), |_| true)
            .await;
        let mut actual_summary = body["summary"].clone();
        assert_eq!(actual_summary.as_object_mut().map(|o| o.len()), Some(5), "{what}");
        assert_eq!(actual_summary, summary.json(), "{what}: summary");
        for result in body["results"].as_array().expect("results") {
            let place = result["place_id"].as_str().expect("place id");
            let expected = per_place.remove(place).unwrap_or_default();
            assert_eq!(figures_of(result), expected.json(), "{what}: place {place}");
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
        .get_from_consumer(
            "/api/places/p-3/analytics/?from=2024-03-02T10:05:00Z&to=2024-03-03T00:00:00Z",
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

/// A place's result without its id and name: the figures alone.
fn figures_of(result: &Value) -> Value {
    let mut figures = result.clone();
    if let Some(object) = figures.as_object_mut() {
        object.remove("place_id");
        object.remove("place_name");
    }
    figures
}
