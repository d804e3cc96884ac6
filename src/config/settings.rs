//! The typed, validated configuration the daemon runs with. Built only by
//! [`super::rules`] from a file with no problems; secrets from files are
//! filled in by [`super::secrets`].

use super::schema::{AuthMode, Backend, CutMode, DrawerVia, Role, TextEncoding};
use crate::devices::port::LineSettings;
use crate::domain::{Profile, Source};
use chrono_tz::Tz;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

/// The SHA-256 of an API token: what is kept in memory and compared (in
/// constant time) against the hash of a presented token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        use sha2::Digest;
        TokenHash(sha2::Sha256::digest(token.as_bytes()).into())
    }

    /// Parse 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<TokenHash> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(TokenHash(out))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(***)")
    }
}

/// One API token the daemon accepts.
#[derive(Clone, Debug)]
pub struct ApiToken {
    /// For logs; never the token.
    pub name: String,
    pub role: Role,
    pub hash: TokenHash,
}

/// Per-dialect token requirement.
#[derive(Clone, Copy, Debug)]
pub struct AuthSettings {
    pub native: AuthMode,
    pub fiscalbox: AuthMode,
    pub bitrix24: AuthMode,
    pub gateway: AuthMode,
}

impl AuthSettings {
    pub fn for_source(&self, source: Source) -> AuthMode {
        match source {
            Source::Native => self.native,
            Source::Fiscalbox => self.fiscalbox,
            Source::Bitrix24 => self.bitrix24,
            Source::Gateway => self.gateway,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        let c = super::schema::AuthConfig::default();
        AuthSettings {
            native: c.native,
            fiscalbox: c.fiscalbox,
            bitrix24: c.bitrix24,
            gateway: c.gateway,
        }
    }
}

/// `[api.limits]`, typed.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_items: usize,
    pub max_string_chars: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let c = super::schema::LimitsConfig::default();
        Limits {
            max_items: c.max_items as usize,
            max_string_chars: c.max_string_chars as usize,
            max_header_bytes: c.max_header_bytes as usize,
            max_headers: c.max_headers as usize,
            max_connections: c.max_connections as usize,
        }
    }
}

/// The validated browser and access policy of the API.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Lower-case host names, IPv6 in brackets.
    pub allowed_hosts: Vec<String>,
    /// Lower-case `scheme://host[:port]`.
    pub allowed_origins: Vec<String>,
    /// Empty: no token is asked for anywhere.
    pub tokens: Vec<ApiToken>,
    pub auth: AuthSettings,
    pub limits: Limits,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            allowed_origins: Vec::new(),
            tokens: Vec::new(),
            auth: AuthSettings::default(),
            limits: Limits::default(),
        }
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

#[derive(Clone, Debug)]
pub struct RegisterSettings {
    pub path: PathBuf,
    pub line: LineSettings,
    pub password: u32,
    pub admin_password: u32,
    pub reply_timeout: Duration,
    pub auto_open_shift: bool,
    /// `[deadlines]`: how often the deadline readings are taken, and the
    /// register clock's zone (the till's) to read its dates in.
    pub reading_interval: Duration,
    pub timezone: Tz,
    pub thresholds: crate::deadlines::Thresholds,
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
    /// Cloud backend: the wait for fiscalization before a slip is printed.
    pub fiscal_wait: Duration,
    pub after_slip: super::schema::AfterSlip,
}

#[derive(Clone, Debug)]
pub struct DrawerSettings {
    pub via: DrawerVia,
    /// 2 or 5.
    pub pin: u8,
    pub pulse: Duration,
    pub open_on_cash: bool,
}

/// The validated `[fiscalbox]` section (present with backend "fiscalbox").
#[derive(Clone, Debug)]
pub struct FiscalboxSettings {
    /// Base URL without a trailing slash.
    pub url: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub reply_wait: Duration,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// `[fiscalbox.billing]`, when its url is set.
    pub billing: Option<BillingSettings>,
}

/// The validated `[fiscalbox.billing]`.
#[derive(Clone, Debug)]
pub struct BillingSettings {
    /// Base URL without a trailing slash.
    pub url: String,
    pub username: String,
    /// Read from `password_file`; empty until then.
    pub password: Secret,
    pub inn: String,
    pub token_rotation: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// The retry policy's first delay (`[fiscalbox] retry_base_ms`) and
    /// cap (`retry_cap_ms`); a delayed check is asked again without end.
    pub retry_base: Duration,
    pub retry_cap: Duration,
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

/// The validated configuration the daemon runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub write_timeout: Duration,
    pub api: ApiSettings,
    pub journal_path: PathBuf,
    pub batch_max: usize,
    pub journal_max_bytes: Option<u64>,
    pub busy_timeout: Duration,
    /// `[journal] retain_days`: 0 never archives.
    pub retain_days: u32,
    /// `[journal] archive_dir`, or `archive/` beside the journal.
    pub archive_dir: PathBuf,
    /// `[journal] wal_limit_mb`, in bytes.
    pub wal_limit_bytes: u64,
    pub pin: String,
    pub timezone: Tz,
    pub profile: Profile,
    pub cloud: CloudSettings,
    pub devices: DeviceSettings,
    /// `[fiscalbox]`, with `backend = "fiscalbox"`.
    pub deadlines: crate::deadlines::Thresholds,
    pub fiscalbox: Option<FiscalboxSettings>,
    /// `[deadlines] auto_z_at`: the automatic Z report, when on.
    pub auto_z: Option<AutoZSettings>,
    /// `None`: marking codes are not checked with a service.
    pub marking: Option<MarkingSettings>,
    /// `[bitrix24]`, when enabled.
    pub bitrix24: Option<Bitrix24Settings>,
    /// `[gateway]`, when enabled (its key filled in by the secrets step).
    pub gateway: Option<GatewaySettings>,
    /// `[remote]`, when it listens.
    pub remote: Option<RemoteSettings>,
}

/// The validated `[bitrix24]` section.
#[derive(Clone, Debug)]
pub struct Bitrix24Settings {
    pub login: String,
    pub password: TokenHash,
    /// Bitrix catalog VAT id → rate.
    pub vat: std::collections::BTreeMap<String, crate::domain::Vat>,
}

/// The validated `[gateway]` section.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    pub endpoint_id: String,
    pub merchant_key: Secret,
    pub payment_subject: crate::domain::PaymentSubject,
    /// Gateway tax code (1–6) → rate.
    pub tax: std::collections::BTreeMap<u8, crate::domain::Vat>,
}

/// Where the remote listener gets its certificate.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The validated `[remote]` section.
#[derive(Clone, Debug)]
pub struct RemoteSettings {
    pub listen: SocketAddr,
    /// `None`: plain HTTP (only on loopback, behind a reverse proxy).
    pub tls: Option<TlsFiles>,
    pub rate_per_minute: u32,
    pub burst: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoZSettings {
    /// Till-local time.
    pub at: chrono::NaiveTime,
    pub window: Duration,
}

/// One permissive-mode service.
#[derive(Clone, Debug)]
pub struct MarkingService {
    pub url: String,
    /// Online: the `X-API-KEY` token. Local: the Basic-auth password.
    pub secret: Secret,
    /// Local only: the Basic-auth login and the `X-ClientId`.
    pub login: String,
    pub client_id: String,
}

/// The validated `[marking]` section.
#[derive(Clone, Debug)]
pub struct MarkingSettings {
    pub online: Option<MarkingService>,
    pub local: Option<MarkingService>,
    pub timeout: Duration,
    pub on_unreachable: super::schema::OnUnreachable,
}
