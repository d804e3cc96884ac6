//! The configuration file: its TOML schema, the rules it must follow, and the
//! typed settings the daemon runs with — one module per concern:
//!
//! - [`schema`]: the file as written (serde, `deny_unknown_fields`, every key
//!   with a default; closed value sets are serde enums);
//! - [`load`]: TOML text → schema, collecting syntax errors, unknown keys and
//!   wrong values with their dotted key and line (pure);
//! - [`rules`]: ranges and keys that depend on each other → [`Settings`] (pure);
//! - [`settings`]: the typed result, and [`Secret`];
//! - [`secrets`]: the separate step that reads token files.
//!
//! `fiscald check-config` and the daemon share one path: [`load_str`] reports
//! *every* problem it finds, sorted by line, and only a file with none
//! becomes [`Settings`].

pub mod load;
pub mod rules;
pub mod schema;
pub mod secrets;
pub mod settings;

pub use rules::BAUD_RATES;
pub use schema::{
    AfterSlip, AuthMode, Backend, BillingConfig, Config, CutMode, DEFAULT_CLOUD_BASE_URL,
    DrawerVia, FiscalboxConfig, OnUnreachable, Role, TextEncoding,
};
pub use secrets::SecretFile;
pub use settings::{
    ApiSettings, ApiToken, AuthSettings, AutoZSettings, BillingSettings, Bitrix24Settings,
    CloudSettings, DeviceSettings, DrawerSettings, FiscalboxSettings, GatewaySettings, Limits,
    MarkingService, MarkingSettings, PrinterSettings, RegisterSettings, RemoteSettings, Secret,
    Settings, TlsFiles, TokenHash,
};

use std::fmt;
use std::path::Path;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/fiscald/fiscald.toml";

/// The built-in config `fiscald demo` runs with.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");
/// The built-in config `fiscald demo --country uz` runs with.
pub const DEMO_UZ_CONFIG: &str = include_str!("../../config/demo-uz.toml");

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

/// A config that follows every rule, its secret files not yet read.
#[derive(Debug)]
pub struct Parsed {
    pub settings: Settings,
    pub secret_files: Vec<SecretFile>,
}

impl Parsed {
    /// Read the token files the config names (the only I/O of loading).
    pub fn resolve_secrets(self) -> Result<Settings, Vec<Problem>> {
        let mut settings = self.settings;
        let problems = secrets::resolve(&mut settings, &self.secret_files);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems)
        }
    }
}

/// Read and validate a config file, secrets included.
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

/// Validate config text and read the secret files it names, reporting every
/// problem.
pub fn load_str(text: &str) -> Result<Settings, Vec<Problem>> {
    parse_str(text)?.resolve_secrets()
}

/// Validate config text without touching any other file (pure).
pub fn parse_str(text: &str) -> Result<Parsed, Vec<Problem>> {
    let mut problems = Vec::new();
    let Some((config, lines)) = load::parse(text, &mut problems) else {
        return Err(problems);
    };
    let checked = rules::check(&config, &lines, &mut problems);
    match checked {
        Some((settings, secret_files)) if problems.is_empty() => Ok(Parsed {
            settings,
            secret_files,
        }),
        _ => {
            // File order reads best; a sort is stable, so problems without a
            // line keep their order at the end.
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[till]\npin = \"1234\"\ntimezone = \"Europe/Moscow\"\n";

    #[test]
    fn online_order_sections_are_checked_with_their_keys() {
        let hash = "a".repeat(64);
        let ok = format!(
            "{GOOD}[bitrix24]\nenabled = true\nlogin = \"shop\"\npassword_sha256 = \"{hash}\"\n\
             [bitrix24.vat]\n\"0\" = \"none\"\n\"2\" = \"22\"\n\
             [gateway]\nenabled = true\nendpoint_id = \"1111\"\nmerchant_key = \"k\"\n\
             [gateway.tax]\n\"1\" = \"22\"\n\
             [remote]\nlisten = \"127.0.0.1:8731\"\n"
        );
        let s = load_str(&ok).unwrap();
        assert_eq!(s.bitrix24.unwrap().vat["2"], crate::domain::Vat::Vat22);
        let g = s.gateway.unwrap();
        assert_eq!((g.tax.len(), g.merchant_key.expose()), (1, "k"));
        assert!(s.remote.unwrap().tls.is_none());

        let bad = format!(
            "{GOOD}[bitrix24]\nenabled = true\npassword_sha256 = \"x\"\n\
             [bitrix24.vat]\n\"a\" = \"22\"\n\
             [gateway]\nenabled = true\n\
             [gateway.tax]\n\"7\" = \"22\"\n\
             [remote]\nlisten = \"0.0.0.0:8443\"\n"
        );
        let keys: Vec<String> = load_str(&bad)
            .unwrap_err()
            .into_iter()
            .map(|p| p.key)
            .collect();
        for key in [
            "bitrix24.login",
            "bitrix24.password_sha256",
            "bitrix24.vat.a",
            "gateway.endpoint_id",
            "gateway.merchant_key_file",
            "gateway.tax.7",
            "remote.listen",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
        }
        // A remote listener with nothing to serve.
        let idle = format!("{GOOD}[remote]\nlisten = \"127.0.0.1:8731\"\n");
        let problems = load_str(&idle).unwrap_err();
        assert!(
            problems[0].message.contains("enable one of them"),
            "{problems:?}"
        );
        // Off by default.
        assert!(load_str(GOOD).unwrap().remote.is_none());
    }

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
                ("api.listen".into(), Some(2)),
                ("api.speed".into(), Some(3)),
                ("till.pin".into(), Some(6)),
                ("till.timezone".into(), Some(7)),
                ("fiscal.country".into(), Some(10)),
                ("extra".into(), Some(11)),
            ],
            "{problems:#?}"
        );
        assert!(
            problems[1].message.contains("unknown key"),
            "{}",
            problems[1]
        );
        assert!(
            problems[1]
                .to_string()
                .starts_with("line 3: api.speed: unknown key")
        );
    }

    #[test]
    fn journal_retention_and_wal_keys() {
        let s = load_str(GOOD).unwrap();
        assert_eq!(s.retain_days, crate::journal::DEFAULT_RETAIN_DAYS);
        assert_eq!(s.wal_limit_bytes, 64 * 1024 * 1024);
        assert_eq!(
            s.archive_dir,
            std::path::Path::new("/var/lib/fiscald/archive")
        );
        let s = load_str(&format!(
            "{GOOD}\n[journal]\nretain_days = 0\narchive_dir = \"/srv/archive\"\nwal_limit_mb = 16\n"
        ))
        .unwrap();
        assert_eq!((s.retain_days, s.wal_limit_bytes), (0, 16 * 1024 * 1024));
        assert_eq!(s.archive_dir, std::path::Path::new("/srv/archive"));
        let problems = load_str(&format!(
            "{GOOD}\n[journal]\nretain_days = 7\nwal_limit_mb = 1\n"
        ))
        .unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["journal.retain_days", "journal.wal_limit_mb"]);
        assert!(problems.iter().all(|p| p.line.is_some()), "{problems:?}");
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let problems = load_str("[till]\npin = \"1234\n").unwrap_err();
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn currency_must_match_country() {
        let problems =
            load_str("[till]\npin=\"1234\"\n[fiscal]\ncountry=\"uz\"\ncurrency=\"RUB\"\nbackend=\"fiscalbox\"\n[fiscalbox]\nurl=\"http://10.0.0.5\"\n")
                .unwrap_err();
        assert_eq!(problems[0].key, "fiscal.currency");
        let s = load_str(
            "[till]\npin=\"1234\"\ntimezone=\"Asia/Tashkent\"\n[fiscal]\ncountry=\"uz\"\nbackend=\"fiscalbox\"\n[fiscalbox]\nurl=\"http://192.168.1.50:8080/\"\n",
        )
        .unwrap();
        assert_eq!(s.profile.currency, "UZS");
        assert_eq!(s.fiscalbox.unwrap().url, "http://192.168.1.50:8080");
    }

    #[test]
    fn the_billing_needs_its_login_and_inn_and_a_private_password_file() {
        let base = "[till]\npin=\"1234\"\n[fiscal]\ncountry=\"uz\"\nbackend=\"fiscalbox\"\n[fiscalbox]\nurl=\"http://10.0.0.5\"\n[fiscalbox.billing]\nurl=\"https://api.fbox.uz\"\n";
        let problems = load_str(&format!("{base}inn=\"12ab\"\n")).unwrap_err();
        let mut keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "fiscalbox.billing.inn",
                "fiscalbox.billing.password_file",
                "fiscalbox.billing.username",
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret-password").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let text = format!(
            "{base}username=\"shop\"\ninn=\"306429662\"\npassword_file=\"{}\"\n",
            file.display()
        );
        let problems = load_str(&text).unwrap_err();
        assert_eq!(problems[0].key, "fiscalbox.billing.password_file");
        assert!(
            problems[0].message.contains("chmod 0600"),
            "{}",
            problems[0].message
        );
        assert!(!problems[0].message.contains("s3cret"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = load_str(&text).unwrap();
        let b = s.fiscalbox.unwrap().billing.unwrap();
        assert_eq!(b.password.expose(), "s3cret-password");
        assert_eq!(format!("{b:?}").matches("s3cret").count(), 0);
    }

    #[test]
    fn the_billing_url_is_https_unless_it_is_on_loopback() {
        let config = |url: &str| {
            format!(
                "[till]\npin=\"1234\"\n[fiscal]\ncountry=\"uz\"\nbackend=\"fiscalbox\"\n[fiscalbox]\nurl=\"http://10.0.0.5\"\n[fiscalbox.billing]\nurl=\"{url}\"\nusername=\"shop\"\ninn=\"306429662\"\npassword_file=\"/nonexistent/pw\"\n"
            )
        };
        let problems = load_str(&config("http://api.fbox.uz")).unwrap_err();
        let p = problems
            .iter()
            .find(|p| p.key == "fiscalbox.billing.url")
            .expect("http:// to a remote host is refused");
        assert_eq!(p.line, Some(9), "{p:?}");
        assert!(p.message.contains("https://"), "{}", p.message);
        for url in [
            "https://api.fbox.uz",
            "http://127.0.0.1:8080",
            "http://localhost:9",
            "http://[::1]:9/",
        ] {
            let problems = load_str(&config(url)).unwrap_err();
            assert!(
                problems.iter().all(|p| p.key != "fiscalbox.billing.url"),
                "{url}: {problems:?}"
            );
        }
    }

    #[test]
    fn an_uzbek_till_fiscalizes_through_a_fiscalbox_only() {
        for backend in ["cloud", "register"] {
            let text = format!(
                "[till]\npin=\"1234\"\n[fiscal]\ncountry=\"uz\"\nbackend=\"{backend}\"\n[register]\npath=\"/dev/null\"\n"
            );
            let problems = load_str(&text).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].key, "fiscal.backend");
            assert_eq!(problems[0].line, Some(5));
            assert!(
                problems[0].message.contains("fiscalbox"),
                "{}",
                problems[0].message
            );
        }
        let problems =
            load_str("[till]\npin=\"1234\"\n[fiscal]\ncountry=\"uz\"\nbackend=\"fiscalbox\"\n")
                .unwrap_err();
        assert_eq!(problems[0].key, "fiscalbox.url");
        let problems = load_str("[till]\npin=\"1234\"\n[fiscal]\nbackend=\"fiscalbox\"\n[fiscalbox]\nurl=\"http://10.0.0.5\"\nretry_base_ms=5\n")
            .unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["fiscal.backend", "fiscalbox.retry_base_ms"]);
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
    fn a_value_outside_a_closed_set_names_key_line_and_choices() {
        let text = "[till]\npin=\"1234\"\n[fiscal]\nbackend = \"paper\"\n[printer]\ncut = \"half\"\nencoding = \"utf8\"\n[drawer]\nvia = \"usb\"\n";
        let problems = load_str(text).unwrap_err();
        let got: Vec<(&str, Option<usize>)> =
            problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            got,
            vec![
                ("fiscal.backend", Some(4)),
                ("printer.cut", Some(6)),
                ("printer.encoding", Some(7)),
                ("drawer.via", Some(9)),
            ],
            "{problems:#?}"
        );
        assert!(problems[0].message.contains("`cloud`"), "{}", problems[0]);
        assert!(
            problems[0].message.contains("`register`"),
            "{}",
            problems[0]
        );
        assert!(problems[3].message.contains("`printer`"), "{}", problems[3]);
    }

    #[test]
    fn fiscalbox_memory_thresholds_are_configured_and_checked() {
        let ok = "[till]\npin=\"1234\"\n[deadlines]\nfiscalbox_memory_warn_percent = 80\nfiscalbox_memory_critical_percent = 95\n";
        let s = load_str(ok).unwrap();
        assert_eq!(
            (
                s.deadlines.fiscalbox_warn_percent,
                s.deadlines.fiscalbox_critical_percent
            ),
            (80, 95)
        );
        let bad = "[till]\npin=\"1234\"\n[deadlines]\nfiscalbox_memory_warn_percent = 95\nfiscalbox_memory_critical_percent = 80\n";
        let problems = load_str(bad).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(
            problems[0].key,
            "deadlines.fiscalbox_memory_critical_percent"
        );
        assert_eq!(problems[0].line, Some(5));
    }

    #[test]
    fn a_non_loopback_listener_needs_tokens() {
        let text = "[api]\nlisten = \"0.0.0.0:8730\"\n[till]\npin=\"1234\"\n";
        let problems = load_str(text).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].key, "api.listen");
        assert_eq!(problems[0].line, Some(2));
        assert!(
            problems[0].message.contains("api.tokens"),
            "{}",
            problems[0]
        );
        let hash = "a".repeat(64);
        let with = format!(
            "[api]\nlisten = \"0.0.0.0:8730\"\n[[api.tokens]]\nrole = \"pos\"\nsha256 = \"{hash}\"\n[till]\npin=\"1234\"\n"
        );
        let s = load_str(&with).unwrap();
        assert_eq!(s.api.tokens.len(), 1);
        // 0.0.0.0 is no name: the allowed hosts stay as configured.
        assert_eq!(s.api.allowed_hosts, ["localhost", "127.0.0.1", "[::1]"]);
        // A LAN address listened on is a name the API may be called by.
        let lan = with.replace("0.0.0.0", "192.168.1.10");
        let s = load_str(&lan).unwrap();
        assert!(s.api.allowed_hosts.contains(&"192.168.1.10".to_string()));
        assert_eq!(s.api.tokens[0].role, Role::Pos);
        // ::1 and 127.0.0.1 are loopback: no tokens needed.
        load_str("[api]\nlisten = \"[::1]:8730\"\n[till]\npin=\"1234\"\n").unwrap();
    }

    #[test]
    fn token_entries_are_checked_with_their_index_and_line() {
        let text = "[till]\npin=\"1234\"\n[[api.tokens]]\nrole = \"admin\"\nsha256 = \"x\"\n[[api.tokens]]\nrole = \"pos\"\nsha256 = \"zz\"\n[[api.tokens]]\nrole = \"operator\"\n";
        let problems = load_str(text).unwrap_err();
        let got: Vec<(&str, Option<usize>)> =
            problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            got,
            vec![
                ("api.tokens[0].role", Some(4)),
                ("api.tokens[1].sha256", Some(8)),
                ("api.tokens[2]", Some(9)),
            ],
            "{problems:#?}"
        );
        assert!(
            problems[0].message.contains("`operator`"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn api_token_files_are_read_in_a_separate_step_and_kept_as_hashes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("operator.token");
        std::fs::write(&file, "op-secret-token\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "[till]\npin=\"1234\"\n[[api.tokens]]\nname = \"back office\"\nrole = \"operator\"\nfile = \"{}\"\n",
            file.display()
        );
        // Parsing alone reads nothing.
        let parsed = parse_str(&text).unwrap();
        assert!(parsed.settings.api.tokens.is_empty());
        assert_eq!(parsed.secret_files.len(), 1);
        let problems = parsed.resolve_secrets().unwrap_err();
        assert_eq!(problems[0].key, "api.tokens[0].file");
        assert_eq!(problems[0].line, Some(6));
        assert!(problems[0].message.contains("chmod"), "{}", problems[0]);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = load_str(&text).unwrap();
        assert_eq!(s.api.tokens[0].hash, TokenHash::of("op-secret-token"));
        assert_eq!(s.api.tokens[0].name, "back office");
        assert!(!format!("{s:?}").contains("op-secret"));
    }

    #[test]
    fn hosts_and_origins_are_normalized_or_refused() {
        let text = "[api]\nallowed_hosts = [\"LocalHost\", \"till.local:8730\"]\nallowed_origins = [\"http://LOCALHOST:3000/\", \"ftp://x\"]\n[till]\npin=\"1234\"\n";
        let problems = load_str(text).unwrap_err();
        let got: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(got, ["api.allowed_hosts[1]", "api.allowed_origins[1]"]);
        assert_eq!(problems[0].line, Some(2));
        let s = load_str("[api]\nallowed_hosts = [\"LocalHost\", \"[::1]\"]\nallowed_origins = [\"http://LOCALHOST:3000/\"]\n[till]\npin=\"1234\"\n").unwrap();
        // The listen address (127.0.0.1 by default) is always allowed.
        assert_eq!(s.api.allowed_hosts, ["localhost", "[::1]", "127.0.0.1"]);
        assert_eq!(s.api.allowed_origins, ["http://localhost:3000"]);
    }

    #[test]
    fn demo_config_is_valid() {
        load_str(DEMO_CONFIG).unwrap();
        load_str(DEMO_UZ_CONFIG).unwrap();
    }
}
