//! The web console at `/console/`: one page, its script and its style sheet, built into the binary. It works
//! offline (no CDN, no external fonts) and talks to the consumer's own API with the token the user signs in
//! with, which stays in the browser tab's sessionStorage.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// Only this origin's own files, and no framing.
const POLICY: &str =
    "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// Adds the console's routes.
pub fn configure(app: &mut web::ServiceConfig) {
    app.route(
        "/console",
        web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, "/console/"))
                .finish()
        }),
    )
    .route(
        "/console/",
        web::get().to(|| async { asset("text/html; charset=utf-8", PAGE) }),
    )
    .route(
        "/console/console.js",
        web::get().to(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
    )
    .route(
        "/console/console.css",
        web::get().to(|| async { asset("text/css; charset=utf-8", STYLE) }),
    );
}
