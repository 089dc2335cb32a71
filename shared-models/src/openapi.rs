//! What the OpenAPI documents are generated from. paperclip reads each handler's signature; the
//! extractors and replies here describe themselves to it: the request body and its rejections, query
//! and path parameters with the errors they can cause, and the contract's error body. The handlers use
//! the same types to do the work, so the documents say what the services do.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::{AppService, HttpServiceFactory, Payload, ServiceFactory, ServiceRequest};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use futures::StreamExt;
use paperclip::actix::{Mountable, OpenApiExt, OperationModifier};
use paperclip::v2::models::{
    DefaultApiRaw, DefaultOperationRaw, DefaultSchemaRaw, Either, HttpMethod, Info, MediaRange, Parameter,
    ParameterIn, Response, SecurityScheme,
};
use paperclip::v2::schema::Apiv2Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::http::{api_scope, error_response, ApiRoute, ErrorBody};

/// Where each service serves its OpenAPI document and Swagger UI.
pub const DOCUMENT_PATH: &str = "/openapi.json";
pub const SWAGGER_UI_PATH: &str = "/docs";

/// Mounts the `/api` routes with their OpenAPI 3 document at [`DOCUMENT_PATH`] and Swagger UI at
/// [`SWAGGER_UI_PATH`].
pub fn with_documents<T>(
    app: actix_web::App<T>,
    title: &str,
    description: &str,
    routes: Vec<ApiRoute>,
) -> actix_web::App<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.wrap_api_with_spec(frame(title, description))
        .service(api_scope(routes))
        .with_raw_json_spec_v3(|app, mut document| {
            mark_nullable(&mut document);
            app.service(Document(Arc::new(document.to_string())))
        })
        // Sets the path Swagger UI loads; its own handler there is shadowed by `Document`, registered first.
        .with_json_spec_v3_at(DOCUMENT_PATH)
        .with_swagger_ui_at(SWAGGER_UI_PATH)
        .build()
}

/// The frame of a service's document; paperclip fills in the paths and schemas from the handlers.
fn frame(title: &str, description: &str) -> DefaultApiRaw {
    DefaultApiRaw {
        info: Info {
            title: title.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: Some(description.to_owned()),
            ..Info::default()
        },
        ..DefaultApiRaw::default()
    }
}

/// The finished document, served at [`DOCUMENT_PATH`].
struct Document(Arc<String>);

impl Mountable for Document {
    fn path(&self) -> &str {
        DOCUMENT_PATH
    }

    fn operations(&mut self) -> BTreeMap<HttpMethod, DefaultOperationRaw> {
        BTreeMap::new()
    }

    fn definitions(&mut self) -> BTreeMap<String, DefaultSchemaRaw> {
        BTreeMap::new()
    }

    fn security_definitions(&mut self) -> BTreeMap<String, SecurityScheme> {
        BTreeMap::new()
    }
}

impl HttpServiceFactory for Document {
    fn register(self, config: &mut AppService) {
        let body = self.0;
        web::resource(DOCUMENT_PATH)
            .route(web::get().to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type(actix_web::mime::APPLICATION_JSON)
                        .body(body.as_str().to_owned())
                }
            }))
            .register(config);
    }
}

/// paperclip's OpenAPI 3 conversion cannot say `nullable`, but the services write an absent optional value
/// as JSON null (DRF's `next` and `previous`, a place without a name, a receipt not yet published). So every
/// optional property of a response schema is marked nullable. Request schemas are left as they are: there an
/// optional field is one to leave out.
fn mark_nullable(document: &mut Value) {
    let request_schemas: Vec<String> = document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(Value::as_object)
        .flat_map(|operations| operations.values())
        .filter_map(|operation| {
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
        })
        .filter_map(|reference| reference.rsplit('/').next())
        .map(str::to_owned)
        .collect();
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        for (name, schema) in schemas.iter_mut() {
            if !request_schemas.contains(name) {
                mark_optional_nullable(schema);
            }
        }
    }
}

fn mark_optional_nullable(schema: &mut Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            if !required.contains(name) {
                if let Some(property) = property.as_object_mut() {
                    property.insert("nullable".into(), Value::Bool(true));
                }
            }
            mark_optional_nullable(property);
        }
    }
    for nested in ["items", "additionalProperties"] {
        if let Some(inner) = schema.get_mut(nested).filter(|inner| inner.is_object()) {
            mark_optional_nullable(inner);
        }
    }
}

/// A schema as a `$ref` to its definition.
fn reference<T: Apiv2Schema>() -> DefaultSchemaRaw {
    let mut schema = T::schema_with_ref();
    schema.retain_ref();
    schema
}

/// Adds `T`'s definition to the document's definitions.
pub fn define<T: Apiv2Schema>(definitions: &mut BTreeMap<String, DefaultSchemaRaw>) {
    <web::Json<T> as OperationModifier>::update_definitions(definitions);
}

/// Documents a response; a status documented twice keeps both descriptions.
pub fn document_response(
    op: &mut DefaultOperationRaw,
    status: u16,
    description: &str,
    schema: Option<DefaultSchemaRaw>,
) {
    match op.responses.get_mut(&status.to_string()) {
        Some(Either::Right(existing)) => {
            let text = existing.description.get_or_insert_with(String::new);
            if !text.contains(description) {
                text.push_str("; or ");
                text.push_str(description);
            }
        }
        _ => {
            op.responses.insert(
                status.to_string(),
                Either::Right(Response {
                    description: Some(description.to_owned()),
                    schema,
                    ..Response::default()
                }),
            );
        }
    }
}

/// Documents error responses, each with the contract's error body.
pub fn document_errors(op: &mut DefaultOperationRaw, errors: &[(u16, &str)]) {
    for (status, description) in errors {
        document_response(op, *status, description, Some(reference::<ErrorBody>()));
    }
}

/// Errors any endpoint can answer with, whatever it does.
pub const SERVER_ERRORS: &[(u16, &str)] = &[
    (
        503,
        "`unavailable`: a dependency (PostgreSQL, Redis) cannot take the request; nothing was changed, retry later",
    ),
    (500, "`internal`: an unexpected error; the request id in `X-Request-Id` finds it in the log"),
];

/// A JSON request body. Its type documents its schema and how the service rejects a bad one.
pub trait RequestBody: Apiv2Schema {
    /// Whether the body may be left out.
    const REQUIRED: bool = true;
    /// Answers beyond `400 malformed_json` for a body that is not the JSON this endpoint reads.
    const REJECTIONS: &'static [(u16, &'static str)];
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body could not be read: {0}")]
    Unreadable(String),
    #[error("the body is not valid: {0}")]
    Malformed(String),
}

/// The raw body of an endpoint that reads JSON of type `T`. Handlers read it themselves (with their size
/// limit and exact-decimal parsing); the type tells the document what the body is.
pub struct JsonBody<T> {
    payload: web::Payload,
    body: PhantomData<T>,
}

impl<T> JsonBody<T> {
    /// The body's bytes, refusing more than `limit`.
    pub async fn read(mut self, limit: usize) -> Result<web::BytesMut, BodyError> {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = self.payload.next().await {
            let chunk = chunk.map_err(|error| BodyError::Unreadable(error.to_string()))?;
            if body.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl<T: RequestBody + DeserializeOwned> JsonBody<T> {
    /// Reads the body (at most `limit` bytes) into `T`. An optional body left empty reads as `{}`.
    pub async fn parse(self, limit: usize) -> Result<T, BodyError> {
        let body = self.read(limit).await?;
        let text: &[u8] = if !T::REQUIRED && body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        serde_json::from_slice(text).map_err(|error| BodyError::Malformed(error.to_string()))
    }
}

impl<T> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let payload = web::Payload::from_request(req, payload);
        Box::pin(async move {
            Ok(JsonBody {
                payload: payload.await?,
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

fn json_media() -> MediaRange {
    MediaRange(actix_web::mime::APPLICATION_JSON)
}

/// A query parameter that cannot be read: 400 with the contract's body (actix's own answer is plain text).
#[derive(Debug, thiserror::Error)]
#[error("a query parameter is not valid: {0}")]
pub struct BadQuery(String);

impl ResponseError for BadQuery {
    fn status_code(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn error_response(&self) -> HttpResponse {
        error_response(
            StatusCode::BAD_REQUEST,
            ErrorBody::new("bad_request", &self.to_string()),
        )
    }
}

/// Query parameters read into `T`; each field is documented as a parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = BadQuery;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            web::Query::<T>::from_query(req.query_string())
                .map(|query| ApiQuery(query.into_inner()))
                .map_err(|error| BadQuery(error.to_string())),
        )
    }
}

impl<T: Apiv2Schema> Apiv2Schema for ApiQuery<T> {}

impl<T: Apiv2Schema> OperationModifier for ApiQuery<T> {
    fn update_parameter(op: &mut DefaultOperationRaw) {
        <web::Query<T> as OperationModifier>::update_parameter(op);
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

/// One path parameter naming a resource; the endpoint answers 404 when there is none the caller may see.
#[derive(Debug)]
pub struct ResourceId(pub String);

impl FromRequest for ResourceId {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let id = web::Path::<String>::from_request(req, payload)
            .into_inner()
            .map(|path| ResourceId(path.into_inner()));
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
