//! The configuration file: its TOML schema, defaults, and validation.
//!
//! `fiscald check-config` and the daemon share one path: [`load_str`] reports
//! *every* problem it finds — syntax errors, unknown keys, wrong types and
//! broken rules — each with its dotted key and line, and only a file with none
//! becomes [`Settings`], the typed form the rest of the daemon reads.

use crate::devices::port::LineSettings;
use crate::domain::{Country, Profile, TaxSystem};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/fiscald/fiscald.toml";
/// Production base URL of the fiscal processing (seed 001).
pub const DEFAULT_CLOUD_BASE_URL: &str = "https://fp.bifit.com/processing-api";

/// The file as written. Every field has a default so that a missing key is not
/// an error unless a rule says so; unknown keys are always an error.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub api: ApiConfig,
    pub journal: JournalConfig,
    pub till: TillConfig,
    pub fiscal: FiscalConfig,
    pub cloud: CloudConfig,
    pub devices: DevicesConfig,
    pub register: RegisterConfig,
    pub printer: PrinterConfig,
    pub drawer: DrawerConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the HTTP API binds. Keep it on loopback unless the POS runs elsewhere.
    pub listen: String,
    /// Largest request body accepted, in bytes (413 above it).
    pub max_body_bytes: u64,
    /// How long a request may wait for the journal to commit before 503.
    pub write_timeout_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8730".into(),
            max_body_bytes: 1024 * 1024,
            write_timeout_ms: 5000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// The SQLite journal file.
    pub path: String,
    /// Most requests committed in one transaction (group commit).
    pub batch_max: u64,
    /// Cap on the journal's size in MiB; 0 means only the disk limits it.
    pub max_size_mb: u64,
    /// How long SQLite waits on a lock or a slow disk before giving up.
    pub busy_timeout_ms: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            path: "/var/lib/fiscald/journal.sqlite".into(),
            batch_max: 256,
            max_size_mb: 0,
            busy_timeout_ms: 5000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TillConfig {
    /// The till's 4-digit PIN; part of every receipt's idempotency key.
    pub pin: String,
    /// IANA time zone of the shop; receipt times in keys and replies use it.
    pub timezone: String,
}

impl Default for TillConfig {
    fn default() -> Self {
        TillConfig {
            pin: String::new(),
            timezone: "Europe/Moscow".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiscalConfig {
    /// `ru` or `uz`: which fiscal rules the till follows.
    pub country: String,
    /// ISO 4217 code; empty means the country's own (RUB, UZS).
    pub currency: String,
    /// Tax system used when a receipt does not name one.
    pub tax_system: String,
    /// Who fiscalizes: `cloud` (the processing, via the sync worker; the
    /// printer prints the offline link at once) or `register` (the fiscal
    /// register fiscalizes and prints at once).
    pub backend: String,
}

impl Default for FiscalConfig {
    fn default() -> Self {
        FiscalConfig {
            country: "ru".into(),
            currency: String::new(),
            tax_system: "common".into(),
            backend: "cloud".into(),
        }
    }
}

/// Settings shared by every serial device.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevicesConfig {
    /// How often an idle, connected device is asked for its status.
    pub status_interval_ms: u64,
    /// First delay before reopening a device that is absent or hung up;
    /// doubles up to `reconnect_cap_ms`.
    pub reconnect_base_ms: u64,
    pub reconnect_cap_ms: u64,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            status_interval_ms: 5_000,
            reconnect_base_ms: 500,
            reconnect_cap_ms: 30_000,
        }
    }
}

/// The fiscal register (Shtrih-M protocol).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// Device path, preferably a udev symlink (`/dev/fiscald/register`).
    /// Empty: no register.
    pub path: String,
    pub baud: u64,
    /// Operator password for receipts (Shtrih-M default 1).
    pub password: u64,
    /// System administrator password for reports and shifts (default 30).
    pub admin_password: u64,
    /// How long to wait for the register's answer to one command.
    pub reply_timeout_ms: u64,
    /// Open the shift by itself when a receipt arrives and the shift is closed.
    pub auto_open_shift: bool,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            path: String::new(),
            baud: 115_200,
            password: 1,
            admin_password: 30,
            reply_timeout_ms: 3_000,
            auto_open_shift: true,
        }
    }
}

/// The ESC/POS receipt printer.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrinterConfig {
    /// Device path, preferably a udev symlink (`/dev/fiscald/printer`).
    /// Empty: no printer.
    pub path: String,
    pub baud: u64,
    /// `ESC t n` code table for Cyrillic: 17 is CP866 on Epson-compatible
    /// printers; others use 7, 10, 11, 12, 37, 59 (see docs).
    pub code_table: u64,
    /// Encoding of that code table: `cp866` or `cp1251`.
    pub encoding: String,
    /// Characters per line (48 for 80 mm paper with font A, 32 for 58 mm).
    pub width: u64,
    /// `partial`, `full` or `none` (no cutter).
    pub cut: String,
    /// Lines printed at the top of every receipt (shop name, address, INN).
    pub header: Vec<String>,
    /// Lines printed at the bottom.
    pub footer: Vec<String>,
    /// Limit for sending one receipt to the printer.
    pub write_timeout_ms: u64,
    /// Limit for one real-time status answer.
    pub status_timeout_ms: u64,
}

impl Default for PrinterConfig {
    fn default() -> Self {
        PrinterConfig {
            path: String::new(),
            baud: 115_200,
            code_table: 17,
            encoding: "cp866".into(),
            width: 48,
            cut: "partial".into(),
            header: Vec::new(),
            footer: Vec::new(),
            write_timeout_ms: 30_000,
            status_timeout_ms: 500,
        }
    }
}

/// The cash drawer.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrawerConfig {
    /// `printer` (its kick connector, ESC p), `register`, or `none`.
    pub via: String,
    /// Printer kick connector pin: 2 (drawer 1) or 5 (drawer 2).
    pub pin: u64,
    /// Pulse length.
    pub pulse_ms: u64,
    /// Open the drawer when a receipt has a cash payment.
    pub open_on_cash: bool,
}

impl Default for DrawerConfig {
    fn default() -> Self {
        DrawerConfig {
            via: "none".into(),
            pin: 2,
            pulse_ms: 100,
            open_on_cash: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    /// Send receipts to the processing. Off: they wait in the outbox.
    pub enabled: bool,
    /// Base URL of the fiscal processing; offline receipt links start with it.
    pub base_url: String,
    /// The connector token, inline. Prefer `token_file`.
    pub token: String,
    /// A file holding the connector token; must not be readable by others.
    pub token_file: String,
    /// Receipts in flight to the processing at once.
    pub concurrency: u64,
    pub connect_timeout_ms: u64,
    /// Limit for one whole request (connect, send, reply).
    pub request_timeout_ms: u64,
    /// First retry delay; doubles per failure (with jitter) up to `retry_cap_ms`.
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    /// Longest `Retry-After` honoured.
    pub retry_after_max_ms: u64,
    /// How often a document still `PROCESSING` is asked for again.
    pub poll_interval_ms: u64,
    /// While offline, how often to check whether the processing is back.
    pub probe_interval_ms: u64,
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            enabled: false,
            base_url: DEFAULT_CLOUD_BASE_URL.into(),
            token: String::new(),
            token_file: String::new(),
            concurrency: 4,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 15_000,
            retry_base_ms: 1_000,
            retry_cap_ms: 300_000,
            retry_after_max_ms: 3_600_000,
            poll_interval_ms: 1_000,
            probe_interval_ms: 5_000,
        }
    }
}

/// A value that must never reach a log, a reply or a status page.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The validated `[cloud]` section.
#[derive(Clone, Debug)]
pub struct CloudSettings {
    pub enabled: bool,
    pub base_url: String,
    pub token: Option<Secret>,
    pub concurrency: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry: crate::sync::policy::RetryPolicy,
    pub poll_interval: Duration,
    pub probe_interval: Duration,
}

/// Who fiscalizes receipts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cloud,
    Register,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DrawerVia {
    None,
    Printer,
    Register,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CutMode {
    None,
    Partial,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextEncoding {
    Cp866,
    Cp1251,
}

#[derive(Clone, Debug)]
pub struct RegisterSettings {
    pub path: PathBuf,
    pub line: LineSettings,
    pub password: u32,
    pub admin_password: u32,
    pub reply_timeout: Duration,
    pub auto_open_shift: bool,
}

#[derive(Clone, Debug)]
pub struct PrinterSettings {
    pub path: PathBuf,
    pub line: LineSettings,
    pub code_table: u8,
    pub encoding: TextEncoding,
    pub width: usize,
    pub cut: CutMode,
    pub header: Vec<String>,
    pub footer: Vec<String>,
    pub write_timeout: Duration,
    pub status_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct DrawerSettings {
    pub via: DrawerVia,
    /// 2 or 5.
    pub pin: u8,
    pub pulse: Duration,
    pub open_on_cash: bool,
}

/// The validated device sections.
#[derive(Clone, Debug)]
pub struct DeviceSettings {
    pub backend: Backend,
    pub register: Option<RegisterSettings>,
    pub printer: Option<PrinterSettings>,
    pub drawer: DrawerSettings,
    pub status_interval: Duration,
    pub reconnect_base: Duration,
    pub reconnect_cap: Duration,
}

/// Baud rates a serial device may be configured with.
pub const BAUD_RATES: &[u64] = &[2400, 4800, 9600, 19200, 38400, 57600, 115200];

/// One thing wrong with a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `till.pin`; empty for a syntax error.
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (Some(line), false) => write!(f, "line {line}: {}: {}", self.key, self.message),
            (Some(line), true) => write!(f, "line {line}: {}", self.message),
            (None, false) => write!(f, "{}: {}", self.key, self.message),
            (None, true) => write!(f, "{}", self.message),
        }
    }
}

/// The validated configuration the daemon runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub write_timeout: Duration,
    pub journal_path: PathBuf,
    pub batch_max: usize,
    pub journal_max_bytes: Option<u64>,
    pub busy_timeout: Duration,
    pub pin: String,
    pub timezone: Tz,
    pub profile: Profile,
    pub cloud: CloudSettings,
    pub devices: DeviceSettings,
}

/// Read and validate a config file.
pub fn load_file(path: &Path) -> Result<Settings, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            key: String::new(),
            line: None,
            message: format!("cannot read {}: {e}", path.display()),
        }]
    })?;
    load_str(&text)
}

/// Validate config text, reporting every problem.
pub fn load_str(text: &str) -> Result<Settings, Vec<Problem>> {
    let (doc, syntax) = toml::de::DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(syntax
            .into_iter()
            .map(|e| Problem {
                key: String::new(),
                line: e.span().map(|s| line_of(text, s.start)),
                message: format!("TOML syntax: {}", e.message().trim()),
            })
            .collect());
    }
    let mut lines = BTreeMap::new();
    index_lines(text, "", doc.get_ref(), &mut lines);

    let mut problems = Vec::new();
    let mut table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            return Err(vec![Problem {
                key: String::new(),
                line: e.span().map(|s| line_of(text, s.start)),
                message: e.message().trim().to_string(),
            }]);
        }
    };
    let known = toml::Table::try_from(Config::default()).expect("defaults serialize");
    remove_unknown(&mut table, &known, "", &lines, &mut problems);

    // Deserialize, and on each type error note it, drop that key, and go on:
    // one run lists every wrong value, not just the first.
    let config = loop {
        let value = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, Config>(value) {
            Ok(config) => break config,
            Err(err) => {
                let key = err.path().to_string();
                let message = err.inner().message().trim().to_string();
                let removed = remove_path(&mut table, &key);
                problems.push(Problem {
                    line: lines.get(&key).copied(),
                    key,
                    message,
                });
                if !removed || problems.len() > 100 {
                    return Err(problems);
                }
            }
        }
    };

    let settings = check_rules(&config, &lines, &mut problems);
    if problems.is_empty() {
        Ok(settings.expect("rules passed"))
    } else {
        Err(problems)
    }
}

/// The built-in config `fiscald demo` runs with.
pub const DEMO_CONFIG: &str = include_str!("../config/demo.toml");
/// The built-in config `fiscald demo --country uz` runs with.
pub const DEMO_UZ_CONFIG: &str = include_str!("../config/demo-uz.toml");

fn check_rules(
    c: &Config,
    lines: &BTreeMap<String, usize>,
    problems: &mut Vec<Problem>,
) -> Option<Settings> {
    // A key whose value was already refused (wrong type) is not judged again
    // by its default.
    let reported: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
    let mut bad = |key: &str, message: String| {
        if reported.iter().any(|k| k == key) {
            return;
        }
        problems.push(Problem {
            key: key.into(),
            line: lines.get(key).copied(),
            message,
        })
    };

    let listen = c
        .api
        .listen
        .parse::<SocketAddr>()
        .map_err(|_| {
            bad(
                "api.listen",
                format!(
                    "{:?} is not an address such as 127.0.0.1:8730",
                    c.api.listen
                ),
            )
        })
        .ok();
    if !(1024..=64 * 1024 * 1024).contains(&c.api.max_body_bytes) {
        bad(
            "api.max_body_bytes",
            "must be between 1024 and 67108864".into(),
        );
    }
    if !(100..=600_000).contains(&c.api.write_timeout_ms) {
        bad(
            "api.write_timeout_ms",
            "must be between 100 and 600000 milliseconds".into(),
        );
    }
    if c.journal.path.trim().is_empty() {
        bad("journal.path", "must name the SQLite journal file".into());
    }
    if !(1..=10_000).contains(&c.journal.batch_max) {
        bad("journal.batch_max", "must be between 1 and 10000".into());
    }
    if c.journal.max_size_mb > 1024 * 1024 {
        bad(
            "journal.max_size_mb",
            "must be at most 1048576 (1 TiB), or 0 for no cap".into(),
        );
    }
    if !(10..=600_000).contains(&c.journal.busy_timeout_ms) {
        bad(
            "journal.busy_timeout_ms",
            "must be between 10 and 600000 milliseconds".into(),
        );
    }
    if !(c.till.pin.len() == 4 && c.till.pin.bytes().all(|b| b.is_ascii_digit())) {
        bad(
            "till.pin",
            "must be exactly 4 digits, as a string: pin = \"1234\"".into(),
        );
    }
    let timezone = c
        .till
        .timezone
        .parse::<Tz>()
        .map_err(|_| {
            bad(
                "till.timezone",
                format!(
                    "{:?} is not an IANA time zone such as Europe/Moscow",
                    c.till.timezone
                ),
            )
        })
        .ok();
    let country = Country::from_code(&c.fiscal.country);
    if country.is_none() {
        bad(
            "fiscal.country",
            format!("{:?} is not one of: {}", c.fiscal.country, Country::codes()),
        );
    }
    let currency = match (country, c.fiscal.currency.as_str()) {
        (Some(country), "") => Some(country.currency().to_string()),
        (Some(country), cur) if cur == country.currency() => Some(cur.to_string()),
        (Some(country), cur) => {
            bad(
                "fiscal.currency",
                format!(
                    "{cur:?} is not the currency of country {country}; use {:?} or leave it out",
                    country.currency()
                ),
            );
            None
        }
        (None, _) => None,
    };
    let tax_system = TaxSystem::from_code(&c.fiscal.tax_system);
    if tax_system.is_none() {
        bad(
            "fiscal.tax_system",
            format!(
                "{:?} is not one of: {}",
                c.fiscal.tax_system,
                TaxSystem::codes()
            ),
        );
    }
    let base = c.cloud.base_url.trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://"))
        || base.len() < 10
        || base.contains(char::is_whitespace)
    {
        bad(
            "cloud.base_url",
            format!("{:?} is not an http(s) URL", c.cloud.base_url),
        );
    }

    let token = match (c.cloud.token.is_empty(), c.cloud.token_file.is_empty()) {
        (true, true) => {
            if c.cloud.enabled {
                bad(
                    "cloud.token",
                    "the processing needs a connector token: set cloud.token_file (or cloud.token)"
                        .into(),
                );
            }
            None
        }
        (false, false) => {
            bad(
                "cloud.token_file",
                "set cloud.token or cloud.token_file, not both".into(),
            );
            None
        }
        (false, true) => Some(Secret::new(c.cloud.token.trim())),
        (true, false) => match read_token_file(Path::new(&c.cloud.token_file)) {
            Ok(t) => Some(t),
            Err(message) => {
                bad("cloud.token_file", message);
                None
            }
        },
    };
    for (key, value, range) in [
        ("cloud.concurrency", c.cloud.concurrency, 1..=256),
        (
            "cloud.connect_timeout_ms",
            c.cloud.connect_timeout_ms,
            100..=120_000,
        ),
        (
            "cloud.request_timeout_ms",
            c.cloud.request_timeout_ms,
            100..=600_000,
        ),
        ("cloud.retry_base_ms", c.cloud.retry_base_ms, 10..=600_000),
        ("cloud.retry_cap_ms", c.cloud.retry_cap_ms, 10..=86_400_000),
        (
            "cloud.retry_after_max_ms",
            c.cloud.retry_after_max_ms,
            0..=86_400_000,
        ),
        (
            "cloud.poll_interval_ms",
            c.cloud.poll_interval_ms,
            10..=600_000,
        ),
        (
            "cloud.probe_interval_ms",
            c.cloud.probe_interval_ms,
            10..=600_000,
        ),
    ] {
        check_range(key, value, range, &mut bad);
    }
    if c.cloud.retry_cap_ms < c.cloud.retry_base_ms {
        bad(
            "cloud.retry_cap_ms",
            "must not be less than cloud.retry_base_ms".into(),
        );
    }

    let devices = check_devices(c, country, &mut bad);

    Some(Settings {
        listen: listen?,
        max_body_bytes: usize::try_from(c.api.max_body_bytes).ok()?,
        write_timeout: Duration::from_millis(c.api.write_timeout_ms),
        journal_path: PathBuf::from(&c.journal.path),
        batch_max: usize::try_from(c.journal.batch_max).ok()?,
        journal_max_bytes: (c.journal.max_size_mb > 0).then(|| c.journal.max_size_mb * 1024 * 1024),
        busy_timeout: Duration::from_millis(c.journal.busy_timeout_ms),
        pin: c.till.pin.clone(),
        timezone: timezone?,
        profile: Profile {
            country: country?,
            currency: currency?,
            default_tax_system: tax_system?,
        },
        cloud: CloudSettings {
            enabled: c.cloud.enabled,
            base_url: base.to_string(),
            token,
            concurrency: usize::try_from(c.cloud.concurrency).ok()?,
            connect_timeout: Duration::from_millis(c.cloud.connect_timeout_ms),
            request_timeout: Duration::from_millis(c.cloud.request_timeout_ms),
            retry: crate::sync::policy::RetryPolicy {
                base: Duration::from_millis(c.cloud.retry_base_ms),
                cap: Duration::from_millis(c.cloud.retry_cap_ms),
                max_retry_after: Duration::from_millis(c.cloud.retry_after_max_ms),
            },
            poll_interval: Duration::from_millis(c.cloud.poll_interval_ms),
            probe_interval: Duration::from_millis(c.cloud.probe_interval_ms),
        },
        devices: devices?,
    })
}

fn check_devices(
    c: &Config,
    country: Option<Country>,
    bad: &mut impl FnMut(&str, String),
) -> Option<DeviceSettings> {
    let mut ok = true;
    let mut fail = |key: &str, message: String| {
        ok = false;
        bad(key, message);
    };
    let backend = match c.fiscal.backend.as_str() {
        "cloud" => Some(Backend::Cloud),
        "register" => Some(Backend::Register),
        other => {
            fail(
                "fiscal.backend",
                format!("{other:?} is not one of: cloud, register"),
            );
            None
        }
    };
    if backend == Some(Backend::Register) {
        if c.register.path.trim().is_empty() {
            fail(
                "fiscal.backend",
                "backend \"register\" needs a fiscal register: set register.path".into(),
            );
        }
        if country.is_some_and(|c| c != Country::Ru) {
            fail(
                "fiscal.backend",
                "the Shtrih-M register fiscalizes Russian receipts only; use backend \"cloud\""
                    .into(),
            );
        }
    }
    for (key, baud) in [
        ("register.baud", c.register.baud),
        ("printer.baud", c.printer.baud),
    ] {
        if !BAUD_RATES.contains(&baud) {
            fail(key, format!("{baud} is not one of {BAUD_RATES:?}"));
        }
    }
    for (key, value, range) in [
        (
            "devices.status_interval_ms",
            c.devices.status_interval_ms,
            100..=3_600_000,
        ),
        (
            "devices.reconnect_base_ms",
            c.devices.reconnect_base_ms,
            10..=600_000,
        ),
        (
            "devices.reconnect_cap_ms",
            c.devices.reconnect_cap_ms,
            10..=3_600_000,
        ),
        ("register.password", c.register.password, 0..=99_999_999),
        (
            "register.admin_password",
            c.register.admin_password,
            0..=99_999_999,
        ),
        (
            "register.reply_timeout_ms",
            c.register.reply_timeout_ms,
            100..=120_000,
        ),
        ("printer.code_table", c.printer.code_table, 0..=255),
        ("printer.width", c.printer.width, 24..=80),
        (
            "printer.write_timeout_ms",
            c.printer.write_timeout_ms,
            100..=600_000,
        ),
        (
            "printer.status_timeout_ms",
            c.printer.status_timeout_ms,
            50..=60_000,
        ),
        ("drawer.pulse_ms", c.drawer.pulse_ms, 2..=510),
    ] {
        check_range(key, value, range, &mut fail);
    }
    if c.devices.reconnect_cap_ms < c.devices.reconnect_base_ms {
        fail(
            "devices.reconnect_cap_ms",
            "must not be less than devices.reconnect_base_ms".into(),
        );
    }
    let encoding = match c.printer.encoding.as_str() {
        "cp866" => Some(TextEncoding::Cp866),
        "cp1251" => Some(TextEncoding::Cp1251),
        other => {
            fail(
                "printer.encoding",
                format!("{other:?} is not one of: cp866, cp1251"),
            );
            None
        }
    };
    let cut = match c.printer.cut.as_str() {
        "none" => Some(CutMode::None),
        "partial" => Some(CutMode::Partial),
        "full" => Some(CutMode::Full),
        other => {
            fail(
                "printer.cut",
                format!("{other:?} is not one of: partial, full, none"),
            );
            None
        }
    };
    let via = match c.drawer.via.as_str() {
        "none" => Some(DrawerVia::None),
        "printer" => Some(DrawerVia::Printer),
        "register" => Some(DrawerVia::Register),
        other => {
            fail(
                "drawer.via",
                format!("{other:?} is not one of: printer, register, none"),
            );
            None
        }
    };
    match via {
        Some(DrawerVia::Printer) if c.printer.path.trim().is_empty() => fail(
            "drawer.via",
            "the drawer hangs on the printer, but no printer.path is set".into(),
        ),
        Some(DrawerVia::Register) if c.register.path.trim().is_empty() => fail(
            "drawer.via",
            "the drawer hangs on the register, but no register.path is set".into(),
        ),
        _ => {}
    }
    if !matches!(c.drawer.pin, 2 | 5) {
        fail(
            "drawer.pin",
            "must be 2 (drawer 1) or 5 (drawer 2), the kick connector's pins".into(),
        );
    }
    for (i, line) in c.printer.header.iter().chain(&c.printer.footer).enumerate() {
        if line.chars().count() > c.printer.width as usize || line.contains(['\n', '\r']) {
            let (key, n) = if i < c.printer.header.len() {
                ("printer.header", i)
            } else {
                ("printer.footer", i - c.printer.header.len())
            };
            fail(
                key,
                format!(
                    "line {} must be one line of at most printer.width ({}) characters",
                    n + 1,
                    c.printer.width
                ),
            );
        }
    }
    if !ok {
        return None;
    }
    let register = (!c.register.path.trim().is_empty()).then(|| RegisterSettings {
        path: PathBuf::from(c.register.path.trim()),
        line: LineSettings::n81(c.register.baud as u32),
        password: c.register.password as u32,
        admin_password: c.register.admin_password as u32,
        reply_timeout: Duration::from_millis(c.register.reply_timeout_ms),
        auto_open_shift: c.register.auto_open_shift,
    });
    let printer = (!c.printer.path.trim().is_empty()).then(|| PrinterSettings {
        path: PathBuf::from(c.printer.path.trim()),
        line: LineSettings::n81(c.printer.baud as u32),
        code_table: c.printer.code_table as u8,
        encoding: encoding.expect("checked"),
        width: c.printer.width as usize,
        cut: cut.expect("checked"),
        header: c.printer.header.clone(),
        footer: c.printer.footer.clone(),
        write_timeout: Duration::from_millis(c.printer.write_timeout_ms),
        status_timeout: Duration::from_millis(c.printer.status_timeout_ms),
    });
    Some(DeviceSettings {
        backend: backend?,
        register,
        printer,
        drawer: DrawerSettings {
            via: via?,
            pin: c.drawer.pin as u8,
            pulse: Duration::from_millis(c.drawer.pulse_ms),
            open_on_cash: c.drawer.open_on_cash,
        },
        status_interval: Duration::from_millis(c.devices.status_interval_ms),
        reconnect_base: Duration::from_millis(c.devices.reconnect_base_ms),
        reconnect_cap: Duration::from_millis(c.devices.reconnect_cap_ms),
    })
}

/// A numeric key must lie within its documented range.
fn check_range(
    key: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
    report: &mut impl FnMut(&str, String),
) {
    if !range.contains(&value) {
        report(
            key,
            format!("must be between {} and {}", range.start(), range.end()),
        );
    }
}

/// Read the connector token from a file that only its owner (and group) may read.
fn read_token_file(path: &Path) -> Result<Secret, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o007 != 0 {
        return Err(format!(
            "{} is readable by every user (mode {:o}); it holds the connector token: chmod 0640 (or 0600) it",
            path.display(),
            mode & 0o777
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Secret::new(token))
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn index_lines(
    text: &str,
    prefix: &str,
    table: &toml::de::DeTable<'_>,
    out: &mut BTreeMap<String, usize>,
) {
    for (key, value) in table.iter() {
        let path = join(prefix, key.get_ref());
        out.entry(path.clone())
            .or_insert_with(|| line_of(text, key.span().start));
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            index_lines(text, &path, inner, out);
        }
    }
}

fn remove_unknown(
    table: &mut toml::Table,
    known: &toml::Table,
    prefix: &str,
    lines: &BTreeMap<String, usize>,
    problems: &mut Vec<Problem>,
) {
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let path = join(prefix, &key);
        match (known.get(&key), table.get_mut(&key)) {
            (Some(toml::Value::Table(k)), Some(toml::Value::Table(t))) => {
                remove_unknown(t, k, &path, lines, problems);
            }
            (Some(_), _) => {}
            (None, _) => {
                let expected: Vec<&str> = known.keys().map(String::as_str).collect();
                let scope = if prefix.is_empty() {
                    "sections are".to_string()
                } else {
                    format!("keys in [{prefix}] are")
                };
                problems.push(Problem {
                    line: lines.get(&path).copied(),
                    key: path,
                    message: format!("unknown key; the {scope}: {}", expected.join(", ")),
                });
                table.remove(&key);
            }
        }
    }
}

fn remove_path(table: &mut toml::Table, dotted: &str) -> bool {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut current = table;
    for part in parts {
        match current.get_mut(part) {
            Some(toml::Value::Table(t)) => current = t,
            _ => return false,
        }
    }
    current.remove(last).is_some()
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[till]\npin = \"1234\"\ntimezone = \"Europe/Moscow\"\n";

    #[test]
    fn minimal_config_takes_defaults() {
        let s = load_str(GOOD).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8730");
        assert_eq!(s.profile.currency, "RUB");
        assert_eq!(s.max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn every_problem_is_reported_with_key_and_line() {
        let text = "[api]\nlisten = \"nowhere\"\nspeed = 3\n\n[till]\npin = 12345\ntimezone = \"Mars/Olympus\"\n\n[fiscal]\ncountry = \"de\"\n[extra]\na = 1\n";
        let problems = load_str(text).unwrap_err();
        let got: Vec<(String, Option<usize>)> =
            problems.iter().map(|p| (p.key.clone(), p.line)).collect();
        assert_eq!(
            got,
            vec![
                ("api.speed".into(), Some(3)),
                ("extra".into(), Some(11)),
                ("till.pin".into(), Some(6)),
                ("api.listen".into(), Some(2)),
                ("till.timezone".into(), Some(7)),
                ("fiscal.country".into(), Some(10)),
            ],
            "{problems:#?}"
        );
        assert!(
            problems[0].message.contains("unknown key"),
            "{}",
            problems[0]
        );
        assert!(
            problems[0]
                .to_string()
                .starts_with("line 3: api.speed: unknown key")
        );
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let problems = load_str("[till]\npin = \"1234\n").unwrap_err();
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn currency_must_match_country() {
        let problems =
            load_str("[till]\npin=\"1234\"\n[fiscal]\ncountry=\"uz\"\ncurrency=\"RUB\"\n")
                .unwrap_err();
        assert_eq!(problems[0].key, "fiscal.currency");
        let s = load_str(
            "[till]\npin=\"1234\"\ntimezone=\"Asia/Tashkent\"\n[fiscal]\ncountry=\"uz\"\n",
        )
        .unwrap();
        assert_eq!(s.profile.currency, "UZS");
    }

    #[test]
    fn token_file_must_not_be_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cr3t-connector\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "[till]\npin=\"1234\"\n[cloud]\nenabled = true\ntoken_file = \"{}\"\n",
            file.display()
        );
        let problems = load_str(&text).unwrap_err();
        assert_eq!(problems[0].key, "cloud.token_file");
        assert!(problems[0].message.contains("chmod"), "{}", problems[0]);
        assert!(!problems[0].message.contains("s3cr3t"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = load_str(&text).unwrap();
        assert_eq!(s.cloud.token.as_ref().unwrap().expose(), "s3cr3t-connector");
        assert!(!format!("{s:?}").contains("s3cr3t"));
        let enabled_without =
            load_str("[till]\npin=\"1234\"\n[cloud]\nenabled = true\n").unwrap_err();
        assert_eq!(enabled_without[0].key, "cloud.token");
    }

    #[test]
    fn demo_config_is_valid() {
        load_str(DEMO_CONFIG).unwrap();
        load_str(DEMO_UZ_CONFIG).unwrap();
    }
}
