//! A minimal W3C WebDriver client over HTTP, enough to drive headless Chromium through
//! `chromedriver` in the browser tests: sessions, CSS lookups, clicks, typing, text,
//! properties, scripts and screenshots, plus polling waits that save a screenshot and say what
//! the page showed when they give up.
//!
//! Chromium and chromedriver must be installed (Debian: `apt-get install chromium
//! chromium-driver`); `CHROMIUM` and `CHROMEDRIVER` override their paths. A missing binary is
//! a test failure, not a skip.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C WebDriver uses for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long the waits poll before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// Special keys for [`Element::send_keys`].
pub mod keys {
    /// Enter.
    pub const ENTER: &str = "\u{E007}";
    /// Tab.
    pub const TAB: &str = "\u{E004}";
    /// Escape.
    pub const ESCAPE: &str = "\u{E00C}";
    /// Arrow right.
    pub const RIGHT: &str = "\u{E014}";
    /// Arrow left.
    pub const LEFT: &str = "\u{E012}";
    /// Space.
    pub const SPACE: &str = "\u{E00D}";
}

/// Where the browser tests save screenshots: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    crate::target_dir().join("screenshots")
}

/// A WebDriver failure: the `error` code and message chromedriver answered.
#[derive(Debug)]
pub struct WdError {
    /// E.g. `no such element`.
    pub error: String,
    /// The driver's message.
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// A headless Chromium session driven through its own chromedriver process. Dropping it ends
/// the session (closing Chromium) and stops chromedriver.
pub struct Browser {
    http: reqwest::Client,
    driver: String,
    session: String,
    child: Child,
    _profile: tempfile::TempDir,
}

fn binary(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: the browser tests need Chromium and chromedriver \
         (Debian: apt-get install -y chromium chromium-driver; or set {var})"
    );
    path
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session with a fresh
    /// profile and a 1280x900 window.
    pub async fn start() -> Browser {
        let chromium = binary("CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        // The port may be taken between the probe and chromedriver's bind: retry a few times.
        for attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
            let driver = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut ready = false;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("chromedriver exited with {status} (attempt {attempt})");
                    break;
                }
                if let Ok(resp) = http.get(format!("{driver}/status")).send().await
                    && let Ok(body) = resp.json::<Value>().await
                    && body["value"]["ready"] == true
                {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !ready {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            }
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--disable-extensions",
                        "--disable-default-apps", "--no-default-browser-check", "--hide-scrollbars",
                        "--window-size=1280,900", "--force-device-scale-factor=1", "--lang=en-US",
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                },
            }}});
            let resp = http
                .post(format!("{driver}/session"))
                .json(&caps)
                .send()
                .await
                .expect("chromedriver answers");
            let body: Value = resp.json().await.expect("session JSON");
            let Some(session) = body["value"]["sessionId"].as_str() else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromedriver could not start Chromium: {body}");
            };
            return Browser {
                http,
                driver,
                session: session.to_string(),
                child,
                _profile: profile,
            };
        }
        panic!("chromedriver did not become ready");
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let url = format!("{}/session/{}{path}", self.driver, self.session);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, url);
        // POST commands need a JSON body, even an empty one.
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| WdError {
            error: "transport".into(),
            message: e.to_string(),
        })?;
        let ok = resp.status().is_success();
        let body: Value = resp.json().await.map_err(|e| WdError {
            error: "bad answer".into(),
            message: e.to_string(),
        })?;
        let value = body.get("value").cloned().unwrap_or(Value::Null);
        if ok {
            Ok(value)
        } else {
            Err(WdError {
                error: value["error"].as_str().unwrap_or("unknown").to_string(),
                message: value["message"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            })
        }
    }

    /// Opens a URL and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// Reloads the page.
    pub async fn refresh(&self) {
        self.cmd("POST", "/refresh", Some(json!({})))
            .await
            .expect("refresh");
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        let v = self.cmd("GET", "/url", None).await.expect("url");
        v.as_str().unwrap_or_default().to_string()
    }

    /// Runs a script (`return ...;`) with arguments; elements are passed with [`Element::arg`].
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The first element matching a CSS selector, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        match self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
        {
            Ok(v) => Some(Element {
                b: self,
                id: v[ELEMENT].as_str().expect("element id").to_string(),
                css: css.to_string(),
            }),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("find {css}: {e}"),
        }
    }

    /// Every element matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self
            .cmd(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .unwrap_or_else(|e| panic!("find all {css}: {e}"));
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| Element {
                b: self,
                id: e[ELEMENT].as_str().expect("element id").to_string(),
                css: css.to_string(),
            })
            .collect()
    }

    /// Waits for a displayed element matching `css`.
    pub async fn find(&self, css: &str) -> Element<'_> {
        self.until(&format!("a visible {css}"), async || {
            let el = self.try_find(css).await?;
            el.displayed().await.then_some(el)
        })
        .await
    }

    /// Waits for an element matching `css`, displayed or not (e.g. on a hidden tab).
    pub async fn present(&self, css: &str) -> Element<'_> {
        self.until(&format!("a {css}"), async || self.try_find(css).await)
            .await
    }

    /// Waits for an element matching `css` whose text contains `text`; returns it.
    pub async fn find_text(&self, css: &str, text: &str) -> Element<'_> {
        self.until(&format!("{css} containing {text:?}"), async || {
            for el in self.find_all(css).await {
                if el.text().await.contains(text) {
                    return Some(el);
                }
            }
            None
        })
        .await
    }

    /// Like [`Browser::find_text`] on `textContent` (the text before CSS transforms it).
    pub async fn find_content(&self, css: &str, text: &str) -> Element<'_> {
        self.until(&format!("{css} with content {text:?}"), async || {
            for el in self.find_all(css).await {
                if el.content().await.contains(text) {
                    return Some(el);
                }
            }
            None
        })
        .await
    }

    /// Waits until no element matches `css`.
    pub async fn gone(&self, css: &str) {
        self.until(&format!("no {css}"), async || {
            self.try_find(css).await.is_none().then_some(())
        })
        .await
    }

    /// Waits until a script returns something truthy; returns it.
    pub async fn until_js(&self, what: &str, script: &str) -> Value {
        self.until(what, async || {
            let v = self.execute(script, vec![]).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            truthy.then_some(v)
        })
        .await
    }

    /// Polls `probe` every 100 ms until it answers; after [`WAIT`] saves
    /// `target/screenshots/failed-*.png` and panics with the page's text.
    pub async fn until<T>(&self, what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            if Instant::now() > deadline {
                let name: String = what
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .take(60)
                    .collect();
                let shot = self.screenshot(&format!("failed-{name}")).await;
                let text = self
                    .execute("return document.body.innerText;", vec![])
                    .await;
                panic!(
                    "timed out waiting for {what}\nscreenshot: {}\npage text:\n{}",
                    shot.display(),
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the viewport to `target/screenshots/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let v = self
            .cmd("GET", "/screenshot", None)
            .await
            .expect("screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Saves a PNG of the whole page (the window grows to the page's height for the shot).
    pub async fn screenshot_full(&self, name: &str) -> PathBuf {
        let size = self
            .execute(
                "return [window.outerWidth, window.outerHeight, window.outerHeight - window.innerHeight,
                         Math.ceil(document.documentElement.scrollHeight)];",
                vec![],
            )
            .await;
        let n = |i: usize| size[i].as_u64().unwrap_or(0) as u32;
        let (width, height, chrome, page) = (n(0), n(1), n(2), n(3));
        self.resize(width, (page + chrome).max(height)).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let path = self.screenshot(name).await;
        self.resize(width, height).await;
        path
    }

    /// Resizes the window (CSS pixels), e.g. to fit a tall page in one screenshot.
    pub async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await
        .expect("resize");
    }

    /// Lays the page out as a 390x844 phone screen does (Chromium's device emulation: a
    /// window cannot be made that narrow).
    pub async fn phone(&self) {
        let metrics = json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true});
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": metrics})),
        )
        .await
        .expect("device emulation");
    }

    /// Sends keys to whatever has focus.
    pub async fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await
        .expect("key actions");
        let _ = self.cmd("DELETE", "/actions", None).await;
    }

    /// The focused element's id attribute.
    pub async fn focused_id(&self) -> String {
        self.execute(
            "return document.activeElement ? document.activeElement.id : '';",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// The whole page's visible text.
    pub async fn page_text(&self) -> String {
        self.execute("return document.body.innerText;", vec![])
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's HTML as it is now (after scripts ran).
    pub async fn page_html(&self) -> String {
        self.execute("return document.documentElement.outerHTML;", vec![])
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Messages the page logged to the console at SEVERE level (script errors), if chromedriver
    /// keeps them.
    pub async fn severe_logs(&self) -> Vec<String> {
        match self
            .cmd("POST", "/se/log", Some(json!({"type": "browser"})))
            .await
        {
            Ok(v) => v
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["level"] == "SEVERE")
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Browser {
    /// Ends the session (so chromedriver closes Chromium) with a blocking request, then stops
    /// chromedriver.
    fn drop(&mut self) {
        let host = self.driver.trim_start_matches("http://").to_string();
        if let Ok(mut stream) = std::net::TcpStream::connect(&host) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                self.session
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut sink = Vec::new();
                let _ = stream.read_to_end(&mut sink);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An element of the current page.
pub struct Element<'a> {
    b: &'a Browser,
    id: String,
    css: String,
}

impl<'a> Element<'a> {
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        self.b
            .cmd(method, &format!("/element/{}{path}", self.id), body)
            .await
    }

    /// The element as a script argument.
    pub fn arg(&self) -> Value {
        json!({ ELEMENT: self.id })
    }

    /// Clicks it (scrolling it into view first, as WebDriver does).
    pub async fn click(&self) {
        self.cmd("POST", "/click", Some(json!({})))
            .await
            .unwrap_or_else(|e| panic!("click {}: {e}", self.css));
    }

    /// Types into it (appending to what is there). See [`keys`] for special keys.
    pub async fn send_keys(&self, text: &str) {
        self.cmd("POST", "/value", Some(json!({ "text": text })))
            .await
            .unwrap_or_else(|e| panic!("type into {}: {e}", self.css));
    }

    /// Empties an input.
    pub async fn clear(&self) {
        self.cmd("POST", "/clear", Some(json!({})))
            .await
            .unwrap_or_else(|e| panic!("clear {}: {e}", self.css));
    }

    /// Empties an input, then types `text`.
    pub async fn fill(&self, text: &str) {
        self.clear().await;
        if !text.is_empty() {
            self.send_keys(text).await;
        }
    }

    /// Its rendered text.
    pub async fn text(&self) -> String {
        self.cmd("GET", "/text", None)
            .await
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    /// Its `textContent` (the text as written, before CSS such as `text-transform`).
    pub async fn content(&self) -> String {
        self.prop("textContent")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A DOM property (`value`, `checked`, `disabled`, ...).
    pub async fn prop(&self, name: &str) -> Value {
        self.cmd("GET", &format!("/property/{name}"), None)
            .await
            .unwrap_or(Value::Null)
    }

    /// An attribute, if set.
    pub async fn attr(&self, name: &str) -> Option<String> {
        self.cmd("GET", &format!("/attribute/{name}"), None)
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    }

    /// `value` as a string.
    pub async fn value(&self) -> String {
        self.prop("value")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// True if checked.
    pub async fn checked(&self) -> bool {
        self.prop("checked").await == Value::Bool(true)
    }

    /// True if displayed (a stale element counts as not displayed).
    pub async fn displayed(&self) -> bool {
        self.cmd("GET", "/displayed", None).await.ok() == Some(Value::Bool(true))
    }

    /// True if enabled.
    pub async fn enabled(&self) -> bool {
        self.cmd("GET", "/enabled", None).await.ok() == Some(Value::Bool(true))
    }

    /// The first descendant matching `css`.
    pub async fn find(&self, css: &str) -> Element<'a> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .unwrap_or_else(|e| panic!("find {css} in {}: {e}", self.css));
        Element {
            b: self.b,
            id: v[ELEMENT].as_str().expect("element id").to_string(),
            css: format!("{} {css}", self.css),
        }
    }

    /// Picks the `<option>` of this `<select>` whose value is `value`, as a user would.
    pub async fn select(&self, value: &str) {
        self.find(&format!("option[value=\"{value}\"]"))
            .await
            .click()
            .await;
    }
}
