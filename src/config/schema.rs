//! The file as written: one struct per TOML section, every key with its
//! default, unknown keys refused (`deny_unknown_fields`). A key whose values
//! form a closed set is a serde enum, so a wrong value is refused by serde
//! with the accepted spellings, and reported with its key and line by
//! [`super::load`]. Nothing here judges a value against another: that is
//! [`super::rules`].

use crate::domain::{Country, PaymentSubject, TaxSystem, Vat};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    pub bitrix24: Bitrix24Config,
    pub gateway: GatewayConfig,
    pub remote: RemoteConfig,
    pub deadlines: DeadlinesConfig,
    pub fiscalbox: FiscalboxConfig,
    pub marking: MarkingConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the HTTP API binds. Keep it on loopback unless the POS runs
    /// elsewhere; a non-loopback address needs `[[api.tokens]]`.
    pub listen: String,
    /// Largest request body accepted, in bytes (413 above it).
    pub max_body_bytes: u64,
    /// How long a request may wait for the journal to commit before 503.
    pub write_timeout_ms: u64,
    /// Host names (without port; IPv6 in brackets) a request's `Host` header
    /// may carry. Anything else is refused 403 `host_not_allowed` before
    /// routing: this is what defeats DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Web origins (`scheme://host[:port]`) whose pages may call the API from
    /// a browser. Any other `Origin` is refused 403 before routing.
    pub allowed_origins: Vec<String>,
    /// Bearer tokens with roles. None: the API is open to local processes
    /// only (the listener must then be on loopback).
    pub tokens: Vec<TokenConfig>,
    /// Per dialect: does a request need a token (when tokens are configured)?
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8730".into(),
            max_body_bytes: 1024 * 1024,
            write_timeout_ms: 5000,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            allowed_origins: Vec::new(),
            tokens: Vec::new(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Receipts: create, read, list.
    Pos,
    /// Everything a `pos` token may do, and the drawer, shifts, reports,
    /// retry/discard and reprint.
    Operator,
}

impl Role {
    pub fn code(self) -> &'static str {
        match self {
            Role::Pos => "pos",
            Role::Operator => "operator",
        }
    }

    /// Does a token with this role cover an endpoint that needs `needed`?
    pub fn covers(self, needed: Role) -> bool {
        self >= needed
    }
}

/// One `[[api.tokens]]` entry: a role and either the SHA-256 of the token
/// (hex) or a file holding the token itself.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// A name for logs (`kassa-1`); never the token.
    pub name: String,
    pub role: Option<Role>,
    /// Lower-case hex SHA-256 of the token: `printf %s "$TOKEN" | sha256sum`.
    pub sha256: String,
    /// A file holding the token; mode 0600 or 0640.
    pub file: String,
}

/// Does a dialect ask for a token?
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// A token is required when `[[api.tokens]]` are configured.
    #[default]
    Token,
    /// No token is asked for (for POS apps that cannot send a header). The
    /// Host and Origin checks still apply.
    None,
}

/// `[api.auth]`: one key per dialect.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub native: AuthMode,
    pub fiscalbox: AuthMode,
    pub bitrix24: AuthMode,
    pub gateway: AuthMode,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            native: AuthMode::Token,
            // FiscalBox-compatible POS apps send no credentials.
            fiscalbox: AuthMode::None,
            // Bitrix24 cannot send a bearer token, and both carry their own
            // credentials (cashbox_params[AUTH], control), checked always.
            bitrix24: AuthMode::None,
            gateway: AuthMode::None,
        }
    }
}

/// `[api.limits]`: bounds on what one request or one client may use.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most lines in one receipt.
    pub max_items: u64,
    /// Longest text field (names, cashier, buyer, codes), in characters.
    pub max_string_chars: u64,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: u64,
    /// Most header fields in one request.
    pub max_headers: u64,
    /// Connections served at once; one more gets a fast 503.
    pub max_connections: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_items: 1000,
            max_string_chars: 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_connections: 256,
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
    /// Days a final (fiscalized or discarded) receipt stays in the journal
    /// before it moves to the archive; 0 never archives.
    pub retain_days: u64,
    /// Where the monthly archive files go; empty: `archive/` beside `path`.
    pub archive_dir: String,
    /// The size the write-ahead log is kept under, MiB.
    pub wal_limit_mb: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            path: "/var/lib/fiscald/journal.sqlite".into(),
            batch_max: 256,
            max_size_mb: 0,
            busy_timeout_ms: 5000,
            retain_days: u64::from(crate::journal::DEFAULT_RETAIN_DAYS),
            archive_dir: String::new(),
            wal_limit_mb: crate::journal::wal::DEFAULT_WAL_LIMIT_BYTES / (1024 * 1024),
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

/// Who fiscalizes receipts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The processing, via the sync worker; the printer prints the offline
    /// link at once.
    Cloud,
    /// The fiscal register fiscalizes and prints at once.
    Register,
    /// A FiscalBox on the LAN ([fiscalbox]) fiscalizes Uzbek receipts.
    Fiscalbox,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiscalConfig {
    /// Which fiscal rules the till follows.
    pub country: Country,
    /// ISO 4217 code; empty means the country's own (RUB, UZS).
    pub currency: String,
    /// Tax system used when a receipt does not name one.
    pub tax_system: TaxSystem,
    pub backend: Backend,
}

impl Default for FiscalConfig {
    fn default() -> Self {
        FiscalConfig {
            country: Country::Ru,
            currency: String::new(),
            tax_system: TaxSystem::Common,
            backend: Backend::Cloud,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CutMode {
    /// No cutter.
    None,
    Partial,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextEncoding {
    Cp866,
    Cp1251,
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
    /// Encoding of that code table.
    pub encoding: TextEncoding,
    /// Characters per line (48 for 80 mm paper with font A, 32 for 58 mm).
    pub width: u64,
    pub cut: CutMode,
    /// Lines printed at the top of every receipt (shop name, address, INN).
    pub header: Vec<String>,
    /// Lines printed at the bottom.
    pub footer: Vec<String>,
    /// Limit for sending one receipt to the printer.
    pub write_timeout_ms: u64,
    /// Limit for one real-time status answer.
    pub status_timeout_ms: u64,
    /// Cloud backend: how long a receipt waits for its fiscalization before
    /// printing. Fiscalized within it: the fiscal receipt is printed. Not: a
    /// slip with the offline QR that says it is not a fiscal receipt.
    pub fiscal_wait_ms: u64,
    /// What follows a slip once the receipt is fiscalized.
    pub after_slip: AfterSlip,
}

/// What the printer does once a receipt that got a slip is fiscalized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterSlip {
    /// Print the fiscal receipt (with the fiscal QR).
    FiscalReceipt,
    /// Nothing more: the buyer keeps the slip and its offline link.
    Nothing,
}

impl Default for PrinterConfig {
    fn default() -> Self {
        PrinterConfig {
            path: String::new(),
            baud: 115_200,
            code_table: 17,
            encoding: TextEncoding::Cp866,
            width: 48,
            cut: CutMode::Partial,
            header: Vec::new(),
            footer: Vec::new(),
            write_timeout_ms: 30_000,
            status_timeout_ms: 500,
            fiscal_wait_ms: 3_000,
            after_slip: AfterSlip::FiscalReceipt,
        }
    }
}

/// Where the cash drawer hangs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DrawerVia {
    None,
    /// The printer's kick connector (ESC p).
    Printer,
    Register,
}

/// The cash drawer.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrawerConfig {
    pub via: DrawerVia,
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
            via: DrawerVia::None,
            pin: 2,
            pulse_ms: 100,
            open_on_cash: true,
        }
    }
}

/// What a sale of a marked item does when no permissive-mode service
/// answered in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreachable {
    /// Sell without the check and without tag 1260, as the published rules
    /// allow (ЧЗ logs it as «Продажа без проверки КМ»); the receipt says so.
    SellUnchecked,
    /// Refuse the sale (503 `marking_unavailable`): nothing is journaled.
    Refuse,
}

/// `[marking]`: the permissive-mode check of marking codes (Честный ЗНАК).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarkingConfig {
    /// Check marked items' codes before a sale is journaled.
    pub enabled: bool,
    /// The national system's online check (True API on a CDN host), e.g.
    /// `https://<host>`; tried first. Empty: not used.
    pub online_url: String,
    /// The participant's token for the online check (`X-API-KEY`).
    pub online_token: String,
    /// The local module ЛМ ЧЗ on the LAN, e.g. `http://192.168.1.20:5995`;
    /// tried after the online check (or alone). Empty: not used.
    pub local_url: String,
    /// The local module's HTTP Basic login and password (set at install).
    pub local_login: String,
    pub local_password: String,
    /// The FN serial number the local module knows the till by (`X-ClientId`).
    pub local_client_id: String,
    /// Budget for one service's answer; the published figure is 1.5 s.
    pub timeout_ms: u64,
    pub on_unreachable: OnUnreachable,
}

impl Default for MarkingConfig {
    fn default() -> Self {
        MarkingConfig {
            enabled: false,
            online_url: String::new(),
            online_token: String::new(),
            local_url: String::new(),
            local_login: String::new(),
            local_password: String::new(),
            local_client_id: String::new(),
            timeout_ms: 1_500,
            on_unreachable: OnUnreachable::SellUnchecked,
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

/// `[bitrix24]`: the Bitrix24 REST cashbox (`POST /bitrix24/print`,
/// `/bitrix24/check`; docs/REMOTE.md).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bitrix24Config {
    /// Serve the Bitrix24 endpoints (local listener and `[remote]`).
    pub enabled: bool,
    /// What Bitrix24 sends as `cashbox_params[AUTH][LOGIN]`.
    pub login: String,
    /// Lower-case hex SHA-256 of the password Bitrix24 sends as
    /// `cashbox_params[AUTH][PASSWORD]`: `printf %s "$PASSWORD" | sha256sum`.
    pub password_sha256: String,
    /// Bitrix24 catalog VAT id → fiscald VAT code (`"none"`, `"0"`, `"10"`,
    /// `"22"`, `"10/110"`, `"22/122"` …). Bitrix sends the id of its catalog
    /// VAT entry, not a rate; an id missing here refuses the receipt.
    pub vat: BTreeMap<String, Vat>,
}

impl Default for Bitrix24Config {
    fn default() -> Self {
        Bitrix24Config {
            enabled: false,
            login: String::new(),
            password_sha256: String::new(),
            // Bitrix24 sends 0 for "no VAT" (shared/spec/bitrix24-and-gateway.md).
            vat: BTreeMap::from([("0".to_string(), Vat::None)]),
        }
    }
}

/// `[gateway]`: the payment gateway's fiscalization cheque
/// (`POST /gateway/sale`, `/gateway/status`; docs/REMOTE.md).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    pub enabled: bool,
    /// The endpoint id the merchant signs requests with (first part of `control`).
    pub endpoint_id: String,
    /// The merchant control key, inline. Prefer `merchant_key_file`.
    pub merchant_key: String,
    /// A file holding the merchant control key; mode 0600 or 0640.
    pub merchant_key_file: String,
    /// Tag 1212 of every position (the cheque does not say).
    pub payment_subject: PaymentSubject,
    /// Gateway position `tax` code (1–6) → fiscald VAT code. The default is
    /// the gateway's own meaning (1 = 20 %, 5 = 20/120): from 2026 a shop maps
    /// 1 and 5 to "22" and "22/122", or such receipts are refused.
    pub tax: BTreeMap<String, Vat>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            enabled: false,
            endpoint_id: String::new(),
            merchant_key: String::new(),
            merchant_key_file: String::new(),
            payment_subject: PaymentSubject::Commodity,
            tax: BTreeMap::from([
                ("1".to_string(), Vat::Vat20),
                ("2".to_string(), Vat::Vat10),
                ("3".to_string(), Vat::Vat0),
                ("4".to_string(), Vat::None),
                ("5".to_string(), Vat::Vat120),
                ("6".to_string(), Vat::Vat110),
            ]),
        }
    }
}

/// `[remote]`: a second listener for callers on the internet that serves only
/// the Bitrix24 and gateway endpoints (never the native API, the operator
/// endpoints or the status page).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteConfig {
    /// Address to bind, e.g. `0.0.0.0:8443` (with TLS) or `127.0.0.1:8731`
    /// (behind a reverse proxy). Empty: off.
    pub listen: String,
    /// PEM certificate chain; with `tls_key`, the listener speaks TLS.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
    /// Requests one client (IP address) may make per minute.
    pub rate_per_minute: u64,
    /// Requests a client may make at once above the steady rate.
    pub burst: u64,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            listen: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            rate_per_minute: 120,
            burst: 20,
        }
    }
}

/// `[deadlines]`: when the register's deadlines are read and when each
/// condition turns warn / critical (time left at or below).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlinesConfig {
    /// How often the register's expiry, OFD queue and clock are read (also
    /// after every Z report).
    pub reading_interval_s: u64,
    pub fn_expiry_warn_days: u64,
    pub fn_expiry_critical_days: u64,
    pub ofd_block_warn_days: u64,
    pub ofd_block_critical_days: u64,
    pub marking_lockout_warn_hours: u64,
    pub marking_lockout_critical_hours: u64,
    pub shift_limit_warn_minutes: u64,
    pub shift_limit_critical_minutes: u64,
    pub clock_warn_s: u64,
    pub clock_critical_s: u64,
    /// FiscalBox receipt / Z-report memory used, percent of the maximum.
    pub fiscalbox_memory_warn_percent: u64,
    pub fiscalbox_memory_critical_percent: u64,
    /// Local time ("HH:MM") of the automatic Z report; empty: off.
    pub auto_z_at: String,
    /// How long after `auto_z_at` it may still run when postponed.
    pub auto_z_window_minutes: u64,
}

impl Default for DeadlinesConfig {
    fn default() -> Self {
        DeadlinesConfig {
            reading_interval_s: 60,
            fn_expiry_warn_days: 30,
            fn_expiry_critical_days: 3,
            ofd_block_warn_days: 25,
            ofd_block_critical_days: 5,
            marking_lockout_warn_hours: 48,
            marking_lockout_critical_hours: 12,
            shift_limit_warn_minutes: 240,
            shift_limit_critical_minutes: 60,
            clock_warn_s: 60,
            clock_critical_s: 240,
            fiscalbox_memory_warn_percent: 90,
            fiscalbox_memory_critical_percent: 98,
            auto_z_at: String::new(),
            auto_z_window_minutes: 60,
        }
    }
}

/// The Uzbek till's fiscal terminal, a FiscalBox on the LAN.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiscalboxConfig {
    /// Base URL of the box, e.g. `http://192.168.1.50:8080`.
    pub url: String,
    pub connect_timeout_ms: u64,
    /// Limit for one whole request to the box.
    pub request_timeout_ms: u64,
    /// How long `/fiscalbox/order/create` waits for the box's fiscal data
    /// before answering with the receipt journaled and its offline link.
    pub reply_wait_ms: u64,
    /// First retry delay after a failure; doubles up to `retry_cap_ms`.
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    /// `[fiscalbox.billing]`: the FiscalBox billing, for reconciliation.
    pub billing: BillingConfig,
}

/// The FiscalBox billing (cloud): off while `url` is empty.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// Base URL, e.g. `https://api.fbox.uz`.
    pub url: String,
    pub username: String,
    /// A file (mode 0600) holding the password.
    pub password_file: String,
    /// The shop's INN (taxpayer number), 9 digits.
    pub inn: String,
    /// Log in again once the token is this old.
    pub token_rotation_s: u64,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// Longest delay between two asks of a delayed check (they go on
    /// without end; the first delay is `[fiscalbox] retry_base_ms`).
    pub retry_cap_ms: u64,
}

impl Default for BillingConfig {
    fn default() -> Self {
        BillingConfig {
            url: String::new(),
            username: String::new(),
            password_file: String::new(),
            inn: String::new(),
            token_rotation_s: 3_600,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 15_000,
            retry_cap_ms: 300_000,
        }
    }
}

impl Default for FiscalboxConfig {
    fn default() -> Self {
        FiscalboxConfig {
            url: String::new(),
            connect_timeout_ms: 2_000,
            request_timeout_ms: 10_000,
            reply_wait_ms: 5_000,
            retry_base_ms: 500,
            retry_cap_ms: 30_000,
            billing: BillingConfig::default(),
        }
    }
}
