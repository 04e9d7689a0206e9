//! The attachment contract, on every backend, through the service the routes call: an upload
//! in checked chunks that resumes and dedupes, every bad input refused with its own error and
//! nothing stored, other organisations' and other devices' responses out of reach, files
//! released when their answers stop naming them and erased with their responses.

use fieldsync_protocol::api::Role;
use fieldsync_protocol::media::{CHUNK_SIZE, MediaChunk, MediaOffer, MediaStatus};
use fieldsync_protocol::wire::PROTOCOL_VERSION;
use fieldsync_server::auth::Caller;
use fieldsync_server::error::ApiError;
use fieldsync_server::service::media;
use fieldsync_server::storage::{AuditEvent, Db, ErasureCause};
use fieldsync_server::worker::ChangeVerdict;
use serde_bytes::ByteBuf;
use uuid::Uuid;

use crate::common::contract::{World, changes, each_backend, settle_named};

const PHOTO: &str = "pump-0a1b2c3d.png";

/// What a refused request must have been refused as.
type Expect = fn(&ApiError) -> bool;

fn file(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn sha(bytes: &[u8]) -> ByteBuf {
    ByteBuf::from(
        ring::digest::digest(&ring::digest::SHA256, bytes)
            .as_ref()
            .to_vec(),
    )
}

fn offer_of(doc: Uuid, name: &str, question: &str, bytes: &[u8]) -> MediaOffer {
    MediaOffer {
        protocol: PROTOCOL_VERSION,
        doc_id: doc,
        name: name.into(),
        question: question.into(),
        media_type: fieldsync_protocol::media::media_type_of(name)
            .unwrap_or("application/octet-stream")
            .into(),
        size: bytes.len() as u64,
        sha256: sha(bytes),
    }
}

fn chunk_of(doc: Uuid, name: &str, bytes: &[u8], index: u32) -> MediaChunk {
    let start = index as usize * CHUNK_SIZE as usize;
    let part = &bytes[start..(start + CHUNK_SIZE as usize).min(bytes.len())];
    MediaChunk {
        protocol: PROTOCOL_VERSION,
        doc_id: doc,
        name: name.into(),
        index,
        sha256: sha(part),
        bytes: ByteBuf::from(part.to_vec()),
    }
}

async fn offer(w: &World, caller: &Caller, o: MediaOffer) -> Result<MediaStatus, ApiError> {
    media::offer(w.db(), &w.fresh.keys, caller, o).await
}

async fn send(w: &World, caller: &Caller, c: MediaChunk) -> Result<MediaStatus, ApiError> {
    media::chunk(w.db(), &w.fresh.keys, caller, c).await
}

async fn read_back(w: &World, caller: &Caller, doc: Uuid, name: &str) -> Vec<u8> {
    let mut reader = media::open(w.db(), &w.fresh.keys, caller, &doc.to_string(), name)
        .await
        .expect("open the file");
    let mut out = Vec::new();
    while let Some(c) = reader.next_chunk().await.expect("a chunk") {
        out.extend(c);
    }
    out
}

async fn settle(db: &Db, names: &[(Uuid, &str)]) {
    let names: Vec<(String, String)> = names
        .iter()
        .map(|(d, n)| (d.to_string(), (*n).to_owned()))
        .collect();
    settle_named(
        db,
        |_| ChangeVerdict::Accepted,
        |_| Vec::new(),
        |doc| {
            names
                .iter()
                .filter(|(d, _)| d == doc)
                .map(|(_, n)| n.clone())
                .collect()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_hold_in_every_backend() {
    each_backend(|backend, w| async move {
        let survey = w.publish_fixture("site-visit-media.json").await;
        let (device, _) = w.member(Role::Enumerator, "device", &[survey]).await;
        let (other_device, _) = w.member(Role::Enumerator, "other", &[survey]).await;
        let (coordinator, _) = w.member(Role::Coordinator, "coordinator", &[]).await;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        w.db()
            .push(
                device.clone(),
                vec![changes(a, survey, 1), changes(b, survey, 1)],
            )
            .await
            .expect("push");
        settle(w.db(), &[]).await;
        let photo = file(2 * CHUNK_SIZE as usize + 12_345, 7);

        // Offered: nothing held yet, three chunks to send.
        let status = offer(&w, &device, offer_of(a, PHOTO, "site_photo", &photo))
            .await
            .expect("offer");
        assert_eq!(
            (status.chunks, status.received, status.complete),
            (3, 0, false),
            "{backend}"
        );
        // Out of order, damaged, or of the wrong length: refused, nothing stored.
        let refused = send(&w, &device, chunk_of(a, PHOTO, &photo, 1)).await;
        assert!(
            matches!(refused, Err(ApiError::Conflict(_))),
            "{backend}: {refused:?}"
        );
        let mut damaged = chunk_of(a, PHOTO, &photo, 0);
        damaged.bytes[10] ^= 1;
        let refused = send(&w, &device, damaged).await;
        assert!(
            matches!(refused, Err(ApiError::Invalid(ref m)) if m.contains("SHA-256")),
            "{backend}: {refused:?}"
        );
        let mut short = chunk_of(a, PHOTO, &photo, 0);
        short.bytes.truncate(100);
        short.sha256 = sha(&short.bytes);
        let refused = send(&w, &device, short).await;
        assert!(
            matches!(refused, Err(ApiError::Invalid(_))),
            "{backend}: {refused:?}"
        );
        // In order; a chunk sent again (a lost acknowledgement) changes nothing.
        let status = send(&w, &device, chunk_of(a, PHOTO, &photo, 0))
            .await
            .expect("chunk 0");
        assert_eq!(status.received, 1, "{backend}");
        let again = send(&w, &device, chunk_of(a, PHOTO, &photo, 0))
            .await
            .expect("again");
        assert_eq!(again.received, 1, "{backend}");
        // A broken connection: the offer says where to go on.
        let resumed = offer(&w, &device, offer_of(a, PHOTO, "site_photo", &photo))
            .await
            .expect("offer again");
        assert_eq!(resumed.received, 1, "{backend}");
        send(&w, &device, chunk_of(a, PHOTO, &photo, 1))
            .await
            .expect("chunk 1");
        let done = send(&w, &device, chunk_of(a, PHOTO, &photo, 2))
            .await
            .expect("chunk 2");
        assert!(done.complete, "{backend}: {done:?}");
        assert_eq!(
            read_back(&w, &coordinator, a, PHOTO).await,
            photo,
            "{backend}"
        );

        // The same file for another response is stored once: complete at once.
        let dedup = offer(&w, &device, offer_of(b, "same-1.png", "site_photo", &photo))
            .await
            .expect("offer b");
        assert!(dedup.complete, "{backend}: {dedup:?}");
        assert_eq!(
            read_back(&w, &coordinator, b, "same-1.png").await,
            photo,
            "{backend}"
        );

        // A file whose chunks do not add up to the SHA-256 it was offered with is dropped.
        let liar = file(CHUNK_SIZE as usize + 10, 9);
        let mut lying = offer_of(b, "liar-2.png", "site_photo", &liar);
        lying.sha256 = sha(b"something else");
        offer(&w, &device, lying).await.expect("offer");
        send(&w, &device, chunk_of(b, "liar-2.png", &liar, 0))
            .await
            .expect("chunk 0");
        let refused = send(&w, &device, chunk_of(b, "liar-2.png", &liar, 1)).await;
        assert!(
            matches!(refused, Err(ApiError::Invalid(ref m)) if m.contains("offer it again")),
            "{backend}: {refused:?}"
        );
        let left = offer(&w, &device, offer_of(b, "liar-2.png", "site_photo", &liar)).await;
        assert!(
            matches!(
                left,
                Err(ApiError::Conflict(_)) | Ok(MediaStatus { received: 0, .. })
            ),
            "{backend}: {left:?}"
        );

        // Bad offers: over the question's limit, a type it does not take, a question that
        // takes no file, an unknown question, a name that is not a file name; another
        // device's response, another organisation's, and one that does not exist: not found,
        // nothing revealed.
        let big = file(70 * 1024, 1);
        let stranger = Caller {
            org_id: Uuid::new_v4().to_string(),
            ..coordinator.clone()
        };
        let too_large: Expect = |e| matches!(e, ApiError::TooLarge(_));
        let invalid: Expect = |e| matches!(e, ApiError::Invalid(_));
        let not_found: Expect = |e| matches!(e, ApiError::NotFound(_));
        let bad: [(&Caller, MediaOffer, Expect); 8] = [
            (
                &device,
                offer_of(a, "log-3.pdf", "maintenance_log", &big),
                too_large,
            ),
            (
                &device,
                offer_of(a, "voice-4.mp3", "site_photo", &photo),
                invalid,
            ),
            (
                &device,
                offer_of(a, "name-5.png", "caretaker_name", &photo),
                invalid,
            ),
            (
                &device,
                offer_of(a, "x-6.png", "no_such_question", &photo),
                invalid,
            ),
            (
                &device,
                offer_of(a, "../../etc/passwd.png", "site_photo", &photo),
                invalid,
            ),
            (
                &other_device,
                offer_of(a, "x-7.png", "site_photo", &photo),
                not_found,
            ),
            (
                &stranger,
                offer_of(a, "x-8.png", "site_photo", &photo),
                not_found,
            ),
            (
                &device,
                offer_of(Uuid::new_v4(), "x-9.png", "site_photo", &photo),
                not_found,
            ),
        ];
        for (caller, o, expected) in bad {
            let what = o.name.clone();
            let refused = offer(&w, caller, o).await;
            assert!(
                refused.as_ref().is_err_and(expected),
                "{backend}: {what}: {refused:?}"
            );
        }
        let names = |files: Vec<fieldsync_protocol::api::MediaInfo>| -> Vec<String> {
            files.into_iter().map(|f| f.name).collect()
        };
        let listed = names(
            media::list(w.db(), &coordinator, &a.to_string())
                .await
                .expect("list"),
        );
        assert_eq!(
            listed,
            vec![PHOTO.to_owned()],
            "{backend}: only the good file of a"
        );

        // Checked answers name a's photo and b's copy; then b's answer is cleared.
        w.db()
            .push(
                device.clone(),
                vec![changes(a, survey, 2), changes(b, survey, 2)],
            )
            .await
            .expect("push");
        settle(w.db(), &[(a, PHOTO), (b, "same-1.png")]).await;
        assert_eq!(
            media::sweep(w.db(), i64::MAX / 2).await.expect("sweep"),
            1,
            "{backend}: the liar's file, never named, went"
        );
        w.db()
            .push(device.clone(), vec![changes(b, survey, 3)])
            .await
            .expect("push");
        settle(w.db(), &[(a, PHOTO)]).await;
        assert_eq!(
            media::sweep(w.db(), 0).await.expect("sweep"),
            1,
            "{backend}: b's copy is released"
        );
        assert!(
            names(
                media::list(w.db(), &coordinator, &b.to_string())
                    .await
                    .expect("list")
            )
            .is_empty(),
            "{backend}"
        );
        assert_eq!(
            read_back(&w, &coordinator, a, PHOTO).await,
            photo,
            "{backend}: a's file stays"
        );

        // Erasing a erases its file.
        let audit = AuditEvent::by(&w.admin, "subject_erased");
        w.db()
            .erase(&w.org_id, vec![a.to_string()], ErasureCause::Request, audit)
            .await
            .expect("erase");
        let refused = offer(&w, &device, offer_of(a, PHOTO, "site_photo", &photo)).await;
        assert!(
            matches!(refused, Err(ApiError::Erased(_))),
            "{backend}: {refused:?}"
        );
        assert!(
            w.db()
                .blob_chunk(
                    &w.org_id,
                    w.fresh
                        .keys
                        .org_keys(
                            &w.org_id,
                            &w.db()
                                .org(&w.org_id)
                                .await
                                .expect("org")
                                .expect("org")
                                .wrapped_key
                        )
                        .expect("keys")
                        .media_address(&sha(&photo)),
                    0
                )
                .await
                .expect("read")
                .is_none(),
            "{backend}: the erased file's chunks are gone"
        );
    })
    .await;
}

/// Over HTTP, as a device sends them: each bad upload gets its own 4xx with the documented
/// CBOR error body, and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_get_a_clear_4xx_and_store_nothing() {
    use axum::http::StatusCode;
    use fieldsync_protocol::Answer;
    use fieldsync_protocol::wire::ErrorCode;

    use crate::common::{Harness, Req, fixture, response};

    let h = Harness::new().await;
    let org = h.org("Acme").await;
    let survey = h
        .publish(&org.admin, &fixture("surveys/site-visit-media.json"))
        .await
        .survey_id;
    let (_, device) = h.enumerator(&org, "phone", &[survey]).await;
    let doc = response(
        survey,
        1,
        &[&[("caretaker_name", Answer::Text("Amina".into()))]],
    );
    let id = doc.doc_id;
    h.push_ok(&device, vec![doc]).await;
    let photo = file(CHUNK_SIZE as usize + 100, 3);
    let refused = |status: StatusCode, code: ErrorCode| {
        move |r: crate::common::Reply, what: &str| {
            assert_eq!(r.status, status, "{what}: {}", r.text());
            let body = r.error();
            assert_eq!(body.code, code, "{what}: {body:?}");
            assert!(!body.message.is_empty(), "{what}");
            body.message
        }
    };
    let offer_req =
        |o: &MediaOffer, token: &str| Req::post("/v1/sync/media/offer").token(token).cbor(o);
    let chunk_req = |c: &MediaChunk| Req::post("/v1/sync/media/chunk").token(&device).cbor(c);

    let big = file(65 * 1024, 1);
    let m = refused(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge)(
        h.send(offer_req(
            &offer_of(id, "log-1.pdf", "maintenance_log", &big),
            &device,
        ))
        .await,
        "over the limit",
    );
    assert!(m.contains("64.0 KiB"), "{m}");
    let m = refused(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Invalid)(
        h.send(offer_req(
            &offer_of(id, "voice-2.m4a", "site_photo", &photo),
            &device,
        ))
        .await,
        "a wrong type",
    );
    assert!(m.contains("image"), "{m}");
    let other = h.org("Other").await;
    refused(StatusCode::NOT_FOUND, ErrorCode::NotFound)(
        h.send(offer_req(
            &offer_of(id, PHOTO, "site_photo", &photo),
            &other.admin,
        ))
        .await,
        "another organisation's response",
    );
    assert_eq!(
        h.count("attachments").await,
        0,
        "nothing recorded for bad offers"
    );

    let r = h
        .send(offer_req(
            &offer_of(id, PHOTO, "site_photo", &photo),
            &device,
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut damaged = chunk_of(id, PHOTO, &photo, 0);
    damaged.bytes[0] ^= 0xff;
    let m = refused(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Invalid)(
        h.send(chunk_req(&damaged)).await,
        "a chunk with a wrong hash",
    );
    assert!(m.contains("SHA-256"), "{m}");
    let m = refused(StatusCode::CONFLICT, ErrorCode::Conflict)(
        h.send(chunk_req(&chunk_of(id, PHOTO, &photo, 1))).await,
        "a chunk out of order",
    );
    assert!(m.contains("send chunk 0 next"), "{m}");
    let mut oversized = chunk_of(id, PHOTO, &photo, 0);
    oversized.bytes = ByteBuf::from(vec![0u8; 2 * CHUNK_SIZE as usize]);
    let r = h.send(chunk_req(&oversized)).await;
    assert!(
        r.status.is_client_error(),
        "a chunk over the size of one: {}",
        r.status
    );
    assert_eq!(h.count("blob_chunks").await, 0, "no bad chunk stored");
    let r = h.send(chunk_req(&chunk_of(id, PHOTO, &photo, 0))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(h.count("blob_chunks").await, 1);
}
