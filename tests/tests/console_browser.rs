//! The operator console in a real browser: headless Chromium over WebDriver
//! (the `fantoccini` client) against a daemon on SQLite with simulated routers.
//!
//! Logs in (after a wrong token is refused), sees the three routers online
//! with their RouterOS version, each job's next run and the last hour's
//! charts (removals and enforcement lag, inline SVG with their numbers), sees
//! a removal appear without a reload, grants time to a subscriber and sees the
//! hotspot user enabled on the simulator, generates 20 vouchers and renders
//! their print sheet (PDF), dry-runs a job, filters the audit log, logs out;
//! the browser logs no errors. Screenshots go to `target/console-*.png`.
//!
//! Needs Chromium (`ISP_TEST_SKIP=browser` skips it, announced).

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use fantoccini::wd::{PrintConfiguration, PrintSize, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use isp_core::domain::{Currency, Money, NewPlan, RosDuration, RosName, TenantId};
use isp_tests::{eventually, Options, TestDaemon, TOKEN};
use isp_testsupport::browser;
use serde_json::{json, Value};

/// A WebDriver session, with the test's helpers (each panics naming what it did).
struct Browser {
    client: Client,
}

/// Chromedriver's browser log (`POST /session/{id}/se/log`): not a W3C
/// command, so not one of fantoccini's; sent through its custom-command hook.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

impl Browser {
    async fn start(driver: &browser::ChromeDriver) -> Browser {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": driver.chromium.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1280,1100", "--no-first-run", "--disable-extensions"]
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        });
        let Value::Object(caps) = caps else {
            unreachable!("an object literal")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver refused a session: {e}"));
        Browser { client }
    }

    async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("go to {url}: {e}"));
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        e.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// The rendered text of the first element matching `css`, read in one script call:
    /// the "Now" page replaces its live part every second, so an element handle found
    /// first and read afterwards can go stale in between.
    async fn text(&self, css: &str) -> String {
        let v = self
            .client
            .execute(
                "var e = document.querySelector(arguments[0]); return e === null ? null : e.innerText;",
                vec![json!(css)],
            )
            .await
            .unwrap_or_else(|e| panic!("read {css}: {e}"));
        v.as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn title(&self) -> String {
        self.client.title().await.unwrap_or_else(|e| panic!("title: {e}"))
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

    async fn set_window_size(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("window size {width}x{height}: {e}"));
    }

    async fn screenshot(&self, name: &str) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(target_dir().join(format!("console-{name}.png")), png).expect("write screenshot");
    }

    /// The page as an A4 PDF (the browser's print view).
    async fn print_a4(&self) -> Vec<u8> {
        let config = PrintConfiguration::builder()
            .size(PrintSize::A4)
            .background(true)
            .build()
            .expect("print configuration");
        self.client
            .print(config)
            .await
            .unwrap_or_else(|e| panic!("print: {e}"))
    }

    /// Browser log entries since the last call.
    async fn logs(&self) -> Vec<Value> {
        self.client
            .issue_cmd(BrowserLog)
            .await
            .unwrap_or_else(|e| panic!("browser log: {e}"))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn quit(self) {
        let _ = self.client.close().await;
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
    let plan = t
        .repos
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
    b.wait_for(
        "the refusal",
        Duration::from_secs(10),
        "var m = document.querySelector('main'); return !!m && m.innerText.indexOf('Login refused.') >= 0",
    )
    .await;
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

    // Each router's RouterOS version, from its last health check.
    b.wait_for(
        "the routers' RouterOS versions",
        Duration::from_secs(10),
        "var v = document.querySelectorAll('#routers td.version'); \
         return v.length === 3 && Array.from(v).every(function (c) { return c.textContent.indexOf('7.18.2') === 0; })",
    )
    .await;
    // Each job's last run and next run: router-health runs every 2 s on its
    // schedule; sync-routers has none here.
    b.wait_for(
        "router-health's last run",
        Duration::from_secs(10),
        "var r = document.querySelector(\"#jobs tr[data-job='router-health']\"); \
         return !!r && r.cells[1].textContent.indexOf('UTC') > 0 && r.cells[3].textContent.indexOf('ok') >= 0",
    )
    .await;
    let header = b.text("#jobs thead").await;
    assert!(header.contains("Next run"), "{header}");
    let next = b.text("#jobs tr[data-job='router-health'] td.next").await;
    assert!(next.contains("UTC") && next.contains("(schedule)"), "{next}");
    let next = b.text("#jobs tr[data-job='disconnect-expired'] td.next").await;
    assert!(next.contains("UTC"), "{next}");
    let off = b.text("#jobs tr[data-job='sync-routers'] td.next").await;
    assert_eq!(off.trim(), "not scheduled");

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

    // The last hour's charts: one bar per minute, the removal counted, the
    // deadline's enforcement lag charted, the numbers in a table.
    b.wait_for(
        "the removal and its lag in the charts",
        Duration::from_secs(15),
        "var r = document.querySelector('#chart-removals figcaption'); \
         var l = document.querySelector('#chart-lag figcaption'); \
         return !!r && !!l && /: [1-9][0-9]* in all/.test(r.textContent) && l.textContent.indexOf('deadline(s) met') > 0",
    )
    .await;
    assert_eq!(
        b.js("return document.querySelectorAll('#chart-removals svg > rect').length")
            .await,
        json!(60)
    );
    assert_eq!(
        b.js("return document.querySelector('#chart-lag svg').getAttribute('role') + ' ' + \
              document.getElementById(document.querySelector('#chart-lag svg').getAttribute('aria-labelledby')).tagName")
            .await,
        json!("img FIGCAPTION")
    );
    b.click("#chart-data summary").await;
    let stamp = b.text(".stamp").await;
    b.wait_for(
        "a refresh of the live part",
        Duration::from_secs(10),
        &format!(
            "return document.querySelector('.stamp').innerText !== {}",
            json!(stamp)
        ),
    )
    .await;
    assert_eq!(
        b.js("return document.getElementById('chart-data').open").await,
        json!(true),
        "the refresh closed the charts' numbers"
    );
    let numbers = b.text("#chart-data table").await;
    assert!(numbers.contains("Lag p99"), "{numbers}");
    b.js("document.getElementById('h-charts').scrollIntoView(); return true")
        .await;
    b.screenshot("charts").await;
    b.js("window.scrollTo(0, 0); return true").await;
    b.assert_labelled("the Now page").await;
    b.screenshot("now").await;

    // On a phone's screen the page does not scroll sideways (wide tables scroll in their box).
    b.set_window_size(390, 844).await;
    b.wait_for(
        "no sideways scrolling at 390 px",
        Duration::from_secs(5),
        "return window.innerWidth <= 400 && document.documentElement.scrollWidth <= window.innerWidth",
    )
    .await;
    b.screenshot("phone").await;
    b.set_window_size(1280, 1100).await;

    // Find the subscriber, grant the 1-hour plan: the router user is enabled again.
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
    b.find("#plan")
        .await
        .select_by_value(&plan.id.0.to_string())
        .await
        .expect("choose the 1-hour plan");
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
    let pdf = b.print_a4().await;
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
    b.find("#token").await;
    b.goto(&format!("{base}/console/jobs")).await;
    b.find("#token").await;

    b.quit().await;
    drop(driver);
    t.stop().await;
}
