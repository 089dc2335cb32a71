//! The route table: every `/api/` endpoint with its method, path, handler and access rule, registered from
//! one list so that the routes, their access checks and their documentation cannot drift apart.

use std::collections::BTreeMap;

use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest};

use crate::web::auth::{Access, AccessRule, Caller};
use crate::web::error::ApiError;

/// The arguments of an `/api/` handler: a [`Caller`] first, whose rule is the endpoint's access rule.
/// A handler without one does not compile into the route table.
pub trait GuardedArgs {
    const ACCESS: Access;
}

macro_rules! guarded_args {
    ($($rest:ident),*) => {
        impl<A: AccessRule, $($rest),*> GuardedArgs for (Caller<A>, $($rest,)*) {
            const ACCESS: Access = A::ACCESS;
        }
    };
}

guarded_args!();
guarded_args!(B);
guarded_args!(B, C);
guarded_args!(B, C, D);
guarded_args!(B, C, D, E);

/// One `/api/` endpoint: its method, path, handler (documented by paperclip) and the access rule the
/// handler's [`Caller`] enforces.
pub struct ApiRoute {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    route: paperclip::actix::web::Route,
}

impl ApiRoute {
    pub fn new<F, Args>(method: Method, path: &'static str, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: FromRequest + GuardedArgs + 'static,
        F::Output: actix_web::Responder + 'static,
        F::Future: paperclip::v2::schema::Apiv2Operation,
    {
        let route = paperclip::actix::web::method(method.clone()).to(handler);
        ApiRoute {
            method,
            path,
            access: Args::ACCESS,
            route,
        }
    }
}

/// Registers every route of the table under `/api`, each in the OpenAPI document. A path answers a
/// method it does not serve with 405 and an `Allow` header naming those it does.
pub fn api_scope(routes: Vec<ApiRoute>) -> paperclip::actix::web::Scope {
    let mut by_path: BTreeMap<&'static str, Vec<ApiRoute>> = BTreeMap::new();
    for route in routes {
        by_path.entry(route.path).or_default().push(route);
    }
    by_path
        .into_iter()
        .fold(paperclip::actix::web::scope("/api"), |scope, (path, routes)| {
            let allow = routes
                .iter()
                .map(|route| route.method.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let resource = routes
                .into_iter()
                .fold(paperclip::actix::web::resource(path), |resource, route| {
                    resource.route(route.route)
                })
                .default_service(actix_web::web::to(move |req: HttpRequest| {
                    let error = ApiError::MethodNotAllowed {
                        method: req.method().to_string(),
                        allow: allow.clone(),
                    };
                    async move { Err::<actix_web::HttpResponse, _>(error) }
                }));
            scope.service(resource)
        })
}
