//! The attachments scenario: files answering media questions, attached on a device (copied
//! into its encrypted store), uploaded in checked chunks to the server (sealed there with
//! each file's own key), and downloaded by a coordinator (decrypted on the way); against a
//! raw loopback HTTP upload of the same bytes in the same chunk sizes to a server that only
//! reads them, measured in the same run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::Instant;

use fieldsync_client::client::ApiClient;
use fieldsync_client::engine;
use fieldsync_client::store::Store;
use fieldsync_protocol::api::{
    CreatedMember, EnrollRequest, NewEnumerator, Published, SessionGrant,
};
use fieldsync_protocol::document::Status;
use fieldsync_protocol::media::CHUNK_SIZE;
use fieldsync_protocol::{Answer, Answers};

use crate::Args;
use crate::scenarios::{Counting, Org, PASSPHRASE, Row, account, check, round};

const SURVEY: &str = include_str!("../../fixtures/surveys/site-visit-media.json");
const MIB: f64 = 1024.0 * 1024.0;

/// Files of `file_mib` MiB each (videos, under the fixture's 60 MB limit).
pub fn attachments(org: &Org, args: &Args, ok: &mut bool) -> anyhow::Result<Row> {
    let (files, file_mib) = if args.short { (2, 3) } else { (8, 32) };
    let size = file_mib * 1024 * 1024;
    let survey: Published = org.admin.post_text("/v1/surveys", SURVEY.to_owned())?;
    let created: CreatedMember = org.admin.send_json(
        reqwest::Method::POST,
        "/v1/enumerators",
        &NewEnumerator {
            name: "camera".into(),
            surveys: vec![survey.survey_id],
        },
    )?;
    let url = &org.urls[0];
    let grant: SessionGrant = ApiClient::new(url, None)?.send_json(
        reqwest::Method::POST,
        "/v1/enroll",
        &EnrollRequest {
            code: created.one_time_secret,
            device_name: Some("camera".into()),
            attempt: None,
        },
    )?;
    let mut store = Store::create(&org.root.path().join("home-camera"), PASSPHRASE)?;
    store.set_account(account(url, &grant))?;
    let client = ApiClient::new(url, Some(grant.token))?;
    engine::sync(&mut store, &client, &mut |_| {})?;

    // The files, written once; attaching copies each into the store, encrypted.
    let dir = org.root.path().join("camera-files");
    std::fs::create_dir_all(&dir)?;
    let mut originals = Vec::new();
    for f in 0..files {
        let path = dir.join(format!("pump{f}.mp4"));
        let mut bytes = vec![0u8; size];
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ f as u64;
        for b in bytes.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(&path, &bytes)?;
        originals.push((path, ring_sha(&bytes)));
    }
    let key = survey.survey_id.to_string();
    let local = store.survey_version(&survey.survey_id, survey.version)?;
    let q = local
        .question("pump_video")
        .ok_or_else(|| anyhow::anyhow!("the fixture has no pump_video"))?
        .clone();
    let photo = local
        .question("site_photo")
        .ok_or_else(|| anyhow::anyhow!("the fixture has no site_photo"))?
        .clone();
    let png = dir.join("site.png");
    std::fs::write(
        &png,
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0\0\0\x01\0padding",
    )?;
    let start = Instant::now();
    let mut ids = Vec::new();
    for (i, (path, _)) in originals.iter().enumerate() {
        let video = store.attach_file(&q, path)?;
        let site = store.attach_file(&photo, &png)?;
        let mut a = Answers::new();
        a.insert(
            "caretaker_name".into(),
            Answer::Text(format!("caretaker {i}")),
        );
        a.insert("site_photo".into(), Answer::Text(site.name));
        a.insert("pump_video".into(), Answer::Text(video.name.clone()));
        let (id, _) = store.create_response(&key, None, &a, Status::Submitted)?;
        ids.push((id, video.name));
    }
    let attach = start.elapsed();

    let counting = Counting::new(&client);
    let start = Instant::now();
    let report = engine::sync(&mut store, &counting, &mut |_| {})?;
    let up = start.elapsed();
    let total = (files * size) as f64;
    check(
        ok,
        report.media_uploaded as usize == 2 * files,
        "every attached file is uploaded",
    );
    check(
        ok,
        store.status_report()?.media_waiting == 0,
        "no file waits after the upload",
    );

    let coordinator = ApiClient::new(url, Some(org.admin_grant.token.clone()))?;
    let start = Instant::now();
    let mut identical = true;
    for ((id, name), (_, sha)) in ids.iter().zip(&originals) {
        let mut body = coordinator.media_file(id, name)?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            ctx.update(&buf[..n]);
        }
        identical &= ctx.finish().as_ref() == sha.as_slice();
    }
    let down = start.elapsed();
    check(ok, identical, "every downloaded file is the one attached");

    let raw = raw_upload(files * size, None)?;
    let durable = raw_upload(files * size, Some(&org.root.path().join("raw-upload.bin")))?;
    let up_rate = total / MIB / up.as_secs_f64().max(1e-9);
    let raw_rate = total / MIB / raw.max(1e-9);
    let durable_rate = total / MIB / durable.max(1e-9);
    let mut row = Row::new("attachments", files);
    row.set("file_mib", file_mib)
        .set(
            "attach_mib_per_sec",
            round(total / MIB / attach.as_secs_f64().max(1e-9)),
        )
        .set("upload_mib_per_sec", round(up_rate))
        .set(
            "download_mib_per_sec",
            round(total / MIB / down.as_secs_f64().max(1e-9)),
        )
        .set("raw_http_upload_mib_per_sec", round(raw_rate))
        .set(
            "upload_fraction_of_raw_http",
            round(up_rate / raw_rate.max(1e-9) * 1000.0) / 1000.0,
        )
        .set("raw_durable_upload_mib_per_sec", round(durable_rate))
        .set(
            "upload_fraction_of_raw_durable",
            round(up_rate / durable_rate.max(1e-9) * 1000.0) / 1000.0,
        )
        .set("requests", counting.requests.load(Ordering::Relaxed))
        .set(
            "bytes_up_per_file_byte",
            round(counting.up.load(Ordering::Relaxed) as f64 / total * 1000.0) / 1000.0,
        );
    Ok(row)
}

fn ring_sha(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// Seconds to POST `total` bytes in chunk-sized requests over loopback HTTP to a server that
/// reads each body and answers 200: the ceiling of an upload on this machine. With `keep`,
/// the server appends each body to that file and syncs it before answering (what an upload
/// that acknowledges only durable bytes costs at least, without encryption or a database).
fn raw_upload(total: usize, keep: Option<&std::path::Path>) -> anyhow::Result<f64> {
    let mut file = keep.map(std::fs::File::create).transpose()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sink = std::thread::spawn(move || -> std::io::Result<()> {
        let (conn, _) = listener.accept()?;
        let mut reader = BufReader::new(conn.try_clone()?);
        let mut writer = conn;
        let mut body = vec![0u8; CHUNK_SIZE as usize];
        loop {
            let mut length = None;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse::<usize>().ok();
                }
            }
            let n = length.unwrap_or(0).min(body.len());
            reader.read_exact(&mut body[..n])?;
            if let Some(f) = file.as_mut() {
                f.write_all(&body[..n])?;
                f.sync_data()?;
            }
            writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")?;
        }
    });
    let http = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let chunk = vec![7u8; CHUNK_SIZE as usize];
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        let n = (total - sent).min(chunk.len());
        http.post(format!("http://{addr}/upload"))
            .body(chunk[..n].to_vec())
            .send()?
            .error_for_status()?;
        sent += n;
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(http);
    let _ = sink.join();
    Ok(elapsed)
}
