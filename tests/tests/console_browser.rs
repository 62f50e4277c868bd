//! The operator console in a real browser: headless Chromium over WebDriver
//! against a daemon on SQLite with simulated routers.
//!
//! Logs in (after a wrong token is refused), sees the routers online, sees a
//! removal appear without a reload, grants time to a subscriber and sees the
//! hotspot user enabled on the simulator, generates 20 vouchers and renders
//! their print sheet (PDF), dry-runs a job, filters the audit log, logs out;
//! the browser logs no errors. Screenshots go to `target/console-*.png`.
//!
//! Needs Chromium (`ISP_TEST_SKIP=browser` skips it, announced).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use isp_core::domain::{Currency, Money, NewPlan, RosDuration, RosName, TenantId};
use isp_tests::{eventually, Options, TestDaemon, TOKEN};
use isp_testsupport::browser;
use serde_json::{json, Value};

/// A WebDriver session (the W3C protocol, straight over HTTP).
struct Browser {
    http: reqwest::Client,
    base: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start(driver: &browser::ChromeDriver) -> Browser {
        let http = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": driver.chromium.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1280,1100", "--no-first-run", "--disable-extensions"]
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let resp: Value = http
            .post(format!("{}/session", driver.url))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let id = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {resp}"));
        Browser {
            http,
            base: format!("{}/session/{id}", driver.url),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{e}/click"), json!({})).await;
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{e}/clear"), json!({})).await;
        self.post(&format!("/element/{e}/value"), json!({ "text": text }))
            .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// The rendered text of the first element matching `css`, read in one script call:
    /// the "Now" page replaces its live part every second, so an element handle found
    /// first and read afterwards can go stale in between.
    async fn text(&self, css: &str) -> String {
        let v = self
            .post(
                "/execute/sync",
                json!({
                    "script": "var e = document.querySelector(arguments[0]); return e === null ? null : e.innerText;",
                    "args": [css]
                }),
            )
            .await;
        v.as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn title(&self) -> String {
        self.get("/title").await.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the page's title starts with `prefix` (a form's answer can take a moment).
    async fn wait_title(&self, prefix: &str) {
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let title = self.title().await;
            if title.starts_with(prefix) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "title {title:?}, expected {prefix:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (polling, 100 ms) until `script` returns true.
    async fn wait_for(&self, what: &str, timeout: Duration, script: &str) {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            if self.js(script).await == json!(true) {
                return;
            }
            assert!(tokio::time::Instant::now() < end, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every visible control of the page has a label (its `<label>` or `aria-label`).
    async fn assert_labelled(&self, page: &str) {
        let unlabelled = self
            .js("return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button'))\
                 .filter(function (e) { return !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim(); })\
                 .map(function (e) { return e.outerHTML; })")
            .await;
        assert_eq!(unlabelled, json!([]), "unlabelled controls on {page}");
    }

    async fn screenshot(&self, name: &str) {
        let b64 = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("screenshot base64");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(target_dir().join(format!("console-{name}.png")), png).expect("write screenshot");
    }

    /// Browser log entries since the last call (chromedriver's log endpoint).
    async fn logs(&self) -> Vec<Value> {
        self.post("/se/log", json!({"type": "browser"}))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

fn target_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    std::fs::create_dir_all(&dir).expect("target dir");
    dir
}

fn severe(logs: &[Value]) -> Vec<&Value> {
    logs.iter().filter(|l| l["level"] == "SEVERE").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    if browser::skipped() {
        isp_testsupport::skip::announce(isp_testsupport::skip::Suite::Browser);
        return;
    }
    let driver = match tokio::task::spawn_blocking(browser::chromedriver)
        .await
        .expect("task")
    {
        Ok(d) => d,
        Err(e) => return browser::skip_or_fail(&e),
    };
    let t = TestDaemon::start(Options::default()).await;
    t.repos
        .plans
        .insert(&NewPlan {
            tenant_id: TenantId(1),
            name: RosName::parse("plan", "1-hour").expect("name"),
            price: Money::parse(
                "price",
                "1000",
                Currency::parse("currency", "TZS").expect("currency"),
            )
            .expect("price"),
            duration: Some(RosDuration::from_secs(3600)),
            rate_limit: None,
        })
        .await
        .expect("plan");
    let b = Browser::start(&driver).await;
    let base = t.base.clone();

    // A wrong token is refused, without a reason, and no session is made.
    b.goto(&format!("{base}/")).await;
    b.fill("#token", "not-the-token-0123456789").await;
    b.click("form.login button").await;
    assert!(b.text("main").await.contains("Login refused."));
    assert_eq!(b.js("return document.cookie").await, json!(""));
    b.screenshot("refused").await;
    // The 401 of that page is the one error the browser may log.
    for l in severe(&b.logs().await) {
        assert!(l["message"].as_str().unwrap_or_default().contains("401"), "{l}");
    }

    // Log in; the routers come online (router-health runs every 2 s).
    b.fill("#token", TOKEN).await;
    b.click("form.login button").await;
    b.wait_title("Now · ispd").await;
    // HttpOnly: the session cookie is not visible to scripts.
    assert_eq!(b.js("return document.cookie").await, json!(""));
    b.wait_for(
        "3 routers online",
        Duration::from_secs(20),
        "return document.querySelectorAll('#routers .ok').length === 3",
    )
    .await;

    let watcher = b.text("#watcher").await;
    assert!(watcher.contains("running"), "{watcher}");

    // A removal appears live, without a reload.
    b.js("window.__sameDocument = true; return true").await;
    let sub = t
        .subscriber(
            1,
            "+255712000101",
            Utc::now() + chrono::Duration::seconds(2),
            &[0],
        )
        .await;
    let user = sub.username.as_str().to_owned();
    b.wait_for(
        "the removal on the Now page",
        Duration::from_secs(15),
        &format!(
            "var r = document.getElementById('removals'); return !!r && r.textContent.indexOf('subscriber:{}') >= 0",
            sub.id.0
        ),
    )
    .await;
    assert_eq!(
        b.js("return window.__sameDocument === true").await,
        json!(true),
        "the page reloaded"
    );
    assert!(t.removed_at(0, &user).is_some(), "the simulator saw no removal");
    b.assert_labelled("the Now page").await;
    b.screenshot("now").await;

    // On a phone's screen the page does not scroll sideways (wide tables scroll in their box).
    b.post("/window/rect", json!({"width": 390, "height": 844})).await;
    b.wait_for(
        "no sideways scrolling at 390 px",
        Duration::from_secs(5),
        "return window.innerWidth <= 400 && document.documentElement.scrollWidth <= window.innerWidth",
    )
    .await;
    b.screenshot("phone").await;
    b.post("/window/rect", json!({"width": 1280, "height": 1100}))
        .await;

    // Find the subscriber, grant an hour: the router user is enabled again.
    assert!(
        eventually(Duration::from_secs(10), || t.user_disabled(0, &user)
            == Some(true))
        .await,
        "the expired user was not disabled"
    );
    b.click("nav a[href='/console/subscribers']").await;
    b.fill("#q", "+255712000101").await;
    b.click("form.search button").await;
    b.click("#results a").await;
    b.wait_title("Subscriber ").await;
    b.assert_labelled("the subscriber page").await;
    b.fill("#minutes", "60").await;
    b.click("#grant").await;
    b.wait_title("Time granted · ispd").await;
    assert!(
        eventually(Duration::from_secs(10), || t.user_disabled(0, &user)
            == Some(false))
        .await,
        "the grant did not enable the hotspot user on the simulator"
    );
    let routers = b.text("#router-results").await;
    assert!(routers.contains("enabled"), "{routers}");
    b.screenshot("granted").await;

    // 20 vouchers and their print sheet.
    b.click("nav a[href='/console/vouchers']").await;
    b.assert_labelled("the voucher form").await;
    b.fill("#count", "20").await;
    b.click("#generate").await;
    b.wait_title("20 vouchers").await;
    assert_eq!(
        b.js("return document.querySelectorAll('#sheet .card').length")
            .await,
        json!(20)
    );
    let first = b.text("#sheet .card .code").await;
    assert!(!first.trim().is_empty());
    b.screenshot("vouchers").await;
    let pdf = b
        .post(
            "/print",
            json!({"orientation": "portrait", "page": {"width": 21.0, "height": 29.7}, "background": true}),
        )
        .await;
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(pdf.as_str().unwrap_or_default())
        .expect("PDF base64");
    assert!(pdf.starts_with(b"%PDF"), "the print view is not a PDF");
    std::fs::write(target_dir().join("console-vouchers.pdf"), &pdf).expect("write PDF");
    // The sheet has its print rules (A4 page, cards three to a row, no navigation).
    assert_eq!(
        b.js("return Array.from(document.styleSheets[0].cssRules).some(function (r) { return r.media && r.media.mediaText === 'print'; })")
            .await,
        json!(true)
    );

    // A job's dry run, then the button to run it for real.
    b.click("nav a[href='/console/jobs']").await;
    b.assert_labelled("the jobs page").await;
    b.click("form[action='/console/jobs/sync-routers'] button").await;
    b.wait_title("sync-routers (dry run) · ispd").await;
    assert!(!b.text("#report").await.is_empty());
    b.click("#run-for-real").await;
    b.wait_title("sync-routers (ran) · ispd").await;

    // The audit log, filtered by subject.
    b.goto(&format!("{base}/console/audit")).await;
    b.assert_labelled("the audit page").await;
    b.fill("#f-subject", &format!("subscriber:{}", sub.id.0)).await;
    b.click("form.filters button").await;
    let audit = b.text("#audit").await;
    assert!(audit.contains("disconnect"), "{audit}");
    b.screenshot("audit").await;

    // No errors in the browser since the login.
    let logs = b.logs().await;
    assert!(severe(&logs).is_empty(), "browser errors: {logs:?}");

    // Log out: the login form again, and the pages want a new login.
    b.click("#logout").await;
    assert!(b.find("#token").await.len() > 1);
    b.goto(&format!("{base}/console/jobs")).await;
    assert!(b.find("#token").await.len() > 1);

    b.quit().await;
    drop(driver);
    t.stop().await;
}
