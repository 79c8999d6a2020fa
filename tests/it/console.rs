//! The admin console in a real browser: Debian's headless `chromium`, driven over WebDriver (HTTP, spoken
//! with reqwest) through `chromedriver`, against the real server and the Cal.com double. Every wait polls
//! for what the page should show, with a generous deadline; nothing waits for a fixed time.
//!
//! Screenshots of each page go to `$IT_ARTIFACTS/console/` (default: cargo's test temp dir), not the repo.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use slotline::calendar::SystemClock;
use slotline::storage::{CallRecord, TranscriptLine};

use crate::calcom_double::{CalcomDouble, DoubleConfig};
use crate::helpers::{free_port, spawn_app, spawn_app_with, Db, TestApp};

/// How long a page gets to show what a step expects.
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
const CALCOM_KEY: &str = "cal_live_double_key_0001";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

// ---- a small WebDriver client -----------------------------------------------------------------------

/// A `chromedriver` process. Dropped, it ends the browser sessions still open (a failed test's) and
/// then itself, so no browser outlives a test.
struct Driver {
    child: Child,
    port: u16,
    base: String,
    http: reqwest::Client,
    sessions: Arc<Mutex<Vec<String>>>,
    /// chromedriver's and chromium's `TMPDIR` (profiles, singleton sockets), removed after them.
    _tmp: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Self {
        let program = std::env::var("IT_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = free_port();
        let tmp = tempfile::tempdir().expect("temp dir");
        let child = Command::new(&program)
            .arg(format!("--port={port}"))
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} ({e}): install Debian's chromium and chromium-driver (scripts/setup.sh --test)")
            });
        let driver = Self {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            sessions: Arc::default(),
            _tmp: tmp,
        };
        let started = Instant::now();
        loop {
            let ready = driver.http.get(format!("{}/status", driver.base)).send().await;
            if let Ok(response) = ready {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(started.elapsed() < DEADLINE, "chromedriver did not become ready on port {port}");
            tokio::time::sleep(POLL).await;
        }
        driver
    }

    async fn browser(&self) -> Browser {
        let binary = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("/usr/bin/chromium");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-extensions"]
            }
        }}});
        let response: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let id = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium did not start a session: {response}"))
            .to_string();
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).push(id.clone());
        Browser {
            url: format!("{}/session/{id}", self.base),
            id,
            http: self.http.clone(),
            sessions: self.sessions.clone(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Drop cannot await: a plain blocking HTTP/1.1 DELETE per open session makes chromedriver quit
        // its browser (killing chromedriver alone would leave chromium running).
        let open = std::mem::take(&mut *self.sessions.lock().unwrap_or_else(|e| e.into_inner()));
        for id in open {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(DEADLINE));
                let request = format!(
                    "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.port
                );
                let _ = stream.write_all(request.as_bytes());
                // The answer comes once the browser has quit; its first bytes are enough.
                let _ = stream.read(&mut [0u8; 512]);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
struct Browser {
    url: String,
    id: String,
    http: reqwest::Client,
    sessions: Arc<Mutex<Vec<String>>>,
}

impl Browser {
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request.send().await.expect("WebDriver request").json().await.expect("WebDriver JSON");
        response["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns what it returns (promises are awaited).
    async fn run(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args})).await
    }

    /// The element matching `css` once the page has one that is shown.
    async fn find(&self, css: &str) -> String {
        self.wait(&format!("the element `{css}`"), || async {
            let found = self.post("/element", json!({"using": "css selector", "value": css})).await;
            let id = found[ELEMENT].as_str()?.to_string();
            let shown = self.command(reqwest::Method::GET, &format!("/element/{id}/displayed"), None).await;
            (shown == true).then_some(id)
        })
        .await
    }

    /// Polls `probe` until it yields, failing with `what` after [`DEADLINE`].
    async fn wait<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if started.elapsed() > DEADLINE {
                let page = self.run("return location.href + '\\n' + document.body.innerText;", json!([])).await;
                panic!("waited {DEADLINE:?} for {what}; the page:\n{}", page.as_str().unwrap_or_default());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the text of `css` contains `needle`, and returns that text.
    async fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait(&format!("`{needle}` in `{css}`"), || async {
            let text = self
                .run("const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", json!([css]))
                .await;
            text.as_str().filter(|t| t.contains(needle)).map(str::to_string)
        })
        .await
    }

    /// Waits until no element matches `css`.
    async fn wait_gone(&self, css: &str) {
        self.wait(&format!("`{css}` to go"), || async {
            let n = self.run("return document.querySelectorAll(arguments[0]).length;", json!([css])).await;
            (n == 0).then_some(())
        })
        .await
    }

    async fn exists(&self, css: &str) -> bool {
        self.run("return document.querySelector(arguments[0]) !== null;", json!([css])).await == true
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    /// Replaces the value of the field matching `css` with `text`.
    async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        if !text.is_empty() {
            self.post(&format!("/element/{id}/value"), json!({"text": text})).await;
        }
    }

    /// Picks the option with `value` in the `<select>` matching `css`.
    async fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]")).await;
    }

    async fn screenshot(&self, name: &str) {
        let data = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().expect("screenshot")).expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = artifacts();
        std::fs::create_dir_all(&dir).expect("artifacts dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height})).await;
    }

    async fn close(self) {
        self.command(reqwest::Method::DELETE, "", None).await;
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).retain(|open| open != &self.id);
    }
}

fn artifacts() -> PathBuf {
    std::env::var_os("IT_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
        .join("console")
}

// ---- steps shared by the scenarios --------------------------------------------------------------------

async fn sign_in(browser: &Browser, app: &TestApp, token: &str) {
    browser.goto(&app.url("/console/")).await;
    browser.fill("#token", token).await;
    browser.click("#sign-in-form button[type=submit]").await;
    browser.find("#agents").await;
    let url = browser.run("return location.href;", json!([])).await;
    assert!(!url.as_str().unwrap_or_default().contains(token), "the token is never in the URL: {url}");
    let kept = browser.run("return sessionStorage.getItem('slotline.token');", json!([])).await;
    assert_eq!(kept, token, "the token is kept in sessionStorage");
    let cookies = browser.run("return document.cookie;", json!([])).await;
    assert_eq!(cookies, "", "no cookies");
}

async fn sign_out(browser: &Browser) {
    browser.click("#sign-out").await;
    browser.find("#sign-in").await;
    assert_eq!(browser.run("return sessionStorage.getItem('slotline.token');", json!([])).await, Value::Null);
    assert!(!browser.exists("#agents").await, "the pages are gone");
}

/// The id of the agent named `name`.
async fn agent_id(app: &TestApp, name: &str) -> String {
    let (_, list) = app.get("/v1/agents").await;
    list["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["name"] == name))
        .and_then(|a| a["id"].as_str())
        .unwrap_or_else(|| panic!("no agent {name}: {list}"))
        .to_string()
}

// ---- scenarios --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_is_served_from_the_binary_with_a_strict_policy() {
    let app = spawn_app(Db::Sqlite).await;
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(app.url("/console"))
        .send()
        .await
        .expect("GET /console");
    assert_eq!(redirect.status(), 308);
    for (path, kind) in
        [("/console/", "text/html"), ("/console/app.js", "text/javascript"), ("/console/style.css", "text/css")]
    {
        let response = app.http.get(app.url(path)).send().await.expect("asset");
        assert_eq!(response.status(), 200, "{path}");
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(header("content-type").starts_with(kind), "{path}: {}", header("content-type"));
        let policy = header("content-security-policy");
        assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        let body = response.text().await.expect("body");
        assert!(!body.contains("https://"), "nothing from another origin (no CDN): {path}");
        if path == "/console/" {
            let inline = body
                .match_indices("<script")
                .filter(|(i, _)| !body[*i..].starts_with("<script type=\"module\" src="))
                .count();
            assert_eq!(inline, 0, "no inline script in the page");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "a scripted browser scenario, read top to bottom")]
async fn admin_manages_a_calcom_agent_and_its_number_in_the_browser() {
    let double = CalcomDouble::start(DoubleConfig::default()).await;
    let base = double.base_url.clone();
    let app = spawn_app_with(Db::Sqlite, Arc::new(SystemClock), move |c| c.calcom.base_url = base).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // Given an admin signed in, when they create a Cal.com agent with mistakes, then each error shows at its field.
    sign_in(&browser, &app, &app.admin).await;
    browser.screenshot("agents").await;
    browser.click("#new-agent").await;
    browser.find("#agent-form").await;
    browser.fill("#f-name", "Clinic").await;
    browser.fill("#f-timezone", "Mars/Olympus_Mons").await;
    browser.select("#f-calendar-kind", "calcom").await;
    browser.fill("#f-calendar-api_key", CALCOM_KEY).await;
    browser.fill("#f-calendar-event_type_slug", "checkup").await;
    browser.click("#save-agent").await;
    let error = browser.wait_text("[data-error-for=\"timezone\"]", "IANA time zone").await;
    assert!(error.contains("Mars/Olympus_Mons"), "{error}");
    browser.screenshot("agent-field-error").await;

    browser.fill("#f-timezone", "Europe/Berlin").await;
    browser.fill("#f-calendar-event_type_slug", "check up!").await;
    browser.click("#save-agent").await;
    browser.wait_text("[data-error-for=\"calendar.event_type_slug\"]", "letters, digits").await;
    assert_eq!(
        browser.run("return document.querySelector('[data-error-for=\"timezone\"]').innerText;", json!([])).await,
        ""
    );

    browser.fill("#f-calendar-event_type_slug", "checkup").await;
    browser.click("#save-agent").await;
    // Then the agent's page shows the key only as its last four characters.
    browser.wait_text("#key-source", "own key …0001").await;
    let id = agent_id(&app, "Clinic").await;
    let page = browser.run("return document.documentElement.outerHTML;", json!([])).await;
    assert!(!page.as_str().unwrap_or_default().contains(CALCOM_KEY), "the key is never on the page");
    assert_eq!(browser.run("return document.querySelector('#f-calendar-api_key').value;", json!([])).await, "");
    browser.screenshot("agent-form").await;
    let (status, slots) = app.get(&format!("/v1/agents/{id}/slots?range_days=7")).await;
    assert_eq!(status, 200, "the agent's calendar is the Cal.com double: {slots}");
    assert_eq!(double.event_types().iter().map(|e| e.slug.as_str()).collect::<Vec<_>>(), ["checkup"]);

    // Without a global key configured, forgetting the agent's own key is refused at the key field.
    browser.click("#f-calendar-use_global_key").await;
    browser.click("#save-agent").await;
    browser.wait_text("[data-error-for=\"calendar.api_key\"]", "no global key").await;
    browser.click("#f-calendar-use_global_key").await;

    // When they edit it, then the API has the change and the stored key is kept.
    browser.fill("#f-description", "Dental checkups").await;
    browser.fill("#f-calendar-slot_minutes", "45").await;
    browser.click("#save-agent").await;
    browser.wait_text("#form-notice", "Saved.").await;
    let (_, stored) = app.get(&format!("/v1/agents/{id}")).await;
    assert_eq!(stored["description"], "Dental checkups");
    assert_eq!(stored["calendar"]["slot_minutes"], 45);
    assert_eq!(stored["calendar"]["api_key_last4"], "0001", "the key stays when the field is left empty");

    // When they map a number in a common notation, then it is stored as E.164 for the agent.
    browser.goto(&app.url("/console/#/numbers")).await;
    browser.find("#number-form").await;
    browser.fill("#f-e164", "+1 (555) 010-7777").await;
    browser.select("#f-agent_id", &id).await;
    browser.click("#map-number").await;
    browser.wait_text("[data-number=\"+15550107777\"]", "Clinic").await;
    let (status, number) = app.get("/v1/numbers/+15550107777").await;
    assert_eq!((status, number["agent_id"].as_str()), (200, Some(id.as_str())));

    // When they map it to another agent, then the conflict is explained before it moves.
    let demo = agent_id(&app, "Demo Agent").await;
    browser.fill("#f-e164", "+15550107777").await;
    browser.select("#f-agent_id", &demo).await;
    browser.click("#map-number").await;
    let explained = browser.wait_text("#numbers-message", "already answered by Clinic").await;
    assert!(explained.contains("moves it to Demo Agent"), "{explained}");
    let (_, unchanged) = app.get("/v1/numbers/+15550107777").await;
    assert_eq!(unchanged["agent_id"].as_str(), Some(id.as_str()), "nothing moved before confirming");
    browser.screenshot("numbers-conflict").await;
    browser.click("#confirm-move").await;
    // The notice is written once the page has been drawn again (the row's own agent list always names
    // Demo Agent, so the row cannot tell the old page from the new one).
    browser.wait_text("#numbers-message", "+15550107777 → Demo Agent").await;
    let row = browser.wait_text("[data-number=\"+15550107777\"] td[data-label=\"Agent\"]", "Demo Agent").await;
    assert!(!row.contains("Clinic"), "the number's agent cell: {row}");
    browser.fill("#f-e164", "555 not a number").await;
    browser.click("#map-number").await;
    browser
        .wait("a bad number's error at the field", || async {
            let text =
                browser.run("return document.querySelector('[data-error-for=\"e164\"]').innerText;", json!([])).await;
            text.as_str().filter(|t| !t.is_empty()).map(str::to_string)
        })
        .await;
    browser.screenshot("numbers").await;
    // Removing asks once more, then the number stops being routed.
    browser.click("[data-number=\"+15550107777\"] .remove").await;
    browser.click("[data-number=\"+15550107777\"] .confirm-remove").await;
    browser.wait_gone("[data-number=\"+15550107777\"]").await;
    assert_eq!(app.get("/v1/numbers/+15550107777").await.0, 404);

    // The list shows the agent with its calendar, key source and number; the page fits a phone.
    browser.goto(&app.url("/console/#/agents")).await;
    let row = browser.wait_text("[data-agent=\"Clinic\"]", "Europe/Berlin").await;
    assert!(row.contains("calcom") && row.contains("own key …0001"), "{row}");
    browser.resize(390, 844).await;
    browser.find("[data-agent=\"Clinic\"]").await;
    let overflow = browser
        .run("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", json!([]))
        .await;
    assert!(overflow.as_i64().is_some_and(|o| o <= 0), "no sideways scrolling on a phone: {overflow}");
    browser.screenshot("agents-phone").await;
    browser.resize(1280, 900).await;

    // Delete with confirmation: the numberless agent goes.
    browser.goto(&app.url(&format!("/console/#/agents/{id}"))).await;
    browser.click("#delete-agent").await;
    browser.click("#confirm-delete-yes").await;
    browser.find("#agents").await;
    browser.wait_gone("[data-agent=\"Clinic\"]").await;
    assert_eq!(app.get(&format!("/v1/agents/{id}")).await.0, 404);

    sign_out(&browser).await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sets_a_builtin_calendars_hours_and_buffers_and_blocked_days_survive_an_edit() {
    let app = spawn_app(Db::Sqlite).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &app, &app.admin).await;
    browser.click("#new-agent").await;
    browser.find("#agent-form").await;
    browser.fill("#f-name", "Physio").await;
    browser.fill("#f-timezone", "America/Chicago").await;
    browser.select("#f-calendar-kind", "builtin").await;
    assert!(
        !browser.exists("#calcom-section:not([hidden])").await,
        "the Cal.com section hides for the built-in calendar"
    );
    browser.fill("#f-calendar-rules-working_hours", r#"{"mon": [["17:00", "09:00"]]}"#).await;
    browser.click("#save-agent").await;
    // The API names `calendar.rules.working_hours`; the page shows it at the hours field.
    browser
        .wait("the hours error at the hours field", || async {
            let text = browser
                .run(
                    "return document.querySelector('[data-error-for=\"calendar.rules.working_hours\"]').innerText;",
                    json!([]),
                )
                .await;
            text.as_str().filter(|t| !t.is_empty()).map(str::to_string)
        })
        .await;
    browser.fill("#f-calendar-rules-working_hours", r#"{"tue": [["08:00", "12:00"]]}"#).await;
    browser.fill("#f-calendar-rules-buffer_after_minutes", "15").await;
    browser.fill("#f-builtin-slot_minutes", "45").await;
    browser.click("#save-agent").await;
    browser.find("#delete-agent").await;
    let id = agent_id(&app, "Physio").await;
    let (_, stored) = app.get(&format!("/v1/agents/{id}")).await;
    assert_eq!(stored["calendar"]["kind"], "builtin");
    assert_eq!(stored["calendar"]["slot_minutes"], 45);
    assert_eq!(stored["calendar"]["rules"]["working_hours"], json!({"tue": [["08:00", "12:00"]]}));
    assert_eq!(stored["calendar"]["rules"]["buffer_after_minutes"], 15);

    // Blocked days (set through the API; the form has no field for them) survive an edit in the page.
    let mut rules = stored["calendar"]["rules"].clone();
    rules["blocked"] = json!([{"start": "2030-12-24", "end": "2030-12-27", "reason": "holidays"}]);
    let (status, body) = app
        .patch(
            &format!("/v1/agents/{id}"),
            json!({"calendar": {"kind": "builtin", "slot_minutes": 45, "rules": rules}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    browser.goto(&app.url("/console/#/agents")).await;
    browser.find("#agents").await;
    browser.goto(&app.url(&format!("/console/#/agents/{id}"))).await;
    browser.wait_text("#agent-form", "Built-in calendar").await;
    browser.fill("#f-calendar-rules-buffer_before_minutes", "5").await;
    browser.click("#save-agent").await;
    browser.wait_text("#form-notice", "Saved.").await;
    let (_, edited) = app.get(&format!("/v1/agents/{id}")).await;
    assert_eq!(edited["calendar"]["rules"]["buffer_before_minutes"], 5);
    assert_eq!(edited["calendar"]["rules"]["blocked"].as_array().map(Vec::len), Some(1), "{edited}");
    browser.screenshot("agent-builtin").await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_sees_no_edit_controls_and_writes_are_refused() {
    let app = spawn_app(Db::Sqlite).await;
    let demo = agent_id(&app, "Demo Agent").await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &app, &app.analyst).await;
    browser.wait_text("#who", "analyst").await;
    assert!(!browser.exists("#new-agent").await, "no create link");
    browser.goto(&app.url(&format!("/console/#/agents/{demo}"))).await;
    browser.find("#agent-form").await;
    assert!(!browser.exists("#save-agent").await && !browser.exists("#delete-agent").await, "no save or delete");
    assert_eq!(browser.run("return document.querySelector('#f-name').disabled;", json!([])).await, true);
    browser.screenshot("analyst-agent").await;
    browser.goto(&app.url("/console/#/numbers")).await;
    browser.find("#numbers").await;
    assert!(!browser.exists("#number-form").await && !browser.exists("#numbers .remove").await);
    browser.goto(&app.url("/console/#/bookings")).await;
    browser.find("#bookings").await;
    assert!(!browser.exists(".cancel-booking").await);
    browser.goto(&app.url("/console/#/chat")).await;
    browser.wait_text("#view", "need an admin token").await;
    assert!(!browser.exists("#chat-start").await);

    // A write forced from the page with the analyst's token is refused by the API.
    let status = browser
        .run(
            "return fetch('/v1/agents', {method: 'POST', headers: {'Content-Type': 'application/json', \
             Authorization: 'Bearer ' + sessionStorage.getItem('slotline.token')}, body: JSON.stringify({name: 'X', \
             timezone: 'UTC', calendar: {kind: 'demo'}})}).then(r => r.status);",
            json!([]),
        )
        .await;
    assert_eq!(status, 403);
    let (_, agents) = app.get("/v1/agents").await;
    assert_eq!(agents["agents"].as_array().map(Vec::len), Some(1), "nothing was created");
    sign_out(&browser).await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_books_a_demo_slot_that_is_cancelled_on_the_bookings_page() {
    let app = spawn_app(Db::Sqlite).await;
    let demo = agent_id(&app, "Demo Agent").await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &app, &app.admin).await;
    browser.goto(&app.url("/console/#/chat")).await;
    browser.select("#chat-agent", &demo).await;
    browser.click("#chat-start").await;
    browser.wait_text("#chat-log", "thanks for calling").await;
    let turns =
        ["I'd like to schedule an appointment", "the first one", "Jane Doe", "j a n e at example dot com", "yes"];
    for (i, turn) in turns.iter().enumerate() {
        browser.fill("#chat-text", turn).await;
        browser.click("#chat-send").await;
        // The answer to turn i is the agent line after the i-th "you" line.
        browser
            .wait(&format!("the answer to `{turn}`"), || async {
                let answered = browser
                    .run(
                        "const you = document.querySelectorAll('#chat-log .you'); const last = you[you.length - 1]; \
                         return you.length === arguments[0] && !!last.nextElementSibling \
                         && !document.querySelector('#chat-send').disabled;",
                        json!([i + 1]),
                    )
                    .await;
                (answered == true).then_some(())
            })
            .await;
    }
    let log = browser.wait_text("#chat-log", "You're all set, Jane").await;
    assert!(log.contains("schedule_appointment(") && log.contains("→ ok"), "{log}");
    browser.screenshot("chat").await;

    let (_, bookings) = app.get("/v1/bookings").await;
    let booking = bookings["bookings"][0].clone();
    assert_eq!((booking["attendee_name"].as_str(), booking["status"].as_str()), (Some("Jane Doe"), Some("confirmed")));
    assert!(booking["source_call_id"].as_str().is_some_and(|c| c.starts_with("chat-")), "{booking}");
    let id = booking["id"].as_str().expect("id").to_string();

    browser.goto(&app.url("/console/#/bookings")).await;
    let row = format!("[data-booking=\"{id}\"]");
    browser.wait_text(&row, "Jane Doe").await;
    browser.screenshot("bookings").await;
    browser.click(&format!("{row} .cancel-booking")).await;
    browser.click(&format!("{row} .confirm-cancel")).await;
    browser.wait_text(&format!("[data-booking=\"{id}\"][data-status=\"cancelled\"]"), "cancelled").await;
    let (_, after) = app.get("/v1/bookings").await;
    assert_eq!(after["bookings"][0]["status"], "cancelled");
    browser.select("#booking-filter select[name=status]", "confirmed").await;
    browser.click("#booking-filter button[type=submit]").await;
    browser.wait_gone(&row).await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_show_with_their_transcript_and_the_daily_plot() {
    let app = spawn_app(Db::Sqlite).await;
    let demo: uuid::Uuid = agent_id(&app, "Demo Agent").await.parse().expect("uuid");
    // A call as the SIP way in records it (the voice tests place real ones; here the page is under test).
    let started = slotline::storage::now();
    let call = CallRecord {
        id: uuid::Uuid::new_v4(),
        sip_call_id: "console-test@127.0.0.1".into(),
        agent_id: Some(demo),
        dialed: "+15550100000".into(),
        caller: "+15550102000".into(),
        transport: "udp".into(),
        started_at: started,
        answered_at: Some(started),
        ended_at: Some(started + chrono::Duration::seconds(75)),
        end_reason: Some("caller_hangup".into()),
        sip_status: Some(200),
        room: None,
        room_sid: None,
    };
    app.store.insert_call(&call).await.expect("insert call");
    for (seq, (speaker, text)) in
        [("agent", "Hello, thanks for calling."), ("caller", "I'd like an appointment")].iter().enumerate()
    {
        let line = TranscriptLine {
            call_id: call.id,
            seq: seq as i64,
            speaker: speaker.to_string(),
            text: text.to_string(),
            at: started,
        };
        app.store.insert_transcript_line(&line).await.expect("transcript");
    }
    let (status, daily) = app.get("/v1/stats/daily?days=7").await;
    assert_eq!(status, 200, "{daily}");
    assert_eq!(daily["days"].as_array().map(Vec::len), Some(7));
    assert_eq!(daily["agents"][0]["agent_name"], "Demo Agent");
    assert_eq!(daily["agents"][0]["calls"][6], 1, "today's call is the last day's: {daily}");

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &app, &app.analyst).await;
    browser.goto(&app.url("/console/#/calls")).await;
    let row = browser.wait_text(&format!("[data-call=\"{}\"]", call.id), "+15550102000").await;
    for expected in ["Demo Agent", "sip/udp", "+15550100000", "1:15", "caller_hangup"] {
        assert!(row.contains(expected), "{expected} in {row}");
    }
    let plot = browser.wait_text("#plots [data-agent=\"Demo Agent\"]", "1 calls").await;
    assert!(plot.contains("0 bookings"), "{plot}");
    assert_eq!(browser.run("return document.querySelectorAll('#plots rect.calls').length;", json!([])).await, 14);
    browser.screenshot("calls").await;
    browser.click(&format!("[data-call=\"{}\"] .transcript-link", call.id)).await;
    let transcript = browser.wait_text("#transcript", "I'd like an appointment").await;
    assert!(
        transcript.find("Hello, thanks").is_some_and(|i| i < transcript.find("I'd like").unwrap_or(0)),
        "{transcript}"
    );
    browser.screenshot("transcript").await;
    browser.close().await;
    app.stop().await;
}

/// A spoken call from the voice tests' caller (sipp and espeak-ng over real SIP and RTP, whisper on the
/// agent's side) shows on the calls page, and its transcript page shows every stored line.
#[cfg(feature = "whisper")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_call_appears_on_the_calls_page_with_its_transcript() {
    use crate::voice_call::{place_call, summary, transcript, voice_app};
    use crate::voice_caller::Cue;

    let app = voice_app().await;
    let log = place_call(&app, &[("no thanks, goodbye", Cue::AfterPrompt)]).await;
    assert!(log.error.is_none(), "{}", summary(&log));
    let call = crate::sip::call_row(&app).await;
    let lines = transcript(&app, &call, 3).await;
    assert!(lines.iter().any(|(speaker, _)| speaker == "caller"), "{lines:#?}");

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &app, &app.analyst).await;
    browser.goto(&app.url("/console/#/calls")).await;
    let row = format!("[data-call=\"{}\"]", call.id);
    let shown = browser.wait_text(&row, &call.caller).await;
    assert!(shown.contains(&call.dialed) && shown.contains("sip/"), "{shown}");
    browser.click(&format!("{row} .transcript-link")).await;
    browser.find("#transcript").await;
    let page = browser.wait_text("#transcript", &lines[0].1).await;
    for (speaker, text) in &lines {
        assert!(page.contains(&format!("{speaker}: {text}")), "`{speaker}: {text}` on the page:\n{page}");
    }
    browser.screenshot("transcript-spoken").await;
    browser.close().await;
    app.stop().await;
}
