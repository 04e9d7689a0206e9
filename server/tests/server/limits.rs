//! Limits of the real server that must actually limit: the server-wide concurrency limit
//! (authenticated requests held open occupy it, the next one is shed with 503, and it
//! recovers), the per-caller limit, and the login/enrollment attempt limiter.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use axum::http::StatusCode;
use fieldsync_protocol::wire::ErrorCode;

use super::common::*;

/// Open a connection and send an authenticated POST whose body never finishes: the request
/// holds its concurrency slot while the server waits for the rest.
pub fn hold_open(server: &Server, token: &str) -> TcpStream {
    let addr = server.url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "POST /v1/sync/push HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/cbor\r\nContent-Length: 1000\r\n\r\n\u{a2}"
    )
    .expect("send partial request");
    s.flush().expect("flush");
    s
}

/// Whatever the server has sent on a held connection so far (it should be nothing).
fn read_what_arrived(s: &mut TcpStream) -> String {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let mut buf = vec![0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => "the connection was closed".into(),
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) => format!("nothing ({e})"),
    }
}

#[test]
fn the_global_concurrency_limit_sheds_the_third_request_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, admin_once) = create_org_cli(&data, "Acme");
    let server = Server::start(&data, &["--max-concurrency", "2", "--queue-wait-ms", "0"]);
    let client = Server::client();
    let admin = login_http(&server, &client, &admin_once);

    let mut held = [hold_open(&server, &admin), hold_open(&server, &admin)];
    // Once both held requests occupy their slots, any other request, on any route, is shed.
    let start = std::time::Instant::now();
    let shed = loop {
        let r = server.send(&client, Req::get("/v1/me").token(&admin));
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            break r;
        }
        if start.elapsed() > Duration::from_secs(30) {
            // Say what the held requests were answered, if anything, and what the server logged.
            let answers: Vec<String> = held.iter_mut().map(read_what_arrived).collect();
            panic!(
                "/v1/me was never shed; last answer {} {:?}; the held requests got {answers:?}; server log:\n{}",
                r.status,
                String::from_utf8_lossy(&r.body),
                String::from_utf8_lossy(&server.stderr())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(shed.error().code, ErrorCode::Unavailable);
    let r = server.send(&client, Req::get("/v1/surveys").token(&admin));
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a different route is limited too"
    );

    // Releasing them frees the slots.
    drop(held);
    wait_for(Duration::from_secs(30), || {
        (server
            .send(&client, Req::get("/v1/me").token(&admin))
            .status
            == StatusCode::OK)
            .then_some(())
    });
    for _ in 0..5 {
        assert_eq!(
            server
                .send(&client, Req::get("/v1/surveys").token(&admin))
                .status,
            StatusCode::OK
        );
    }
}

/// A member's one-time login token, made by the admin.
fn login_token(
    server: &Server,
    client: &reqwest::blocking::Client,
    admin: &str,
    name: &str,
) -> String {
    server
        .send(
            client,
            Req::post("/v1/members")
                .token(admin)
                .json(&serde_json::json!({ "name": name, "role": "coordinator" })),
        )
        .json::<fieldsync_protocol::api::CreatedMember>()
        .one_time_secret
}

fn try_login(server: &Server, client: &reqwest::blocking::Client, token: &str) -> Reply {
    server.send(
        client,
        Req::post("/v1/login").json(&serde_json::json!({ "token": token })),
    )
}

/// Failed sign-ins are limited per credential tried and per address: one person retrying a
/// wrong token is stopped after `--login-attempts` and stopped alone, a teammate behind the
/// same address still signs in, and a guesser who tries a new token each time is stopped at
/// `--login-attempts-per-address`, after which not even a right token is tried. Before, the
/// limit was per address only: one member's typos locked the whole team out.
#[test]
fn sign_in_failures_are_limited_per_credential_and_per_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, admin_once) = create_org_cli(&data, "Acme");
    let server = Server::start(
        &data,
        &["--login-attempts", "2", "--login-attempts-per-address", "4"],
    );
    let client = Server::client();
    let admin = login_http(&server, &client, &admin_once);
    let teammate = login_token(&server, &client, &admin, "C1");
    let late = login_token(&server, &client, &admin, "C2");

    for _ in 0..2 {
        assert_eq!(
            try_login(&server, &client, "fsl_typo").status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = try_login(&server, &client, "fsl_typo");
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let err = r.error();
    assert_eq!(err.code, ErrorCode::RateLimited);
    assert!(
        err.message.contains("this token or code") && err.message.contains("wait"),
        "{}",
        err.message
    );
    assert_eq!(
        try_login(&server, &client, &teammate).status,
        StatusCode::OK,
        "one person's typos do not lock out the team beside them"
    );

    for i in 0..2 {
        assert_eq!(
            try_login(&server, &client, &format!("fsl_guess{i}")).status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = try_login(&server, &client, "fsl_guess3");
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.error().message.contains("from this address"));
    // The wait the message names is in Retry-After too, for clients that read headers.
    let raw = client
        .post(format!("{}/v1/login", server.url))
        .json(&serde_json::json!({ "token": "fsl_guess4" }))
        .send()
        .expect("login");
    let wait: u64 = raw
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header");
    assert!((1..=60).contains(&wait), "{wait}");
    // Enrollment shares the limit, and while it holds even a right token is not tried, so
    // guessing cannot go on.
    let r = server.send(
        &client,
        Req::post("/v1/enroll").json(&serde_json::json!({ "code": "fse_guess" })),
    );
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        try_login(&server, &client, &late).status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Callers that already hold a session are not affected.
    assert_eq!(
        server
            .send(&client, Req::get("/v1/me").token(&admin))
            .status,
        StatusCode::OK
    );
}

/// Behind a reverse proxy every request comes from the proxy's address. With
/// `--trusted-proxy` the address in `X-Forwarded-For` is the one limited, so clients behind
/// the proxy do not share one limit; a client that is not the trusted proxy cannot dodge its
/// own limit by writing the header itself.
#[test]
fn a_trusted_proxy_s_forwarded_address_is_the_one_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    create_org_cli(&data, "Acme");
    let client = Server::client();
    let guess = |server: &Server, from: &str, i: usize| {
        client
            .post(format!("{}/v1/login", server.url))
            .header("x-forwarded-for", format!("203.0.113.9, {from}"))
            .json(&serde_json::json!({ "token": format!("fsl_guess{i}") }))
            .send()
            .expect("login")
            .status()
    };
    let args = ["--login-attempts", "1", "--login-attempts-per-address", "2"];
    let mut with_proxy = args.to_vec();
    with_proxy.extend(["--trusted-proxy", "127.0.0.0/8"]);
    let server = Server::start(&data, &with_proxy);
    for i in 0..2 {
        assert_eq!(guess(&server, "198.51.100.1", i), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        guess(&server, "198.51.100.1", 3),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        guess(&server, "198.51.100.2", 4),
        StatusCode::UNAUTHORIZED,
        "another client behind the proxy has its own limit"
    );
    drop(server);

    let server = Server::start(&data, &args);
    for i in 10..12 {
        assert_eq!(
            guess(&server, &format!("198.51.100.{i}"), i),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        guess(&server, "198.51.100.99", 99),
        StatusCode::TOO_MANY_REQUESTS,
        "an untrusted caller's own header does not make it someone else"
    );
}
