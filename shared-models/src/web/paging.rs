//! Django REST framework's page-number pagination: `page` from 1, `page_size` 1-500 (default 50), and
//! `next`/`previous` links built from the request's own URL.

use actix_web::HttpRequest;
use paperclip::v2::models::DefaultParameterRaw;

use crate::web::error::ApiError;

/// One page of a listing.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: i64,
    pub page_size: i64,
}

impl PageRequest {
    pub const DEFAULT_SIZE: i64 = 50;
    pub const MAX_SIZE: i64 = 500;
    /// The highest page number accepted: far beyond any listing, and low enough that the offset it makes
    /// fits PostgreSQL's `bigint`.
    pub const MAX_PAGE: i64 = 1_000_000_000;

    pub fn new(page: Option<i64>, page_size: Option<i64>) -> Result<Self, ApiError> {
        let page = page.unwrap_or(1);
        let page_size = page_size.unwrap_or(Self::DEFAULT_SIZE);
        if !(1..=Self::MAX_PAGE).contains(&page) {
            return Err(ApiError::BadRequest(format!(
                "page must be between 1 and {}",
                Self::MAX_PAGE
            )));
        }
        if !(1..=Self::MAX_SIZE).contains(&page_size) {
            return Err(ApiError::BadRequest(format!(
                "page_size must be between 1 and {}",
                Self::MAX_SIZE
            )));
        }
        Ok(PageRequest { page, page_size })
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.page_size
    }

    /// `next` and `previous` links for a DRF-style page, built from the request's own URL.
    pub fn links(&self, req: &HttpRequest, count: i64) -> (Option<String>, Option<String>) {
        let link = |page: i64| {
            let info = req.connection_info();
            let mut pairs: Vec<(String, String)> =
                serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(key, _)| key != "page")
                    .collect();
            pairs.push(("page".into(), page.to_string()));
            let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            format!("{}://{}{}?{}", info.scheme(), info.host(), req.path(), query)
        };
        let next = (self.offset() + self.page_size < count).then(|| link(self.page + 1));
        let previous = (self.page > 1).then(|| link(self.page - 1));
        (next, previous)
    }

    /// Documents the limits of `page` and `page_size` on their query parameters.
    pub fn document(parameter: &mut DefaultParameterRaw) {
        match parameter.name.as_str() {
            "page" => {
                parameter.minimum = Some(1.0);
                parameter.maximum = Some(Self::MAX_PAGE as f32);
            }
            "page_size" => {
                parameter.minimum = Some(1.0);
                parameter.maximum = Some(Self::MAX_SIZE as f32);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_requests_follow_drf_bounds() {
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(None, Some(501)).is_err());
        assert!(PageRequest::new(Some(i64::MAX), None).is_err());
        let page = PageRequest::new(Some(3), Some(10)).expect("page");
        assert_eq!(page.offset(), 20);
    }
}
