//! The loopback HTTP frontends, read with a raw TCP client: what each behaviour and raw fault
//! puts on the wire.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fleetprobe::servers::ServerHandle;
use fleetprobe::servers::http::{Behavior, RawFault, VirtualHosts, spawn, spawn_raw};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Upper bound on any single read in these tests.
const PATIENCE: Duration = Duration::from_secs(3);

async fn frontend() -> (ServerHandle, Arc<RwLock<VirtualHosts>>) {
    let mut hosts = VirtualHosts::new(Behavior::Status(421));
    hosts.set("shop.example.test", Behavior::Ok { body: "Welcome to the shop".into() });
    hosts.set("down.example.test", Behavior::Status(503));
    hosts.set("old.example.test", Behavior::Redirect("https://new.example.test/".into()));
    hosts.set(
        "slow.example.test",
        Behavior::SlowFirstByte { delay: Duration::from_millis(250), then: Box::new(Behavior::Status(204)) },
    );
    hosts.set("stream.example.test", Behavior::EndlessBody);
    let hosts = Arc::new(RwLock::new(hosts));
    let handle = spawn("127.0.0.1:0".parse().unwrap(), None, Arc::clone(&hosts)).await.unwrap();
    (handle, hosts)
}

async fn send_get(addr: SocketAddr, host: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// The whole response of a `Connection: close` request, as text.
async fn get(addr: SocketAddr, host: &str) -> String {
    let mut stream = send_get(addr, host).await;
    let mut response = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut response)).await.unwrap().unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn host_header_picks_the_behavior() {
    let (server, _) = frontend().await;
    let ok = get(server.addr(), "Shop.Example.Test:8080").await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.ends_with("Welcome to the shop"), "{ok}");
    assert!(get(server.addr(), "down.example.test").await.starts_with("HTTP/1.1 503 "));
    assert!(get(server.addr(), "unknown.example.test").await.starts_with("HTTP/1.1 421 "));
}

#[tokio::test]
async fn redirect_carries_its_location() {
    let (server, _) = frontend().await;
    let response = get(server.addr(), "old.example.test").await;
    assert!(response.starts_with("HTTP/1.1 302 "), "{response}");
    assert!(response.to_ascii_lowercase().contains("\r\nlocation: https://new.example.test/\r\n"), "{response}");
}

#[tokio::test]
async fn slow_first_byte_really_waits() {
    let (server, _) = frontend().await;
    let mut stream = send_get(server.addr(), "slow.example.test").await;
    let sent = Instant::now();
    let mut first = [0u8; 1];
    timeout(PATIENCE, stream.read_exact(&mut first)).await.unwrap().unwrap();
    let waited = sent.elapsed();
    assert!(waited >= Duration::from_millis(240), "first byte after {waited:?}");
    let mut rest = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut rest)).await.unwrap().unwrap();
    assert!(rest.starts_with(b"TTP/1.1 204 "));
}

#[tokio::test]
async fn endless_body_keeps_sending_until_the_client_leaves() {
    let (server, _) = frontend().await;
    let mut stream = send_get(server.addr(), "stream.example.test").await;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    // Bounded: at most 1,000 reads and PATIENCE for each; 4 MiB is far past any body limit.
    for _ in 0..1_000 {
        let n = timeout(PATIENCE, stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "the body ended after {total} bytes");
        total += n;
        if total >= 4 << 20 {
            break;
        }
    }
    assert!(total >= 4 << 20, "only {total} bytes");
    drop(stream);
    // The server is still fine for everyone else.
    assert!(get(server.addr(), "shop.example.test").await.starts_with("HTTP/1.1 200 "));
}

#[tokio::test]
async fn behaviors_change_while_serving() {
    let (server, hosts) = frontend().await;
    hosts.write().unwrap().set("shop.example.test", Behavior::Status(500));
    assert!(get(server.addr(), "shop.example.test").await.starts_with("HTTP/1.1 500 "));
    hosts.write().unwrap().set_default(Behavior::Status(404));
    assert!(get(server.addr(), "unknown.example.test").await.starts_with("HTTP/1.1 404 "));
}

#[tokio::test]
async fn raw_faults_break_http() {
    let garbage = spawn_raw("127.0.0.1:0".parse().unwrap(), RawFault::Garbage).await.unwrap();
    let response = get(garbage.addr(), "shop.example.test").await;
    assert!(!response.is_empty() && !response.starts_with("HTTP/"), "{response:?}");

    let closing = spawn_raw("127.0.0.1:0".parse().unwrap(), RawFault::CloseImmediately).await.unwrap();
    let mut stream = TcpStream::connect(closing.addr()).await.unwrap();
    let mut buf = [0u8; 16];
    // Either an orderly close (0 bytes) or a reset: never any data.
    match timeout(PATIENCE, stream.read(&mut buf)).await.unwrap() {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }

    let silent = spawn_raw("127.0.0.1:0".parse().unwrap(), RawFault::AcceptThenSilence).await.unwrap();
    let mut stream = send_get(silent.addr(), "shop.example.test").await;
    assert!(timeout(Duration::from_millis(200), stream.read(&mut buf)).await.is_err(), "silence was broken");
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let (server, _) = frontend().await;
    let addr = server.addr();
    server.shutdown();
    // Bounded: the aborted task releases its socket at the runtime's next turn.
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "still accepting after shutdown");
}
