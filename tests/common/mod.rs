//! Shared test plumbing: an in-process daemon on port 0 over a journal in a
//! temp dir, and the path to the built binary for process-level tests.
#![allow(dead_code)]

use fiscald::clock::{Clock, SystemClock};
use fiscald::config::{self, Settings};
use fiscald::daemon::Daemon;
use serde_json::{Value, json};
use std::sync::Arc;
use tempfile::TempDir;

pub struct TestDaemon {
    pub daemon: Daemon,
    pub base: String,
    pub dir: TempDir,
    pub client: reqwest::Client,
}

pub fn settings(dir: &std::path::Path) -> Settings {
    let mut s = config::load_str(config::DEMO_CONFIG).expect("demo config");
    s.journal_path = dir.join("journal.sqlite");
    s.listen = "127.0.0.1:0".parse().unwrap();
    // Tests that sync turn it on with a simulator to talk to.
    s.cloud.enabled = false;
    // Tests that use devices start emulators and point the paths at them.
    s.devices.register = None;
    s.devices.printer = None;
    s.devices.drawer.via = config::DrawerVia::None;
    s
}

impl TestDaemon {
    pub async fn start() -> TestDaemon {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> TestDaemon {
        Self::start_with_clock(tweak, Arc::new(SystemClock)).await
    }

    /// An Uzbek till whose fiscal terminal is the FiscalBox at `box_url`.
    pub async fn start_uz(box_url: &str, tweak: impl FnOnce(&mut Settings)) -> TestDaemon {
        let url = box_url.to_string();
        Self::start_from(
            move |dir| uz_settings(dir, &url),
            tweak,
            Arc::new(SystemClock),
        )
        .await
    }

    pub async fn start_with_clock(
        tweak: impl FnOnce(&mut Settings),
        clock: Arc<dyn Clock>,
    ) -> TestDaemon {
        Self::start_from(settings, tweak, clock).await
    }

    async fn start_from(
        base: impl FnOnce(&std::path::Path) -> Settings,
        tweak: impl FnOnce(&mut Settings),
        clock: Arc<dyn Clock>,
    ) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        let mut s = base(dir.path());
        tweak(&mut s);
        let daemon = Daemon::start(&s, clock).await.expect("daemon starts");
        let base = format!("http://{}", daemon.addr);
        TestDaemon {
            daemon,
            base,
            dir,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub async fn post(&self, body: &Value, key: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/v1/receipts", self.base))
            .json(body);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Receipts in the journal, as `/v1/health` counts them.
    /// `GET path` as text (`/metrics`).
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn receipt_count(&self) -> u64 {
        let (_, h) = self.get("/v1/health").await;
        h["journal"]["receipts"].as_u64().unwrap()
    }
}

/// The operator token `fiscald demo` made in its state directory; the file
/// must be 0600.
pub fn demo_token(state_dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = state_dir.join("operator.token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{} is {:o}", path.display(), mode);
    std::fs::read_to_string(&path).unwrap().trim().to_string()
}

/// An HTTP client that sends `Authorization: Bearer <token>` on every request.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A valid receipt: one line of `price` × 1, paid in cash.
pub fn receipt(name: &str, price: &str) -> Value {
    json!({
        "type": "sale",
        "items": [{"name": name, "quantity": 1, "price": price, "vat": "22"}],
        "payments": [{"kind": "cash", "amount": price}]
    })
}

/// [`receipt`] as the API hands it to the journal: for journals built with
/// `fiscald::journal::bulk` (retention, scale).
pub fn domain_receipt(name: &str, price: &str) -> fiscald::domain::Receipt {
    let draft = fiscald::api::native::parse_receipt(&receipt(name, price)).expect("parses");
    let profile = config::load_str(config::DEMO_CONFIG)
        .expect("demo config")
        .profile;
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).expect("a date");
    fiscald::domain::validate(draft, &profile, date).expect("valid")
}

/// An Uzbek till (`demo-uz.toml`) fiscalizing through the FiscalBox at
/// `box_url`, with short retries so outages heal in test time.
pub fn uz_settings(dir: &std::path::Path, box_url: &str) -> Settings {
    let mut s = config::load_str(config::DEMO_UZ_CONFIG).expect("demo uz config");
    s.journal_path = dir.join("journal.sqlite");
    s.listen = "127.0.0.1:0".parse().unwrap();
    s.cloud.enabled = false;
    s.devices.register = None;
    s.devices.printer = None;
    s.devices.drawer.via = config::DrawerVia::None;
    let fb = s.fiscalbox.as_mut().expect("demo uz has a FiscalBox");
    fb.url = box_url.to_string();
    fb.connect_timeout = std::time::Duration::from_millis(500);
    fb.request_timeout = std::time::Duration::from_millis(1500);
    fb.retry_base = std::time::Duration::from_millis(20);
    fb.retry_cap = std::time::Duration::from_millis(150);
    s
}

/// A valid Uzbek receipt for the native API: one line with IKPU and
/// package code, VAT 12 %, paid in cash.
pub fn uz_receipt(name: &str, price: &str) -> Value {
    json!({
        "type": "sale",
        "items": [{"name": name, "quantity": 1, "price": price, "vat": "12",
                   "class_code": "10999001001000000", "package_code": "1520627"}],
        "payments": [{"kind": "cash", "amount": price}]
    })
}

pub fn example(name: &str) -> Value {
    let path = format!("{}/docs/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A fiscald process killed when the test ends, passed or failed: an orphan
/// would hold the harness's output pipe open and hang the run.
pub struct Proc(std::process::Child);

impl Proc {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the built `fiscald` with `args` and wait (up to 20 s) for the stdout
/// line starting with `prefix`; returns the rest of that line.
pub fn spawn_fiscald(args: &[&str], prefix: &str) -> (Proc, String) {
    spawn_fiscald_with(
        args,
        prefix,
        &[("FISCALD_LOG", "warn")],
        std::process::Stdio::inherit(),
    )
}

/// [`spawn_fiscald`] with environment variables and stderr of the caller's choosing.
pub fn spawn_fiscald_with(
    args: &[&str],
    prefix: &str,
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (Proc, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_fiscald"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("fiscald starts");
    let stdout = child.stdout.take().unwrap();
    let child = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(&prefix) {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("fiscald {args:?} did not report its address"));
    (child, line)
}

/// The interpreter the interop tests run (`FISCALD_PYTHON`, else `python3`).
pub fn python() -> String {
    std::env::var("FISCALD_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Fails the test unless python can import `modules` (a comma-separated
/// list): the interop tests never pass without their peer.
pub fn require_python(modules: &str) {
    let probe = std::process::Command::new(python())
        .args(["-c", &format!("import {modules}")])
        .output()
        .expect("python3 must be installed for the interop tests");
    assert!(
        probe.status.success(),
        "python3 cannot import {modules}: run `pip install -r tests/interop/requirements.txt` \
         (CI installs it); this test never passes without it\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

/// Runs a python script with `args`, killing it after `limit`; returns
/// (status, stdout, stderr).
pub fn run_python(
    script: &std::path::Path,
    args: &[&std::ffi::OsStr],
    limit: std::time::Duration,
) -> (std::process::ExitStatus, String, String) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(python())
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for python") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} did not finish within {limit:?}",
                script.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, out, err)
}

/// The seed 004 sale request (tests/common/seeds/README.md): its `¤cy=USD`
/// line restored as `&currency=<currency>`, `cheque` replaced when given,
/// signed for endpoint 1111 with [`GATEWAY_KEY`].
pub fn gateway_seed_request(currency: &str, cheque: Option<&str>) -> String {
    let control = fiscald::api::gateway::parse::sale_control(
        "1111",
        "902B4FF5",
        fiscald::domain::Money(70000),
        "john.smith@gmail.com",
        GATEWAY_KEY,
    );
    // The seed's lines are already form fields (`&key=value`, values as the
    // seed wrote them); only the replaced values are encoded here.
    include_str!("seeds/004_sale_request.txt")
        .lines()
        .map(|l| l.replace("\u{a4}cy=USD", "&currency=USD"))
        .map(|l| {
            let (k, v) = l.trim_start_matches('&').split_once('=').unwrap();
            match (k, cheque) {
                ("currency", _) => form_encode(&[(k.into(), currency.into())]),
                ("cheque", Some(c)) => form_encode(&[(k.into(), c.into())]),
                ("control", _) => format!("control={control}"),
                _ => format!("{k}={v}"),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The merchant key of the spec's example.
pub const GATEWAY_KEY: &str = "B17F59B4-A7DC-41B4-8FF9-37D986B43D20";

/// `application/x-www-form-urlencoded`, PHP style (brackets percent-encoded).
pub fn form_encode(fields: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Online-order settings for tests: Bitrix24 login `shop` / password
/// `s3cret` (VAT id 0 none, 2 = 22 %), the gateway as in the spec's example.
pub fn online(s: &mut Settings) {
    s.bitrix24 = Some(config::Bitrix24Settings {
        login: "shop".into(),
        password: config::TokenHash::of("s3cret"),
        vat: [
            ("0".to_string(), fiscald::domain::Vat::None),
            ("2".to_string(), fiscald::domain::Vat::Vat22),
        ]
        .into(),
    });
    s.gateway = Some(config::GatewaySettings {
        endpoint_id: "1111".into(),
        merchant_key: config::Secret::new(GATEWAY_KEY),
        payment_subject: fiscald::domain::PaymentSubject::Commodity,
        tax: [
            (1, fiscald::domain::Vat::Vat22),
            (2, fiscald::domain::Vat::Vat10),
            (3, fiscald::domain::Vat::Vat0),
            (4, fiscald::domain::Vat::None),
            (5, fiscald::domain::Vat::Vat122),
            (6, fiscald::domain::Vat::Vat110),
        ]
        .into(),
    });
}

/// A Bitrix24 PRINT as it posts it: one line of `price` at VAT id 2 (22 %),
/// paid by card, with the given uuid and credentials.
pub fn bitrix_print(uuid: &str, price: &str, login: &str, password: &str) -> String {
    let f = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut fields = vec![
        f("type", "sell"),
        f("calculated_sign", "income"),
        f("unique_id", "17"),
        f("date_create", "1767261600"),
        f("uuid", uuid),
        f("number_kkm", "1"),
        f("client_email", "buyer@example.com"),
        f("total_sum", price),
        f("items[0][name]", "Green tea"),
        f("items[0][price]", price),
        f("items[0][sum]", price),
        f("items[0][quantity]", "1"),
        f("items[0][vat]", "2"),
        f("items[0][payment_object]", "commodity"),
        f("items[0][payment_method]", "full_payment"),
        f("payments[0][type]", "cashless"),
        f("payments[0][is_cash]", "N"),
        f("payments[0][sum]", price),
    ];
    if !login.is_empty() {
        fields.push(f("cashbox_params[AUTH][LOGIN]", login));
    }
    if !password.is_empty() {
        fields.push(f("cashbox_params[AUTH][PASSWORD]", password));
    }
    form_encode(&fields)
}

/// The device emulators (register, printer with drawer) on pseudo-terminals
/// under `dir/devices`, printer unpaced.
pub fn emulators(dir: &std::path::Path) -> fiscald::sim::devices::control::SimDevices {
    fiscald::sim::devices::control::SimDevices::start(
        &dir.join("devices"),
        fiscald::sim::devices::control::SimDevicesOptions {
            printer_pace_baud: None,
            seed: 7,
            timezone: None,
        },
    )
    .expect("emulators start")
}

/// Point a daemon's settings at the emulators: the register fiscalizes, the
/// printer prints, the drawer hangs on the printer; fast status polls.
pub fn wire_emulators(s: &mut Settings, sim: &fiscald::sim::devices::control::SimDevices) {
    use std::time::Duration;
    let demo = config::load_str(config::DEMO_CONFIG).expect("demo config");
    let mut register = demo.devices.register.clone().expect("demo register");
    register.path = sim.register_path();
    register.reply_timeout = Duration::from_millis(1500);
    let mut printer = demo.devices.printer.clone().expect("demo printer");
    printer.path = sim.printer_path();
    s.devices.register = Some(register);
    s.devices.printer = Some(printer);
    s.devices.drawer.via = config::DrawerVia::Printer;
    s.devices.backend = config::Backend::Register;
    s.devices.status_interval = Duration::from_millis(200);
    s.devices.reconnect_base = Duration::from_millis(50);
    s.devices.reconnect_cap = Duration::from_millis(400);
}

/// One raw HTTP/1.1 exchange, so a test controls every header (`Host`
/// included): `head` is the request line and headers without the final
/// blank line. Returns the status, the response head and the body.
pub async fn raw_http(addr: std::net::SocketAddr, head: &str, body: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut reply),
    )
    .await
    .expect("the server answers")
    .unwrap();
    let reply = String::from_utf8_lossy(&reply).to_string();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// Poll `f` every 50 ms until it yields, or fail after `limit`.
pub async fn until<T>(
    what: &str,
    limit: std::time::Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

impl TestDaemon {
    /// POST a JSON body to `path`; the status and the JSON reply.
    pub async fn post_to(&self, path: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

// ------------------------------------------------------------ fixtures

/// Tag `n` among `tags`, or a panic naming it.
pub fn tlv_tag(
    tags: &[fiscald::devices::shtrih::tlv::Tlv],
    n: u16,
) -> &fiscald::devices::shtrih::tlv::Tlv {
    tags.iter()
        .find(|t| t.tag == n)
        .unwrap_or_else(|| panic!("tag {n} missing in {tags:?}"))
}

/// The line's industry requisite 1260 as the register emulator keeps it
/// (FF4D STLV): the marking simulator's answer — federal id 030, the
/// document's date and number (1262–1264) — and `value` in 1265.
pub fn assert_1260_on_register(line_tags: &[fiscald::devices::shtrih::tlv::Tlv], value: &str) {
    let parts = tlv_tag(line_tags, 1260).children();
    assert_eq!(tlv_tag(&parts, 1262).text(), "030");
    assert_eq!(tlv_tag(&parts, 1263).text(), "21.11.2023");
    assert_eq!(tlv_tag(&parts, 1264).text(), "1944");
    assert_eq!(tlv_tag(&parts, 1265).text(), value);
}

/// The same requisite 1260 as the cloud processing keeps it
/// (`sectoralItemProps`).
pub fn cloud_1260(value: &str) -> Value {
    json!({"federalId": "030", "date": "21.11.2023", "number": "1944", "value": value})
}

/// A GS1 DataMatrix marking code with its crypto tail (AI 91 and 92 after
/// GS) that the marking simulator accepts and the register emulator's FN
/// finds genuine.
pub const MARKED_CODE: &str =
    "0104601234567893215Abc12\u{1d}91EE06\u{1d}92c2lnbmF0dXJlLW9mLXRoZS1jb2RlLTQ0LWNoYXJzLi4=";

/// The marking simulator (permissive-mode online check and local module) on
/// port 0.
pub async fn marking_sim() -> fiscald::sim::marking::SimMarking {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    fiscald::sim::marking::SimMarking::start(l).await
}

/// `[marking]` settings with both services (online check and local module)
/// on the simulator at `sim_url`.
pub fn marking_settings(
    sim_url: &str,
    on_unreachable: config::OnUnreachable,
) -> config::MarkingSettings {
    use config::{MarkingService, Secret};
    config::MarkingSettings {
        online: Some(MarkingService {
            url: sim_url.into(),
            secret: Secret::new("test-api-key"),
            login: String::new(),
            client_id: String::new(),
        }),
        local: Some(MarkingService {
            url: sim_url.into(),
            secret: Secret::new("admin"),
            login: "admin".into(),
            client_id: "9999078900000001".into(),
        }),
        timeout: std::time::Duration::from_millis(400),
        on_unreachable,
    }
}

/// The FFD 1.2 receipt of 2026 the fiscal-data tests push through every
/// backend: two VAT rates (22 % and 10 %), a line discount and a receipt
/// discount, a weighed line in kilograms, an agent's line with its
/// supplier, the buyer's email, name and INN, the cashier with INN, and an
/// earlier prepayment offset plus cash. `marked` is the hook for a marked
/// item (Честный ЗНАК): when given, it is appended as the last line;
/// `Fiscal2026::with_marked()` gives the fixture with [`MARKED_CODE`] on
/// shoes at [`Fiscal2026::MARKED_PRICE`], and `total()`/`change()` follow.
pub struct Fiscal2026 {
    pub marked: Option<Value>,
}

impl Fiscal2026 {
    pub const BUYER_EMAIL: &'static str = "buyer@example.com";
    pub const BUYER_NAME: &'static str = "ООО Покупатель";
    pub const BUYER_INN: &'static str = "7707083893";
    pub const CASHIER: &'static str = "Иванова А.А.";
    pub const CASHIER_INN: &'static str = "500100732259";
    pub const SUPPLIER: &'static str = "ООО Партнёр";
    pub const SUPPLIER_INN: &'static str = "7701234567";
    pub const SUPPLIER_PHONE: &'static str = "+74951234567";
    /// 179.80 − 9.80 + 314.65 + 500.00 − 10.00.
    pub const TOTAL: &'static str = "974.65";
    pub const PREPAID: &'static str = "300.00";
    pub const CASH: &'static str = "700.00";
    pub const CHANGE: &'static str = "25.35";
    pub const MARKED_NAME: &'static str = "Кеды детские";
    pub const MARKED_PRICE: &'static str = "20.00";
    /// [`Self::TOTAL`] + [`Self::MARKED_PRICE`]: the receipt discount stays 10.00.
    pub const MARKED_TOTAL: &'static str = "994.65";
    pub const MARKED_CHANGE: &'static str = "5.35";

    /// The fixture with the marked line (22 %, one pair, [`MARKED_CODE`]).
    pub fn with_marked() -> Fiscal2026 {
        Fiscal2026 {
            marked: Some(json!({"name": Self::MARKED_NAME, "quantity": 1,
                                "price": Self::MARKED_PRICE, "vat": "22",
                                "marking": [MARKED_CODE]})),
        }
    }

    pub fn total(&self) -> &'static str {
        if self.marked.is_some() {
            Self::MARKED_TOTAL
        } else {
            Self::TOTAL
        }
    }

    pub fn change(&self) -> &'static str {
        if self.marked.is_some() {
            Self::MARKED_CHANGE
        } else {
            Self::CHANGE
        }
    }

    pub fn json(&self) -> Value {
        let mut items = vec![
            json!({"name": "Молоко 3,2% 1 л", "quantity": 2, "price": "89.90", "vat": "22",
                   "discount": "9.80"}),
            json!({"name": "Сыр весовой", "quantity": "0.350", "price": "899.00", "vat": "10",
                   "unit": "kg"}),
            json!({"name": "Подарочная карта партнёра", "quantity": 1, "price": "500.00",
                   "vat": "22", "payment_subject": "service",
                   "agent": {"kind": "commission_agent", "supplier_name": Self::SUPPLIER,
                             "supplier_inn": Self::SUPPLIER_INN,
                             "supplier_phone": Self::SUPPLIER_PHONE}}),
        ];
        items.extend(self.marked.clone());
        json!({
            "type": "sale",
            "tax_system": "common",
            "items": items,
            "discount": "10.00",
            "buyer": {"email": Self::BUYER_EMAIL, "name": Self::BUYER_NAME, "inn": Self::BUYER_INN},
            "cashier": {"name": Self::CASHIER, "inn": Self::CASHIER_INN},
            "payments": [
                {"kind": "prepaid", "amount": Self::PREPAID},
                {"kind": "cash", "amount": Self::CASH}
            ]
        })
    }
}

/// An advance (prepayment) receipt at the calculated rate 22/122.
pub fn advance_22_122() -> Value {
    json!({
        "type": "sale",
        "items": [{"name": "Аванс за заказ № 15", "quantity": 1, "price": "1000.00",
                   "vat": "22/122", "calculation_method": "advance",
                   "payment_subject": "payment"}],
        "payments": [{"kind": "electronic", "amount": "1000.00"}]
    })
}

/// A 2026 return of a sale made in 2025 at 20 %.
pub fn return_of_2025_sale_at_20() -> Value {
    json!({
        "type": "sale_return",
        "original_date": "2025-12-20",
        "items": [{"name": "Чайник", "quantity": 1, "price": "2400.00", "vat": "20"}],
        "payments": [{"kind": "electronic", "amount": "2400.00"}]
    })
}

/// Runs headless Chromium (Debian `chromium`; scripts/setup.sh installs it).
/// Headless Chromium's screenshot of `url` in a window of `size`
/// (`"430,2200"`), written to `docs/<doc_path>` (kept in the repo as what a
/// person sees); returns the file's bytes.
pub async fn screenshot(url: &str, doc_path: &str, size: &str) -> Vec<u8> {
    let shot = format!("{}/docs/{doc_path}", env!("CARGO_MANIFEST_DIR"));
    let args = [
        format!("--window-size={size}"),
        format!("--screenshot={shot}"),
        url.to_string(),
    ];
    tokio::task::spawn_blocking(move || {
        chromium(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    std::fs::read(&shot).expect("chromium saved the screenshot")
}

pub fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
        ])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium must be installed (scripts/setup.sh installs it)");
    let mut out = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// Run the `fiscald` command line to completion (the technician commands).
#[allow(dead_code)]
pub fn fiscald_cli(args: Vec<String>) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fiscald"))
        .args(args)
        .output()
        .unwrap()
}

/// `fiscald diagnostics` against a running daemon, unpacked under `dir`:
/// the bundle's directory.
#[allow(dead_code)]
pub async fn diagnostics_bundle(
    dir: &std::path::Path,
    url: &str,
    token: &str,
    config: &std::path::Path,
) -> std::path::PathBuf {
    let tarball = dir.join("diag.tar.gz");
    let args: Vec<String> = [
        "diagnostics",
        "--url",
        url,
        "--token",
        token,
        "--config",
        config.to_str().unwrap(),
        "-o",
        tarball.to_str().unwrap(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let diag = tokio::task::spawn_blocking(move || fiscald_cli(args))
        .await
        .unwrap();
    assert!(
        diag.status.success(),
        "{}",
        String::from_utf8_lossy(&diag.stderr)
    );
    let unpacked = dir.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let tar = std::process::Command::new("tar")
        .args([
            "-xzf",
            tarball.to_str().unwrap(),
            "-C",
            unpacked.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(tar.success());
    unpacked.join("diag")
}

/// A FiscalBox `order/create` body: lines of (name, unit price in tiyin,
/// quantity ×1000), VAT 12 % included, at the POS time `time`.
#[allow(dead_code)]
pub fn fiscalbox_order(
    uuid: &str,
    lines: &[(&str, i64, i64)],
    (cash, change, card): (i64, i64, i64),
    time: &str,
) -> serde_json::Value {
    let products: Vec<serde_json::Value> = lines
        .iter()
        .map(|(name, price, qty)| {
            let total = price * qty / 1000;
            let vat = fiscald::domain::uz::included_vat(fiscald::domain::Money(total), 12).0;
            serde_json::json!({"name": name, "barcode": "4780000000007", "amount": qty,
                   "unit_name": "dona", "price": total, "product_price": price, "vat": vat,
                   "vat_percent": 12, "discount": 0, "other": 0, "labels": [],
                   "class_code": FISCALBOX_IKPU, "package_code": "1520627", "owner_type": 0})
        })
        .collect();
    serde_json::json!({"number": 1, "receipt_type": "order", "products": products,
           "time": time, "cashier": "Admin", "uuid": uuid,
           "received_cash": cash, "change": change, "received_card": card})
}

/// The IKPU class code of the FiscalBox test products.
#[allow(dead_code)]
pub const FISCALBOX_IKPU: &str = "10999001001000000";
