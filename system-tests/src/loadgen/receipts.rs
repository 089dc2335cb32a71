//! Realistic receipts: many merchants and places (a few busy, most quiet), 1-10 lines with weighed goods
//! among them, tips now and then, and a chosen share of repeats and of invalid receipts.

use chrono::{SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use shared_models::testing::ReceiptBody;

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
/// Bodies kept per generator for repeats.
const KEPT: usize = 64;

/// Generates one client's receipts; transaction ids are unique per run and client.
pub struct ReceiptFactory {
    mix: Mix,
    run: String,
    client: usize,
    sequence: u64,
    rng: StdRng,
    sent: Vec<Value>,
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

    /// The place a merchant owns: place `p` belongs to merchant `p % merchants`.
    fn owner(&self, place: usize) -> String {
        format!("merchant-{}", place % self.mix.merchants.max(1))
    }

    /// The next submission and what it is.
    pub fn submission(&mut self) -> (Kind, Value) {
        let roll: f64 = self.rng.random();
        if roll < self.mix.repeats && !self.sent.is_empty() {
            let index = self.rng.random_range(0..self.sent.len());
            return (Kind::Repeat, self.sent[index].clone());
        }
        let mut body = self.fresh();
        if roll < self.mix.repeats + self.mix.invalid {
            body["total_amount"] = json!("0.01");
            return (Kind::Invalid, body);
        }
        if self.sent.len() < KEPT {
            self.sent.push(body.clone());
        } else {
            let slot = self.rng.random_range(0..KEPT);
            self.sent[slot] = body.clone();
        }
        (Kind::New, body)
    }

    fn fresh(&mut self) -> Value {
        self.sequence += 1;
        // A few busy places and a long tail of quiet ones.
        let place = (self.mix.places as f64 * self.rng.random::<f64>().powi(3)) as usize;
        let transaction_id = format!("{}-{}-{}", self.run, self.client, self.sequence);
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut receipt = ReceiptBody::new(&transaction_id)
            .place(&format!("place-{place}"))
            .merchant(&self.owner(place))
            .at(&now)
            .with("place_name", json!(format!("Shop {place}")))
            .with(
                "payment_method",
                json!(PAYMENTS[self.rng.random_range(0..PAYMENTS.len())]),
            );
        for line in 0..self.rng.random_range(1..=10) {
            let weighed = self.rng.random_bool(0.3);
            let quantity = if weighed {
                Decimal::new(self.rng.random_range(50..2_500), 3)
            } else {
                Decimal::from(self.rng.random_range(1..4))
            };
            let price = Decimal::new(self.rng.random_range(49..4_999), 2);
            let category = CATEGORIES[self.rng.random_range(0..CATEGORIES.len())];
            receipt = receipt.line(
                &format!("sku-{}", self.rng.random_range(0..5_000) + line),
                &quantity.to_string(),
                &price.to_string(),
                category,
            );
        }
        let total = receipt.lines_total();
        let vat = (total * Decimal::new(9, 2)).round_dp(2);
        receipt = receipt.vat(&vat.to_string());
        if self.rng.random_bool(0.2) {
            receipt = receipt.with(
                "tips_amount",
                json!(format!("{}.00", self.rng.random_range(1..5))),
            );
        }
        receipt.build()
    }
}
