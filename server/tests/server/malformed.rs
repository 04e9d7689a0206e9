//! Malformed input: truncated and garbage CBOR, garbage Automerge inside a valid push,
//! oversized bodies and deep nesting each get a clear 4xx, nothing of a refused push is stored,
//! and the server keeps answering (a good push right after succeeds). The end-to-end test
//! also checks the real server's memory stays bounded after a barrage of bad requests.

use axum::http::StatusCode;
use fieldsync_protocol::wire::{DocChanges, ErrorBody, ErrorCode, PushOutcome};
use fieldsync_server::settings::Settings;
use serde_bytes::ByteBuf;
use uuid::Uuid;

use super::common::*;

/// A push with one document whose change bytes are `bytes`.
fn push_with_change(survey: Uuid, bytes: Vec<u8>) -> DocChanges {
    let mut d = response(survey, 1, &[]);
    d.changes = vec![ByteBuf::from(bytes)];
    d
}

/// Bytes that start like an Automerge change (magic, checksum, chunk type) and then lie.
fn fake_changes() -> Vec<Vec<u8>> {
    let magic = [0x85, 0x6f, 0x4a, 0x83];
    let mut out = vec![
        b"definitely not automerge".to_vec(),
        Vec::new(),
        magic.to_vec(),
        [&magic[..], &[0, 0, 0, 0, 1]].concat(),
        // A change chunk declaring an enormous length.
        [&magic[..], &[1, 2, 3, 4, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]].concat(),
        [&magic[..], &[1, 2, 3, 4, 1, 0x10], &[0xff; 16][..]].concat(),
    ];
    // A real change with its tail cut off, and one with a flipped byte.
    let real = response(Uuid::new_v4(), 1, &[&[("head_name", text("x"))]]).changes[1].to_vec();
    out.push(real[..real.len() / 2].to_vec());
    let mut flipped = real.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x5a;
    out.push(flipped);
    out
}

/// `depth` nested one-element CBOR arrays.
pub fn deep_cbor(depth: usize) -> Vec<u8> {
    let mut v = vec![0x81; depth];
    v.push(0x00);
    v
}

async fn good_push_still_works(h: &Harness, org: &Org, survey: Uuid) {
    let doc = response(survey, 1, &[&[("head_name", text("Still Fine"))]]);
    let resp = h.push_ok(&org.coordinator, vec![doc]).await;
    assert_eq!(
        resp.results[0].outcome,
        PushOutcome::Stored {
            new: 2,
            duplicate: 0
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cbor_gets_a_400_and_the_server_keeps_answering() {
    let (h, org, survey) = Harness::with_household().await;
    let good = push_request(vec![response(survey, 1, &[&[("head_name", text("a"))]])]);
    let bytes = fieldsync_protocol::wire::Message::to_cbor(&good).expect("encodes");
    let mut wrong_version = good.clone();
    wrong_version.protocol = 99;

    let cases: Vec<(String, Vec<u8>, ErrorCode)> = vec![
        ("empty".into(), Vec::new(), ErrorCode::BadRequest),
        (
            "garbage".into(),
            b"\xff\x00garbage \x9f\x9f".to_vec(),
            ErrorCode::BadRequest,
        ),
        (
            "json instead of cbor".into(),
            br#"{"protocol":1,"docs":[]}"#.to_vec(),
            ErrorCode::BadRequest,
        ),
        (
            "deeply nested".into(),
            deep_cbor(10_000),
            ErrorCode::BadRequest,
        ),
        (
            "trailing bytes".into(),
            [&bytes[..], b"xx"].concat(),
            ErrorCode::BadRequest,
        ),
        (
            "wrong protocol".into(),
            fieldsync_protocol::wire::Message::to_cbor(&wrong_version).expect("encodes"),
            ErrorCode::UnsupportedProtocol,
        ),
    ]
    .into_iter()
    .chain((1..bytes.len()).step_by(7).map(|cut| {
        (
            format!("truncated at {cut}"),
            bytes[..cut].to_vec(),
            ErrorCode::BadRequest,
        )
    }))
    .collect();
    for (name, body, code) in cases {
        for path in ["/v1/sync/push", "/v1/sync/pull"] {
            let r = h
                .send(
                    Req::post(path)
                        .token(&org.coordinator)
                        .raw("application/cbor", body.clone()),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name} to {path}");
            let err = r.error();
            // A push-shaped message is simply the wrong shape for a pull.
            let code = if name == "wrong protocol" && path == "/v1/sync/pull" {
                ErrorCode::BadRequest
            } else {
                code.clone()
            };
            assert_eq!(err.code, code, "{name} to {path}: {}", err.message);
        }
    }
    // A version newer than the server's is refused, and the refusal names the server's range
    // so the client can step down to a version both speak.
    let mut pull = pull_request(0, 10);
    pull.protocol = fieldsync_protocol::wire::PROTOCOL_VERSION + 1;
    let r = h
        .send(
            Req::post("/v1/sync/pull")
                .token(&org.coordinator)
                .cbor(&pull),
        )
        .await;
    let err = r.error();
    assert_eq!(
        (r.status, err.code),
        (StatusCode::BAD_REQUEST, ErrorCode::UnsupportedProtocol)
    );
    assert_eq!(
        err.protocols,
        Some(fieldsync_protocol::wire::ProtocolRange::OURS)
    );
    // A client still on the oldest version is answered in that version.
    pull.protocol = fieldsync_protocol::wire::MIN_PROTOCOL_VERSION;
    let r = h
        .send(
            Req::post("/v1/sync/pull")
                .token(&org.coordinator)
                .cbor(&pull),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.cbor::<fieldsync_protocol::wire::PullResponse>().protocol,
        fieldsync_protocol::wire::MIN_PROTOCOL_VERSION
    );

    // Nothing was stored by any of them, and a good push goes through.
    assert!(h.pull_all(&org.admin).await.is_empty());
    good_push_still_works(&h, &org, survey).await;

    // Bad JSON on the management routes is a 400 too.
    for body in [
        "",
        "{",
        "[1,2]",
        r#"{"name": 5, "role": "ops"}"#,
        r#"{"name": "x", "role": "wizard"}"#,
    ] {
        let r = h
            .send(
                Req::post("/v1/members")
                    .token(&org.admin)
                    .raw("application/json", body.into()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body:?}: {}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_automerge_in_a_valid_push_is_a_422_naming_the_document_and_nothing_is_stored() {
    let (h, org, survey) = Harness::with_household().await;
    for (i, bad) in fake_changes().into_iter().enumerate() {
        let good = response(survey, 1, &[&[("head_name", text("good"))]]);
        let bad = push_with_change(survey, bad);
        let later_bad = push_with_change(survey, b"also bad".to_vec());
        let r = h
            .push(
                &org.coordinator,
                vec![good.clone(), bad.clone(), later_bad.clone()],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "case {i}");
        let err = r.error();
        assert_eq!(err.code, ErrorCode::MalformedDocument, "case {i}");
        assert_eq!(err.doc_id, Some(bad.doc_id), "case {i}: {}", err.message);
        assert!(
            err.message.contains(&bad.doc_id.to_string()),
            "case {i}: {}",
            err.message
        );
        assert_eq!(
            err.details.len(),
            2,
            "case {i}: every malformed document is listed"
        );
        assert!(err.details[1].contains(&later_bad.doc_id.to_string()));
        // Nothing of the batch was stored, not even the good document.
        assert!(h.pull_all(&org.admin).await.is_empty(), "case {i}");
        // The client drops the bad ones and pushes the rest again.
        let resp = h.push_ok(&org.coordinator, vec![good]).await;
        assert_eq!(
            resp.results[0].outcome,
            PushOutcome::Stored {
                new: 2,
                duplicate: 0
            }
        );
        let _ = h.pull_all(&org.admin).await;
        // Start the next case from an empty server view.
        h.db(|c| {
            c.execute_batch(
                "DELETE FROM materialize_queue; DELETE FROM response_index; DELETE FROM refusals;
                 DELETE FROM changes; DELETE FROM docs;",
            )
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_a_413_and_the_server_keeps_answering() {
    let h = Harness::with_settings(Settings {
        max_body: 64 * 1024,
        ..Settings::for_region(REGION)
    })
    .await;
    let org = h.org("Acme").await;
    let survey = h
        .publish(&org.admin, &fixture("surveys/household-v1.json"))
        .await
        .survey_id;
    let big: Vec<DocChanges> = (0..400)
        .map(|i| {
            response(
                survey,
                1,
                &[&[("comments", text(&format!("{i} {}", "x".repeat(300))))]],
            )
        })
        .collect();
    let r = h.push(&org.coordinator, big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let err = r.error();
    assert_eq!(err.code, ErrorCode::TooLarge);
    assert!(err.message.contains("smaller batches"), "{}", err.message);
    let r = h
        .send(
            Req::post("/v1/surveys")
                .token(&org.admin)
                .raw("application/json", vec![b' '; 100 * 1024]),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(h.pull_all(&org.admin).await.is_empty());
    good_push_still_works(&h, &org, survey).await;
}

/// A barrage of bad requests against the real server: each is a 4xx, the server answers a good
/// push right after, and its resident memory stays bounded.
#[test]
fn the_real_server_survives_a_barrage_of_bad_input_with_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, admin_once) = create_org_cli(&data, "Acme");
    let server = Server::start(&data, &[]);
    let client = Server::client();
    let admin = login_http(&server, &client, &admin_once);
    let survey = publish_http(
        &server,
        &client,
        &admin,
        &fixture("surveys/household-v1.json"),
    )
    .survey_id;
    let good = |name: &str| {
        let doc = response(survey, 1, &[&[("head_name", text(name))]]);
        server.send(
            &client,
            Req::post("/v1/sync/push")
                .token(&admin)
                .cbor(&push_request(vec![doc])),
        )
    };
    assert_eq!(good("warm up").status, StatusCode::OK);
    let before = server.rss_kib();

    let max_body = 32 * 1024 * 1024;
    let push = |body: Vec<u8>| {
        Req::post("/v1/sync/push")
            .token(&admin)
            .raw("application/cbor", body)
    };
    let mut bad: Vec<(&str, Req, u16)> = Vec::new();
    for _ in 0..3 {
        bad.push(("garbage CBOR", push(vec![0xff; max_body - 1024]), 400));
        bad.push(("deep nesting", push(deep_cbor(1024 * 1024)), 400));
        let huge_change = push_with_change(
            survey,
            [&[0x85, 0x6f, 0x4a, 0x83][..], &vec![0x7f; 20 * 1024 * 1024]].concat(),
        );
        bad.push((
            "20 MiB of garbage Automerge",
            Req::post("/v1/sync/push")
                .token(&admin)
                .cbor(&push_request(vec![huge_change])),
            422,
        ));
        let many: Vec<DocChanges> = (0..2000)
            .map(|_| push_with_change(survey, vec![0x85; 4096]))
            .collect();
        bad.push((
            "2000 garbage documents",
            Req::post("/v1/sync/push")
                .token(&admin)
                .cbor(&push_request(many)),
            422,
        ));
        let body = fieldsync_protocol::wire::Message::to_cbor(&push_request(vec![response(
            survey,
            1,
            &[],
        )]))
        .expect("encodes");
        bad.push(("truncated", push(body[..body.len() - 3].to_vec()), 400));
    }
    // One byte over the limit: the server reads up to the limit, then refuses with 413. Far
    // over it, a client still sending may see the connection close instead; either way the
    // server goes on answering.
    for _ in 0..3 {
        let r = server.send(&client, push(vec![0x41; max_body + 1]));
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
        assert_eq!(
            r.error().code,
            fieldsync_protocol::wire::ErrorCode::TooLarge
        );
        if let Ok(r) = server.try_send(&client, push(vec![0x41; max_body + 8 * 1024 * 1024])) {
            assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
        }
        assert_eq!(
            good("oversized").status,
            StatusCode::OK,
            "a good push right after an oversized one"
        );
    }
    for (name, req, want) in bad {
        let r = server.send(&client, req);
        assert_eq!(r.status.as_u16(), want, "{name}: {}", r.text());
        assert_eq!(
            good(name).status,
            StatusCode::OK,
            "a good push right after {name}"
        );
    }
    let after = server.rss_kib();
    eprintln!("server RSS: {before} KiB before, {after} KiB after the bad requests");
    assert!(
        after < 256 * 1024,
        "server RSS grew from {before} KiB to {after} KiB"
    );
}

/// Every error, whoever produces it (a handler, an extractor's rejection, the router's method
/// check, a missing token), is the documented body in its route's format, with a request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_the_documented_body_in_its_routes_format() {
    let (h, org, survey) = Harness::with_household().await;
    let cases: Vec<(&str, Req, StatusCode, ErrorCode, bool)> = vec![
        (
            "a bad number in a path",
            Req::get(format!("/v1/surveys/{survey}/versions/abc")).token(&org.admin),
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            false,
        ),
        (
            "a bad query value",
            Req::get(format!("/v1/surveys/{survey}/responses?limit=abc")).token(&org.admin),
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            false,
        ),
        (
            "a wrong method",
            Req::new("DELETE", "/v1/surveys").token(&org.admin),
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            false,
        ),
        (
            "a wrong method on a sync route",
            Req::get("/v1/sync/push").token(&org.admin),
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            true,
        ),
        (
            "no token on a sync route",
            Req::post("/v1/sync/pull").cbor(&pull_request(0, 10)),
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            true,
        ),
        (
            "no token on a JSON route",
            Req::get("/v1/surveys"),
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            false,
        ),
        (
            "no such route",
            Req::get("/v1/nothing-here"),
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            false,
        ),
        (
            "a login body over the sign-in limit",
            Req::post("/v1/login").raw("application/json", vec![b' '; 64 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooLarge,
            false,
        ),
    ];
    for (name, req, status, code, cbor) in cases {
        let r = h.send(req).await;
        assert_eq!(r.status, status, "{name}: {}", r.text());
        let body = if cbor {
            assert_eq!(
                r.content_type.as_deref(),
                Some("application/cbor"),
                "{name}"
            );
            r.cbor::<ErrorBody>()
        } else {
            assert_eq!(
                r.content_type.as_deref(),
                Some("application/json"),
                "{name}"
            );
            r.json::<ErrorBody>()
        };
        assert_eq!(body.code, code, "{name}: {}", body.message);
        assert!(!body.message.is_empty(), "{name}");
        assert!(
            body.request_id.is_some(),
            "{name}: errors carry the request id"
        );
    }
}
