//! The extractors of `/api/` handlers. Each one does the work (reading a body, a query string or a path) and
//! describes itself to paperclip, so the OpenAPI documents say what the services do.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use paperclip::actix::OperationModifier;
use paperclip::v2::models::{
    DataType, DefaultOperationRaw, DefaultParameterRaw, DefaultSchemaRaw, Either, MediaRange, Parameter,
    ParameterIn,
};
use paperclip::v2::schema::Apiv2Schema;
use serde::de::DeserializeOwned;

use crate::config::HttpConfig;
use crate::domain::text::{escape_nul, NUL};
use crate::domain::time::parse_period_bound;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::openapi::{define, document_errors, reference};

/// A JSON request body. Its type documents its schema and how the service rejects a bad one.
pub trait RequestBody: Apiv2Schema {
    /// Whether the body may be left out.
    const REQUIRED: bool = true;
    /// Answers beyond `400 malformed_json` for a body that is not the JSON this endpoint reads.
    const REJECTIONS: &'static [(u16, &'static str)];
}

/// The raw body of an endpoint that reads JSON of type `T`. Handlers read it themselves (with their size
/// limit and exact-decimal parsing); the type tells the document what the body is.
pub struct JsonBody<T> {
    payload: web::Payload,
    /// How long the client has to send the whole body.
    timeout: Duration,
    body: PhantomData<T>,
}

impl<T> JsonBody<T> {
    /// The body's bytes, refusing more than `limit` and a body that takes longer than the request timeout.
    pub async fn read(mut self, limit: usize) -> Result<web::BytesMut, ApiError> {
        let timeout = self.timeout;
        let read = async move {
            let mut body = web::BytesMut::new();
            while let Some(chunk) = self.payload.next().await {
                let chunk = chunk.map_err(|error| {
                    ApiError::MalformedJson(format!("the body could not be read: {error}"))
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| ApiError::Timeout(timeout.as_secs()))?
    }
}

impl<T: RequestBody + DeserializeOwned> JsonBody<T> {
    /// Reads the body (at most `limit` bytes) into `T`. An optional body left empty reads as `{}`.
    pub async fn parse(self, limit: usize) -> Result<T, ApiError> {
        let body = self.read(limit).await?;
        let text: &[u8] = if !T::REQUIRED && body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        serde_json::from_slice(text)
            .map_err(|error| ApiError::MalformedJson(format!("the body is not valid: {error}")))
    }
}

impl<T> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let timeout = req.app_data::<web::Data<HttpConfig>>().map_or(
            Duration::from_secs(HttpConfig::DEFAULT_REQUEST_TIMEOUT_SECONDS),
            |config| Duration::from_secs(config.request_timeout_seconds),
        );
        let payload = web::Payload::from_request(req, payload);
        Box::pin(async move {
            Ok(JsonBody {
                payload: payload.await?,
                timeout,
                body: PhantomData,
            })
        })
    }
}

impl<T: RequestBody> Apiv2Schema for JsonBody<T> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::raw_schema()
    }
}

impl<T: RequestBody> OperationModifier for JsonBody<T> {
    fn update_parameter(op: &mut DefaultOperationRaw) {
        op.parameters.push(Either::Right(Parameter {
            name: "body".into(),
            in_: ParameterIn::Body,
            required: T::REQUIRED,
            description: Some(T::description().to_owned()).filter(|text| !text.is_empty()),
            schema: Some(reference::<T>()),
            ..Parameter::default()
        }));
        op.consumes = Some(std::iter::once(json_media()).collect());
        document_errors(
            op,
            &[(
                400,
                "`malformed_json`: the body is not JSON of the documented shape",
            )],
        );
        document_errors(op, T::REJECTIONS);
    }

    fn update_definitions(definitions: &mut BTreeMap<String, DefaultSchemaRaw>) {
        define::<T>(definitions);
        define::<ErrorBody>(definitions);
    }
}

pub(crate) fn json_media() -> MediaRange {
    MediaRange(actix_web::mime::APPLICATION_JSON)
}

/// Query parameters that say more about themselves than their Rust types do: limits, choices, formats.
pub trait QueryParameters {
    /// Adds what the document should say of one parameter (by default, the paging limits).
    fn document(parameter: &mut DefaultParameterRaw) {
        crate::web::paging::PageRequest::document(parameter);
    }
}

/// Query parameters read into `T`, as Django REST framework reads them: a parameter with an empty value
/// (`from=`) is absent. Each field is documented as a parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> ApiQuery<T> {
    /// Reads a query string into `T`. Text holding U+0000 is refused: no parameter means it, and PostgreSQL
    /// could not store it.
    pub fn parse(query: &str) -> Result<T, ApiError> {
        let bad = |error: &dyn std::fmt::Display| {
            ApiError::BadRequest(format!("a query parameter is not valid: {error}"))
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|error| bad(&error))?;
        if let Some((name, _)) = pairs
            .iter()
            .find(|(name, value)| name.contains(NUL) || value.contains(NUL))
        {
            return Err(ApiError::BadRequest(format!(
                "the query parameter {} holds the character U+0000",
                escape_nul(name)
            )));
        }
        let present: Vec<(String, String)> =
            pairs.into_iter().filter(|(_, value)| !value.is_empty()).collect();
        let canonical = serde_urlencoded::to_string(&present).map_err(|error| bad(&error))?;
        serde_urlencoded::from_str(&canonical).map_err(|error| bad(&error))
    }
}

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::parse(req.query_string()).map(ApiQuery))
    }
}

impl<T: Apiv2Schema> Apiv2Schema for ApiQuery<T> {}

impl<T: Apiv2Schema + QueryParameters> OperationModifier for ApiQuery<T> {
    fn update_parameter(op: &mut DefaultOperationRaw) {
        let before = op.parameters.len();
        <web::Query<T> as OperationModifier>::update_parameter(op);
        for parameter in op.parameters.iter_mut().skip(before) {
            if let Either::Right(parameter) = parameter {
                T::document(parameter);
                if parameter.data_type == Some(DataType::String) && parameter.pattern.is_none() {
                    parameter.pattern = Some(NO_NUL_PATTERN.to_owned());
                }
            }
        }
        document_errors(
            op,
            &[(
                400,
                "`bad_request`: a query parameter is not valid (the message names it)",
            )],
        );
    }

    fn update_definitions(definitions: &mut BTreeMap<String, DefaultSchemaRaw>) {
        define::<ErrorBody>(definitions);
    }
}

/// Text without U+0000, which no query parameter may hold.
const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

/// An optional period bound from a query parameter (`from`, `to`): a timestamp or a date (midnight UTC).
pub fn query_instant(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|text| {
        parse_period_bound(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{field} must be an ISO 8601 / RFC 3339 timestamp, or a date (YYYY-MM-DD, midnight UTC), in the years 0001 to 9999"
            ))
        })
    })
    .transpose()
}

/// Documents `from` and `to` as what [`query_instant`] reads (empty: absent).
pub fn document_period(parameter: &mut DefaultParameterRaw) {
    if matches!(parameter.name.as_str(), "from" | "to") {
        parameter.pattern = Some(PERIOD_BOUND_PATTERN.to_owned());
    }
}

/// Documents `format` as its choices (`json`, `csv`).
pub fn document_format(parameter: &mut DefaultParameterRaw) {
    if parameter.name == "format" {
        parameter.enum_ = crate::web::tabular::Format::ALL
            .iter()
            .map(|name| (*name).into())
            .collect();
    }
}

/// A calendar date (month lengths and leap years included), as a JSON Schema pattern without anchors.
macro_rules! date_pattern {
    () => {
        concat!(
            r"(?:(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)",
            r"|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)",
            r"-02-29)"
        )
    };
}

/// A time of day with an optional fraction and offset, after a `T`.
macro_rules! time_pattern {
    () => {
        r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
    };
}

/// A timestamp as receipts carry it: a date and a time, UTC when it has no offset.
pub const TIMESTAMP_PATTERN: &str = concat!("^", date_pattern!(), time_pattern!(), "$");

/// A period bound: empty (absent), a date (midnight UTC) or a timestamp.
const PERIOD_BOUND_PATTERN: &str = concat!("^(?:", date_pattern!(), "(?:", time_pattern!(), ")?)?$");

/// One path parameter naming a resource; the endpoint answers 404 when there is none the caller may see.
#[derive(Debug)]
pub struct ResourceId(pub String);

impl FromRequest for ResourceId {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let id = web::Path::<String>::from_request(req, payload)
            .into_inner()
            .map_err(|error| ApiError::NotFound(error.to_string()))
            .and_then(|path| {
                let id = path.into_inner();
                if id.contains(NUL) {
                    Err(ApiError::NotFound(format!("there is no {}", escape_nul(&id))))
                } else {
                    Ok(ResourceId(id))
                }
            });
        std::future::ready(id)
    }
}

impl Apiv2Schema for ResourceId {}

impl OperationModifier for ResourceId {
    fn update_parameter(op: &mut DefaultOperationRaw) {
        <web::Path<String> as OperationModifier>::update_parameter(op);
        document_errors(
            op,
            &[(404, "`not_found`: there is none, or none this token may see")],
        );
    }

    fn update_definitions(definitions: &mut BTreeMap<String, DefaultSchemaRaw>) {
        define::<ErrorBody>(definitions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Filters {
        from: Option<String>,
        page: Option<i64>,
    }

    #[test]
    fn empty_query_values_are_absent_and_nul_is_refused() {
        assert_eq!(
            ApiQuery::<Filters>::parse("from=&page=2").expect("parsed"),
            Filters {
                from: None,
                page: Some(2)
            }
        );
        assert!(matches!(
            ApiQuery::<Filters>::parse("from=a%00b"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            ApiQuery::<Filters>::parse("page=abc"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn the_documented_period_pattern_takes_what_the_parser_takes() {
        let pattern = regex::Regex::new(PERIOD_BOUND_PATTERN).expect("pattern");
        for text in [
            "2024-01-01",
            "2024-01-01T10:00:00Z",
            "2024-01-01T10:00:00.5+05:30",
            "0001-01-01",
            "2000-02-29",
            "9999-12-31T23:59:59Z",
        ] {
            assert!(pattern.is_match(text), "{text}");
            assert!(parse_period_bound(text).is_some(), "{text}");
        }
        for text in ["yesterday", "0000-01-01", "0000-02-29", "1900-02-29"] {
            assert!(!pattern.is_match(text), "{text}");
            assert!(parse_period_bound(text).is_none(), "{text}");
        }
    }
}
