//! The API's promises to its callers, across both services, each its own test so that one failure does not
//! hide another: who may call what (the access matrix, from the route tables), the documented answer to each
//! kind of bad input, hostile input, token revocation, and every answer drawn by the first two against the
//! services' OpenAPI documents.

use serde_json::Value;
use shared_models::testing::ReceiptBody;
use system_tests::services::Services;

mod documented;
mod hostile;
mod matrix;
mod openapi;
mod revocation;

/// Merchant m-1's receipt at its place store-1.
fn receipt(transaction_id: &str) -> Value {
    ReceiptBody::new(transaction_id).merchant("m-1").build()
}

/// The documented example of a schema, from the document of the service at `base`.
async fn documented_example(services: &Services, base: &str, schema: &str) -> Value {
    let document = services.document(base).await;
    let example = document["components"]["schemas"][schema]["example"].clone();
    assert!(example.is_object(), "{schema} has an example");
    example
}
