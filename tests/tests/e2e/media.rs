//! Attachments end to end: photos, recordings and documents answered on a device offline,
//! uploaded after their responses through a network that cuts connections, resumed after an
//! interruption, kept through server kills, refused clearly when wrong, never in plaintext in
//! any file, and erased with their responses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fieldsync_e2e::client::str_field;
use fieldsync_e2e::data::{all_files, contains};
use fieldsync_e2e::{Client, Fault, FaultProxy, Rng, World};
use serde_json::{Value, json};

const SURVEY: &str = "site_visit";
const CHUNK: u64 = 1024 * 1024;
const CHUNK_ROUTE: &str = "POST /v1/sync/media/chunk";

/// A file of `size` bytes: a header that names its type (PNG and JPEG with their pixel
/// sizes), a sentinel string the test later searches every file for, and seeded noise.
fn make_file(dir: &Path, name: &str, size: usize, sentinel: &str, seed: u64) -> PathBuf {
    let mut bytes = Vec::with_capacity(size);
    if name.ends_with(".png") {
        bytes.extend_from_slice(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        bytes.extend_from_slice(&1600u32.to_be_bytes());
        bytes.extend_from_slice(&1200u32.to_be_bytes());
    } else if name.ends_with(".jpg") {
        bytes.extend_from_slice(&[
            0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x02, 0x58, 0x03, 0x20,
        ]);
    }
    bytes.extend_from_slice(sentinel.as_bytes());
    let mut rng = Rng::new(seed);
    while bytes.len() < size {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes.truncate(size);
    std::fs::create_dir_all(dir).expect("files dir");
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write file");
    path
}

fn publish(w: &World) -> String {
    str_field(&w.publish("site-visit-media.json"), "survey_id")
}

/// A device enrolled through `proxy`, holding the survey.
fn device(w: &World, proxy: &FaultProxy, home: &str) -> Client {
    let (device, _) = w.enumerator_via(home, home, &[SURVEY], &proxy.url());
    device.sync();
    device
}

/// Collect `rows` from an answers file written in `dir` (where the files it names are).
fn collect(device: &Client, dir: &Path, rows: &[Value]) -> Vec<String> {
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    let file = dir.join(format!("answers-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(&file, text).expect("answers file");
    let stored = device.json(&[
        "collect",
        SURVEY,
        "--answers",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(stored["invalid"], json!([]), "{stored}");
    stored["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect()
}

/// Sync until a sync ends well with nothing left to upload (faults may fail some).
fn sync_until_uploaded(device: &Client, passes: usize) {
    for _ in 0..passes {
        let out = device.run(&["sync", "--json"]);
        if out.code == Some(0) && device.status()["media_waiting"] == json!(0) {
            return;
        }
        assert!(
            matches!(out.code, Some(0) | Some(3)),
            "a sync through faults may only succeed or find the server unreachable: {}",
            out.describe()
        );
    }
    panic!(
        "files still waiting after {passes} syncs: {}",
        device.status()
    );
}

/// The admin's download of every file of `response`: name to bytes.
fn downloaded(w: &World, response: &str) -> BTreeMap<String, Vec<u8>> {
    let out = w.out_path(&format!("media-{response}"));
    let listed = w.admin.json(&["media", "list", response]);
    w.admin.ok(&[
        "media",
        "get",
        response,
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let files: BTreeMap<String, Vec<u8>> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|f| {
            let name = f["name"].as_str().expect("name").to_owned();
            assert_eq!(f["stored"], json!(true), "{f}");
            let bytes = std::fs::read(out.join(&name)).expect("downloaded file");
            assert_eq!(bytes.len() as u64, f["size"].as_u64().expect("size"));
            (name, bytes)
        })
        .collect();
    files
}

/// The answer a response holds for `question` (the attachment name), as the admin sees it.
fn answer(w: &World, response: &str, question: &str) -> String {
    w.admin.sync();
    let shown = w.admin.json(&["response", "show", response]);
    fieldsync_e2e::data::answers_of(&shown)
        .get(question)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {question} in {shown}"))
        .to_owned()
}

/// One value of the server's SQLite database.
fn count(w: &World, sql: &str) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        w.server.data_dir().join("fieldsync.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the server database");
    db.query_row(sql, [], |r| r.get(0)).expect("query")
}

/// No blob without an attachment, every blob's chunks all there and counted.
fn assert_consistent(w: &World) {
    assert_eq!(
        count(
            w,
            "SELECT count(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM attachments a
             WHERE a.org_id = b.org_id AND a.address = b.address)"
        ),
        0,
        "a stored file no response names"
    );
    assert_eq!(
        count(
            w,
            "SELECT count(*) FROM attachments a WHERE NOT EXISTS (SELECT 1 FROM blobs b
             WHERE a.org_id = b.org_id AND a.address = b.address)"
        ),
        0,
        "an attachment whose file is missing"
    );
    assert_eq!(
        count(
            w,
            "SELECT count(*) FROM blobs b WHERE received != (SELECT count(*) FROM blob_chunks c
             WHERE c.org_id = b.org_id AND c.address = b.address)"
        ),
        0,
        "a file whose count of chunks is not its chunks"
    );
}

/// Files under `dirs` holding `needle`.
fn holding(dirs: &[&Path], needle: &str) -> Vec<PathBuf> {
    dirs.iter()
        .flat_map(|d| all_files(d))
        .filter(|f| std::fs::read(f).is_ok_and(|b| contains(&b, needle.as_bytes())))
        .collect()
}

#[test]
fn photos_and_recordings_collected_offline_arrive_byte_identical_once_through_cut_connections() {
    let w = World::start();
    publish(&w);
    let proxy = FaultProxy::start(w.server.addr(), 0x0ED1A);
    let device = device(&w, &proxy, "field-phone");
    let dir = w.root().join("camera");
    let sentinels = [
        "SENTINEL-photo-7f3a91",
        "SENTINEL-voice-51c2e8",
        "SENTINEL-defect-9b04d7",
        "SENTINEL-log-2e6a13",
    ];
    let photo = make_file(
        &dir,
        "pump.png",
        (2 * CHUNK + 300_000) as usize,
        sentinels[0],
        1,
    );
    let voice = make_file(
        &dir,
        "statement.m4a",
        (CHUNK + 77_777) as usize,
        sentinels[1],
        2,
    );
    let defect = make_file(&dir, "handle.jpg", 250_000, sentinels[2], 3);
    let log = make_file(&dir, "log.pdf", 20_000, sentinels[3], 4);
    // Offline: the server is out of reach while the enumerator works.
    proxy.set_upstream("127.0.0.1:9".parse().expect("addr"));
    let ids = collect(
        &device,
        &dir,
        &[
            json!({
                "caretaker_name": "Amina Bello",
                "site_photo": "pump.png",
                "caretaker_statement": "statement.m4a",
                "defect": [{"defect_description": "cracked handle", "defect_photo": "handle.jpg"}],
                "maintenance_log": "log.pdf",
            }),
            // The same photo again, for another visit: stored once on the server.
            json!({"caretaker_name": "Joseph Okello", "site_photo": photo.to_str().expect("utf-8")}),
        ],
    );
    let status = device.status();
    assert_eq!(status["media_waiting"], json!(5), "{status}");
    // Back in reach, through a network that cuts, truncates, drops and duplicates requests.
    proxy.set_upstream(w.server.addr());
    proxy.set_faults(true);
    sync_until_uploaded(&device, 40);
    proxy.set_faults(false);
    let counts = proxy.counts();
    let hit: u64 = counts
        .by_route
        .iter()
        .filter(|((route, fault), _)| route == CHUNK_ROUTE && *fault != Fault::None)
        .map(|(_, n)| n)
        .sum();
    assert!(hit > 0, "no chunk upload met a fault: {counts:?}");

    // Every file arrived byte-identical, under the name its answer holds.
    let first = downloaded(&w, &ids[0]);
    let expect = [
        ("site_photo", &photo),
        ("caretaker_statement", &voice),
        ("maintenance_log", &log),
    ];
    for (question, path) in expect {
        let name = answer(&w, &ids[0], question);
        assert_eq!(
            first.get(&name),
            Some(&std::fs::read(path).expect("original")),
            "{question} ({name}) is not the file attached"
        );
    }
    assert!(
        first
            .values()
            .any(|b| *b == std::fs::read(&defect).expect("original")),
        "the defect photo inside the repeat entry did not arrive"
    );
    assert_eq!(first.len(), 4, "{:?}", first.keys());
    let second = downloaded(&w, &ids[1]);
    assert_eq!(
        second.values().collect::<Vec<_>>(),
        vec![&std::fs::read(&photo).expect("original")]
    );
    // Exactly once: four files (the shared photo once), five attachments, every chunk
    // stored once.
    assert_eq!(count(&w, "SELECT count(*) FROM blobs"), 4);
    assert_eq!(count(&w, "SELECT count(*) FROM attachments"), 5);
    assert_eq!(
        count(&w, "SELECT count(*) FROM blob_chunks"),
        count(&w, "SELECT sum(chunks) FROM blobs")
    );
    assert_consistent(&w);

    // The zip export: the tables, and every file under `media/` by its answer's name.
    let zip_path = w.out_path("site_visit.zip");
    let exported = w.admin.json(&[
        "export",
        SURVEY,
        "--format",
        "zip",
        "--out",
        zip_path.to_str().expect("utf-8"),
    ]);
    assert_eq!(exported["media"], json!(5), "{exported}");
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(&zip_path).expect("zip")).expect("a zip");
    let mut entries = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).expect("entry");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read entry");
        entries.insert(entry.name().to_owned(), bytes);
    }
    assert!(
        entries.contains_key("site_visit.csv"),
        "{:?}",
        entries.keys()
    );
    assert!(
        entries.contains_key("site_visit-defect.csv"),
        "{:?}",
        entries.keys()
    );
    for (name, bytes) in first.iter().chain(&second) {
        assert_eq!(
            entries.get(&format!("media/{name}")),
            Some(bytes),
            "media/{name}"
        );
    }
    let table = String::from_utf8(entries["site_visit.csv"].clone()).expect("utf-8");
    assert!(
        table.contains(&answer(&w, &ids[0], "site_photo")),
        "{table}"
    );

    // The respondent's right of access reaches their files too.
    let (exported, csv) = super::rights_support::export_subject(&w, "Amina Bello");
    let files = exported["responses"][0]["files"]
        .as_array()
        .expect("files")
        .clone();
    assert_eq!(files.len(), 4, "{exported}");
    for f in &files {
        let name = f["name"].as_str().expect("name");
        assert!(csv.contains(name), "{csv}");
    }
    // Saved beside the export, in `EXPORT.json-files/RESPONSE/NAME`.
    let dirs: Vec<PathBuf> = all_files(&w.root().join("files"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("-files/"))
        .collect();
    for (name, bytes) in &first {
        assert!(
            dirs.iter()
                .any(|p| p.ends_with(name) && std::fs::read(p).ok().as_ref() == Some(bytes)),
            "{name} is not beside the subject export: {dirs:?}"
        );
    }

    // No sentinel in plaintext in any file of the server, the device or the admin's home, or
    // in the server's log.
    let server_dir = w.server.data_dir().to_owned();
    for s in sentinels {
        let found = holding(&[&server_dir, device.home(), w.admin.home()], s);
        assert!(found.is_empty(), "{s} found in plaintext in {found:?}");
        assert!(!w.server.logs().contains(s), "{s} in the server log");
    }

    // Erasing the first respondent erases their files, but not the photo the second
    // response still names.
    w.admin.ok(&[
        "subject",
        "erase",
        "Amina Bello",
        "--reason",
        "request by email",
        "--yes",
    ]);
    assert_eq!(count(&w, "SELECT count(*) FROM attachments"), 1);
    assert_eq!(count(&w, "SELECT count(*) FROM blobs"), 1);
    assert_consistent(&w);
    assert_eq!(downloaded(&w, &ids[1]).len(), 1);
}

#[test]
fn an_interrupted_50_mib_upload_resumes_and_resends_at_most_one_chunk() {
    let w = World::start();
    publish(&w);
    let proxy = FaultProxy::start(w.server.addr(), 1);
    let device = device(&w, &proxy, "video-phone");
    let dir = w.root().join("camera");
    let size = 50 * CHUNK;
    let video = make_file(&dir, "pump.mp4", size as usize, "SENTINEL-video", 9);
    make_file(&dir, "site.png", 40_000, "SENTINEL-site", 10);
    let ids = collect(
        &device,
        &dir,
        &[json!({"caretaker_name": "Grace", "site_photo": "site.png", "pump_video": "pump.mp4"})],
    );
    // Interrupt the upload once about 20 MiB of the video went through.
    let running = device.spawn(&["sync"]);
    let deadline = Instant::now() + Duration::from_secs(300);
    while proxy.counts().bytes_of(CHUNK_ROUTE) < 20 * CHUNK {
        assert!(Instant::now() < deadline, "the upload did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    running.kill();
    let before = proxy.counts().bytes_of(CHUNK_ROUTE);
    let status = device.status();
    // The video at least (the photo may have gone first).
    assert!(
        matches!(status["media_waiting"].as_u64(), Some(1 | 2)),
        "{status}"
    );
    let left = status["media_bytes_left"].as_u64().expect("bytes left");
    assert!(left < size - 10 * CHUNK, "no progress was kept: {status}");
    assert!(left > 0, "{status}");

    let report = device.sync();
    assert_eq!(
        report["media_uploaded"], status["media_waiting"],
        "the files left waiting are uploaded: {report}"
    );
    assert_eq!(device.status()["media_waiting"], json!(0));
    // Everything sent for the files, both syncs together: the video and the photo once, at
    // most one chunk more, and each request's few hundred bytes of framing.
    let sent = proxy.counts().bytes_of(CHUNK_ROUTE);
    eprintln!(
        "[e2e] {sent} bytes of chunk requests for a {size}-byte video and a 40000-byte photo ({before} before the interruption)"
    );
    let requests = 52;
    let bound = size + 40_000 + CHUNK + requests * 600;
    assert!(
        sent <= bound,
        "{sent} bytes sent for {size} bytes of video (before the interruption: {before})"
    );
    let name = answer(&w, &ids[0], "pump_video");
    assert_eq!(
        downloaded(&w, &ids[0]).get(&name),
        Some(&std::fs::read(&video).expect("original"))
    );
}

#[test]
fn server_kills_during_uploads_lose_no_acknowledged_chunk_and_leave_no_orphan() {
    let mut w = World::start();
    publish(&w);
    let proxy = FaultProxy::start(w.server.addr(), 2);
    let device = device(&w, &proxy, "kill-phone");
    let dir = w.root().join("camera");
    let mut originals = Vec::new();
    let mut rows = Vec::new();
    for i in 0..3u64 {
        let video = make_file(
            &dir,
            &format!("v{i}.mp4"),
            (6 * CHUNK + i * 1000) as usize,
            "S",
            20 + i,
        );
        make_file(&dir, &format!("p{i}.png"), 30_000, "S", 30 + i);
        originals.push(video);
        rows.push(json!({
            "caretaker_name": format!("Caretaker {i}"),
            "site_photo": format!("p{i}.png"),
            "pump_video": format!("v{i}.mp4"),
        }));
    }
    let ids = collect(&device, &dir, &rows);
    // Each round kills the server once two more chunks went through: always in the middle
    // of an upload (18 MiB in all, 12 of them sent by the last kill).
    for round in 0..6 {
        let start = proxy.counts().bytes_of(CHUNK_ROUTE);
        let running = device.spawn(&["sync"]);
        let deadline = Instant::now() + Duration::from_secs(120);
        while proxy.counts().bytes_of(CHUNK_ROUTE) < start + 2 * CHUNK {
            assert!(
                Instant::now() < deadline,
                "round {round}: the upload did not go on"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        w.server.kill();
        let _ = running.wait(Duration::from_secs(120));
        assert_consistent(&w);
        w.server.restart();
        proxy.set_upstream(w.server.addr());
        let status = device.status();
        assert!(
            status["media_waiting"].as_u64() > Some(0),
            "round {round}: the uploads ended before the kill: {status}"
        );
    }
    sync_until_uploaded(&device, 3);
    assert_consistent(&w);
    for (id, original) in ids.iter().zip(&originals) {
        let name = answer(&w, id, "pump_video");
        assert_eq!(
            downloaded(&w, id).get(&name),
            Some(&std::fs::read(original).expect("original")),
            "the video of {id} is not the one recorded"
        );
    }
    assert_eq!(count(&w, "SELECT count(*) FROM blobs"), 6);
}

/// A PNG header claiming `w`×`h` pixels.
fn png(dir: &Path, name: &str, w: u32, h: u32) -> PathBuf {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend_from_slice(&w.to_be_bytes());
    bytes.extend_from_slice(&h.to_be_bytes());
    bytes.extend_from_slice(&[0u8; 5000]);
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

#[test]
fn an_interview_takes_a_file_path_checks_it_against_the_question_and_edits_release_the_old_file() {
    let w = World::start();
    publish(&w);
    let (device, _) = w.enumerator("phone", "phone", &[SURVEY]);
    device.sync();
    let dir = w.root().join("pictures");
    let huge = png(&dir, "huge.png", 6000, 4000);
    let good = png(&dir, "good.png", 1600, 1200);
    let better = png(&dir, "better.png", 2000, 1500);
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "not a picture").expect("write");
    let typed = format!(
        "Amina Bello\n{}\n{}\n\"{}\"\n:save\n",
        huge.display(),
        notes.display(),
        good.display()
    );
    let out = device.ok_stdin(&["collect", SURVEY], Some(&typed));
    assert!(
        out.contains("6000×4000 pixels") && out.contains("at most 4000"),
        "{out}"
    );
    assert!(out.contains("takes an image"), "{out}");
    assert!(out.contains("attached as good-"), "{out}");
    let id = device.response_ids(&[])[0].clone();
    let held = || {
        let db = rusqlite::Connection::open_with_flags(
            device.home().join("fieldsync.sqlite"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the device store");
        let names: Vec<String> = db
            .prepare("SELECT name FROM media WHERE doc_id IS NOT NULL ORDER BY name")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        names
    };
    assert_eq!(held().len(), 1, "{:?}", held());
    // Replacing the photo releases the old file; a file over the question's limit is refused
    // with what the limit is, and nothing changes.
    device.ok(&[
        "response",
        "edit",
        &id,
        "--set",
        &format!("site_photo={}", better.display()),
    ]);
    let now = held();
    assert!(now.len() == 1 && now[0].starts_with("better-"), "{now:?}");
    let log = make_file(&dir, "log.pdf", 70 * 1024, "log", 5);
    let refused = device.fails(
        &[
            "response",
            "edit",
            &id,
            "--set",
            &format!("maintenance_log={}", log.display()),
        ],
        6,
    );
    assert!(
        refused.contains("64.0 KiB") && refused.contains("70.0 KiB"),
        "{refused}"
    );
    assert_eq!(held(), now);
    device.ok(&["response", "submit", &id]);
    let report = device.sync();
    assert_eq!(report["media_uploaded"], json!(1), "{report}");
    let name = answer(&w, &id, "site_photo");
    assert!(name.starts_with("better-"), "{name}");
    assert_eq!(
        downloaded(&w, &id).get(&name),
        Some(&std::fs::read(&better).expect("original"))
    );
}

#[test]
fn a_form_with_choices_and_prices_from_attached_files_works_on_a_device_offline() {
    let w = World::start();
    let form = fieldsync_e2e::bins::fixture("surveys/market-prices.json");
    let form = form.to_str().expect("utf-8");
    // Without its files the form is refused, naming each one and the row that needs it.
    let refused = w.admin.fails(&["survey", "publish", form], 6);
    assert!(
        refused.contains("markets.csv")
            && refused.contains("prices.csv")
            && refused.contains("commodity.png"),
        "{refused}"
    );
    let media = fieldsync_e2e::bins::fixture("surveys/market-media");
    w.admin.ok(&[
        "survey",
        "publish",
        form,
        "--media",
        media.to_str().expect("utf-8"),
    ]);
    let proxy = FaultProxy::start(w.server.addr(), 3);
    let (device, _) = w.enumerator_via(
        "market-phone",
        "market-phone",
        &["market_prices"],
        &proxy.url(),
    );
    device.sync();
    // From here the server is out of reach.
    proxy.set_upstream("127.0.0.1:9".parse().expect("addr"));
    let typed = "1\n2\n2\n2\n20000\n3000\ny\n";
    let shown = device.ok_stdin(&["collect", "market_prices"], Some(typed));
    for expected in [
        "(image: commodity.png)",
        "1) Gulu Main Market",
        "2) Lira",
        "2) Mbarara depot",
        "Price observed (reference 3400)",
        "More than three times the reference price",
        "submitted response",
    ] {
        assert!(
            shown.contains(expected),
            "the interview shows {expected:?}:\n{shown}"
        );
    }
    assert!(
        !shown.contains("Mbarara \"Central\""),
        "the south's market is filtered out:\n{shown}"
    );
    // The form's files are on the device, as published.
    let saved = w.root().join("market-files");
    device.ok(&[
        "survey",
        "files",
        "market_prices",
        "--out",
        saved.to_str().expect("utf-8"),
    ]);
    for name in [
        "markets.csv",
        "prices.csv",
        "commodities.geojson",
        "commodity.png",
    ] {
        assert_eq!(
            std::fs::read(saved.join(name)).expect("saved"),
            std::fs::read(media.join(name)).expect("original"),
            "{name}"
        );
    }
    let id = device.response_ids(&[])[0].clone();
    let answers = fieldsync_e2e::data::answers_of(&device.json(&["response", "show", &id]));
    assert_eq!(answers["market"], json!("lira"), "{answers:?}");
    assert_eq!(answers["depot"], json!("d2"), "{answers:?}");
    assert_eq!(
        answers["reference_price"].to_string().trim_matches('"'),
        "3400",
        "{answers:?}"
    );
    // Back in reach: the server validated it with the same files.
    proxy.set_upstream(w.server.addr());
    device.sync();
    let rows = w.export_rows("market_prices");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["answers"]["market"], json!("lira"), "{}", rows[0]);
    assert_eq!(rows[0]["errors"], json!([]), "{}", rows[0]);
}
