//! `GET /api/analytics/timeseries/`: purchases, revenue, VAT and tips per hour or per day.

use actix_web::{web, HttpRequest};
use chrono::Utc;
use paperclip::actix::{api_v2_operation, Apiv2Schema};
use paperclip::v2::models::DefaultParameterRaw;
use serde::{Deserialize, Serialize};
use shared_models::web::auth::{Caller, Readers};
use shared_models::web::extract::{document_format, document_period, ApiQuery, QueryParameters};
use shared_models::web::tabular::{Format, Table, Tabular};
use shared_models::web::{with_snapshot, ApiError};

use crate::analytics::Period;
use crate::routes::parse_period;
use crate::startup::AppState;
use crate::timeseries::{self, Bucket, BucketFigures};

/// Most buckets one series may have (about 41 days of hours, or 2.7 years of days).
pub const MAX_BUCKETS: i64 = 1000;

/// The period, bucket and place of a series.
#[derive(Debug, Deserialize, Apiv2Schema)]
pub struct SeriesQuery {
    /// `hour` or `day` (the default). Buckets are UTC hours or days.
    bucket: Option<Bucket>,
    /// Start of the period, inclusive (RFC 3339, or a date for midnight UTC). Absent: 48 hours (hour
    /// buckets) or 30 days (day buckets) before `to`.
    from: Option<String>,
    /// End of the period, exclusive. Absent: now.
    to: Option<String>,
    /// Only this place. Like the overview's filter, a place outside the caller's scope gives zeros.
    place_id: Option<String>,
    /// `json` (the default) or `csv`.
    format: Option<Format>,
}

impl QueryParameters for SeriesQuery {
    fn document(parameter: &mut DefaultParameterRaw) {
        document_period(parameter);
        document_format(parameter);
        if parameter.name == "bucket" {
            parameter.enum_ = Bucket::ALL.iter().map(|name| (*name).into()).collect();
        }
    }
}

/// A series: one entry per bucket of the period, empty buckets as zeros.
#[derive(Debug, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"period": {"from": "2026-11-24T00:00:00Z", "to": "2026-11-24T03:00:00Z"}, "bucket": "hour", "results": [{"start": "2026-11-24T00:00:00Z", "total_purchases": 3, "total_amount": 42.10, "total_vat": 3.83, "total_tips": 1.00, "average_receipt": 14.03}, {"start": "2026-11-24T01:00:00Z", "total_purchases": 0, "total_amount": 0.00, "total_vat": 0.00, "total_tips": 0.00, "average_receipt": 0.00}, {"start": "2026-11-24T02:00:00Z", "total_purchases": 1, "total_amount": 9.50, "total_vat": 0.86, "total_tips": 0.00, "average_receipt": 9.50}]}"#
)]
pub struct Series {
    pub period: Period,
    pub bucket: Bucket,
    pub results: Vec<BucketFigures>,
}

impl Table for Series {
    fn header() -> &'static [&'static str] {
        &[
            "start",
            "total_purchases",
            "total_amount",
            "total_vat",
            "total_tips",
            "average_receipt",
        ]
    }

    fn rows(&self) -> Vec<Vec<String>> {
        self.results
            .iter()
            .map(|bucket| {
                vec![
                    bucket.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    bucket.total_purchases.to_string(),
                    bucket.total_amount.amount().to_string(),
                    bucket.total_vat.amount().to_string(),
                    bucket.total_tips.amount().to_string(),
                    bucket.average_receipt.amount().to_string(),
                ]
            })
            .collect()
    }
}

/// Analytics over time.
///
/// Purchases, revenue, VAT, tips and the average receipt per hour or per day, for the caller's places (or
/// one of them), exact for any period: the first and last buckets count only the part inside it. At most
/// 1000 buckets (400 above). As CSV with `?format=csv` or `Accept: text/csv`.
#[api_v2_operation(operation_id = "analytics_timeseries", tags("Analytics"))]
pub async fn series(
    caller: Caller<Readers>,
    req: HttpRequest,
    query: ApiQuery<SeriesQuery>,
    state: web::Data<AppState>,
) -> Result<Tabular<Series>, ApiError> {
    let principal = caller.into_principal();
    let query = query.0;
    let format = Format::of(query.format, &req);
    let bucket = query.bucket.unwrap_or(Bucket::Day);
    let (from, to) = bucket.default_period(
        parse_period(query.from.as_deref(), query.to.as_deref())?,
        Utc::now(),
    );
    let buckets = bucket.count(from, to);
    if buckets > MAX_BUCKETS {
        return Err(ApiError::BadRequest(format!(
            "the period holds {buckets} {} buckets; at most {MAX_BUCKETS} fit in one series",
            bucket.as_str()
        )));
    }
    let results = with_snapshot(&state.pool, move |conn| {
        Ok(timeseries::series(
            conn,
            principal.merchant_scope(),
            query.place_id.as_deref(),
            bucket,
            from,
            to,
        )?)
    })
    .await?;
    Ok(Tabular {
        format,
        body: Series {
            period: Period {
                from: Some(from),
                to: Some(to),
            },
            bucket,
            results,
        },
    })
}
