//! A fault-injecting HTTP/1.1 proxy between `fieldsync` clients and the real server, to test
//! that sync survives the network a field device really has: cut connections, half-sent
//! requests, lost acknowledgements, duplicated deliveries, delays and resets.
//!
//! The proxy listens on 127.0.0.1 at one address for its whole life, so client homes bound to
//! its URL keep working while the server behind it is killed and restarted; the upstream is
//! settable. It reads each request whole (request line, headers, `Content-Length` or chunked
//! body) from the client's keep-alive connection, forwards it on a fresh upstream connection,
//! reads the whole response (`Content-Length`, chunked, or until close) and then applies the
//! fault drawn for that request. Faults come from a seeded deck that holds every kind, so a
//! few dozen requests exercise all of them whatever the interleaving; the counts say what was
//! done.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::rng::Rng;

mod http;

use http::{Request, Wire, read_request, read_response};

/// How long the proxy waits for the server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may take to answer one request (a debug-build push of a big batch).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);
/// An idle keep-alive client connection is closed after this long (its thread then ends).
const CLIENT_IDLE: Duration = Duration::from_secs(60);
/// The longest delay fault; far below the client's own request timeout.
const MAX_DELAY_MS: u64 = 400;

/// What the proxy does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Forward the request and the answer untouched.
    None,
    /// Close the client's connection without forwarding anything.
    DropBeforeForward,
    /// Forward only a prefix of the request, then close both connections.
    PartialRequest,
    /// Forward the request, then send the client only a prefix of the answer and close.
    TruncatedResponse,
    /// Forward the request, let the server answer (and commit), close the client's
    /// connection without the answer.
    LostAck,
    /// Deliver the request to the server twice, one after the other or both at once (a
    /// retry racing the original); the client sees one answer.
    Duplicate,
    /// Wait a little before forwarding, then behave normally.
    Delay,
    /// Reset the client's connection (SO_LINGER 0), after forwarding the request or not.
    Reset,
}

impl Fault {
    /// Every kind, for checking that a run exercised them all.
    pub const ALL: [Fault; 8] = [
        Fault::None,
        Fault::DropBeforeForward,
        Fault::PartialRequest,
        Fault::TruncatedResponse,
        Fault::LostAck,
        Fault::Duplicate,
        Fault::Delay,
        Fault::Reset,
    ];
}

/// The deck the faults are drawn from, reshuffled when empty: `None` weighs a third, so
/// syncs make progress, and every fault kind appears once per deck.
const DECK: [Fault; 11] = [
    Fault::None,
    Fault::None,
    Fault::None,
    Fault::None,
    Fault::DropBeforeForward,
    Fault::PartialRequest,
    Fault::TruncatedResponse,
    Fault::LostAck,
    Fault::Duplicate,
    Fault::Delay,
    Fault::Reset,
];

/// What the proxy did so far.
#[derive(Clone, Debug, Default)]
pub struct FaultCounts {
    /// Requests handled while faults were on, by the fault drawn for them.
    pub by_kind: BTreeMap<Fault, u64>,
    /// The same, by request line without the version (`POST /v1/sync/push`).
    pub by_route: BTreeMap<(String, Fault), u64>,
    /// Every request read from a client (faults on or off).
    pub requests: u64,
    /// Bytes of the whole requests read from clients (faults on or off), by route: what
    /// clients sent, to count what a resumed upload sends again.
    pub request_bytes: BTreeMap<String, u64>,
    /// Connections opened to the server to deliver a request, a copy of one or a part of one.
    pub forwarded: u64,
    /// Forwardings that failed because the server was down or broke the connection.
    pub upstream_errors: u64,
}

impl FaultCounts {
    /// Bytes clients sent in whole requests of `route` (`POST /v1/sync/push`).
    pub fn bytes_of(&self, route: &str) -> u64 {
        self.request_bytes.get(route).copied().unwrap_or(0)
    }

    pub fn of(&self, kind: Fault) -> u64 {
        self.by_kind.get(&kind).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {} forwarded, {} upstream errors;",
            self.requests, self.forwarded, self.upstream_errors
        )?;
        for kind in Fault::ALL {
            write!(f, " {kind:?}={}", self.of(kind))?;
        }
        Ok(())
    }
}

/// How one request is treated: the fault and the random numbers it needs, drawn together so
/// that a seed decides them all.
#[derive(Clone, Copy, Debug)]
struct Plan {
    fault: Fault,
    /// Where to cut a request or a response, in thousandths of its length.
    cut_permille: u64,
    delay: Duration,
    /// For `Reset`: forward the request first (the server may commit), or not.
    forward_first: bool,
    /// For `Duplicate`: send both copies at once instead of one after the other.
    concurrent: bool,
}

#[derive(Debug)]
struct Shared {
    upstream: Mutex<SocketAddr>,
    faults_on: AtomicBool,
    /// One fault for every request instead of drawing from the deck.
    forced: Mutex<Option<Fault>>,
    stop: AtomicBool,
    dealer: Mutex<Dealer>,
    counts: Mutex<FaultCounts>,
}

#[derive(Debug)]
struct Dealer {
    rng: Rng,
    deck: Vec<Fault>,
}

/// Lock a mutex even if a connection thread panicked while holding it: the counters are
/// still meaningful and the test should report its own failure, not a poisoned lock.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn plan(&self, route: &str, len: usize) -> Plan {
        let on = self.faults_on.load(Ordering::SeqCst);
        let mut dealer = lock(&self.dealer);
        let fault = if on {
            if dealer.deck.is_empty() {
                let mut deck = DECK.to_vec();
                dealer.rng.shuffle(&mut deck);
                dealer.deck = deck;
            }
            match *lock(&self.forced) {
                Some(fault) => fault,
                None => dealer.deck.pop().unwrap_or(Fault::None),
            }
        } else {
            Fault::None
        };
        let plan = Plan {
            fault,
            cut_permille: dealer.rng.range(1, 1000),
            delay: Duration::from_millis(dealer.rng.range(10, MAX_DELAY_MS)),
            forward_first: dealer.rng.chance(50),
            concurrent: dealer.rng.chance(50),
        };
        drop(dealer);
        let mut counts = lock(&self.counts);
        counts.requests += 1;
        *counts.request_bytes.entry(route.into()).or_default() += len as u64;
        if on {
            *counts.by_kind.entry(fault).or_default() += 1;
            *counts.by_route.entry((route.into(), fault)).or_default() += 1;
        }
        plan
    }

    fn upstream(&self) -> SocketAddr {
        *lock(&self.upstream)
    }
}

/// The proxy. Dropping it stops accepting connections; connections in progress end with
/// their clients.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listen on 127.0.0.1 (a free port) in front of `upstream`, faults off, drawing faults
    /// from `seed`.
    pub fn start(upstream: SocketAddr, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy on loopback");
        let addr = listener.local_addr().expect("the proxy's own address");
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            faults_on: AtomicBool::new(false),
            forced: Mutex::new(None),
            stop: AtomicBool::new(false),
            dealer: Mutex::new(Dealer {
                rng: Rng::new(seed),
                deck: Vec::new(),
            }),
            counts: Mutex::new(FaultCounts::default()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn the proxy's accept thread");
        eprintln!("[e2e] fault proxy on {addr} -> {upstream} (seed {seed})");
        FaultProxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The URL clients are bound to, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Send the following requests to another server address (after a restart).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// Turn fault injection on or off for the following requests.
    pub fn set_faults(&self, on: bool) {
        self.shared.faults_on.store(on, Ordering::SeqCst);
    }

    /// While faults are on, give every request `fault` (`None`: draw from the seeded deck
    /// again), to aim at one failure mode.
    pub fn force(&self, fault: Option<Fault>) {
        *lock(&self.shared.forced) = fault;
    }

    /// What the proxy did so far.
    pub fn counts(&self) -> FaultCounts {
        lock(&self.shared.counts).clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT);
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let shared = Arc::clone(&shared);
        // A failed spawn drops the connection, which a client sees as one more network fault.
        let _ = std::thread::Builder::new()
            .name("fault-proxy-conn".into())
            .spawn(move || serve(&shared, conn));
    }
}

/// How a connection goes on after one request.
enum Next {
    KeepAlive,
    Close,
    Reset,
}

fn serve(shared: &Shared, client: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = client.set_read_timeout(Some(CLIENT_IDLE));
    let mut client = Wire::new(client);
    loop {
        let request = match read_request(&mut client) {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => return,
        };
        let plan = shared.plan(&request.route, request.bytes.len());
        match handle(shared, &mut client.stream, &request, plan) {
            Next::KeepAlive if !request.wants_close => {}
            Next::KeepAlive | Next::Close => {
                let _ = client.stream.shutdown(Shutdown::Both);
                return;
            }
            Next::Reset => {
                // SO_LINGER 0: closing sends RST instead of FIN.
                let _ = socket2::SockRef::from(&client.stream).set_linger(Some(Duration::ZERO));
                return;
            }
        }
    }
}

/// Apply `plan` to one request from the client on `out`.
fn handle(shared: &Shared, out: &mut TcpStream, request: &Request, plan: Plan) -> Next {
    let cut = |len: usize| (len as u64 * plan.cut_permille / 1000) as usize;
    let answer = |resp: io::Result<(Vec<u8>, bool)>, out: &mut TcpStream| match resp {
        Ok((bytes, close)) => match out.write_all(&bytes) {
            Ok(()) if !close => Next::KeepAlive,
            _ => Next::Close,
        },
        // The server is down or broke off: the client sees its connection closed.
        Err(_) => Next::Close,
    };
    match plan.fault {
        Fault::None => answer(exchange(shared, request), out),
        Fault::Delay => {
            std::thread::sleep(plan.delay);
            answer(exchange(shared, request), out)
        }
        Fault::DropBeforeForward => Next::Close,
        Fault::PartialRequest => {
            let n = cut(request.bytes.len()).max(1);
            if let Ok(server) = connect(shared) {
                let _ = (&server).write_all(&request.bytes[..n]);
                let _ = server.shutdown(Shutdown::Both);
            }
            Next::Close
        }
        Fault::TruncatedResponse => {
            if let Ok((bytes, _)) = exchange(shared, request) {
                let _ = out.write_all(&bytes[..cut(bytes.len())]);
            }
            Next::Close
        }
        Fault::LostAck => {
            let _ = exchange(shared, request);
            Next::Close
        }
        Fault::Duplicate => {
            let (first, second) = if plan.concurrent {
                std::thread::scope(|scope| {
                    let twin = scope.spawn(|| exchange(shared, request));
                    let first = exchange(shared, request);
                    let second = twin
                        .join()
                        .unwrap_or_else(|_| Err(io::Error::other("the duplicate's thread died")));
                    (first, second)
                })
            } else {
                let first = exchange(shared, request);
                (first, exchange(shared, request))
            };
            // The client sees one answer: the second when there is one.
            answer(second.or(first), out)
        }
        Fault::Reset => {
            if plan.forward_first {
                let _ = exchange(shared, request);
            }
            Next::Reset
        }
    }
}

fn connect(shared: &Shared) -> io::Result<TcpStream> {
    let result = TcpStream::connect_timeout(&shared.upstream(), CONNECT_TIMEOUT);
    let mut counts = lock(&shared.counts);
    match &result {
        Ok(_) => counts.forwarded += 1,
        Err(_) => counts.upstream_errors += 1,
    }
    result
}

/// Send the request on a fresh connection to the server and read its whole answer.
fn exchange(shared: &Shared, request: &Request) -> io::Result<(Vec<u8>, bool)> {
    let mut server = Wire::new(connect(shared)?);
    let result = (|| {
        server.stream.set_nodelay(true)?;
        server.stream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
        server.stream.write_all(&request.bytes)?;
        read_response(&mut server, request)
    })();
    if result.is_err() {
        lock(&shared.counts).upstream_errors += 1;
    }
    let _ = server.stream.shutdown(Shutdown::Both);
    result
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::http::{Wire, read_request};
    use super::{Fault, FaultProxy};

    const REQUEST: &[u8] = b"POST /v1/sync/push HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nacknowledge";

    /// A keep-alive upstream that answers every whole request with `RESPONSE` and counts them.
    fn upstream() -> (SocketAddr, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let mut wire = Wire::new(conn);
                    while let Ok(Some(_)) = read_request(&mut wire) {
                        counter.fetch_add(1, Ordering::SeqCst);
                        if wire.stream.write_all(RESPONSE).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    /// Send `REQUEST` through the proxy and read until it closes: the bytes, or the error.
    fn ask(proxy: &FaultProxy) -> Result<Vec<u8>, ErrorKind> {
        let mut conn = TcpStream::connect(proxy.addr()).expect("connect to the proxy");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        conn.write_all(REQUEST).expect("send the request");
        let mut got = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            match conn.read(&mut chunk) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(e.kind()),
            }
            if got.len() >= RESPONSE.len() {
                return Ok(got);
            }
        }
    }

    #[test]
    fn each_fault_does_what_it_says() {
        let (addr, seen) = upstream();
        let proxy = FaultProxy::start(addr, 7);
        let mut delivered = 0;
        let mut check = |fault: Fault, answer: Result<&[u8], ErrorKind>, deliveries: u64| {
            proxy.force(Some(fault));
            let got = ask(&proxy);
            match answer {
                Ok(want) => assert_eq!(got.as_deref(), Ok(want), "{fault:?}"),
                Err(kind) => assert_eq!(got, Err(kind), "{fault:?}"),
            }
            delivered += deliveries;
            assert_eq!(
                seen.load(Ordering::SeqCst),
                delivered,
                "{fault:?}: deliveries"
            );
        };
        proxy.set_faults(true);
        check(Fault::None, Ok(RESPONSE), 1);
        check(Fault::Delay, Ok(RESPONSE), 1);
        check(Fault::Duplicate, Ok(RESPONSE), 2);
        check(Fault::DropBeforeForward, Ok(b""), 0);
        check(Fault::PartialRequest, Ok(b""), 0);
        check(Fault::LostAck, Ok(b""), 1);
        proxy.force(Some(Fault::TruncatedResponse));
        let cut = ask(&proxy).expect("a truncated answer, then a clean close");
        assert!(
            cut.len() < RESPONSE.len() && RESPONSE.starts_with(&cut),
            "{cut:?}"
        );
        proxy.force(Some(Fault::Reset));
        assert_eq!(ask(&proxy), Err(ErrorKind::ConnectionReset));
        let counts = proxy.counts();
        assert!(Fault::ALL.iter().all(|&k| counts.of(k) == 1), "{counts}");
    }
}
