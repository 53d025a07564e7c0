//! The accept loop and per-connection tasks. Connections are driven with
//! hyper directly, rather than `axum::serve`, so that a handler can ask for
//! its connection to be reset: the task takes the socket back from hyper,
//! sets `SO_LINGER` to zero and drops it, which sends a TCP `RST`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tower_service::Service;

/// Put in every request's extensions: lets a handler reset its connection.
#[derive(Clone)]
pub(crate) struct ConnHandle(Arc<Notify>);

impl ConnHandle {
    pub(crate) fn reset(&self) {
        // notify_one keeps a permit if the connection task is not waiting yet.
        self.0.notify_one();
    }
}

/// Serves until the task running it is aborted. Connection tasks live in a
/// `JoinSet` owned by this future, so aborting it ends them all too.
pub(crate) async fn serve(listener: TcpListener, router: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, router.clone()));
                }
                // Out of file descriptors and the like: back off instead of
                // spinning, and keep serving the connections we have.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, router: Router) {
    // Small request/response pairs on loopback: don't wait for Nagle.
    let _ = stream.set_nodelay(true);
    let reset = Arc::new(Notify::new());
    let handle = ConnHandle(reset.clone());
    let service = service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(handle.clone());
        // A Router is always ready, so calling it without poll_ready is fine.
        router.clone().call(request)
    });
    let mut connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // Hyper answers garbage with 400 and copes with half-closed
        // sockets; whatever ends the connection, there is nothing to report.
        _ = &mut connection => {}
        () = reset.notified() => {
            let stream = connection.into_parts().io.into_inner();
            // An abortive close: RST instead of FIN, whatever is unsent is lost.
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    }
}
