//! The rules of receipt validation, case by case: one test per rule the OpenAPI document states
//! (document.rs), each with the body that breaks it and the field error a client gets. One file on purpose:
//! it reads as the checklist of those rules, in the order the document gives them.

use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

fn valid() -> Value {
    json!({
        "transaction_id": "t-1",
        "timestamp": "2024-02-07T12:34:56",
        "items": [
            { "product_id": "p1", "quantity": 2, "price": 10.99, "category": "groceries" },
            { "product_id": "p2", "quantity": 1, "price": 5.49, "category": "electronics" }
        ],
        "total_amount": 27.47,
        "vat_amount": 2.47,
        "tips_amount": 3.0,
        "payment_method": "credit_card"
    })
}

fn check(body: &Value) -> Result<ValidReceipt, Vec<FieldError>> {
    let object = body.as_object().expect("an object");
    validate(object, &Rules::default(), now())
}

/// How a case changes the valid receipt.
type Change = Box<dyn Fn(&mut Value)>;

/// (what is changed, the field path reported, the code reported)
#[test]
fn each_invalid_receipt_reports_its_field_and_code() {
    let cases: Vec<(&str, Change, &str, &str)> = vec![
        (
            "no transaction_id",
            Box::new(|b| {
                b.as_object_mut().map(|o| o.remove("transaction_id"));
            }),
            "transaction_id",
            "required",
        ),
        (
            "empty transaction_id",
            Box::new(|b| b["transaction_id"] = json!("")),
            "transaction_id",
            "too_short",
        ),
        (
            "long transaction_id",
            Box::new(|b| b["transaction_id"] = json!("x".repeat(129))),
            "transaction_id",
            "too_long",
        ),
        (
            "control character",
            Box::new(|b| b["transaction_id"] = json!("a\u{7}b")),
            "transaction_id",
            "invalid_characters",
        ),
        (
            "numeric transaction_id",
            Box::new(|b| b["transaction_id"] = json!(5)),
            "transaction_id",
            "invalid_type",
        ),
        (
            "no timestamp",
            Box::new(|b| {
                b.as_object_mut().map(|o| o.remove("timestamp"));
            }),
            "timestamp",
            "required",
        ),
        (
            "bad timestamp",
            Box::new(|b| b["timestamp"] = json!("yesterday")),
            "timestamp",
            "invalid_timestamp",
        ),
        (
            "before 2000",
            Box::new(|b| b["timestamp"] = json!("1999-12-31T23:59:59Z")),
            "timestamp",
            "too_early",
        ),
        (
            "future",
            Box::new(|b| b["timestamp"] = json!("2026-01-01T00:11:00Z")),
            "timestamp",
            "in_future",
        ),
        (
            "no items",
            Box::new(|b| {
                b.as_object_mut().map(|o| o.remove("items"));
            }),
            "items",
            "required",
        ),
        (
            "empty items",
            Box::new(|b| b["items"] = json!([])),
            "items",
            "too_few",
        ),
        (
            "items not a list",
            Box::new(|b| b["items"] = json!({})),
            "items",
            "invalid_type",
        ),
        (
            "item not an object",
            Box::new(|b| b["items"][1] = json!(3)),
            "items[1]",
            "invalid_type",
        ),
        (
            "no product_id",
            Box::new(|b| {
                b["items"][1].as_object_mut().map(|o| o.remove("product_id"));
            }),
            "items[1].product_id",
            "required",
        ),
        (
            "zero quantity",
            Box::new(|b| b["items"][0]["quantity"] = json!(0)),
            "items[0].quantity",
            "not_positive",
        ),
        (
            "quantity with 4 decimals",
            Box::new(|b| b["items"][0]["quantity"] = json!("1.0001")),
            "items[0].quantity",
            "too_many_decimals",
        ),
        (
            "negative price",
            Box::new(|b| b["items"][1]["price"] = json!(-1)),
            "items[1].price",
            "negative",
        ),
        (
            "price with 3 decimals",
            Box::new(|b| b["items"][1]["price"] = json!("5.491")),
            "items[1].price",
            "too_many_decimals",
        ),
        (
            "price not a number",
            Box::new(|b| b["items"][1]["price"] = json!("five")),
            "items[1].price",
            "invalid_number",
        ),
        (
            "price a boolean",
            Box::new(|b| b["items"][1]["price"] = json!(true)),
            "items[1].price",
            "invalid_type",
        ),
        (
            "blank category",
            Box::new(|b| b["items"][1]["category"] = json!("   ")),
            "items[1].category",
            "too_short",
        ),
        (
            "long category",
            Box::new(|b| b["items"][1]["category"] = json!("c".repeat(65))),
            "items[1].category",
            "too_long",
        ),
        (
            "total off by more than a cent",
            Box::new(|b| b["total_amount"] = json!(27.49)),
            "total_amount",
            "total_mismatch",
        ),
        (
            "negative total",
            Box::new(|b| b["total_amount"] = json!(-27.47)),
            "total_amount",
            "negative",
        ),
        (
            "no vat",
            Box::new(|b| {
                b.as_object_mut().map(|o| o.remove("vat_amount"));
            }),
            "vat_amount",
            "required",
        ),
        (
            "vat above total",
            Box::new(|b| b["vat_amount"] = json!(30)),
            "vat_amount",
            "exceeds_total",
        ),
        (
            "negative tips",
            Box::new(|b| b["tips_amount"] = json!(-1)),
            "tips_amount",
            "negative",
        ),
        (
            "bad payment method",
            Box::new(|b| b["payment_method"] = json!("credit card")),
            "payment_method",
            "invalid_characters",
        ),
        (
            "long place_id",
            Box::new(|b| b["place_id"] = json!("p".repeat(65))),
            "place_id",
            "too_long",
        ),
        (
            "long place_name",
            Box::new(|b| b["place_name"] = json!("n".repeat(201))),
            "place_name",
            "too_long",
        ),
        (
            "empty place_id",
            Box::new(|b| b["place_id"] = json!("")),
            "place_id",
            "too_short",
        ),
        (
            "numeric place_id",
            Box::new(|b| b["place_id"] = json!(12)),
            "place_id",
            "invalid_type",
        ),
        (
            "timestamp a number",
            Box::new(|b| b["timestamp"] = json!(1707309296)),
            "timestamp",
            "invalid_type",
        ),
        (
            "impossible date",
            Box::new(|b| b["timestamp"] = json!("2024-02-30T10:00:00Z")),
            "timestamp",
            "invalid_timestamp",
        ),
        (
            "too many items",
            Box::new(|b| {
                b["items"] = json!(vec![
                    json!({"product_id": "p", "quantity": 1, "price": 0, "category": "c"});
                    1001
                ])
            }),
            "items",
            "too_many",
        ),
        (
            "long product_id",
            Box::new(|b| b["items"][0]["product_id"] = json!("p".repeat(129))),
            "items[0].product_id",
            "too_long",
        ),
        (
            "no quantity",
            Box::new(|b| {
                b["items"][0].as_object_mut().map(|o| o.remove("quantity"));
            }),
            "items[0].quantity",
            "required",
        ),
        (
            "negative quantity",
            Box::new(|b| b["items"][0]["quantity"] = json!(-2)),
            "items[0].quantity",
            "not_positive",
        ),
        (
            "quantity NaN text",
            Box::new(|b| b["items"][0]["quantity"] = json!("NaN")),
            "items[0].quantity",
            "invalid_number",
        ),
        (
            "no price",
            Box::new(|b| {
                b["items"][1].as_object_mut().map(|o| o.remove("price"));
            }),
            "items[1].price",
            "required",
        ),
        (
            "no category",
            Box::new(|b| {
                b["items"][0].as_object_mut().map(|o| o.remove("category"));
            }),
            "items[0].category",
            "required",
        ),
        (
            "huge price",
            Box::new(|b| b["items"][0]["price"] = json!("1e20")),
            "items[0].price",
            "too_large",
        ),
        (
            "total with 3 decimals",
            Box::new(|b| b["total_amount"] = json!("27.470001")),
            "total_amount",
            "too_many_decimals",
        ),
        (
            "no total",
            Box::new(|b| {
                b.as_object_mut().map(|o| o.remove("total_amount"));
            }),
            "total_amount",
            "required",
        ),
        (
            "vat as a list",
            Box::new(|b| b["vat_amount"] = json!([1])),
            "vat_amount",
            "invalid_type",
        ),
        (
            "tips with 3 decimals",
            Box::new(|b| b["tips_amount"] = json!(0.001)),
            "tips_amount",
            "too_many_decimals",
        ),
        (
            "no payment method",
            Box::new(|b| {
                b.as_object_mut().map(|o| o.remove("payment_method"));
            }),
            "payment_method",
            "required",
        ),
        (
            "long payment method",
            Box::new(|b| b["payment_method"] = json!("p".repeat(33))),
            "payment_method",
            "invalid_length",
        ),
        (
            "U+0000 in transaction_id",
            Box::new(|b| b["transaction_id"] = json!("ab\u{0}cd")),
            "transaction_id",
            "invalid_characters",
        ),
        (
            "U+0000 in place_name",
            Box::new(|b| b["place_name"] = json!("Caf\u{0}")),
            "place_name",
            "invalid_characters",
        ),
        (
            "U+0000 in an extra field",
            Box::new(|b| b["note"] = json!({ "inner": ["ok", "no\u{0}"] })),
            "note.inner[1]",
            "invalid_characters",
        ),
        (
            "U+0000 in an extra key",
            Box::new(|b| b["no\u{0}te"] = json!("x")),
            "no\\u0000te",
            "invalid_characters",
        ),
        (
            "U+0000 in an item's extra field",
            Box::new(|b| b["items"][0]["batch"] = json!("\u{0}")),
            "items[0].batch",
            "invalid_characters",
        ),
        (
            "empty merchant_id",
            Box::new(|b| b["merchant_id"] = json!("")),
            "merchant_id",
            "too_short",
        ),
    ];
    assert!(cases.len() >= 45, "{} cases", cases.len());
    for (what, change, field, code) in cases {
        let mut body = valid();
        change(&mut body);
        let errors = check(&body).expect_err(what);
        assert!(
            errors
                .iter()
                .any(|error| error.field == field && error.code == code),
            "{what}: expected {field}/{code}, got {errors:?}"
        );
    }
}

#[test]
fn all_failures_are_reported_together() {
    let mut body = valid();
    body["items"][0]["price"] = json!(-1);
    body["items"][1]["category"] = json!("");
    body["payment_method"] = json!("?");
    let fields: Vec<String> = check(&body)
        .expect_err("invalid")
        .into_iter()
        .map(|e| e.field)
        .collect();
    for field in ["items[0].price", "items[1].category", "payment_method"] {
        assert!(
            fields.contains(&field.to_owned()),
            "{field} missing from {fields:?}"
        );
    }
}

#[test]
fn valid_edge_cases_are_accepted_exactly() {
    let weighed = json!({
        "transaction_id": "Ünïcode-✓", "timestamp": "2024-02-07T12:34:56.5+05:30",
        "items": [{ "product_id": "apples", "quantity": "1.255", "price": "0.99", "category": "Fruit" }],
        "total_amount": "1.24", "vat_amount": "0", "payment_method": "CASH", "note": "kept"
    });
    let receipt = check(&weighed).expect("valid").into_receipt("p".into());
    assert_eq!(receipt.items[0].quantity.to_string(), "1.255");
    assert_eq!(receipt.tips_amount, Decimal::ZERO);
    assert_eq!(receipt.payment_method, "cash");
    assert_eq!(receipt.timestamp.to_rfc3339(), "2024-02-07T07:04:56.500+00:00");
    assert_eq!(receipt.extra["note"], json!("kept"));

    let zero = json!({
        "transaction_id": "z", "timestamp": "2024-02-07T12:34:56Z",
        "items": [{ "product_id": "gift", "quantity": 1, "price": 0, "category": "promo" }],
        "total_amount": 0, "vat_amount": 0, "payment_method": "voucher"
    });
    assert!(check(&zero).is_ok());
}

#[test]
fn numbers_are_exact_and_equal_content_hashes_equal() {
    let mut a = valid();
    a["items"][0]["price"] = json!("10.990");
    let b = valid();
    let a = check(&a).expect("valid").into_receipt("p".into());
    let b = check(&b).expect("valid").into_receipt("p".into());
    assert_eq!(a.content_hash(), b.content_hash());
    assert_eq!(a.items[0].price.to_string(), "10.99");
}
