//! The connections a service holds. Each one is counted from when it is accepted until it closes, and the
//! server accepts no more than `HTTP_MAX_CONNECTIONS`: past that a new connection waits in the operating
//! system's queue. Clients that keep their connections open would then hold every place while the ones
//! waiting never get in, so once three quarters of the places are taken each answer closes its connection:
//! connections turn over, and every client gets its turn.

use std::any::Any;

use actix_web::body::MessageBody;
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use prometheus::IntGauge;

/// The connections open now (`http_open_connections`), and from how many on each answer closes its own.
#[derive(Clone)]
pub struct OpenConnections {
    open: IntGauge,
    turn_over_from: i64,
}

/// Held by a connection until it closes.
struct Counted(IntGauge);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl OpenConnections {
    pub fn new(open: IntGauge, max_connections: usize) -> OpenConnections {
        OpenConnections {
            open,
            turn_over_from: i64::try_from(max_connections.saturating_mul(3) / 4).unwrap_or(i64::MAX),
        }
    }

    /// For `HttpServer::on_connect`: counts the connection while it is open.
    pub fn on_connect(&self) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
        let open = self.open.clone();
        move |_, extensions| {
            open.inc();
            extensions.insert(Counted(open.clone()));
        }
    }

    fn crowded(&self) -> bool {
        self.open.get() >= self.turn_over_from
    }
}

/// Middleware: once the service holds three quarters of the connections it may, the answer closes its
/// connection (`Connection: close`), so a client waiting to connect gets a place.
pub async fn turn_connections_over(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let connections = req.app_data::<OpenConnections>().cloned();
    let mut response = next.call(req).await?;
    if connections.is_some_and(|connections| connections.crowded()) {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}
