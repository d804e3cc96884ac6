//! Operations end to end: `GET /v1/status`, `GET /metrics`, the status page
//! and its technician actions, on a till with a real journal, the processing
//! simulator (one receipt fiscalized, one rejected) and the device emulators
//! on pseudo-terminals (the printer out of paper). The page is also loaded in
//! headless Chromium, whose screenshot is docs/status-page.png.

mod common;

use common::TestDaemon;
use fiscald::config::{self, ApiToken, Backend, DrawerVia, Role, Settings, TokenHash};
use fiscald::sim::cloud::{Knobs, SimCloud, SimConfig};
use fiscald::sim::devices::control::{PrinterFaultsPatch, SimDevices, SimDevicesOptions};
use fiscald::sim::devices::printer::Event;
use std::time::{Duration, Instant};

const OPERATOR_TOKEN: &str = "op-3b1f9c2e-technician-token";
const REJECT: &str = "[REJECT]";

struct Till {
    d: TestDaemon,
    sim: SimCloud,
    devices: SimDevices,
    _dir: tempfile::TempDir,
    fiscalized: String,
    rejected: String,
}

fn wire(s: &mut Settings, devices: &SimDevices, cloud: &SimCloud) {
    let demo = config::load_str(config::DEMO_CONFIG).expect("demo config");
    s.cloud.enabled = true;
    s.cloud.base_url = cloud.base_url();
    s.cloud.retry.base = Duration::from_millis(50);
    s.cloud.retry.cap = Duration::from_millis(400);
    s.cloud.poll_interval = Duration::from_millis(50);
    s.cloud.probe_interval = Duration::from_millis(100);
    let mut printer = demo.devices.printer.clone().expect("demo printer");
    printer.path = devices.printer_path();
    let mut register = demo.devices.register.clone().expect("demo register");
    register.path = devices.register_path();
    register.reply_timeout = Duration::from_millis(1500);
    // The cloud fiscalizes; the register is there for the X report.
    s.devices.backend = Backend::Cloud;
    s.devices.register = Some(register);
    s.devices.printer = Some(printer);
    s.devices.drawer.via = DrawerVia::Printer;
    s.devices.status_interval = Duration::from_millis(200);
    s.devices.reconnect_base = Duration::from_millis(50);
    s.devices.reconnect_cap = Duration::from_millis(400);
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A till with one receipt fiscalized and one rejected; with `paper_out`,
/// the printer then runs out of paper.
async fn till(paper_out: bool) -> Till {
    let dir = tempfile::tempdir().unwrap();
    let devices = SimDevices::start(
        &dir.path().join("devices"),
        SimDevicesOptions {
            printer_pace_baud: None,
            seed: 3,
            timezone: Some(chrono_tz::Europe::Moscow), // the till's zone (below)
        },
    )
    .expect("emulators start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let demo = config::load_str(config::DEMO_CONFIG).unwrap();
    let sim = SimCloud::start(
        listener,
        SimConfig {
            connector_token: demo.cloud.token.as_ref().unwrap().expose().to_string(),
            ..SimConfig::default()
        },
    )
    .await;
    sim.set_knobs(Knobs {
        reject_marker: Some(REJECT.into()),
        ..Knobs::default()
    })
    .unwrap();
    let d = TestDaemon::start_with(|s| {
        wire(s, &devices, &sim);
        // Only an operator token: the tests' POS calls go without tokens
        // where the front door allows it (native auth = "none" here).
        s.api.tokens = vec![ApiToken {
            name: "technician".into(),
            role: Role::Operator,
            hash: TokenHash::of(OPERATOR_TOKEN),
        }];
        s.api.auth.native = config::AuthMode::None;
    })
    .await;
    let (status, good) = d.post(&common::example("receipt.json"), None).await;
    assert_eq!(status, 201, "{good}");
    let (status, bad) = d
        .post(&common::receipt(&format!("Broken {REJECT}"), "10.00"), None)
        .await;
    assert_eq!(status, 201, "{bad}");
    let fiscalized = good["id"].as_str().unwrap().to_string();
    let rejected = bad["id"].as_str().unwrap().to_string();
    for (id, state) in [(&fiscalized, "fiscalized"), (&rejected, "rejected")] {
        until(&format!("receipt {state}"), async || {
            let (_, r) = d.get(&format!("/v1/receipts/{id}")).await;
            (r["state"] == state).then_some(())
        })
        .await;
    }
    // The good receipt is printed before the paper runs out.
    until("the receipt printed", async || {
        let (_, r) = d.get(&format!("/v1/receipts/{fiscalized}")).await;
        (r["print"]["state"] == "done").then_some(())
    })
    .await;
    if paper_out {
        devices.patch_printer(&PrinterFaultsPatch {
            paper_out: Some(true),
            ..PrinterFaultsPatch::default()
        });
        until("the printer faulted for paper", async || {
            let (_, s) = d.get("/v1/status").await;
            let p = s["devices"]
                .as_array()?
                .iter()
                .find(|d| d["name"] == "printer")?
                .clone();
            (p["state"] == "faulted" && p["details"]["paper"] == "out").then_some(())
        })
        .await;
    }
    Till {
        d,
        sim,
        devices,
        _dir: dir,
        fiscalized,
        rejected,
    }
}

impl Till {
    async fn stop(self) {
        self.d.daemon.stop().await.unwrap();
        self.sim.stop().await;
        self.devices.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_shows_devices_queue_cloud_and_shift() {
    let t = till(true).await;
    let (code, s) = t.d.get("/v1/status").await;
    assert_eq!(code, 200, "{s}");
    let printer = s["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "printer")
        .unwrap();
    assert_eq!(printer["state"], "faulted", "{printer}");
    assert_eq!(printer["reason"], "paper out");
    assert_eq!(printer["details"]["paper"], "out");
    assert_eq!(s["journal"]["receipts_today"], 2);
    assert_eq!(s["journal"]["rejected"][0]["id"], t.rejected.as_str());
    assert_eq!(s["journal"]["rejected"][0]["number"], 2);
    assert!(
        s["journal"]["queue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["key"] == "fiscalize" && c["state"] == "parked" && c["count"] == 1),
        "{}",
        s["journal"]["queue"]
    );
    assert_eq!(s["cloud"]["online"], true);
    assert_eq!(s["cloud"]["fiscalized"], 1);
    assert!(s["cloud"]["last_success"].is_string(), "{}", s["cloud"]);
    assert!(s["cloud"]["token_expires_at"].is_string(), "{}", s["cloud"]);
    // The example receipt: 300.00 electronic, 200.00 cash with 94.35 change;
    // the rejected one: 10.00 cash.
    let totals = s["shift"]["totals"].as_array().unwrap();
    let total = |kind: &str| {
        totals
            .iter()
            .find(|t| t["receipt_kind"] == "sale" && t["payment_kind"] == kind)
            .map(|t| t["text"].as_str().unwrap().to_string())
    };
    assert_eq!(total("electronic").as_deref(), Some("300.00"), "{totals:?}");
    assert_eq!(total("cash").as_deref(), Some("210.00"), "{totals:?}");
    assert_eq!(total("change").as_deref(), Some("-94.35"), "{totals:?}");
    let attention: Vec<String> = serde_json::from_value(s["attention"].clone()).unwrap();
    assert!(
        attention
            .iter()
            .any(|a| a.contains("printer is faulted: paper out")),
        "{attention:?}"
    );
    assert!(
        attention.iter().any(|a| a.contains("1 rejected receipt")),
        "{attention:?}"
    );
    assert_eq!(s["config"]["cloud_token"], "set");
    assert_eq!(s["config"]["till_pin"], "set");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_receipts_queue_devices_latency_and_journal_size() {
    let t = till(true).await;
    let resp =
        t.d.client
            .get(format!("{}/metrics", t.d.base))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = resp.text().await.unwrap();
    for line in [
        "fiscald_receipts{state=\"fiscalized\",source=\"native\"} 1",
        "fiscald_receipts{state=\"rejected\",source=\"native\"} 1",
        "fiscald_queue_jobs{kind=\"fiscalize\",state=\"parked\"} 1",
        "fiscald_device_state{device=\"printer\",state=\"faulted\"} 1",
        "fiscald_device_state{device=\"printer\",state=\"ready\"} 0",
        "fiscald_cloud_online 1",
        "fiscald_journal_writable 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    for family in [
        "fiscald_receipt_accept_seconds_bucket",
        "fiscald_sync_job_seconds_bucket{le=",
        "fiscald_device_request_seconds_bucket{le=",
        "fiscald_http_requests_total{method=\"POST\",route=\"/v1/receipts\",status=\"201\",dialect=\"native\"}",
        "fiscald_errors_total{kind=\"devices\"}",
        "fiscald_journal_size_bytes ",
        "fiscald_backlog_oldest_age_seconds ",
    ] {
        assert!(text.contains(family), "missing {family:?} in\n{text}");
    }
    assert!(text.trim_end().ends_with("# EOF"));
    t.stop().await;
}

async fn post_json(d: &TestDaemon, path: &str) -> (u16, serde_json::Value) {
    let resp = d
        .client
        .post(format!("{}{path}", d.base))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A form body as a browser encodes it.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The page's CSRF token, as a browser would submit it from a form.
fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(
        html[at..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_actions_need_operator_sign_in_csrf_and_same_origin() {
    let t = till(false).await;
    let base = t.d.base.clone();
    let origin = base.clone();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The browser's cookie jar: the session cookie from sign-in.
    let jar = std::sync::Mutex::new(String::new());
    let with_cookie = |req: reqwest::RequestBuilder| {
        let c = jar.lock().unwrap().clone();
        if c.is_empty() {
            req
        } else {
            req.header("Cookie", c)
        }
    };
    let post = async |path: &str, origin: Option<&str>, form: &[(&str, &str)]| {
        let mut req = with_cookie(
            browser
                .post(format!("{base}{path}"))
                .header("Content-Type", FORM)
                .body(form_body(form)),
        );
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        let resp = req.send().await.unwrap();
        if let Some(c) = resp.headers().get("set-cookie") {
            let c = c.to_str().unwrap();
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Strict"),
                "{c}"
            );
            *jar.lock().unwrap() = c.split(';').next().unwrap().to_string();
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, location)
    };
    let kicks = || {
        t.devices
            .printer
            .output()
            .events
            .iter()
            .filter(|e| matches!(e, Event::DrawerKick { .. }))
            .count()
    };

    // Not signed in: the page offers sign-in, no action forms, no token.
    let page = browser
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("action=\"/ops/login\""));
    assert!(csrf_of(&page).is_none());
    assert_eq!(
        post("/ops/drawer", Some(&origin), &[("csrf", "x")]).await.0,
        403
    );
    // A wrong token does not sign in.
    assert_eq!(
        post("/ops/login", Some(&origin), &[("token", "guess")])
            .await
            .0,
        403
    );
    // Sign-in from another origin is refused even with the right token.
    assert_eq!(
        post(
            "/ops/login",
            Some("http://evil.example"),
            &[("token", OPERATOR_TOKEN)]
        )
        .await
        .0,
        403
    );
    let (status, location) = post("/ops/login", Some(&origin), &[("token", OPERATOR_TOKEN)]).await;
    assert_eq!((status, location.as_str()), (303, "/?msg=signed%20in"));
    let page = with_cookie(browser.get(format!("{base}/")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page).expect("signed in: the page has action forms");
    assert_eq!(csrf.len(), 64);

    // Signed in, but a forged form (no or wrong CSRF token) or another origin: refused.
    let before = kicks();
    assert_eq!(
        post("/ops/drawer", Some(&origin), &[("csrf", "")]).await.0,
        403
    );
    assert_eq!(
        post("/ops/drawer", Some(&origin), &[("csrf", &"0".repeat(64))])
            .await
            .0,
        403
    );
    assert_eq!(
        post(
            "/ops/drawer",
            Some("http://evil.example"),
            &[("csrf", &csrf)]
        )
        .await
        .0,
        403
    );
    let cross_site = with_cookie(browser.post(format!("{base}/ops/drawer")))
        .header("Sec-Fetch-Site", "cross-site")
        .header("Content-Type", FORM)
        .body(form_body(&[("csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let rebound = with_cookie(browser.post(format!("{base}/ops/drawer")))
        .header("Host", "attacker.example:8730")
        .header("Content-Type", FORM)
        .body(form_body(&[("csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403, "a DNS-rebinding Host is refused");
    assert_eq!(kicks(), before, "no refused request opened the drawer");

    // The real thing: each action does what it says.
    let (status, location) = post("/ops/drawer", Some(&origin), &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/?msg=cash%20drawer%20opened")
    );
    // The emulator decodes the bytes on its own thread.
    until("the drawer kick", async || {
        (kicks() == before + 1).then_some(())
    })
    .await;

    let printed = t.devices.printer.output().documents.len();
    let (status, location) = post("/ops/test-print", Some(&origin), &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/?msg=test%20print%20sent")
    );
    until("the test print", async || {
        (t.devices.printer.output().documents.len() == printed + 1).then_some(())
    })
    .await;
    let out = t.devices.printer.output();
    assert!(
        out.documents
            .last()
            .unwrap()
            .text()
            .contains("fiscald test print")
    );

    let (status, shift) = post_json(&t.d, "/v1/shifts/open").await;
    assert_eq!(status, 200, "{shift}");
    let x_before = t.devices.register.snapshot().x_reports;
    let (status, location) = post("/ops/x-report", Some(&origin), &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/?msg=X%20report%20printed")
    );
    assert_eq!(t.devices.register.snapshot().x_reports, x_before + 1);

    // Retry the rejected receipt: it goes back to the queue (and is
    // rejected again, the simulator still refusing it).
    let retry = format!("/ops/receipts/{}/retry", t.rejected);
    assert_eq!(
        post(&retry, Some("http://evil.example"), &[("csrf", &csrf)])
            .await
            .0,
        403
    );
    let (status, location) = post(&retry, Some(&origin), &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/?msg=receipt%202%20queued%20again")
    );
    let (_, r) = t.d.get(&format!("/v1/receipts/{}", t.rejected)).await;
    assert!(
        r["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "operator"),
        "{r}"
    );
    until("rejected again", async || {
        let (_, r) = t.d.get(&format!("/v1/receipts/{}", t.rejected)).await;
        (r["state"] == "rejected").then_some(())
    })
    .await;
    // Discard needs a reason.
    let discard = format!("/ops/receipts/{}/discard", t.rejected);
    let (_, location) = post(&discard, Some(&origin), &[("csrf", &csrf), ("reason", " ")]).await;
    assert!(location.contains("needs%20a%20reason"), "{location}");
    let (status, _) = post(
        &discard,
        Some(&origin),
        &[("csrf", &csrf), ("reason", "duplicate sale")],
    )
    .await;
    assert_eq!(status, 303);
    let (_, r) = t.d.get(&format!("/v1/receipts/{}", t.rejected)).await;
    assert_eq!(r["state"], "discarded", "{r}");

    // Signing out ends the session: the same CSRF token no longer works.
    assert_eq!(
        post("/ops/logout", Some(&origin), &[("csrf", &csrf)])
            .await
            .0,
        303
    );
    assert_eq!(
        post("/ops/drawer", Some(&origin), &[("csrf", &csrf)])
            .await
            .0,
        403
    );
    let _ = &t.fiscalized;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_operator_token_the_page_is_read_only() {
    let d = TestDaemon::start().await;
    let page = d.client.get(format!("{}/", d.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().await.unwrap();
    assert!(page.contains("Read-only: no operator token is configured."));
    assert!(page.contains("http-equiv=\"refresh\""));
    assert!(page.contains("name=\"viewport\""));
    assert!(!page.contains("<script"), "the page needs no JavaScript");
    let resp = d
        .client
        .post(format!("{}/ops/login", d.base))
        .header("Content-Type", FORM)
        .body(form_body(&[("token", "")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_in_headless_chromium_shows_real_values() {
    let t = till(true).await;
    let url = format!("{}/", t.d.base);
    let dom = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || common::chromium(&["--dump-dom", &url]))
            .await
            .unwrap()
    };
    // The DOM as Chromium built it (maud escapes text: no markup from data).
    let section = |id: &str| -> String {
        let start = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no section #{id} in\n{dom}"));
        let end = dom[start..].find("</section>").unwrap() + start;
        dom[start..end].to_string()
    };
    let devices = section("devices");
    assert!(devices.contains("data-state=\"faulted\""), "{devices}");
    assert!(devices.contains("paper out"), "{devices}");
    assert!(
        devices.contains(&t.devices.printer_path().display().to_string()),
        "{devices}"
    );
    let queue = section("queue");
    assert!(
        queue.contains("<td id=\"receipts-today\">2</td>"),
        "{queue}"
    );
    assert!(
        queue.contains("data-job=\"fiscalize/parked\">1<"),
        "{queue}"
    );
    assert!(queue.contains("data-state=\"fiscalized\">1<"), "{queue}");
    assert!(queue.contains("data-state=\"rejected\">1<"), "{queue}");
    let cloud = section("cloud");
    assert!(cloud.contains("online"), "{cloud}");
    assert!(
        cloud.contains("<td id=\"cloud-fiscalized\">1 / "),
        "{cloud}"
    );
    let shift = section("shift");
    assert!(
        shift.contains("data-total=\"sale/electronic\">300.00 RUB<"),
        "{shift}"
    );
    assert!(
        shift.contains("data-total=\"sale/cash\">210.00 RUB<"),
        "{shift}"
    );
    let rejected = section("rejected");
    assert!(rejected.contains("#2"), "{rejected}");
    assert!(rejected.contains(REJECT), "{rejected}");
    let attention = section("attention");
    assert!(
        attention.contains("printer is faulted: paper out"),
        "{attention}"
    );

    let png = common::screenshot(&url, "status-page.png", "430,2200").await;
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    t.stop().await;
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `needle` appears in `hay` as a number of its own (not inside a longer one).
fn has_number(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_page_status_metrics_logs_or_diagnostics() {
    const CLOUD_TOKEN: &str = "planted-cloud-connector-7f3a9e1b";
    const OPERATOR: &str = "planted-operator-token-c41d07";
    const POS: &str = "planted-pos-token-90aa1f";
    const WRONG: &str = "planted-wrong-guess-5e8b22";
    const PIN: &str = "9753";
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = SimCloud::start(
        listener,
        SimConfig {
            connector_token: CLOUD_TOKEN.into(),
            ..SimConfig::default()
        },
    )
    .await;
    sim.set_knobs(Knobs {
        reject_marker: Some(REJECT.into()),
        ..Knobs::default()
    })
    .unwrap();
    let journal = dir.path().join("journal.sqlite");
    let config = dir.path().join("fiscald.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"{}\"\n[till]\npin = \"{PIN}\"\ntimezone = \"Europe/Moscow\"\n\
             [fiscal]\ncountry = \"ru\"\ntax_system = \"common\"\n[cloud]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{CLOUD_TOKEN}\"\n\
             poll_interval_ms = 100\nprobe_interval_ms = 200\nretry_base_ms = 100\nretry_cap_ms = 400\n\
             [[api.tokens]]\nname = \"kassa\"\nrole = \"pos\"\nsha256 = \"{}\"\n\
             [[api.tokens]]\nname = \"technician\"\nrole = \"operator\"\nsha256 = \"{}\"\n",
            journal.display(),
            sim.base_url(),
            sha256_hex(POS),
            sha256_hex(OPERATOR),
        ),
    )
    .unwrap();
    let log_path = dir.path().join("stderr.log");
    let (mut daemon, base) = common::spawn_fiscald_with(
        &["run", "--config", config.to_str().unwrap()],
        "fiscald listening on ",
        &[
            ("FISCALD_LOG", "debug"),
            ("FISCALD_OPERATOR_TOKEN", OPERATOR),
        ],
        std::fs::File::create(&log_path).unwrap().into(),
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let pos = format!("Bearer {POS}");
    let mut ids = Vec::new();
    for (key, body) in [
        ("key-good", common::example("receipt.json")),
        (
            "key-bad",
            common::receipt(&format!("Broken {REJECT}"), "10.00"),
        ),
    ] {
        let r = client
            .post(format!("{base}/v1/receipts"))
            .header("Authorization", &pos)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for (id, state) in [(&ids[0], "fiscalized"), (&ids[1], "rejected")] {
        until(state, async || {
            let r: serde_json::Value = client
                .get(format!("{base}/v1/receipts/{id}"))
                .header("Authorization", &pos)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (r["state"] == state).then_some(())
        })
        .await;
    }
    // A wrong sign-in, a right one, and an action from the page.
    let login = async |token: &str| {
        client
            .post(format!("{base}/ops/login"))
            .header("Content-Type", FORM)
            .header("Origin", &base)
            .body(form_body(&[("token", token)]))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(login(WRONG).await.status(), 403);
    let signed_in = login(OPERATOR).await;
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let session = cookie.split_once('=').unwrap().1.to_string();
    let page = client
        .get(format!("{base}/"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page).unwrap();
    let retry = client
        .post(format!("{base}/ops/receipts/{}/retry", ids[1]))
        .header("Content-Type", FORM)
        .header("Origin", &base)
        .header("Cookie", &cookie)
        .body(form_body(&[("csrf", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 303);

    let get = async |path: &str| {
        client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let mut outputs: Vec<(String, String)> = vec![
        ("page (signed out)".into(), get("/").await),
        (
            "page (signed in, without its own CSRF token)".into(),
            page.replace(&csrf, ""),
        ),
        ("/v1/status".into(), get("/v1/status").await),
        ("/v1/health".into(), get("/v1/health").await),
        ("/metrics".into(), get("/metrics").await),
    ];
    let bundle = common::diagnostics_bundle(dir.path(), &base, POS, &config).await;
    for name in [
        "config.redacted.toml",
        "status.json",
        "metrics.txt",
        "devices.json",
        "logs.txt",
        "versions.txt",
        "receipts-rejected.json",
    ] {
        let text = std::fs::read_to_string(bundle.join(name))
            .unwrap_or_else(|e| panic!("{name} in the bundle: {e}"));
        outputs.push((format!("diagnostics {name}"), text));
    }
    let redacted = std::fs::read_to_string(bundle.join("config.redacted.toml")).unwrap();
    assert!(
        redacted.contains("token = \"<redacted>\"") && redacted.contains("pin = \"<redacted>\""),
        "{redacted}"
    );
    let status_json = std::fs::read_to_string(bundle.join("status.json")).unwrap();
    assert!(status_json.contains("\"rejected\""), "{status_json}");

    // The tokens the processing issued, as the journal keeps them.
    let issued: Vec<String> = {
        let c = rusqlite::Connection::open_with_flags(
            &journal,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut stmt = c.prepare("SELECT value FROM secrets").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(!issued.is_empty(), "the daemon logged in to the processing");
    sigterm(daemon.id());
    let _ = daemon.wait();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("path=/v1/receipts") && logs.contains("status=201"),
        "audit lines logged:\n{logs}"
    );
    assert!(logs.contains("idempotency_key=\"key-good\""), "{logs}");
    assert!(
        logs.contains(&format!("receipt_id=\"{}\"", ids[0])),
        "{logs}"
    );
    outputs.push(("daemon logs (debug)".into(), logs));

    let mut secrets = vec![
        CLOUD_TOKEN.to_string(),
        OPERATOR.into(),
        WRONG.into(),
        session,
    ];
    secrets.extend(issued);
    for (what, text) in &outputs {
        assert!(!text.is_empty(), "{what} is empty");
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "a secret ({}…) appears in {what}",
                &s[..6]
            );
        }
        assert!(!has_number(text, PIN), "the till PIN appears in {what}");
    }
    sim.stop().await;
}

/// SIGTERM, so the daemon flushes its logs and journal.
fn sigterm(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_routes_exist_and_examples_and_replies_match() {
    common::require_python("yaml, jsonschema");
    let spec = format!("{}/docs/openapi.yaml", env!("CARGO_MANIFEST_DIR"));
    let script = std::path::PathBuf::from(format!(
        "{}/tests/openapi/check.py",
        env!("CARGO_MANIFEST_DIR")
    ));
    let (status, out, err) = common::run_python(
        &script,
        &["routes".as_ref(), spec.as_ref()],
        Duration::from_secs(60),
    );
    assert!(status.success(), "{err}");
    let routes: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(routes.len() >= 14, "{routes:?}");

    let d = TestDaemon::start().await;
    // The spec's own request example is a receipt the daemon accepts.
    let create = routes
        .iter()
        .find(|r| r["method"] == "POST" && r["path"] == "/v1/receipts")
        .unwrap();
    let (code, first) = d.post(&create["body"], None).await;
    assert_eq!(code, 201, "the spec's example receipt: {first}");
    let id = first["id"].as_str().unwrap().to_string();
    let mut replies = vec![serde_json::json!({
        "method": "POST", "path": "/v1/receipts", "status": code, "body": first
    })];
    for r in &routes {
        let path = r["path"].as_str().unwrap().replace("{id}", &id);
        let url = format!("{}{path}", d.base);
        let req = match r["method"].as_str().unwrap() {
            "GET" => d.client.get(url),
            "POST" => d.client.post(url),
            other => panic!("method {other}"),
        };
        let req = match r["body"].as_object() {
            Some(_) => req.json(&r["body"]),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or(serde_json::Value::String(text));
        replies.push(serde_json::json!({
            "method": r["method"], "path": path, "status": status, "body": body
        }));
    }
    let file = d.dir.path().join("replies.json");
    std::fs::write(&file, serde_json::to_vec(&replies).unwrap()).unwrap();
    let (status, out, err) = common::run_python(
        &script,
        &["validate".as_ref(), spec.as_ref(), file.as_os_str()],
        Duration::from_secs(60),
    );
    assert!(
        status.success(),
        "docs/openapi.yaml disagrees with fiscald:\n{err}\n{out}"
    );
    assert!(out.contains(" 0 problems"), "{out}");
}
