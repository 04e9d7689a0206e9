//! The real `fieldsync-server` binary on port 0, and the HTTP helpers the tests drive it with.

use super::*;

/// A real server with an organisation, its admin, a coordinator and the household survey
/// published: what most tests of the real binary start from.
pub struct Served {
    /// Holds the data directory; dropped last.
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub admin: String,
    pub coordinator: String,
    pub survey: Uuid,
}

/// [`Served`] with these server flags and environment.
pub fn served(extra: &[&str], env: &[(&str, &str)]) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, admin_once) = create_org_cli(&data, "Acme");
    let server = Server::start_env(&data, extra, env);
    let client = Server::client();
    let admin = login_http(&server, &client, &admin_once);
    let coordinator = coordinator_http(&server, &client, &admin);
    let survey = publish_http(
        &server,
        &client,
        &admin,
        &fixture("surveys/household-v1.json"),
    )
    .survey_id;
    Served {
        dir,
        server,
        admin,
        coordinator,
        survey,
    }
}

/// A running `fieldsync-server serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
    pub stderr_log: PathBuf,
}

impl Server {
    /// Start the server on `data` with extra flags, and wait for its `listening on` line.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Server::start_env(data, extra, &[])
    }

    pub fn start_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        std::fs::create_dir_all(data).expect("data dir");
        let stderr_log = data.with_extension(format!("stderr-{}.log", Uuid::new_v4().simple()));
        let stderr = std::fs::File::create(&stderr_log).expect("stderr log");
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(data)
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start fieldsync-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            while lines.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Some(url) = line.trim().strip_prefix("listening on ") {
                    let _ = tx.send(url.to_owned());
                }
                line.clear();
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(&stderr_log).unwrap_or_default();
                panic!("fieldsync-server did not start: {log}");
            }
        };
        Server {
            child,
            url,
            data: data.to_owned(),
            stderr_log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> Vec<u8> {
        std::fs::read(&self.stderr_log).unwrap_or_default()
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// The most resident memory the server process has had, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    pub fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            // No connection reuse: after refusing an oversized body the server closes the
            // connection, and a pooled client could send the next request into it.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client")
    }

    pub fn send(&self, client: &reqwest::blocking::Client, req: Req) -> Reply {
        self.try_send(client, req).expect("request failed")
    }

    pub fn try_send(
        &self,
        client: &reqwest::blocking::Client,
        req: Req,
    ) -> Result<Reply, reqwest::Error> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).expect("method");
        let mut b = client.request(method, format!("{}{}", self.url, req.path));
        if let Some(t) = &req.token {
            b = b.bearer_auth(t);
        }
        if let Some(o) = &req.org_header {
            b = b.header("x-fieldsync-org", o);
        }
        if let Some(ct) = req.content_type {
            b = b.header("content-type", ct);
        }
        let resp = b.body(req.body).send()?;
        let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes()?.to_vec();
        Ok(Reply {
            status,
            body,
            content_type,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fieldsync-server admin create-org --json` on a data directory: (org id, admin token).
pub fn create_org_cli(data: &Path, name: &str) -> (String, String) {
    let out = Command::new(BIN)
        .args(["admin", "create-org", "--name", name, "--json", "--data"])
        .arg(data)
        .output()
        .expect("run admin create-org");
    assert!(
        out.status.success(),
        "create-org: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("create-org JSON");
    (
        v["org_id"].as_str().expect("org_id").to_owned(),
        v["admin_token"].as_str().expect("admin_token").to_owned(),
    )
}

/// Log in over HTTP with a one-time token; the session token.
pub fn login_http(server: &Server, client: &reqwest::blocking::Client, one_time: &str) -> String {
    let r = server.send(
        client,
        Req::post("/v1/login").json(&serde_json::json!({ "token": one_time })),
    );
    assert_eq!(r.status, StatusCode::OK, "login: {}", r.text());
    r.json::<SessionGrant>().token
}

/// A coordinator session over HTTP, created by `admin`.
pub fn coordinator_http(
    server: &Server,
    client: &reqwest::blocking::Client,
    admin: &str,
) -> String {
    let r = server.send(
        client,
        Req::post("/v1/members")
            .token(admin)
            .json(&serde_json::json!({ "name": "Coordinator", "role": "coordinator" })),
    );
    assert_eq!(r.status, StatusCode::CREATED, "create member: {}", r.text());
    login_http(server, client, &r.json::<CreatedMember>().one_time_secret)
}

/// Publish a definition over HTTP.
pub fn publish_http(
    server: &Server,
    client: &reqwest::blocking::Client,
    token: &str,
    definition: &str,
) -> Published {
    let r = server.send(
        client,
        Req::post("/v1/surveys")
            .token(token)
            .raw("application/json", definition.as_bytes().to_vec()),
    );
    assert_eq!(r.status, StatusCode::CREATED, "publish: {}", r.text());
    r.json()
}

/// Pull every page from cursor 0 over HTTP.
pub fn pull_all_http(
    server: &Server,
    client: &reqwest::blocking::Client,
    token: &str,
) -> Vec<DocChanges> {
    let mut cursor = 0;
    let mut out = Vec::new();
    loop {
        let r = server.send(
            client,
            Req::post("/v1/sync/pull")
                .token(token)
                .cbor(&pull_request(cursor, 5000)),
        );
        assert_eq!(r.status, StatusCode::OK, "pull: {:?}", r.error());
        let page: PullResponse = r.cbor();
        out.extend(page.docs);
        cursor = page.cursor;
        if !page.more {
            return out;
        }
    }
}

/// Poll `f` until it returns `Some`, for at most `limit` (only to avoid hanging).
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "condition not reached within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Read a whole file, or nothing if it does not exist.
pub fn read_all(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_end(&mut out);
    }
    out
}
