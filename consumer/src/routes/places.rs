//! `GET /api/places/`, `GET /api/places/{place_id}/` and `GET /api/places/{place_id}/analytics/`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared_models::auth::Principal;
use shared_models::http::{Authenticated, PageRequest};
use shared_models::schema::places;

use crate::analytics::{self, Scope};
use crate::error::ApiError;
use crate::routes::{parse_period, with_db, READERS};
use crate::startup::AppState;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = places)]
pub struct Place {
    pub place_id: String,
    pub place_name: Option<String>,
    pub merchant_id: String,
    pub total_purchases: i64,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    search: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
}

/// The place, if the caller may see it; 404 otherwise (a merchant cannot learn that others' places exist).
pub fn visible_place(
    conn: &mut PgConnection,
    principal: &Principal,
    place_id: &str,
) -> Result<Place, ApiError> {
    let mut query = places::table
        .filter(places::place_id.eq(place_id))
        .select(Place::as_select())
        .into_boxed();
    if let Some(merchant) = principal.merchant_scope() {
        query = query.filter(places::merchant_id.eq(merchant.to_owned()));
    }
    query
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound(format!("no place {place_id}")))
}

pub async fn list(
    auth: Authenticated,
    req: HttpRequest,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(READERS)?;
    let page = PageRequest::new(query.page, query.page_size).map_err(ApiError::BadRequest)?;
    let merchant = principal.merchant_scope().map(str::to_owned);
    let search = query.search.clone().filter(|text| !text.trim().is_empty());
    let (count, rows) = with_db(&state, move |conn| {
        let filtered = || {
            let mut query = places::table.into_boxed();
            if let Some(merchant) = &merchant {
                query = query.filter(places::merchant_id.eq(merchant.clone()));
            }
            if let Some(search) = &search {
                let pattern = format!(
                    "%{}%",
                    search
                        .trim()
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                query = query.filter(
                    places::place_id
                        .ilike(pattern.clone())
                        .or(places::place_name.ilike(pattern)),
                );
            }
            query
        };
        let count: i64 = filtered().count().get_result(conn)?;
        let rows = filtered()
            .order(places::place_id.asc())
            .offset(page.offset())
            .limit(page.page_size)
            .select(Place::as_select())
            .load(conn)?;
        Ok((count, rows))
    })
    .await?;
    let (next, previous) = page.links(&req, count);
    Ok(HttpResponse::Ok()
        .json(json!({ "count": count, "next": next, "previous": previous, "results": rows })))
}

pub async fn detail(
    auth: Authenticated,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(READERS)?.clone();
    let place = with_db(&state, move |conn| visible_place(conn, &principal, &path)).await?;
    Ok(HttpResponse::Ok().json(place))
}

#[derive(Debug, Deserialize)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
    category: Option<String>,
}

pub async fn analytics(
    auth: Authenticated,
    path: web::Path<String>,
    query: web::Query<PeriodQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(READERS)?.clone();
    let period = parse_period(query.from.as_deref(), query.to.as_deref())?;
    let category = query
        .category
        .as_deref()
        .map(shared_models::receipt::normalise_category);
    let body = with_db(&state, move |conn| {
        let place = visible_place(conn, &principal, &path)?;
        let scope = Scope {
            place_id: Some(place.place_id.clone()),
            category,
            ..Scope::default()
        };
        let figures = analytics::figures(conn, &scope, &period, false)?
            .remove("*")
            .unwrap_or_default();
        let computed_at = analytics::computed_at(conn, &scope)?.unwrap_or_else(Utc::now);
        let mut body = serde_json::to_value(figures.to_body()).unwrap_or_default();
        if let Some(object) = body.as_object_mut() {
            object.insert("place_id".into(), json!(place.place_id));
            object.insert("place_name".into(), json!(place.place_name));
            object.insert("period".into(), json!(period));
            object.insert("computed_at".into(), json!(computed_at));
        }
        Ok(body)
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}
