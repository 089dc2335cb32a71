//! `GET /api/checks/{transaction_id}/` and `GET /api/checks/`: a receipt's status and the receipt log.

use actix_web::{web, HttpRequest};
use chrono::{DateTime, Utc};
use paperclip::actix::{api_v2_operation, Apiv2Schema};
use paperclip::v2::models::DefaultParameterRaw;
use serde::{Deserialize, Serialize};
use shared_models::store::accepted;
use shared_models::store::receipt_log::{self, AttemptOutcome, LogEntry, LogFilter};
use shared_models::web::auth::{Caller, Submitters};
use shared_models::web::extract::{document_period, query_instant, ApiQuery, QueryParameters, ResourceId};
use shared_models::web::paging::PageRequest;
use shared_models::web::{with_db, ApiError};

use crate::startup::AppState;

/// A receipt's state and every attempt to submit it.
#[derive(Debug, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"transaction_id": "tx-20261124-0001", "status": "accepted", "merchant_id": "m-42", "place_id": "cafe-central", "received_at": "2026-11-24T12:35:01.204Z", "published_at": "2026-11-24T12:35:01.391Z", "attempts": [{"id": 17, "merchant_id": "m-42", "transaction_id": "tx-20261124-0001", "status": "accepted", "reasons": null, "received_at": "2026-11-24T12:35:01.204Z"}]}"#
)]
pub struct ReceiptStatus {
    pub transaction_id: String,
    /// `accepted` once any attempt was accepted; otherwise the latest attempt's outcome.
    pub status: String,
    pub merchant_id: Option<String>,
    pub place_id: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    /// When Kafka acknowledged it; null while it waits in the outbox.
    pub published_at: Option<DateTime<Utc>>,
    pub attempts: Vec<LogEntry>,
}

/// A receipt's status.
///
/// Whether the receipt was accepted, when it was handed to Kafka, and every attempt to submit it with the
/// reasons for any rejection.
#[api_v2_operation(operation_id = "receipt_status", tags("Receipts"))]
pub async fn status(
    caller: Caller<Submitters>,
    transaction_id: ResourceId,
    state: web::Data<AppState>,
) -> Result<web::Json<ReceiptStatus>, ApiError> {
    let scope = caller.principal().merchant_scope().map(str::to_owned);
    let transaction_id = transaction_id.0;
    let lookup_id = transaction_id.clone();
    let (accepted, attempts) = with_db(&state.pool, move |conn| {
        Ok((
            accepted::find(conn, scope.as_deref(), &lookup_id)?,
            receipt_log::attempts(conn, scope.as_deref(), &lookup_id)?,
        ))
    })
    .await?;
    if accepted.is_none() && attempts.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no receipt with transaction_id {transaction_id}"
        )));
    }
    let status = match &accepted {
        Some(_) => "accepted".to_owned(),
        None => attempts
            .last()
            .map(|entry| entry.outcome.clone())
            .unwrap_or_default(),
    };
    Ok(web::Json(ReceiptStatus {
        transaction_id,
        status,
        merchant_id: accepted.as_ref().map(|a| a.merchant_id.clone()),
        place_id: accepted.as_ref().map(|a| a.place_id.clone()),
        received_at: accepted.as_ref().map(|a| a.received_at),
        published_at: accepted.as_ref().and_then(|a| a.published_at),
        attempts,
    }))
}

/// Filters and paging of the receipt log.
#[derive(Debug, Deserialize, Apiv2Schema)]
pub struct LogQuery {
    /// `accepted`, `duplicate`, `conflict` or `rejected`.
    status: Option<String>,
    /// Attempts received at or after this instant (RFC 3339, or a date for midnight UTC).
    from: Option<String>,
    /// Attempts received before this instant (RFC 3339, or a date for midnight UTC).
    to: Option<String>,
    /// Page number, from 1.
    page: Option<i64>,
    /// Entries per page, 1-500 (default 50).
    page_size: Option<i64>,
}

impl QueryParameters for LogQuery {
    fn document(parameter: &mut DefaultParameterRaw) {
        PageRequest::document(parameter);
        document_period(parameter);
        if parameter.name == "status" {
            parameter.enum_ = AttemptOutcome::ALL
                .iter()
                .map(|outcome| outcome.as_str().into())
                .collect();
        }
    }
}

/// A page of the receipt log, newest first.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ReceiptLogPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<LogEntry>,
}

/// The receipt log.
///
/// Every submission attempt, accepted or not, newest first, with filters and DRF-style pages.
#[api_v2_operation(operation_id = "receipt_log", tags("Receipts"))]
pub async fn list(
    caller: Caller<Submitters>,
    req: HttpRequest,
    query: ApiQuery<LogQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<ReceiptLogPage>, ApiError> {
    let query = query.0;
    let page = PageRequest::new(query.page, query.page_size)?;
    let status = query
        .status
        .as_deref()
        .map(|text| {
            AttemptOutcome::parse(text).ok_or_else(|| {
                let names: Vec<&str> = AttemptOutcome::ALL
                    .iter()
                    .map(|outcome| outcome.as_str())
                    .collect();
                ApiError::BadRequest(format!("status must be one of {}", names.join(", ")))
            })
        })
        .transpose()?;
    let filter = LogFilter {
        merchant_scope: caller.principal().merchant_scope().map(str::to_owned),
        status,
        from: query_instant("from", query.from.as_deref())?,
        to: query_instant("to", query.to.as_deref())?,
    };
    let (count, rows) = with_db(&state.pool, move |conn| {
        Ok(receipt_log::list(conn, &filter, page.offset(), page.page_size)?)
    })
    .await?;
    let (next, previous) = page.links(&req, count);
    Ok(web::Json(ReceiptLogPage {
        count,
        next,
        previous,
        results: rows,
    }))
}
