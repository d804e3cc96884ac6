//! The rules a well-typed [`Config`] must also follow (ranges, keys that
//! depend on each other), and its translation into [`Settings`]. Pure: a
//! secret kept in a file is only named here ([`SecretFile`]) and read by
//! [`super::secrets`].

use super::Problem;
use super::load::{Lines, line_for};
use super::schema::{Backend, Config, DrawerVia};
use super::secrets::{SecretFile, Slot};
use super::settings::*;
use crate::devices::port::LineSettings;
use crate::domain::{Country, Profile};
use chrono_tz::Tz;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Baud rates a serial device may be configured with.
pub const BAUD_RATES: &[u64] = &[2400, 4800, 9600, 19200, 38400, 57600, 115200];

/// Judge `c`; push every broken rule. `None` when any rule (or an earlier
/// problem) leaves no settings to build.
pub fn check(
    c: &Config,
    lines: &Lines,
    problems: &mut Vec<Problem>,
) -> Option<(Settings, Vec<SecretFile>)> {
    // A key whose value was already refused (wrong type) is not judged again
    // by its default.
    let reported: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
    let mut secret_files = Vec::new();
    let mut bad = |key: &str, message: String| {
        if reported.iter().any(|k| k == key) {
            return;
        }
        problems.push(Problem {
            key: key.into(),
            line: line_for(lines, key),
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
    check_range(
        "api.max_body_bytes",
        c.api.max_body_bytes,
        1024..=64 * 1024 * 1024,
        &mut bad,
    );
    check_range(
        "api.write_timeout_ms",
        c.api.write_timeout_ms,
        100..=600_000,
        &mut bad,
    );
    let api = check_api(c, listen, lines, &mut secret_files, &mut bad);
    if c.journal.path.trim().is_empty() {
        bad("journal.path", "must name the SQLite journal file".into());
    }
    check_range(
        "journal.batch_max",
        c.journal.batch_max,
        1..=10_000,
        &mut bad,
    );
    if c.journal.max_size_mb > 1024 * 1024 {
        bad(
            "journal.max_size_mb",
            "must be at most 1048576 (1 TiB), or 0 for no cap".into(),
        );
    }
    check_range(
        "journal.busy_timeout_ms",
        c.journal.busy_timeout_ms,
        10..=600_000,
        &mut bad,
    );
    if c.journal.retain_days != 0 && !(30..=36_500).contains(&c.journal.retain_days) {
        bad(
            "journal.retain_days",
            "must be 0 (never archive) or from 30 to 36500 days; the default 1857 (five years and a month) outlasts any dispute".into(),
        );
    }
    check_range(
        "journal.wal_limit_mb",
        c.journal.wal_limit_mb,
        4..=4096,
        &mut bad,
    );
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
    let country = c.fiscal.country;
    let currency = match c.fiscal.currency.as_str() {
        "" => Some(country.currency().to_string()),
        cur if cur == country.currency() => Some(cur.to_string()),
        cur => {
            bad(
                "fiscal.currency",
                format!(
                    "{cur:?} is not the currency of country {country}; use {:?} or leave it out",
                    country.currency()
                ),
            );
            None
        }
    };
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
        (true, false) => {
            secret_files.push(SecretFile {
                key: "cloud.token_file".into(),
                line: line_for(lines, "cloud.token_file"),
                path: PathBuf::from(&c.cloud.token_file),
                slot: Slot::CloudToken,
            });
            None
        }
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

    let online = check_online(c, lines, &mut secret_files, &mut bad);
    check_deadlines(&c.deadlines, &mut bad);
    let auto_z = match c.deadlines.auto_z_at.trim() {
        "" => Some(None),
        t => match chrono::NaiveTime::parse_from_str(t, "%H:%M") {
            Ok(at) if (1..=720).contains(&c.deadlines.auto_z_window_minutes) => {
                Some(Some(super::settings::AutoZSettings {
                    at,
                    window: Duration::from_secs(c.deadlines.auto_z_window_minutes * 60),
                }))
            }
            Ok(_) => {
                bad(
                    "deadlines.auto_z_window_minutes",
                    "must be 1..=720 minutes".into(),
                );
                None
            }
            Err(_) => {
                bad(
                    "deadlines.auto_z_at",
                    format!("must be a local time HH:MM (24 h) or empty, not {t:?}"),
                );
                None
            }
        },
    };
    let devices = check_devices(c, &mut bad);
    let fiscalbox = check_fiscalbox(c, country, lines, &mut secret_files, &mut bad);
    let marking = check_marking(c, &mut bad);

    let settings = Settings {
        listen: listen?,
        max_body_bytes: usize::try_from(c.api.max_body_bytes).ok()?,
        write_timeout: Duration::from_millis(c.api.write_timeout_ms),
        api: api?,
        journal_path: PathBuf::from(&c.journal.path),
        batch_max: usize::try_from(c.journal.batch_max).ok()?,
        journal_max_bytes: (c.journal.max_size_mb > 0).then(|| c.journal.max_size_mb * 1024 * 1024),
        busy_timeout: Duration::from_millis(c.journal.busy_timeout_ms),
        retain_days: u32::try_from(c.journal.retain_days).ok()?,
        archive_dir: if c.journal.archive_dir.trim().is_empty() {
            crate::journal::RetentionPolicy::beside(std::path::Path::new(&c.journal.path))
                .archive_dir
        } else {
            PathBuf::from(c.journal.archive_dir.trim())
        },
        wal_limit_bytes: c.journal.wal_limit_mb * 1024 * 1024,
        pin: c.till.pin.clone(),
        timezone: timezone?,
        profile: Profile {
            country,
            currency: currency?,
            default_tax_system: c.fiscal.tax_system,
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
        deadlines: thresholds(&c.deadlines),
        auto_z: auto_z?,
        fiscalbox: fiscalbox?,
        marking: marking?,
        bitrix24: None,
        gateway: None,
        remote: None,
    };
    let (bitrix24, gateway, remote) = online?;
    let settings = Settings {
        bitrix24,
        gateway,
        remote,
        ..settings
    };
    Some((settings, secret_files))
}

/// `[marking]`: at least one service when enabled, http(s) URLs, a budget.
/// `Some(None)` when marking is off; `None` when a rule is broken.
fn check_marking(
    c: &Config,
    bad: &mut impl FnMut(&str, String),
) -> Option<Option<MarkingSettings>> {
    let m = &c.marking;
    let mut ok = true;
    let mut url = |key: &str, value: &str| -> Option<String> {
        let v = value.trim().trim_end_matches('/');
        if v.is_empty() {
            return None;
        }
        if !(v.starts_with("http://") || v.starts_with("https://")) {
            ok = false;
            bad(key, format!("{value:?} is not an http(s) URL"));
            return None;
        }
        Some(v.to_string())
    };
    let online = url("marking.online_url", &m.online_url);
    let local = url("marking.local_url", &m.local_url);
    if !(100..=60_000).contains(&m.timeout_ms) {
        ok = false;
        bad("marking.timeout_ms", "must be between 100 and 60000".into());
    }
    if m.enabled && online.is_none() && local.is_none() && ok {
        ok = false;
        bad(
            "marking.enabled",
            "a marking check needs a service: set marking.local_url (the local module ЛМ ЧЗ) and/or marking.online_url".into(),
        );
    }
    if online.is_some() && m.online_token.trim().is_empty() {
        ok = false;
        bad(
            "marking.online_token",
            "the online check needs the participant's token (X-API-KEY)".into(),
        );
    }
    if !ok {
        return None;
    }
    if !m.enabled {
        return Some(None);
    }
    Some(Some(MarkingSettings {
        online: online.map(|url| MarkingService {
            url,
            secret: Secret::new(m.online_token.trim()),
            login: String::new(),
            client_id: String::new(),
        }),
        local: local.map(|url| MarkingService {
            url,
            secret: Secret::new(m.local_password.clone()),
            login: m.local_login.clone(),
            client_id: m.local_client_id.trim().to_string(),
        }),
        timeout: Duration::from_millis(m.timeout_ms),
        on_unreachable: m.on_unreachable,
    }))
}

/// `[api]`: hosts, origins, tokens, per-dialect auth, limits.
fn check_api(
    c: &Config,
    listen: Option<SocketAddr>,
    lines: &Lines,
    secret_files: &mut Vec<SecretFile>,
    bad: &mut impl FnMut(&str, String),
) -> Option<ApiSettings> {
    let mut ok = true;
    let mut fail = |key: &str, message: String| {
        ok = false;
        bad(key, message);
    };
    let mut allowed_hosts = Vec::new();
    for (i, host) in c.api.allowed_hosts.iter().enumerate() {
        let h = host.trim().to_ascii_lowercase();
        let valid = if let Some(inner) = h.strip_prefix('[') {
            inner
                .strip_suffix(']')
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        if valid {
            allowed_hosts.push(h);
        } else {
            fail(
                &format!("api.allowed_hosts[{i}]"),
                format!(
                    "{host:?} is not a host name without port (\"localhost\", \"192.168.1.10\", \"[::1]\")"
                ),
            );
        }
    }
    // The address the API listens on is always a name it may be called by
    // (an IP literal cannot be rebound; 0.0.0.0 and [::] are not names).
    if let Some(addr) = listen
        && !addr.ip().is_unspecified()
    {
        let own = match addr.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        if !allowed_hosts.contains(&own) {
            allowed_hosts.push(own);
        }
    }
    let mut allowed_origins = Vec::new();
    for (i, origin) in c.api.allowed_origins.iter().enumerate() {
        match normalize_origin(origin) {
            Some(o) => allowed_origins.push(o),
            None => fail(
                &format!("api.allowed_origins[{i}]"),
                format!(
                    "{origin:?} is not a web origin such as \"http://localhost:3000\" (scheme://host[:port], no path)"
                ),
            ),
        }
    }
    let mut tokens = Vec::new();
    for (i, t) in c.api.tokens.iter().enumerate() {
        let key = format!("api.tokens[{i}]");
        let name = if t.name.trim().is_empty() {
            format!("token {}", i + 1)
        } else {
            t.name.trim().to_string()
        };
        let Some(role) = t.role else {
            fail(
                &format!("{key}.role"),
                "every token needs a role: \"pos\" or \"operator\"".into(),
            );
            continue;
        };
        match (t.sha256.trim().is_empty(), t.file.trim().is_empty()) {
            (false, true) => match TokenHash::from_hex(&t.sha256) {
                Some(hash) => tokens.push(ApiToken { name, role, hash }),
                None => fail(
                    &format!("{key}.sha256"),
                    "must be 64 hex digits: printf %s \"$TOKEN\" | sha256sum".into(),
                ),
            },
            (true, false) => secret_files.push(SecretFile {
                key: format!("{key}.file"),
                line: line_for(lines, &format!("{key}.file")),
                path: PathBuf::from(t.file.trim()),
                slot: Slot::ApiToken { name, role },
            }),
            (true, true) => fail(
                &key,
                "set sha256 (the token's SHA-256 in hex) or file (a 0600 file holding the token)"
                    .into(),
            ),
            (false, false) => fail(&key, "set sha256 or file, not both".into()),
        }
    }
    if let Some(addr) = listen
        && !addr.ip().is_loopback()
        && c.api.tokens.is_empty()
    {
        fail(
            "api.listen",
            format!(
                "{addr} is reachable from other hosts, but no [[api.tokens]] are configured: \
                 anyone on the network could open the drawer or close the shift. Add tokens \
                 (see docs/SECURITY.md) or listen on 127.0.0.1"
            ),
        );
    }
    let l = &c.api.limits;
    for (key, value, range) in [
        ("api.limits.max_items", l.max_items, 1..=100_000),
        (
            "api.limits.max_string_chars",
            l.max_string_chars,
            16..=65_536,
        ),
        (
            "api.limits.max_header_bytes",
            l.max_header_bytes,
            1024..=1024 * 1024,
        ),
        ("api.limits.max_headers", l.max_headers, 8..=1000),
        ("api.limits.max_connections", l.max_connections, 1..=100_000),
    ] {
        check_range(key, value, range, &mut fail);
    }
    if !ok {
        return None;
    }
    Some(ApiSettings {
        allowed_hosts,
        allowed_origins,
        tokens,
        auth: AuthSettings {
            native: c.api.auth.native,
            fiscalbox: c.api.auth.fiscalbox,
            bitrix24: c.api.auth.bitrix24,
            gateway: c.api.auth.gateway,
        },
        limits: Limits {
            max_items: l.max_items as usize,
            max_string_chars: l.max_string_chars as usize,
            max_header_bytes: l.max_header_bytes as usize,
            max_headers: l.max_headers as usize,
            max_connections: l.max_connections as usize,
        },
    })
}

/// `scheme://host[:port]`, lower-cased, without a trailing slash; the form
/// browsers send in `Origin`.
pub fn normalize_origin(origin: &str) -> Option<String> {
    let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = o.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return None;
    }
    let ok = rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']'));
    ok.then_some(o)
}

fn check_devices(c: &Config, bad: &mut impl FnMut(&str, String)) -> Option<DeviceSettings> {
    let mut ok = true;
    let mut fail = |key: &str, message: String| {
        ok = false;
        bad(key, message);
    };
    if c.fiscal.backend == Backend::Register && c.register.path.trim().is_empty() {
        fail(
            "fiscal.backend",
            "backend \"register\" needs a fiscal register: set register.path".into(),
        );
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
        (
            "printer.fiscal_wait_ms",
            c.printer.fiscal_wait_ms,
            0..=120_000,
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
    match c.drawer.via {
        DrawerVia::Printer if c.printer.path.trim().is_empty() => fail(
            "drawer.via",
            "the drawer hangs on the printer, but no printer.path is set".into(),
        ),
        DrawerVia::Register if c.register.path.trim().is_empty() => fail(
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
        reading_interval: Duration::from_secs(c.deadlines.reading_interval_s),
        timezone: c
            .till
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Tz::Europe__Moscow),
        thresholds: thresholds(&c.deadlines),
    });
    let printer = (!c.printer.path.trim().is_empty()).then(|| PrinterSettings {
        path: PathBuf::from(c.printer.path.trim()),
        line: LineSettings::n81(c.printer.baud as u32),
        code_table: c.printer.code_table as u8,
        encoding: c.printer.encoding,
        width: c.printer.width as usize,
        cut: c.printer.cut,
        header: c.printer.header.clone(),
        footer: c.printer.footer.clone(),
        write_timeout: Duration::from_millis(c.printer.write_timeout_ms),
        status_timeout: Duration::from_millis(c.printer.status_timeout_ms),
        fiscal_wait: Duration::from_millis(c.printer.fiscal_wait_ms),
        after_slip: c.printer.after_slip,
    });
    Some(DeviceSettings {
        backend: c.fiscal.backend,
        register,
        printer,
        drawer: DrawerSettings {
            via: c.drawer.via,
            pin: c.drawer.pin as u8,
            pulse: Duration::from_millis(c.drawer.pulse_ms),
            open_on_cash: c.drawer.open_on_cash,
        },
        status_interval: Duration::from_millis(c.devices.status_interval_ms),
        reconnect_base: Duration::from_millis(c.devices.reconnect_base_ms),
        reconnect_cap: Duration::from_millis(c.devices.reconnect_cap_ms),
    })
}

/// `[fiscalbox]` and the country rule: an Uzbek till fiscalizes through a
/// FiscalBox only (the processing and the Shtrih-M register are Russian);
/// a FiscalBox fiscalizes Uzbek receipts only. `Some(None)`: valid, no box.
fn check_fiscalbox(
    c: &Config,
    country: Country,
    lines: &Lines,
    secret_files: &mut Vec<SecretFile>,
    bad: &mut impl FnMut(&str, String),
) -> Option<Option<FiscalboxSettings>> {
    let f = &c.fiscalbox;
    let mut ok = true;
    let mut fail = |key: &str, message: String| {
        ok = false;
        bad(key, message);
    };
    match (country, c.fiscal.backend) {
        (Country::Uz, Backend::Cloud | Backend::Register) => fail(
            "fiscal.backend",
            format!(
                "backend {:?} fiscalizes Russian receipts only; an Uzbek till (country \"uz\") uses backend \"fiscalbox\" with [fiscalbox] url",
                match c.fiscal.backend {
                    Backend::Cloud => "cloud",
                    _ => "register",
                }
            ),
        ),
        (Country::Ru, Backend::Fiscalbox) => fail(
            "fiscal.backend",
            "a FiscalBox fiscalizes Uzbek receipts only; use country \"uz\"".into(),
        ),
        _ => {}
    }
    let url = f.url.trim().trim_end_matches('/');
    if c.fiscal.backend == Backend::Fiscalbox
        && (!(url.starts_with("http://") || url.starts_with("https://"))
            || url.len() < 10
            || url.contains(char::is_whitespace))
    {
        fail(
            "fiscalbox.url",
            format!(
                "backend \"fiscalbox\" needs the box's base URL such as http://192.168.1.50:8080, got {:?}",
                f.url
            ),
        );
    }
    for (key, value, range) in [
        (
            "fiscalbox.connect_timeout_ms",
            f.connect_timeout_ms,
            10..=60_000,
        ),
        (
            "fiscalbox.request_timeout_ms",
            f.request_timeout_ms,
            100..=300_000,
        ),
        ("fiscalbox.reply_wait_ms", f.reply_wait_ms, 0..=120_000),
        ("fiscalbox.retry_base_ms", f.retry_base_ms, 10..=600_000),
        ("fiscalbox.retry_cap_ms", f.retry_cap_ms, 10..=3_600_000),
    ] {
        check_range(key, value, range, &mut fail);
    }
    if f.retry_cap_ms < f.retry_base_ms {
        fail(
            "fiscalbox.retry_cap_ms",
            "must not be less than fiscalbox.retry_base_ms".into(),
        );
    }
    let b = &f.billing;
    let billing_url = b.url.trim().trim_end_matches('/');
    let billing = if billing_url.is_empty() {
        None
    } else {
        if !(billing_url.starts_with("http://") || billing_url.starts_with("https://"))
            || billing_url.contains(char::is_whitespace)
        {
            fail(
                "fiscalbox.billing.url",
                format!(
                    "must be the billing's base URL such as https://api.fbox.uz, got {:?}",
                    b.url
                ),
            );
        } else if let Some(rest) = billing_url.strip_prefix("http://")
            && !is_loopback_host(rest)
        {
            fail(
                "fiscalbox.billing.url",
                format!(
                    "must be https:// (the password is sent to it; http:// only to a loopback host), got {:?}",
                    b.url
                ),
            );
        }
        if b.username.trim().is_empty() {
            fail(
                "fiscalbox.billing.username",
                "required with fiscalbox.billing.url".into(),
            );
        }
        if !crate::fiscalbox::facts::is_inn(&b.inn) {
            fail(
                "fiscalbox.billing.inn",
                format!(
                    "must be the shop's {}-digit INN, got {:?}",
                    crate::fiscalbox::facts::INN_DIGITS,
                    b.inn
                ),
            );
        }
        if b.password_file.trim().is_empty() {
            fail(
                "fiscalbox.billing.password_file",
                "required with fiscalbox.billing.url: a file (chmod 0600) holding the password"
                    .into(),
            );
        } else {
            secret_files.push(SecretFile {
                key: "fiscalbox.billing.password_file".into(),
                line: line_for(lines, "fiscalbox.billing.password_file"),
                path: PathBuf::from(b.password_file.trim()),
                slot: Slot::BillingPassword,
            });
        }
        for (key, value, range) in [
            (
                "fiscalbox.billing.token_rotation_s",
                b.token_rotation_s,
                60..=30 * 86_400,
            ),
            (
                "fiscalbox.billing.connect_timeout_ms",
                b.connect_timeout_ms,
                10..=60_000,
            ),
            (
                "fiscalbox.billing.request_timeout_ms",
                b.request_timeout_ms,
                100..=300_000,
            ),
            (
                "fiscalbox.billing.retry_cap_ms",
                b.retry_cap_ms,
                10..=3_600_000,
            ),
        ] {
            check_range(key, value, range, &mut fail);
        }
        Some(BillingSettings {
            url: billing_url.to_string(),
            username: b.username.trim().to_string(),
            password: Secret::new(""),
            inn: b.inn.clone(),
            token_rotation: Duration::from_secs(b.token_rotation_s),
            connect_timeout: Duration::from_millis(b.connect_timeout_ms),
            request_timeout: Duration::from_millis(b.request_timeout_ms),
            retry_base: Duration::from_millis(f.retry_base_ms),
            retry_cap: Duration::from_millis(b.retry_cap_ms.max(f.retry_base_ms)),
        })
    };
    if !ok {
        return None;
    }
    Some(
        (c.fiscal.backend == Backend::Fiscalbox).then(|| FiscalboxSettings {
            billing,
            url: url.to_string(),
            connect_timeout: Duration::from_millis(f.connect_timeout_ms),
            request_timeout: Duration::from_millis(f.request_timeout_ms),
            reply_wait: Duration::from_millis(f.reply_wait_ms),
            retry_base: Duration::from_millis(f.retry_base_ms),
            retry_cap: Duration::from_millis(f.retry_cap_ms),
        }),
    )
}

/// A numeric key must lie within its documented range.
pub fn check_range(
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

type Online = (
    Option<Bitrix24Settings>,
    Option<GatewaySettings>,
    Option<RemoteSettings>,
);

/// `[bitrix24]`, `[gateway]` and `[remote]`: the online-order dialects and
/// their listener.
fn check_online(
    c: &Config,
    lines: &Lines,
    secret_files: &mut Vec<SecretFile>,
    bad: &mut impl FnMut(&str, String),
) -> Option<Online> {
    let mut ok = true;
    let b = &c.bitrix24;
    let bitrix24 = if b.enabled {
        if b.login.trim().is_empty() {
            bad(
                "bitrix24.login",
                "the login Bitrix24 sends in cashbox_params[AUTH][LOGIN] is required".into(),
            );
            ok = false;
        }
        let password = TokenHash::from_hex(&b.password_sha256);
        if password.is_none() {
            bad(
                "bitrix24.password_sha256",
                "must be the 64-digit hex SHA-256 of the password: printf %s \"$PASSWORD\" | sha256sum"
                    .into(),
            );
            ok = false;
        }
        for id in b.vat.keys() {
            if id.is_empty() || !id.bytes().all(|d| d.is_ascii_digit()) {
                bad(
                    &format!("bitrix24.vat.{id}"),
                    format!("{id:?} is not a Bitrix24 VAT id (a whole number such as \"1\")"),
                );
                ok = false;
            }
        }
        password.map(|password| Bitrix24Settings {
            login: b.login.trim().to_string(),
            password,
            vat: b.vat.clone(),
        })
    } else {
        None
    };

    let g = &c.gateway;
    let gateway = if g.enabled {
        if g.endpoint_id.trim().is_empty() {
            bad(
                "gateway.endpoint_id",
                "the endpoint id merchants sign requests with is required".into(),
            );
            ok = false;
        }
        let key = match (g.merchant_key.is_empty(), g.merchant_key_file.is_empty()) {
            (true, true) => {
                bad(
                    "gateway.merchant_key_file",
                    "the merchant control key is required: set gateway.merchant_key_file (or gateway.merchant_key)".into(),
                );
                ok = false;
                Secret::new("")
            }
            (false, false) => {
                bad(
                    "gateway.merchant_key_file",
                    "set gateway.merchant_key or gateway.merchant_key_file, not both".into(),
                );
                ok = false;
                Secret::new("")
            }
            (false, true) => Secret::new(g.merchant_key.trim()),
            (true, false) => {
                secret_files.push(SecretFile {
                    key: "gateway.merchant_key_file".into(),
                    line: line_for(lines, "gateway.merchant_key_file"),
                    path: PathBuf::from(&g.merchant_key_file),
                    slot: Slot::GatewayKey,
                });
                Secret::new("")
            }
        };
        let mut tax = std::collections::BTreeMap::new();
        for (code, vat) in &g.tax {
            match code.parse::<u8>() {
                Ok(n) if (1..=6).contains(&n) => {
                    tax.insert(n, *vat);
                }
                _ => {
                    bad(
                        &format!("gateway.tax.{code}"),
                        format!("{code:?} is not a gateway tax code (1 to 6)"),
                    );
                    ok = false;
                }
            }
        }
        Some(GatewaySettings {
            endpoint_id: g.endpoint_id.trim().to_string(),
            merchant_key: key,
            payment_subject: g.payment_subject,
            tax,
        })
    } else {
        None
    };

    let r = &c.remote;
    let remote = if r.listen.trim().is_empty() {
        None
    } else {
        let listen = r.listen.trim().parse::<SocketAddr>().ok();
        if listen.is_none() {
            bad(
                "remote.listen",
                format!("{:?} is not an address such as 0.0.0.0:8443", r.listen),
            );
            ok = false;
        }
        let tls = match (r.tls_cert.trim().is_empty(), r.tls_key.trim().is_empty()) {
            (true, true) => None,
            (false, false) => Some(TlsFiles {
                cert: PathBuf::from(r.tls_cert.trim()),
                key: PathBuf::from(r.tls_key.trim()),
            }),
            (true, false) => {
                bad("remote.tls_cert", "tls_key is set: set tls_cert too".into());
                ok = false;
                None
            }
            (false, true) => {
                bad("remote.tls_key", "tls_cert is set: set tls_key too".into());
                ok = false;
                None
            }
        };
        if let Some(addr) = listen
            && !addr.ip().is_loopback()
            && r.tls_cert.trim().is_empty()
            && r.tls_key.trim().is_empty()
        {
            bad(
                "remote.listen",
                format!(
                    "{addr} is reachable from other machines: set remote.tls_cert and remote.tls_key, \
                     or listen on loopback behind a reverse proxy that terminates TLS (docs/REMOTE.md)"
                ),
            );
            ok = false;
        }
        if !b.enabled && !g.enabled {
            bad(
                "remote.listen",
                "the remote listener serves only [bitrix24] and [gateway]: enable one of them"
                    .into(),
            );
            ok = false;
        }
        check_range("remote.rate_per_minute", r.rate_per_minute, 1..=60_000, bad);
        check_range("remote.burst", r.burst, 1..=10_000, bad);
        listen.map(|listen| RemoteSettings {
            listen,
            tls,
            rate_per_minute: r.rate_per_minute.min(60_000) as u32,
            burst: r.burst.min(10_000) as u32,
        })
    };
    ok.then_some((bitrix24, gateway, remote))
}

/// `[deadlines]` as the model takes it.
pub fn thresholds(d: &super::schema::DeadlinesConfig) -> crate::deadlines::Thresholds {
    use crate::deadlines::{Countdown, Thresholds};
    use chrono::Duration as D;
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX / 1_000_000);
    Thresholds {
        fn_expiry: Countdown {
            warn: D::days(i(d.fn_expiry_warn_days)),
            critical: D::days(i(d.fn_expiry_critical_days)),
        },
        ofd_block: Countdown {
            warn: D::days(i(d.ofd_block_warn_days)),
            critical: D::days(i(d.ofd_block_critical_days)),
        },
        marking_lockout: Countdown {
            warn: D::hours(i(d.marking_lockout_warn_hours)),
            critical: D::hours(i(d.marking_lockout_critical_hours)),
        },
        shift_limit: Countdown {
            warn: D::minutes(i(d.shift_limit_warn_minutes)),
            critical: D::minutes(i(d.shift_limit_critical_minutes)),
        },
        clock_warn_s: i(d.clock_warn_s),
        clock_critical_s: i(d.clock_critical_s),
        fiscalbox_warn_percent: i(d.fiscalbox_memory_warn_percent),
        fiscalbox_critical_percent: i(d.fiscalbox_memory_critical_percent),
        ..Thresholds::default()
    }
}

fn check_deadlines(d: &super::schema::DeadlinesConfig, bad: &mut impl FnMut(&str, String)) {
    if d.fiscalbox_memory_critical_percent > 100 {
        bad(
            "deadlines.fiscalbox_memory_critical_percent",
            "must be at most 100".into(),
        );
    }
    if !(5..=86_400).contains(&d.reading_interval_s) {
        bad(
            "deadlines.reading_interval_s",
            "must be 5..=86400 seconds".into(),
        );
    }
    for (warn_key, warn, crit_key, crit, max) in [
        (
            "deadlines.fn_expiry_warn_days",
            d.fn_expiry_warn_days,
            "deadlines.fn_expiry_critical_days",
            d.fn_expiry_critical_days,
            1_100,
        ),
        (
            "deadlines.ofd_block_warn_days",
            d.ofd_block_warn_days,
            "deadlines.ofd_block_critical_days",
            d.ofd_block_critical_days,
            30,
        ),
        (
            "deadlines.marking_lockout_warn_hours",
            d.marking_lockout_warn_hours,
            "deadlines.marking_lockout_critical_hours",
            d.marking_lockout_critical_hours,
            72,
        ),
        (
            "deadlines.shift_limit_warn_minutes",
            d.shift_limit_warn_minutes,
            "deadlines.shift_limit_critical_minutes",
            d.shift_limit_critical_minutes,
            1_440,
        ),
        (
            "deadlines.clock_warn_s",
            d.clock_warn_s,
            "deadlines.clock_critical_s",
            d.clock_critical_s,
            300,
        ),
        (
            "deadlines.fiscalbox_memory_warn_percent",
            d.fiscalbox_memory_warn_percent,
            "deadlines.fiscalbox_memory_critical_percent",
            d.fiscalbox_memory_critical_percent,
            99,
        ),
    ] {
        if warn > max {
            bad(warn_key, format!("must be at most {max}"));
        }
        // The clock and memory use rise; the countdowns fall with time left.
        let clock = warn_key == "deadlines.clock_warn_s"
            || warn_key == "deadlines.fiscalbox_memory_warn_percent";
        if (clock && crit < warn) || (!clock && crit > warn) {
            bad(
                crit_key,
                format!(
                    "must be {} {warn_key} ({warn})",
                    if clock { "at least" } else { "at most" }
                ),
            );
        }
    }
}

/// Whether the authority part of a URL (after `http://`) names a loopback
/// host: `localhost`, `127.x.x.x` or `[::1]`.
fn is_loopback_host(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
