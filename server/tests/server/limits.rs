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

#[test]
fn the_global_concurrency_limit_sheds_the_third_request_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, admin_once) = create_org_cli(&data, "Acme");
    let server = Server::start(&data, &["--max-concurrency", "2", "--queue-wait-ms", "0"]);
    let client = Server::client();
    let admin = login_http(&server, &client, &admin_once);

    let held = [hold_open(&server, &admin), hold_open(&server, &admin)];
    // Once both held requests occupy their slots, any other request, on any route, is shed.
    let shed = wait_for(Duration::from_secs(30), || {
        let r = server.send(&client, Req::get("/v1/me").token(&admin));
        (r.status == StatusCode::SERVICE_UNAVAILABLE).then_some(r)
    });
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

#[test]
fn the_fourth_bad_login_or_enrollment_attempt_within_the_window_is_refused_with_429() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, admin_once) = create_org_cli(&data, "Acme");
    let server = Server::start(&data, &["--login-attempts", "3"]);
    let client = Server::client();
    let admin = login_http(&server, &client, &admin_once);
    let r = server.send(
        &client,
        Req::post("/v1/members")
            .token(&admin)
            .json(&serde_json::json!({ "name": "C", "role": "coordinator" })),
    );
    let right_token = r
        .json::<fieldsync_protocol::api::CreatedMember>()
        .one_time_secret;

    for i in 0..3 {
        let r = server.send(
            &client,
            Req::post("/v1/login").json(&serde_json::json!({ "token": format!("fsl_guess{i}") })),
        );
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {}", i + 1);
    }
    let r = server.send(
        &client,
        Req::post("/v1/login").json(&serde_json::json!({ "token": "fsl_guess4" })),
    );
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let err = r.error();
    assert_eq!(err.code, ErrorCode::RateLimited);
    assert!(err.message.contains("wait"), "{}", err.message);
    // Enrollment shares the limit, and while it holds even a right token is not tried, so
    // guessing cannot go on.
    let r = server.send(
        &client,
        Req::post("/v1/enroll").json(&serde_json::json!({ "code": "fse_guess" })),
    );
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let r = server.send(
        &client,
        Req::post("/v1/login").json(&serde_json::json!({ "token": right_token })),
    );
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Callers that already hold a session are not affected.
    assert_eq!(
        server
            .send(&client, Req::get("/v1/me").token(&admin))
            .status,
        StatusCode::OK
    );
}
