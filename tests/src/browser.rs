//! Headless Chromium for the web-form tests: the distribution's `chromium` driven through its
//! `chromedriver` over WebDriver on loopback, at a phone's width. Each [`Browser`] has its own
//! driver process, profile and session; screenshots go under the test's target directory.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// A phone's viewport, in CSS pixels.
pub const PHONE: (u32, u32) = (390, 844);

/// Where `chromedriver` is, if this machine has it (the distribution's package puts it on the
/// path; `.ci/run` installs it).
pub fn driver_path() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// One chromedriver and one browser session in it.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    pub client: Client,
    pub runtime: tokio::runtime::Runtime,
    /// Its profile (cookies, storage), removed with it.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver on a free loopback port and open a headless session `size` wide.
    pub fn start(size: (u32, u32)) -> Browser {
        let driver_bin = driver_path()
            .expect("chromedriver is not installed: apt-get install chromium chromium-driver");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("browser profile dir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "args": [
                    "--headless=new",
                    // Root in a container has no user namespaces for Chromium's sandbox.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    format!("--window-size={},{}", size.0, size.1),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = runtime
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&format!("http://{addr}")),
            )
            .expect("open a Chromium session");
        Browser {
            driver,
            client,
            runtime,
            _profile: profile,
        }
    }

    pub fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client.goto(url))
            .expect("navigate");
    }

    /// The page's HTML now.
    pub fn source(&self) -> String {
        self.runtime
            .block_on(self.client.source())
            .unwrap_or_default()
    }

    /// Wait until the page shows `text` (pages change by script, so there is no load event
    /// to wait for).
    pub fn wait_for_text(&self, text: &str) {
        let start = Instant::now();
        loop {
            let visible = self
                .runtime
                .block_on(self.client.execute(
                    "return document.body ? document.body.innerText : ''",
                    vec![],
                ))
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            if visible.contains(text) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the page never showed {text:?}; it shows:\n{visible}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Type `text` into the element `css` finds.
    pub fn type_into(&self, css: &str, text: &str) {
        self.runtime.block_on(async {
            let e = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css}: {e}"));
            e.clear().await.expect("clear");
            e.send_keys(text).await.expect("type");
        });
    }

    /// Click the element `css` finds.
    pub fn click(&self, css: &str) {
        self.runtime.block_on(async {
            self.client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css}: {e}"))
                .click()
                .await
                .expect("click");
        });
    }

    /// Press the form's button whose action is `value` (next, back, skip, add, …).
    pub fn press(&self, value: &str) {
        self.click(&format!("button[value={value}]"));
    }

    /// Save a PNG of the viewport as `dir/name.png`; returns its path.
    pub fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let png = self
            .runtime
            .block_on(self.client.screenshot())
            .expect("screenshot");
        std::fs::create_dir_all(dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(self.client.clone().close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
