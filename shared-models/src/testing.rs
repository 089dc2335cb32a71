//! Test support: every test gets its own database (migrated with the real migrations), topics and queue,
//! on the services that `scripts/test.sh` starts and announces in `TEST_*` variables; one way to get a token
//! and one receipt fixture for every test; the hour buckets of chosen receipts, as recompute jobs take them.

use diesel::{Connection, PgConnection, RunQueryDsl};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::domain::auth::Role;
use crate::domain::jobs::HourBucket;
use crate::domain::money::round_cents;
use crate::store::rollups::BucketRow;
use crate::store::{self, PgPool};

/// The variable's value; a clear failure when the test run was not started through `make test`.
pub fn service_url(variable: &str) -> String {
    std::env::var(variable)
        .unwrap_or_else(|_| panic!("{variable} is not set: run the tests with `make test`"))
}

/// A unique lower-case name with the given prefix.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh, migrated database; returns its URL and a pool on it.
pub fn fresh_database() -> (String, PgPool) {
    let admin_url = service_url("TEST_DATABASE_URL");
    let name = unique_name("test");
    let mut admin = PgConnection::establish(&admin_url).expect("connect to the test PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .expect("create the test database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("a database URL ends with /<database>");
    let url = format!("{base}/{name}");
    let pool = store::build_pool(&url, 8);
    store::run_migrations(&pool).expect("migrate the test database");
    (url, pool)
}

#[derive(clap::Parser)]
struct Defaults<T: clap::Args> {
    #[command(flatten)]
    inner: T,
}

/// The hour buckets (place and UTC hour) of the receipts that `receipts` selects: a query with `place_id` and
/// `purchased_at` columns, such as `SELECT * FROM receipts WHERE ...`.
pub fn hour_buckets_of(conn: &mut PgConnection, receipts: &str) -> Vec<HourBucket> {
    diesel::sql_query(format!(
        "SELECT DISTINCT place_id, date_trunc('hour', purchased_at, 'UTC') AS hour FROM ({receipts}) r"
    ))
    .load::<BucketRow>(conn)
    .expect("the receipts' hour buckets")
    .into_iter()
    .map(HourBucket::from)
    .collect()
}

/// A configuration section with every value at its default (as a service started with no variables set).
pub fn defaults<T: clap::Args>() -> T {
    <Defaults<T> as clap::Parser>::parse_from(["test"]).inner
}

/// A token of `role` (for `merchant`, when a merchant token), stored directly: its id and its secret.
pub fn token(pool: &PgPool, role: Role, merchant: Option<&str>) -> (uuid::Uuid, String) {
    let mut conn = pool.get().expect("a test database connection");
    let (record, secret) =
        store::tokens::create_token(&mut conn, role, merchant, Some("test")).expect("a token");
    (record.id, secret)
}

/// A valid receipt body to start from, changed only in what a test is about: one line (1 x 2.50, `food`) at
/// place `store-1`, at 2024-02-07T12:34:56Z, VAT 0.25, paid in cash. Amounts are numeric strings, read
/// exactly; `total_amount` is the sum of the line amounts unless set.
#[derive(Debug, Clone)]
pub struct ReceiptBody {
    fields: Map<String, Value>,
    lines: Vec<(Value, Decimal)>,
    /// Whether the lines are still the default one, which the first [`ReceiptBody::line`] replaces.
    default_lines: bool,
}

impl ReceiptBody {
    pub fn new(transaction_id: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("transaction_id".into(), json!(transaction_id));
        fields.insert("timestamp".into(), json!("2024-02-07T12:34:56Z"));
        fields.insert("place_id".into(), json!("store-1"));
        fields.insert("vat_amount".into(), json!("0.25"));
        fields.insert("payment_method".into(), json!("cash"));
        let mut body = ReceiptBody {
            fields,
            lines: Vec::new(),
            default_lines: false,
        }
        .line("p", "1", "2.50", "food");
        body.default_lines = true;
        body
    }

    /// Sets a field to any JSON value (an extra field, a number instead of a string, a wrong type).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.fields.insert(key.to_owned(), value);
        self
    }

    /// Leaves a field out.
    pub fn without(mut self, key: &str) -> Self {
        self.fields.remove(key);
        self
    }

    pub fn place(self, place_id: &str) -> Self {
        self.with("place_id", json!(place_id))
    }

    pub fn merchant(self, merchant_id: &str) -> Self {
        self.with("merchant_id", json!(merchant_id))
    }

    pub fn at(self, timestamp: &str) -> Self {
        self.with("timestamp", json!(timestamp))
    }

    pub fn vat(self, amount: &str) -> Self {
        self.with("vat_amount", json!(amount))
    }

    pub fn total(self, amount: &str) -> Self {
        self.with("total_amount", json!(amount))
    }

    /// A line; the first call replaces the default line, later ones add.
    pub fn line(mut self, product_id: &str, quantity: &str, price: &str, category: &str) -> Self {
        if self.default_lines {
            self.lines.clear();
            self.default_lines = false;
        }
        let amount = round_cents(decimal(quantity) * decimal(price));
        self.lines.push((
            json!({ "product_id": product_id, "quantity": quantity, "price": price, "category": category }),
            amount,
        ));
        self
    }

    /// The sum of the line amounts, which the producer checks `total_amount` against.
    pub fn lines_total(&self) -> Decimal {
        self.lines.iter().map(|(_, amount)| *amount).sum()
    }

    pub fn build(&self) -> Value {
        let mut fields = self.fields.clone();
        let lines = self.lines.iter().map(|(line, _)| line.clone()).collect();
        fields.insert("items".into(), Value::Array(lines));
        fields
            .entry("total_amount")
            .or_insert_with(|| json!(format!("{:.2}", self.lines_total())));
        Value::Object(fields)
    }
}

fn decimal(literal: &str) -> Decimal {
    literal
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{literal} is a decimal"))
}
