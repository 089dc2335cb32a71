//! The OpenAPI documents: paperclip generates them from the handlers' signatures (the extractors and
//! replies describe themselves); this module mounts them with Swagger UI and adds what paperclip 0.9's
//! OpenAPI 3 conversion cannot say: `nullable`, and the limits of request bodies (lengths, patterns, item
//! counts), which each service states next to the rules that enforce them.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::dev::{AppService, HttpServiceFactory, ServiceFactory, ServiceRequest};
use actix_web::{web, HttpResponse};
use paperclip::actix::{Mountable, OpenApiExt, OperationModifier};
use paperclip::v2::models::{
    DefaultApiRaw, DefaultOperationRaw, DefaultSchemaRaw, Either, HttpMethod, Info, Response, SecurityScheme,
};
use paperclip::v2::schema::Apiv2Schema;
use serde_json::Value;

use crate::web::error::ErrorBody;
use crate::web::routes::{api_scope, ApiRoute};

/// Adds to a service's finished document what its handlers' types cannot say themselves.
pub type Refinement = fn(&mut Value);

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
    refinements: &'static [Refinement],
) -> actix_web::App<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.wrap_api_with_spec(frame(title, description))
        .service(api_scope(routes))
        .with_raw_json_spec_v3(|app, mut document| {
            mark_nullable(&mut document);
            allow_empty_query_values(&mut document);
            for refine in refinements {
                refine(&mut document);
            }
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

/// Every operation of a finished document.
pub fn operations_mut(document: &mut Value) -> impl Iterator<Item = &mut Value> {
    document["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|operations| operations.values_mut())
}

/// Query parameters are read as Django REST framework reads them: an empty value (`from=`) is the parameter
/// left out (`ApiQuery`). The document says so on every one of them.
fn allow_empty_query_values(document: &mut Value) {
    for operation in operations_mut(document) {
        let parameters = operation.get_mut("parameters").and_then(Value::as_array_mut);
        for parameter in parameters.into_iter().flatten() {
            if parameter["in"] == "query" {
                parameter["allowEmptyValue"] = Value::Bool(true);
            }
        }
    }
}

/// A schema as a `$ref` to its definition.
pub fn reference<T: Apiv2Schema>() -> DefaultSchemaRaw {
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

/// The properties of a schema in a finished document (nothing when there is no such schema).
fn schema_properties<'a>(
    document: &'a mut Value,
    schema: &str,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    document["components"]["schemas"][schema]["properties"].as_object_mut()
}

/// Adds JSON Schema keywords to one property of a schema in a finished document.
pub fn refine_property(document: &mut Value, schema: &str, property: &str, keywords: Value) {
    if let (Some(target), Value::Object(keywords)) = (
        schema_properties(document, schema)
            .and_then(|properties| properties.get_mut(property))
            .and_then(Value::as_object_mut),
        keywords,
    ) {
        target.extend(keywords);
    }
}
