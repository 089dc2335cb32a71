//! Answers a reader can take as JSON or as CSV (`?format=csv`, or `Accept: text/csv`): a header row, then one
//! row per record, money with two decimals.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use paperclip::actix::OperationModifier;
use paperclip::v2::models::{DefaultOperationRaw, DefaultSchemaRaw, MediaRange};
use paperclip::v2::schema::Apiv2Schema;

use serde::{Deserialize, Serialize};

use crate::web::openapi::{define, document_response, reference};

/// The `format` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, paperclip::actix::Apiv2Schema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    pub const ALL: [&'static str; 2] = ["json", "csv"];

    /// The format asked for: the parameter, else the `Accept` header, else JSON.
    pub fn of(parameter: Option<Format>, req: &HttpRequest) -> Format {
        parameter.unwrap_or_else(|| {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            if accept.contains("text/csv") && !accept.contains("application/json") {
                Format::Csv
            } else {
                Format::Json
            }
        })
    }
}

/// Something that can be written as CSV rows.
pub trait Table {
    /// The header row.
    fn header() -> &'static [&'static str];
    /// The records, each as many cells as the header.
    fn rows(&self) -> Vec<Vec<String>>;
}

/// One CSV cell, quoted when it must be.
fn cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The CSV text of a table.
pub fn to_csv<T: Table>(table: &T) -> String {
    let mut text = T::header().join(",");
    text.push_str("\r\n");
    for row in table.rows() {
        let cells: Vec<String> = row.iter().map(|value| cell(value)).collect();
        text.push_str(&cells.join(","));
        text.push_str("\r\n");
    }
    text
}

/// A reply as JSON or CSV, as the request asked.
pub struct Tabular<T> {
    pub format: Format,
    pub body: T,
}

impl<T: Serialize + Table> actix_web::Responder for Tabular<T> {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        match self.format {
            Format::Json => HttpResponse::Ok().json(self.body),
            Format::Csv => HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .body(to_csv(&self.body)),
        }
    }
}

impl<T: Apiv2Schema> Apiv2Schema for Tabular<T> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::raw_schema()
    }
}

impl<T: Apiv2Schema> OperationModifier for Tabular<T> {
    fn update_response(op: &mut DefaultOperationRaw) {
        op.produces = Some(
            [actix_web::mime::APPLICATION_JSON, actix_web::mime::TEXT_CSV]
                .into_iter()
                .map(MediaRange)
                .collect(),
        );
        document_response(
            op,
            200,
            "The figures as JSON, or as CSV (`?format=csv` or `Accept: text/csv`) with a header row",
            Some(reference::<T>()),
        );
    }

    fn update_definitions(definitions: &mut BTreeMap<String, DefaultSchemaRaw>) {
        define::<T>(definitions);
    }
}

/// In a finished document, a CSV answer is text, not the JSON schema paperclip gives every media type.
pub fn document_csv_as_text(document: &mut serde_json::Value) {
    for operation in crate::web::openapi::operations_mut(document) {
        let responses = operation
            .get_mut("responses")
            .and_then(serde_json::Value::as_object_mut);
        for response in responses.into_iter().flat_map(|responses| responses.values_mut()) {
            if let Some(csv) = response.pointer_mut("/content/text~1csv") {
                *csv = serde_json::json!({ "schema": { "type": "string" } });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Two;

    impl Table for Two {
        fn header() -> &'static [&'static str] {
            &["name", "amount"]
        }

        fn rows(&self) -> Vec<Vec<String>> {
            vec![
                vec!["Store, \"ABC\"".into(), "10.50".into()],
                vec!["plain".into(), "0.00".into()],
            ]
        }
    }

    #[test]
    fn csv_has_a_header_row_and_quotes_what_needs_it() {
        assert_eq!(
            to_csv(&Two),
            "name,amount\r\n\"Store, \"\"ABC\"\"\",10.50\r\nplain,0.00\r\n"
        );
    }
}
