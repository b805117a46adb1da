//! Headless Chromium for the page tests: one-shot runs (`--dump-dom`, `--screenshot`)
//! and a browser driven over the DevTools protocol, whose pages the tests read and click
//! as a person would (the page's own script does the work; the test evaluates DOM calls
//! in it and waits for what the page shows).

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_websockets::{ClientBuilder, MaybeTlsStream, Message, WebSocketStream};

/// The flags every headless Chromium here starts with.
const FLAGS: [&str; 5] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

fn command(profile: &Path) -> Command {
    let mut cmd = Command::new("chromium");
    cmd.args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Headless Chromium (Debian's `chromium`, which `make test` installs) with `args`, run
/// to its end.
pub(super) fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let out = command(profile.path())
        .arg("--virtual-time-budget=8000")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("chromium is not installed ({e}): run `make test`, which installs it")
        });
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A headless Chromium that stays up, driven over the DevTools protocol.
pub(super) struct Browser {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with a 1400×1600 window, debugging on a port it picks.
    pub(super) fn start() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = command(profile.path())
            .args([
                "--remote-debugging-port=0",
                "--window-size=1400,1600",
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromium is not installed ({e}): run `make test`, which installs it")
            });
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining its log so Chromium never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("DevTools listening on ws://127.0.0.1:").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium did not open its DevTools port");
        Browser {
            child,
            port,
            _profile: profile,
        }
    }

    /// A new tab, loading `url` (see [`Page::load`]).
    pub(super) async fn open(&self, url: &str) -> Page {
        let target: Value = reqwest::Client::new()
            .put(format!(
                "http://127.0.0.1:{}/json/new?about:blank",
                self.port
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ws = target["webSocketDebuggerUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("no page target: {target}"));
        let (ws, _) = ClientBuilder::new()
            .uri(ws)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut page = Page { ws, next: 0 };
        page.load(url).await;
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab.
pub(super) struct Page {
    ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    next: u64,
}

impl Page {
    /// Calls a DevTools method; its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let text = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(Message::text(text)).await.unwrap();
        loop {
            let message = self.ws.next().await.unwrap().unwrap();
            let Some(text) = message.as_text() else {
                continue;
            };
            let reply: Value = serde_json::from_str(text).unwrap();
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise); its value.
    pub(super) async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Waits up to `within` for `expression` to be truthy in the page; its value.
    pub(super) async fn wait_for(&mut self, expression: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.eval(expression).await;
            if !(value.is_null() || value == false || value == "" || value == 0) {
                return value;
            }
            if Instant::now() > deadline {
                let body = self.eval("document.body.innerText").await;
                panic!("{expression} not true within {within:?}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Goes to `url` and waits for its script to say it loaded (`data-loaded`).
    /// The new page is known by the mark the old one had and it lacks (so `url` must not
    /// differ from the current address only in its fragment, which loads nothing).
    pub(super) async fn load(&mut self, url: &str) {
        self.eval("window.__left = true").await;
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("!window.__left", Duration::from_secs(30))
            .await;
        self.loaded().await;
    }

    /// Waits for the page's script to say it loaded its data (`data-loaded="true"`);
    /// panics with what the page shows when it says it could not.
    pub(super) async fn loaded(&mut self) {
        let state = self
            .wait_for(
                "document.readyState === 'complete' && document.body.dataset.loaded",
                Duration::from_secs(30),
            )
            .await;
        if state != "true" {
            let body = self.eval("document.body.innerText").await;
            panic!("the page did not load its data:\n{body}");
        }
    }

    /// Writes the page, as far down as it goes, to `path` (PNG).
    pub(super) async fn screenshot(&mut self, path: &Path) {
        use base64::Engine as _;
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        assert!(png.len() > 10_000, "{} is nearly empty", path.display());
    }
}
