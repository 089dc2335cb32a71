//! Replies of `/api/` handlers with a status other than 200, documented with every status they answer.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use paperclip::actix::OperationModifier;
use paperclip::v2::models::{DefaultOperationRaw, DefaultSchemaRaw};
use paperclip::v2::schema::Apiv2Schema;
use serde::Serialize;

use crate::web::extract::json_media;
use crate::web::openapi::{define, document_response, reference};

/// A reply with a status other than 200 and a JSON body of type `T`.
pub struct Reply<T> {
    status: StatusCode,
    body: T,
}

impl<T> Reply<T> {
    pub fn new(status: StatusCode, body: T) -> Self {
        Reply { status, body }
    }
}

impl<T: Serialize> actix_web::Responder for Reply<T> {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        HttpResponse::build(self.status).json(self.body)
    }
}

/// How a reply type documents its successful answers.
pub trait Replies: Apiv2Schema {
    /// Each status the endpoint answers with on success, and what it means.
    const STATUSES: &'static [(u16, &'static str)];
}

impl<T: Replies> Apiv2Schema for Reply<T> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::raw_schema()
    }
}

impl<T: Replies> OperationModifier for Reply<T> {
    fn update_response(op: &mut DefaultOperationRaw) {
        op.produces = Some(std::iter::once(json_media()).collect());
        for (status, description) in T::STATUSES {
            document_response(op, *status, description, Some(reference::<T>()));
        }
    }

    fn update_definitions(definitions: &mut BTreeMap<String, DefaultSchemaRaw>) {
        define::<T>(definitions);
    }
}
