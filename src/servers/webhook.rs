//! A webhook receiver on loopback: answers every POST with 204 and keeps the bodies, so the demo
//! can show the notifications it would have sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The bodies received so far, in arrival order.
pub type Received = Arc<Mutex<Vec<String>>>;

/// Listens on `address` until the runtime ends; returns where the bodies go.
pub async fn spawn(address: SocketAddr) -> std::io::Result<Received> {
    let listener = TcpListener::bind(address).await?;
    let received: Received = Arc::default();
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let store = store.clone();
                    async move {
                        // Bodies are small JSON documents; a broken one is kept as what arrived.
                        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        if let Ok(mut bodies) = store.lock() {
                            bodies.push(String::from_utf8_lossy(&body).into_owned());
                        }
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(StatusCode::NO_CONTENT)
                                .body(Empty::<Bytes>::new())
                                .unwrap_or_default(),
                        )
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(received)
}
