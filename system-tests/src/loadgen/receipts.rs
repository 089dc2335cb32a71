//! Realistic receipts: many merchants and places (a few busy, most quiet), 1-10 lines with weighed goods
//! among them, tips now and then, and a chosen share of repeats and of invalid receipts.

use chrono::{SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde::Serialize;
use shared_models::domain::money::round_cents;

/// What a generated submission is, and so which answer it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Never sent before: 202.
    New,
    /// The same body as an earlier one: 200.
    Repeat,
    /// Breaks a rule (its total does not add up): 422.
    Invalid,
}

/// The mix of receipts to generate.
#[derive(Debug, Clone)]
pub struct Mix {
    pub merchants: usize,
    pub places: usize,
    /// Share of submissions that repeat an earlier receipt, 0 to 1.
    pub repeats: f64,
    /// Share of submissions that are invalid, 0 to 1.
    pub invalid: f64,
}

const CATEGORIES: [&str; 8] = [
    "coffee",
    "bakery",
    "groceries",
    "produce",
    "drinks",
    "household",
    "snacks",
    "deli",
];
const PAYMENTS: [&str; 4] = ["cash", "credit_card", "debit_card", "mobile"];
/// Accepted bodies kept per generator for repeats.
const KEPT: usize = 64;

/// Generates one client's receipts, each as the JSON body it is sent as; transaction ids are unique per run
/// and client.
pub struct ReceiptFactory {
    mix: Mix,
    run: String,
    client: usize,
    sequence: u64,
    rng: StdRng,
    sent: Vec<Vec<u8>>,
}

/// A receipt as submitted, written straight to JSON (the load generator's own work stays small beside the
/// producer's).
#[derive(Serialize)]
struct Submission<'a> {
    transaction_id: &'a str,
    merchant_id: &'a str,
    place_id: &'a str,
    place_name: &'a str,
    timestamp: &'a str,
    payment_method: &'a str,
    items: &'a [Line],
    total_amount: String,
    vat_amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tips_amount: Option<String>,
}

#[derive(Serialize)]
struct Line {
    product_id: String,
    quantity: String,
    price: String,
    category: &'static str,
    #[serde(skip)]
    amount: Decimal,
}

impl ReceiptFactory {
    pub fn new(mix: Mix, run: &str, client: usize) -> ReceiptFactory {
        ReceiptFactory {
            rng: StdRng::seed_from_u64(client as u64 ^ 0x5eed),
            mix,
            run: run.to_owned(),
            client,
            sequence: 0,
            sent: Vec::with_capacity(KEPT),
        }
    }

    /// The next submission's JSON body and what it is; repeats are of receipts passed to
    /// [`ReceiptFactory::accepted`].
    pub fn submission(&mut self) -> (Kind, Vec<u8>) {
        let roll: f64 = self.rng.random();
        if roll < self.mix.repeats && !self.sent.is_empty() {
            let index = self.rng.random_range(0..self.sent.len());
            return (Kind::Repeat, self.sent[index].clone());
        }
        if roll < self.mix.repeats + self.mix.invalid {
            return (Kind::Invalid, self.fresh(Some("0.01")));
        }
        (Kind::New, self.fresh(None))
    }

    /// Keeps a new receipt the producer accepted, to be repeated later: only an accepted receipt's repeat
    /// is sure to be answered 200, where one sent while its first submission is unanswered may be the one
    /// accepted.
    pub fn accepted(&mut self, body: Vec<u8>) {
        if self.sent.len() < KEPT {
            self.sent.push(body);
        } else {
            let slot = self.rng.random_range(0..KEPT);
            self.sent[slot] = body;
        }
    }

    /// A new receipt; `total_amount` is the sum of its lines unless given.
    fn fresh(&mut self, total: Option<&str>) -> Vec<u8> {
        self.sequence += 1;
        // A few busy places and a long tail of quiet ones; place `p` belongs to merchant `p % merchants`.
        let place = (self.mix.places as f64 * self.rng.random::<f64>().powi(3)) as usize;
        let lines: Vec<Line> = (0..self.rng.random_range(1..=10))
            .map(|line| {
                let weighed = self.rng.random_bool(0.3);
                let quantity = if weighed {
                    Decimal::new(self.rng.random_range(50..2_500), 3)
                } else {
                    Decimal::from(self.rng.random_range(1..4))
                };
                let price = Decimal::new(self.rng.random_range(49..4_999), 2);
                Line {
                    product_id: format!("sku-{}", self.rng.random_range(0..5_000) + line),
                    quantity: quantity.to_string(),
                    price: price.to_string(),
                    category: CATEGORIES[self.rng.random_range(0..CATEGORIES.len())],
                    amount: round_cents(quantity * price),
                }
            })
            .collect();
        let lines_total: Decimal = lines.iter().map(|line| line.amount).sum();
        let tips = self
            .rng
            .random_bool(0.2)
            .then(|| format!("{}.00", self.rng.random_range(1..5)));
        let submission = Submission {
            transaction_id: &format!("{}-{}-{}", self.run, self.client, self.sequence),
            merchant_id: &format!("merchant-{}", place % self.mix.merchants.max(1)),
            place_id: &format!("place-{place}"),
            place_name: &format!("Shop {place}"),
            timestamp: &Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            payment_method: PAYMENTS[self.rng.random_range(0..PAYMENTS.len())],
            items: &lines,
            total_amount: total.map_or_else(|| format!("{lines_total:.2}"), str::to_owned),
            vat_amount: (lines_total * Decimal::new(9, 2)).round_dp(2).to_string(),
            tips_amount: tips,
        };
        serde_json::to_vec(&submission).expect("a receipt serializes to JSON")
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use producer::validation::{validate, Rules};
    use serde_json::{Map, Value};

    use super::{Kind, Mix, ReceiptFactory};

    fn fields(body: &[u8]) -> Map<String, Value> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(fields)) => fields,
            other => panic!("a generated body is a JSON object, not {other:?}"),
        }
    }

    /// Every kind of submission is what the producer's own rules make of it: new and repeated receipts are
    /// valid (a repeat is byte for byte an earlier new one), invalid ones fail on their total
    /// (0.01, below their lines and often their VAT).
    #[test]
    fn submissions_are_what_the_producer_makes_of_them() {
        let mix = Mix {
            merchants: 3,
            places: 10,
            repeats: 0.2,
            invalid: 0.2,
        };
        let mut factory = ReceiptFactory::new(mix, "t", 0);
        let mut new = Vec::new();
        let mut seen = [0; 3];
        for _ in 0..500 {
            let (kind, body) = factory.submission();
            let checked = validate(&fields(&body), &Rules::default(), Utc::now());
            match kind {
                Kind::New => {
                    let mut valid = checked.expect("a new receipt is valid");
                    let place = valid.place_id.take().expect("a receipt names its place");
                    assert!(valid.merchant_id.is_some(), "a receipt names its merchant");
                    let lines = valid.into_receipt(place).items.len();
                    assert!((1..=10).contains(&lines), "{lines} lines");
                    new.push(body.clone());
                    factory.accepted(body);
                    seen[0] += 1;
                }
                Kind::Repeat => {
                    checked.expect("a repeat is valid");
                    assert!(new.contains(&body), "a repeat is an accepted receipt");
                    seen[1] += 1;
                }
                Kind::Invalid => {
                    let problems = checked.expect_err("an invalid receipt fails");
                    assert!(
                        problems.iter().any(|problem| problem.field == "total_amount"),
                        "{problems:?}"
                    );
                    seen[2] += 1;
                }
            }
        }
        assert!(
            seen.iter().all(|&count| count > 50),
            "every kind generated: {seen:?}"
        );
    }
}
