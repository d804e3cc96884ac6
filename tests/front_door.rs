//! The front door over real HTTP: web pages, DNS rebinding, tokens and roles,
//! and the request limits — against a daemon on port 0 driving the register
//! and printer emulators, so "changed nothing" is checked on the devices'
//! own counters and the journal's bytes.

mod common;

use common::{TestDaemon, raw_http};
use fiscald::config::{ApiToken, Role, TokenHash};
use fiscald::sim::devices::control::SimDevices;
use fiscald::sim::devices::printer::Event;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Every state-changing endpoint of the native dialect (`{id}` is filled in).
const STATE_CHANGING: &[&str] = &[
    "/v1/receipts",
    "/v1/receipts/{id}/retry",
    "/v1/receipts/{id}/discard",
    "/v1/receipts/{id}/print",
    "/v1/drawer/open",
    "/v1/shifts/open",
    "/v1/shifts/close",
    "/v1/reports/x",
    "/v1/corrections",
    "/v1/cash/in",
    "/v1/cash/out",
];

/// Every route, and a path that is none.
const ALL_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/health"),
    ("GET", "/v1/receipts"),
    ("POST", "/v1/receipts"),
    ("GET", "/v1/receipts/{id}"),
    ("POST", "/v1/receipts/{id}/retry"),
    ("POST", "/v1/receipts/{id}/discard"),
    ("POST", "/v1/receipts/{id}/print"),
    ("GET", "/v1/devices"),
    ("POST", "/v1/drawer/open"),
    ("POST", "/v1/shifts/open"),
    ("POST", "/v1/shifts/close"),
    ("POST", "/v1/reports/x"),
    ("POST", "/v1/corrections"),
    ("POST", "/v1/cash/in"),
    ("POST", "/v1/cash/out"),
    ("GET", "/v1/cash/{id}"),
    ("GET", "/v1/no-such-thing"),
    ("GET", "/"),
    ("OPTIONS", "/v1/receipts"),
];

/// What a web page could have changed: the devices' counters and the journal.
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    register_receipts: usize,
    register_last_fd: u32,
    z_reports: u32,
    x_reports: u32,
    shift_open: bool,
    shift_number: u16,
    cancelled: u32,
    printed_documents: usize,
    drawer_pulses: usize,
    /// Every row of every table: the journal's content, not its bytes (the
    /// WAL is folded into the file when the daemon is idle).
    journal: Vec<String>,
}

fn footprint(sim: &SimDevices, d: &TestDaemon) -> Footprint {
    let r = sim.register.snapshot();
    let p = sim.printer.output();
    Footprint {
        register_receipts: r.receipts.len(),
        register_last_fd: r.last_fd,
        z_reports: r.z_reports,
        x_reports: r.x_reports,
        shift_open: r.shift_open,
        shift_number: r.shift_number,
        cancelled: r.cancelled,
        printed_documents: p.documents.len(),
        drawer_pulses: p
            .events
            .iter()
            .filter(|e| matches!(e, Event::DrawerKick { .. }))
            .count(),
        journal: journal_rows(&d.dir.path().join("journal.sqlite")),
    }
}

fn journal_rows(path: &std::path::Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = Vec::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut q = stmt.query([]).unwrap();
        while let Some(row) = q.next().unwrap() {
            let cells: Vec<String> = (0..n)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect();
            rows.push(format!("{t}: {}", cells.join(" | ")));
        }
    }
    rows.sort();
    rows
}

/// The footprint once nothing is moving any more (two equal looks).
async fn settled(sim: &SimDevices, d: &TestDaemon) -> Footprint {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = footprint(sim, d);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = footprint(sim, d);
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "the till never settled");
        last = now;
    }
}

/// A daemon driving the register and printer emulators.
async fn till(
    tweak: impl FnOnce(&mut fiscald::config::Settings),
) -> (tempfile::TempDir, SimDevices, TestDaemon) {
    let dir = tempfile::tempdir().unwrap();
    let sim = common::emulators(dir.path());
    let d = TestDaemon::start_with(|s| {
        common::wire_emulators(s, &sim);
        tweak(s);
    })
    .await;
    (dir, sim, d)
}

/// A receipt registered and printed, so the till has a document to act on.
async fn first_receipt(d: &TestDaemon, client: &reqwest::Client) -> String {
    let mut body = common::receipt("Чай", "100.00");
    body["items"][0]["vat"] = "22".into();
    let resp = client
        .post(format!("{}/v1/receipts", d.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let r: Value = resp.json().await.unwrap();
    let id = r["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r: Value = client
            .get(format!("{}/v1/receipts/{id}", d.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["state"] == "fiscalized" && r["print"]["state"] == "done" {
            return id;
        }
        assert!(Instant::now() < deadline, "first receipt not done: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn host(d: &TestDaemon) -> String {
    d.daemon.addr.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_form_post_to_every_state_changing_endpoint_is_refused_and_changes_nothing() {
    let (_dir, sim, d) = till(|_| {}).await;
    let id = first_receipt(&d, &d.client).await;
    let before = settled(&sim, &d).await;
    assert_eq!(before.register_receipts, 1);
    assert_eq!(
        before.drawer_pulses, 1,
        "the cash receipt opened the drawer"
    );
    assert!(!before.journal.is_empty());

    let form = "type=sale&items%5B0%5D%5Bname%5D=x&reason=because";
    for path in STATE_CHANGING {
        let path = path.replace("{id}", &id);
        // What `<form method=post action=…>` on another site sends, with
        // and without fetch metadata, and as a text/plain "simple" request.
        for (content_type, extra) in [
            (
                "application/x-www-form-urlencoded",
                "Origin: http://evil.example\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: navigate",
            ),
            (
                "application/x-www-form-urlencoded",
                "Origin: http://evil.example",
            ),
            ("text/plain", "Origin: null\r\nSec-Fetch-Site: cross-site"),
            (
                "multipart/form-data; boundary=x",
                "Sec-Fetch-Site: cross-site",
            ),
            (
                "application/x-www-form-urlencoded",
                "Sec-Fetch-Site: same-site",
            ),
            // An old browser: no Origin, no fetch metadata, only a Referer.
            (
                "application/x-www-form-urlencoded",
                "Referer: http://evil.example/win.html",
            ),
        ] {
            let (status, _, body) = raw_http(
                d.daemon.addr,
                &format!(
                    "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n{extra}",
                    host(&d)
                ),
                form,
            )
            .await;
            assert_eq!(status, 403, "{path} {extra}: {body}");
            let e: Value = serde_json::from_str(&body).unwrap();
            assert!(
                ["origin_not_allowed", "cross_site_request"]
                    .contains(&e["error"]["code"].as_str().unwrap()),
                "{body}"
            );
        }
    }
    let after = settled(&sim, &d).await;
    assert!(
        before == after,
        "a refused request changed the till: before {before:?}, after {after:?}"
    );

    // The same endpoint from a program (no Origin, no fetch metadata) works,
    // and the footprint sees it: the check above could fail.
    let (status, _, body) = raw_http(
        d.daemon.addr,
        &format!("POST /v1/drawer/open HTTP/1.1\r\nHost: {}", host(&d)),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let opened = settled(&sim, &d).await;
    assert_eq!(opened.drawer_pulses, before.drawer_pulses + 1);
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebinding_host_is_refused_on_every_route() {
    let d = TestDaemon::start().await;
    let (status, r) = d.post(&common::receipt("x", "1.00"), None).await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_str().unwrap();
    let port = d.daemon.addr.port();
    for (method, path) in ALL_ROUTES {
        let path = path.replace("{id}", id);
        for evil in [
            format!("evil.example:{port}"),
            "evil.example:8730".to_string(),
            "evil.example".to_string(),
            format!("127.0.0.1.evil.example:{port}"),
        ] {
            let (status, _, body) = raw_http(
                d.daemon.addr,
                &format!(
                    "{method} {path} HTTP/1.1\r\nHost: {evil}\r\nContent-Type: application/json"
                ),
                if *method == "POST" { "{}" } else { "" },
            )
            .await;
            assert_eq!(status, 403, "{method} {path} Host {evil}: {body}");
            let e: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(e["error"]["code"], "host_not_allowed", "{body}");
        }
    }
    // Nothing was journaled by any of them.
    assert_eq!(d.receipt_count().await, 1);
    // The allowed names on any port pass.
    for good in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".into(),
        "[::1]:8730".into(),
    ] {
        let (status, _, body) = raw_http(
            d.daemon.addr,
            &format!("GET /v1/health HTTP/1.1\r\nHost: {good}"),
            "",
        )
        .await;
        assert_eq!(status, 200, "Host {good}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_with_sec_fetch_site_cross_site_is_refused() {
    let d = TestDaemon::start().await;
    for path in ["/v1/health", "/v1/receipts", "/v1/devices", "/v1/nowhere"] {
        for site in ["cross-site", "same-site"] {
            let (status, _, body) = raw_http(
                d.daemon.addr,
                &format!(
                    "GET {path} HTTP/1.1\r\nHost: {}\r\nSec-Fetch-Site: {site}\r\nSec-Fetch-Mode: navigate",
                    host(&d)
                ),
                "",
            )
            .await;
            assert_eq!(status, 403, "{path} {site}: {body}");
            assert!(body.contains("cross_site_request"), "{body}");
        }
        // An old browser's cross-site GET (an <img>, a link) shows only in its Referer.
        let (status, _, body) = raw_http(
            d.daemon.addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nReferer: http://evil.example/page",
                host(&d)
            ),
            "",
        )
        .await;
        assert_eq!(status, 403, "{path} Referer: {body}");
        // Typed into the address bar: allowed.
        let (status, _, _) = raw_http(
            d.daemon.addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nSec-Fetch-Site: none",
                host(&d)
            ),
            "",
        )
        .await;
        assert_ne!(status, 403, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_origin_gets_cors_and_private_network_answers() {
    let d = TestDaemon::start_with(|s| {
        s.api.allowed_origins = vec!["http://localhost:3000".into()];
    })
    .await;
    let preflight = format!(
        "OPTIONS /v1/receipts HTTP/1.1\r\nHost: {}\r\nOrigin: http://localhost:3000\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, idempotency-key\r\nAccess-Control-Request-Private-Network: true\r\nSec-Fetch-Site: cross-site",
        host(&d)
    );
    let (status, head, _) = raw_http(d.daemon.addr, &preflight, "").await;
    assert_eq!(status, 204, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("access-control-allow-origin: http://localhost:3000"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-private-network: true"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: content-type, authorization, idempotency-key"),
        "{head}"
    );
    // The same preflight from another page is refused.
    let (status, head, _) = raw_http(
        d.daemon.addr,
        &preflight.replace("localhost:3000", "evil.example"),
        "",
    )
    .await;
    assert_eq!(status, 403, "{head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("access-control-allow-origin")
    );
    // The real request gets the CORS grant and Location exposed.
    let body = serde_json::to_string(&common::receipt("x", "1.00")).unwrap();
    let (status, head, reply) = raw_http(
        d.daemon.addr,
        &format!(
            "POST /v1/receipts HTTP/1.1\r\nHost: {}\r\nOrigin: http://localhost:3000\r\nSec-Fetch-Site: cross-site\r\nContent-Type: application/json",
            host(&d)
        ),
        &body,
    )
    .await;
    assert_eq!(status, 201, "{reply}");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("access-control-allow-origin: http://localhost:3000"),
        "{head}"
    );
    assert!(
        head.contains("access-control-expose-headers: location"),
        "{head}"
    );
}

fn tokens(s: &mut fiscald::config::Settings) {
    s.api.tokens = vec![
        ApiToken {
            name: "kassa-1".into(),
            role: Role::Pos,
            hash: TokenHash::of("pos-token-1"),
        },
        ApiToken {
            name: "manager".into(),
            role: Role::Operator,
            hash: TokenHash::of("operator-token-1"),
        },
    ];
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_no_token_is_401_and_a_pos_token_on_an_operator_endpoint_is_403() {
    let (_dir, sim, d) = till(tokens).await;
    let operator = common::client_with_token("operator-token-1");
    let pos = common::client_with_token("pos-token-1");
    let anonymous = &d.client;
    let url = |p: &str| format!("{}{p}", d.base);

    // No token, or a wrong one: 401 everywhere, nothing journaled.
    for client in [anonymous, &common::client_with_token("guess")] {
        let r = client.get(url("/v1/health")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        let r = client
            .post(url("/v1/receipts"))
            .json(&common::receipt("x", "1.00"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let r = client.post(url("/v1/drawer/open")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }
    // A pos token sells...
    let id = first_receipt(&d, &pos).await;
    let before = settled(&sim, &d).await;
    // ...but every operator endpoint refuses it: 403, and nothing happens.
    for path in STATE_CHANGING.iter().filter(|p| **p != "/v1/receipts") {
        let r = pos
            .post(url(&path.replace("{id}", &id)))
            .json(&serde_json::json!({"reason": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "operator_only");
    }
    assert!(
        before == settled(&sim, &d).await,
        "a pos token changed the till"
    );
    // The operator token may.
    let r = operator.post(url("/v1/drawer/open")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = operator.post(url("/v1/reports/x")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let after = settled(&sim, &d).await;
    assert_eq!(after.drawer_pulses, before.drawer_pulses + 1);
    assert_eq!(after.x_reports, before.x_reports + 1);
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[test]
fn check_config_refuses_a_lan_listener_without_tokens_naming_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fiscald.toml");
    let run = |text: &str| {
        std::fs::write(&path, text).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_fiscald"))
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = run("[till]\npin = \"1234\"\n\n[api]\nlisten = \"0.0.0.0:8730\"\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 5: api.listen:") && stderr.contains("api.tokens"),
        "{stderr}"
    );
    // With a token (here: its SHA-256), the same listener is accepted.
    let hash = (0..32).map(|i| format!("{i:02x}")).collect::<String>();
    let out = run(&format!(
        "[till]\npin = \"1234\"\n\n[api]\nlisten = \"0.0.0.0:8730\"\n\n[[api.tokens]]\nname = \"kassa\"\nrole = \"pos\"\nsha256 = \"{hash}\"\n"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_items_strings_headers_and_connections() {
    let d = TestDaemon::start_with(|s| {
        s.api.limits.max_items = 3;
        s.api.limits.max_string_chars = 20;
        s.api.limits.max_headers = 10;
        s.api.limits.max_connections = 4;
    })
    .await;
    // Lines and text lengths: 422 naming the field, nothing written.
    let mut r = common::receipt("Чай", "1.00");
    let item = r["items"][0].clone();
    r["items"] = Value::Array(vec![item; 4]);
    r["payments"][0]["amount"] = "4.00".into();
    r["items"][1]["name"] = "ы".repeat(21).into();
    let (status, e) = d.post(&r, None).await;
    assert_eq!(status, 422, "{e}");
    let details: Vec<(&str, &str)> = e["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["path"].as_str().unwrap(), v["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        details,
        [("/items", "max_items"), ("/items/1/name", "max_length")]
    );
    assert_eq!(d.receipt_count().await, 0);

    // Too many header fields: 431.
    let many: String = (0..12).map(|i| format!("\r\nX-Pad-{i}: 1")).collect();
    let (status, _, _) = raw_http(
        d.daemon.addr,
        &format!("GET /v1/health HTTP/1.1\r\nHost: {}{many}", host(&d)),
        "",
    )
    .await;
    assert_eq!(status, 431);

    // Connections over the cap: a fast 503, while the held ones stay served.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(d.daemon.addr).await.unwrap());
    }
    // The accept loop counts a connection once it has taken it, which on a
    // loaded machine may be a moment after connect() returns: probe until the
    // cap is seen (bounded), and time only the refused request itself.
    let mut tries = 0;
    let (status, head, body, took) = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let (status, head, body) = raw_http(
            d.daemon.addr,
            &format!("GET /v1/health HTTP/1.1\r\nHost: {}", host(&d)),
            "",
        )
        .await;
        tries += 1;
        if status == 503 || tries == 50 {
            break (status, head, body, started.elapsed());
        }
    };
    assert_eq!(status, 503, "{head}");
    assert!(body.contains("too_many_connections"), "{body}");
    assert!(
        took < Duration::from_secs(2),
        "refused at once, not after a wait"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _, _) = raw_http(
        d.daemon.addr,
        &format!("GET /v1/health HTTP/1.1\r\nHost: {}", host(&d)),
        "",
    )
    .await;
    assert_eq!(status, 200, "served again once connections closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_and_its_wal_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = TestDaemon::start().await;
    let (status, _) = d.post(&common::receipt("x", "1.00"), None).await;
    assert_eq!(status, 201);
    for suffix in ["", "-wal", "-shm"] {
        let path = d.dir.path().join(format!("journal.sqlite{suffix}"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
}

/// Serve `pages` (path → HTML) on 127.0.0.1, port 0: a web site for the browser.
async fn web_site(pages: Vec<(&'static str, &'static str)>) -> std::net::SocketAddr {
    let mut router = axum::Router::new();
    for (path, html) in pages {
        router = router.route(
            path,
            axum::routing::get(move || async move { axum::response::Html(html) }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A page of a browser-based POS: sells one item with fetch() and shows the answer.
const POS_PAGE: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>POS</title>
<style>body{font:16px sans-serif;margin:24px} pre{background:#eef;padding:12px;white-space:pre-wrap}</style></head>
<body><h1>Browser POS</h1><p>Sells one tea through fiscald with fetch().</p><pre id="out">waiting</pre>
<script>
const q = new URLSearchParams(location.search);
const out = document.getElementById("out");
fetch(q.get("api") + "/v1/receipts", {
  method: "POST",
  headers: {"Content-Type": "application/json", "Idempotency-Key": q.get("key")},
  body: JSON.stringify({type: "sale",
    items: [{name: "Tea", quantity: 1, price: "100.00", vat: "22"}],
    payments: [{kind: "cash", amount: "100.00"}]})
}).then(async r => {
  const b = await r.json();
  out.textContent = "status " + r.status + "\nnumber " + b.number + "\nstate " + b.state +
    "\nlocation " + r.headers.get("Location") + "\norigin " + location.origin;
}).catch(e => { out.textContent = "error " + e; });
</script></body></html>"#;

/// Another site's page trying everything a script can do without a form.
const EVIL_PAGE: &str = r#"<!doctype html><html><body><pre id="out">waiting</pre><script>
const q = new URLSearchParams(location.search);
const api = q.get("api");
const out = document.getElementById("out");
const log = s => { out.textContent += "\n" + s; };
const body = JSON.stringify({type: "sale", items: [{name: "Evil", quantity: 1, price: "1.00", vat: "22"}],
  payments: [{kind: "cash", amount: "1.00"}]});
Promise.allSettled([
  fetch(api + "/v1/receipts", {method: "POST", headers: {"Content-Type": "application/json"}, body})
    .then(r => log("json " + r.status), e => log("json blocked")),
  fetch(api + "/v1/receipts", {method: "POST", mode: "no-cors", body: new URLSearchParams({type: "sale"})})
    .then(r => log("form sent"), e => log("form blocked")),
  fetch(api + "/v1/drawer/open", {method: "POST", mode: "no-cors"})
    .then(r => log("drawer sent"), e => log("drawer blocked")),
  fetch(api + "/v1/shifts/close", {method: "POST", mode: "no-cors", body: "x"})
    .then(r => log("z sent"), e => log("z blocked")),
  fetch(api + "/v1/health").then(r => log("read " + r.status), e => log("read blocked")),
]).then(() => log("done"));
</script></body></html>"#;

/// A page that auto-submits a form to the drawer.
const FORM_PAGE: &str = r#"<!doctype html><html><body>
<form method="post" id="f"><input type="hidden" name="open" value="1"></form>
<script>
const q = new URLSearchParams(location.search);
const f = document.getElementById("f");
f.action = q.get("api") + "/v1/drawer/open";
f.submit();
</script></body></html>"#;

/// Run headless Chromium (Debian's `chromium`; `FISCALD_CHROMIUM` overrides)
/// on `url`; `mode` is `--dump-dom` or `--screenshot=PATH`. Returns stdout.
fn chromium(url: &str, mode: &str) -> String {
    let bin = std::env::var("FISCALD_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--window-size=800,420",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.path().display()),
            mode,
            url,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{bin} must be installed for the browser test (scripts/setup.sh installs Debian's chromium): {e}")
        });
    // Bounded: a hung browser fails the test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {url} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_pos_on_an_allowed_origin_sells_and_other_pages_change_nothing() {
    let site = web_site(vec![("/pos.html", POS_PAGE)]).await;
    let evil = web_site(vec![("/evil.html", EVIL_PAGE), ("/form.html", FORM_PAGE)]).await;
    let pos_origin = format!("http://localhost:{}", site.port());
    let (_dir, sim, d) = till(|s| s.api.allowed_origins = vec![pos_origin.clone()]).await;
    let api = d.base.clone();

    // The POS page on its allowed origin: 201, journaled.
    let dom = tokio::task::spawn_blocking({
        let url = format!("{pos_origin}/pos.html?api={api}&key=browser-1");
        move || chromium(&url, "--dump-dom")
    })
    .await
    .unwrap();
    assert!(dom.contains("status 201"), "{dom}");
    assert!(dom.contains("number 1"), "{dom}");
    assert!(dom.contains("location /v1/receipts/"), "{dom}");
    let (_, list) = d.get("/v1/receipts").await;
    assert_eq!(list["receipts"][0]["caller_key"], "browser-1");
    assert_eq!(list["receipts"][0]["source"], "native");

    // A screenshot of the page, kept as a test artifact and in docs/.
    let shot =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-pos-allowed-origin.png");
    let _ = std::fs::remove_file(&shot);
    tokio::task::spawn_blocking({
        let url = format!("{pos_origin}/pos.html?api={api}&key=browser-2");
        let mode = format!("--screenshot={}", shot.display());
        move || chromium(&url, &mode)
    })
    .await
    .unwrap();
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 1000,
        "screenshot written"
    );
    assert_eq!(d.receipt_count().await, 2, "the screenshot run sold too");

    let before = settled(&sim, &d).await;
    // The same POS page served from an origin that is not allowed, another
    // site's scripts, and a self-submitting form aimed at the drawer.
    let foreign = format!("http://127.0.0.1:{}", site.port());
    let dom = tokio::task::spawn_blocking({
        let url = format!("{foreign}/pos.html?api={api}&key=browser-3");
        move || chromium(&url, "--dump-dom")
    })
    .await
    .unwrap();
    assert!(dom.contains("error TypeError"), "{dom}");
    let dom = tokio::task::spawn_blocking({
        let url = format!("http://127.0.0.1:{}/evil.html?api={api}", evil.port());
        move || chromium(&url, "--dump-dom")
    })
    .await
    .unwrap();
    assert!(dom.contains("done"), "{dom}");
    assert!(dom.contains("json blocked"), "{dom}");
    assert!(dom.contains("read blocked"), "{dom}");
    let dom = tokio::task::spawn_blocking({
        let url = format!("http://127.0.0.1:{}/form.html?api={api}", evil.port());
        move || chromium(&url, "--dump-dom")
    })
    .await
    .unwrap();
    // The browser did post the form, and fiscald refused it.
    assert!(dom.contains("origin_not_allowed"), "{dom}");
    let after = settled(&sim, &d).await;
    assert!(
        before == after,
        "a foreign page changed the till: before {before:?}, after {after:?}"
    );
    assert_eq!(d.receipt_count().await, 2);
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[test]
fn emulator_control_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec![
            "sim",
            "devices",
            "--dir",
            dir.path().to_str().unwrap(),
            "--control",
            "0.0.0.0:0",
        ],
        vec![
            "demo",
            "--state-dir",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--sim-listen",
            "127.0.0.1:0",
            "--devices-control",
            "0.0.0.0:0",
        ],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fiscald"))
            .args(&args)
            .env("FISCALD_LOG", "warn")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("loopback only"), "{args:?}: {stderr}");
    }
}
