//! The technician's command line (`fiscald status`, `fiscald receipts …`,
//! `fiscald diagnostics`): a client of the local API, never of the journal
//! file, so it works the same against a running daemon as root or as any
//! user, and cannot race the single writer. The formatting and the
//! redaction are pure functions, tested without a daemon.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whole-request limit for one API call.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Log lines put in a diagnostics bundle.
pub const LOG_LINES: u32 = 2000;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(
        "cannot reach fiscald at {url}: {reason} (is it running? see `systemctl status fiscald`)"
    )]
    Unreachable { url: String, reason: String },
    /// Connected, but no whole answer within the time limit: fiscald is
    /// there (busy or waiting on something outside).
    #[error(
        "fiscald at {url} did not answer within {} s (it is up, but the call took too long; for a billing check, see the stored result in `fiscald status`)",
        .after.as_secs()
    )]
    TimedOut { url: String, after: Duration },
    #[error("fiscald answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("{0}")]
    Local(String),
}

/// Whole-request limit for `fiscald billing check`: longer than the
/// daemon's own bound on its whole answer
/// ([`crate::fiscalbox::billing::HANDLER_WITHIN`]).
pub const BILLING_CHECK_TIMEOUT: Duration =
    Duration::from_secs(crate::fiscalbox::billing::HANDLER_WITHIN.as_secs() + 10);

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    timeout: Duration,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Client, CliError> {
        Client::with_timeout(base, token, REQUEST_TIMEOUT)
    }

    /// A client whose calls may take up to `timeout` each.
    pub fn with_timeout(
        base: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Client, CliError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| CliError::Local(e.to_string()))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            http,
            timeout,
        })
    }

    fn failed(&self, e: reqwest::Error) -> CliError {
        if e.is_timeout() && !e.is_connect() {
            CliError::TimedOut {
                url: self.base.clone(),
                after: self.timeout,
            }
        } else {
            CliError::Unreachable {
                url: self.base.clone(),
                reason: e.to_string(),
            }
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, CliError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| self.failed(e))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| self.failed(e))?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(CliError::Refused { status, body })
        }
    }

    pub async fn get_text(&self, path: &str) -> Result<String, CliError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn get_json(&self, path: &str) -> Result<Value, CliError> {
        let text = self.get_text(path).await?;
        serde_json::from_str(&text).map_err(|e| CliError::Local(format!("{path}: not JSON: {e}")))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        let text = self
            .send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await?;
        serde_json::from_str(&text).map_err(|e| CliError::Local(format!("{path}: not JSON: {e}")))
    }
}

/// `fiscald status`: a human summary of `GET /v1/status`, and whether
/// something needs attention (the exit code).
pub fn summarize(s: &Value) -> (String, bool) {
    let mut out = String::new();
    let str_of = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    out.push_str(&format!(
        "fiscald {} · up {} s · {} {}\n",
        str_of(&s["version"]),
        s["uptime_s"],
        str_of(&s["config"]["country"]),
        str_of(&s["config"]["timezone"]),
    ));
    let attention = s["attention"].as_array().cloned().unwrap_or_default();
    if attention.is_empty() {
        out.push_str("OK: nothing needs attention\n");
    } else {
        out.push_str("NEEDS ATTENTION:\n");
        for a in &attention {
            out.push_str(&format!("  ! {}\n", str_of(a)));
        }
    }
    let deadlines = s["deadlines"].as_array().cloned().unwrap_or_default();
    let mut critical = false;
    if !deadlines.is_empty() {
        out.push_str("deadlines (most urgent first):\n");
    }
    for c in &deadlines {
        let severity = str_of(&c["severity"]);
        critical |= matches!(severity.as_str(), "critical" | "blocking");
        out.push_str(&format!(
            "  [{severity}] {}{}\n",
            str_of(&c["message"]),
            c["bites_at"]
                .as_str()
                .map(|t| format!(" (at {t})"))
                .unwrap_or_default()
        ));
        if severity != "ok" {
            out.push_str(&format!("      -> {}\n", str_of(&c["action"])));
        }
    }
    out.push_str("devices:\n");
    for d in s["devices"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {:<9} {:<10} {}{}\n",
            str_of(&d["name"]),
            str_of(&d["state"]),
            str_of(&d["path"]),
            d["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    if s["devices"].as_array().is_none_or(|d| d.is_empty()) {
        out.push_str("  none configured\n");
    }
    let j = &s["journal"];
    out.push_str(&format!(
        "journal: {} receipts ({} today), {} waiting to fiscalize, {} rejected, {} KiB, writable: {}\n",
        j["receipts_total"],
        j["receipts_today"],
        j["backlog"],
        j["rejected"].as_array().map_or(0, |r| r.len()),
        j["size_bytes"].as_u64().unwrap_or(0) / 1024,
        j["writable"],
    ));
    if let Some(oldest) = j["oldest_unfiscalized"].as_str() {
        out.push_str(&format!("  oldest unfiscalized: {oldest}\n"));
    }
    let c = &s["cloud"];
    let cloud = match c["online"].as_bool() {
        None => "sync off".to_string(),
        Some(true) => format!("online since {}", str_of(&c["since"])),
        Some(false) => format!(
            "OFFLINE since {} ({})",
            str_of(&c["since"]),
            str_of(&c["last_error"])
        ),
    };
    out.push_str(&format!("cloud: {cloud}\n"));
    for r in j["rejected"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  rejected #{} {}: {}\n",
            r["number"],
            str_of(&r["id"]),
            str_of(&r["error"])
        ));
    }
    (out, !attention.is_empty() || critical)
}

/// `fiscald receipts list`: one line per receipt.
pub fn receipt_lines(page: &Value) -> String {
    let mut out = String::new();
    for r in page["receipts"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:>6}  {}  {:<11} {:>12}  {}{}\n",
            r["number"],
            r["id"].as_str().unwrap_or(""),
            r["state"].as_str().unwrap_or(""),
            r["total"].as_str().unwrap_or(""),
            r["created_at"].as_str().unwrap_or(""),
            r["sync"]["last_error"]
                .as_str()
                .map(|e| format!("  ! {e}"))
                .unwrap_or_default()
        ));
    }
    if let Some(next) = page["next_after"].as_str() {
        out.push_str(&format!("(more: --after {next})\n"));
    }
    out
}

/// Keys of the config file whose values are secrets.
fn is_secret_key(key: &str) -> bool {
    let k = key.trim().trim_matches('"').to_ascii_lowercase();
    k == "pin" || k.ends_with("token") || k.ends_with("password") || k.ends_with("secret")
}

/// The config text with every secret value replaced by `"<redacted>"`,
/// line by line (comments and layout kept, so line numbers still match).
pub fn redact_config(text: &str) -> String {
    text.lines()
        .map(|line| {
            let code = line.split('#').next().unwrap_or("");
            match code.split_once('=') {
                Some((key, _)) if is_secret_key(key) => {
                    format!("{}= \"<redacted>\"", key)
                }
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Percent-encode a query value.
pub fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A billing reconciliation (`POST /v1/billing/check`) for a person.
pub fn billing_lines(r: &Value) -> String {
    let mut out = format!(
        "period   {} – {}\njournal  {} orders, {} tiyin\n",
        r["start"].as_str().unwrap_or("?"),
        r["end"].as_str().unwrap_or("?"),
        r["journal"]["orders"],
        r["journal"]["amount_tiyin"],
    );
    if r["billing"].is_object() {
        out.push_str(&format!(
            "billing  {} orders, {} tiyin\n",
            r["billing"]["orders"], r["billing"]["amount_tiyin"]
        ));
    }
    match r["result"].as_str() {
        Some("equal") => out.push_str("result   equal\n"),
        Some(result @ ("delayed" | "refused")) => out.push_str(&format!(
            "result   {result}: {}\n",
            r["reason"].as_str().unwrap_or("")
        )),
        Some("different") => {
            out.push_str(&format!(
                "result   DIFFERENT: journal minus billing = {} order(s), {} tiyin\n",
                r["orders_difference"], r["amount_difference_tiyin"]
            ));
            for o in r["explained_by"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "         receipt {} (box #{}, {}{}, {} tiyin)\n",
                    o["receipt_id"].as_str().unwrap_or("?"),
                    o["receipt_seq"],
                    o["date_time"].as_str().unwrap_or("?"),
                    if o["fiscal_time_unknown"] == true {
                        " accepted; the box's time unreadable"
                    } else {
                        ""
                    },
                    o["amount_tiyin"]
                ));
            }
            if let Some(more) = r["explained_more"].as_u64() {
                out.push_str(&format!("         and {more} more receipt(s)\n"));
            }
        }
        _ => out.push_str(&format!("result   unknown: {r}\n")),
    }
    if let Some(id) = r["id"].as_i64() {
        out.push_str(&format!(
            "stored   check #{id} ({}, {} attempt(s), {})\n",
            r["trigger"].as_str().unwrap_or("?"),
            r["attempts"],
            r["checked_at"].as_str().unwrap_or("?")
        ));
    }
    out
}

/// Secret values read from a config file (inline tokens and passwords, the
/// token and password files' contents — the billing password among them),
/// to scrub from a diagnostics bundle: every one of [`MIN_SCRUBBED`]
/// characters or more. The till's `pin` is not among them (fiscald never
/// logs or serves it; scrubbing a 4-digit PIN would erase every matching
/// number); the bundle's config copy has it redacted like every secret key.
pub fn secrets_in_config(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(doc) = text.parse::<toml::Table>() else {
        return out;
    };
    fn walk(v: &toml::Value, key: &str, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    walk(v, k, out);
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, key, out)),
            toml::Value::String(s) if is_secret_key(key) && key != "pin" => out.push(s.clone()),
            toml::Value::String(path)
                if (key.ends_with("token_file") || key.ends_with("password_file"))
                    && !path.is_empty() =>
            {
                if let Ok(t) = std::fs::read_to_string(path) {
                    out.push(t.trim().to_string());
                }
            }
            _ => {}
        }
    }
    walk(&toml::Value::Table(doc), "", &mut out);
    out.retain(|s| s.chars().count() >= MIN_SCRUBBED);
    // Longest first, so a secret containing another is scrubbed whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// The shortest secret scrubbed from a bundle: shorter ones would erase
/// ordinary words and numbers (a password that short is refused by no
/// rule here, but is reported in the bundle's config copy as redacted).
pub const MIN_SCRUBBED: usize = 4;

/// Every occurrence of each secret replaced by `<redacted>`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(s.as_str(), "<redacted>");
    }
    out
}

/// What goes in a diagnostics bundle, gathered by the caller.
pub struct Bundle {
    pub files: Vec<(String, String)>,
}

/// Gather a diagnostics bundle from the daemon at `client` and the config at
/// `config` (if readable); every file is scrubbed of the config's secrets.
pub async fn gather(client: &Client, config: Option<&Path>) -> Bundle {
    let mut files = Vec::new();
    let config_text = config.and_then(|p| std::fs::read_to_string(p).ok());
    let secrets = config_text
        .as_deref()
        .map(secrets_in_config)
        .unwrap_or_default();
    let mut add = |name: &str, text: String| files.push((name.to_string(), scrub(&text, &secrets)));
    match &config_text {
        Some(t) => add("config.redacted.toml", redact_config(t)),
        None => add(
            "config.redacted.toml",
            format!(
                "# the config {} could not be read by this user\n",
                config.map(|p| p.display().to_string()).unwrap_or_default()
            ),
        ),
    }
    let outcome = |r: Result<String, CliError>| r.unwrap_or_else(|e| format!("error: {e}\n"));
    add("status.json", outcome(client.get_text("/v1/status").await));
    add("health.json", outcome(client.get_text("/v1/health").await));
    add(
        "devices.json",
        outcome(client.get_text("/v1/devices").await),
    );
    add("metrics.txt", outcome(client.get_text("/metrics").await));
    add(
        "receipts-rejected.json",
        outcome(
            client
                .get_text("/v1/receipts?state=rejected&limit=100")
                .await,
        ),
    );
    add("logs.txt", recent_logs());
    add("versions.txt", versions());
    Bundle { files }
}

/// The daemon's recent log lines from journald, when there is one.
fn recent_logs() -> String {
    let out = run_limited(
        "journalctl",
        &[
            "-u",
            "fiscald",
            "-n",
            &LOG_LINES.to_string(),
            "--no-pager",
            "-o",
            "short-iso",
        ],
    );
    out.unwrap_or_else(|e| format!("no logs: {e}\n"))
}

fn versions() -> String {
    let mut out = format!("fiscald (this CLI) {}\n", env!("CARGO_PKG_VERSION"));
    for (cmd, args) in [
        ("uname", &["-a"][..]),
        ("dpkg-query", &["-W", "fiscald"][..]),
    ] {
        out.push_str(&format!(
            "$ {cmd} {}\n{}",
            args.join(" "),
            run_limited(cmd, args).unwrap_or_else(|e| format!("{e}\n"))
        ));
    }
    if let Ok(os) = std::fs::read_to_string("/etc/os-release") {
        out.push_str("/etc/os-release:\n");
        out.push_str(&os);
    }
    out
}

/// Runs a local tool for at most 10 s.
fn run_limited(cmd: &str, args: &[&str]) -> Result<String, String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(cmd)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{cmd}: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let text = reader.join().unwrap_or_default();
            return if status.success() {
                Ok(text)
            } else {
                Err(format!("{cmd} exited with {status}"))
            };
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd} did not finish within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes the bundle as `out` (a .tar.gz made by the system `tar`), files
/// under one directory named after the bundle.
pub fn write_tarball(bundle: &Bundle, out: &Path) -> Result<PathBuf, CliError> {
    let stem = out
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.trim_end_matches(".tar.gz").to_string())
        .unwrap_or_else(|| "fiscald-diagnostics".into());
    let work = tempfile_dir()?;
    let dir = work.join(&stem);
    std::fs::create_dir_all(&dir).map_err(|e| CliError::Local(e.to_string()))?;
    for (name, text) in &bundle.files {
        std::fs::write(dir.join(name), text).map_err(|e| CliError::Local(e.to_string()))?;
    }
    let out_abs = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| CliError::Local(e.to_string()))?
            .join(out)
    };
    let result = run_limited(
        "tar",
        &[
            "-czf",
            &out_abs.display().to_string(),
            "-C",
            &work.display().to_string(),
            &stem,
        ],
    );
    let _ = std::fs::remove_dir_all(&work);
    result.map_err(|e| CliError::Local(format!("cannot write {}: {e}", out.display())))?;
    Ok(out_abs)
}

fn tempfile_dir() -> Result<PathBuf, CliError> {
    let dir = std::env::temp_dir().join(format!(
        "fiscald-diagnostics-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| CliError::Local(e.to_string()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_billing_check_reads_for_a_person() {
        let delayed = json!({"id": 3, "start": "2026-11-29T08:00:00", "end": "2026-11-29T20:00:00",
            "trigger": "z_report", "journal": {"orders": 2, "amount_tiyin": 500}, "billing": null,
            "result": "delayed", "reason": "billing unreachable (timed out)", "attempts": 4,
            "checked_at": "2026-11-29T15:00:02Z"});
        assert_eq!(
            billing_lines(&delayed),
            "period   2026-11-29T08:00:00 – 2026-11-29T20:00:00\njournal  2 orders, 500 tiyin\n\
             result   delayed: billing unreachable (timed out)\n\
             stored   check #3 (z_report, 4 attempt(s), 2026-11-29T15:00:02Z)\n"
        );
        let refused = json!({"result": "refused", "reason": "HTTP 400: bad inn"});
        assert!(billing_lines(&refused).contains("result   refused: HTTP 400: bad inn"));
        let many = json!({"result": "different", "orders_difference": 1, "amount_difference_tiyin": 5,
            "explained_by": [], "explained_more": 30});
        assert!(billing_lines(&many).contains("and 30 more receipt(s)"));
        let unknown = json!({"result": "later"});
        assert!(billing_lines(&unknown).contains("result   unknown"));
    }

    #[tokio::test]
    async fn a_call_that_times_out_says_so_and_not_that_fiscald_is_down() {
        // Accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Ok((c, _)) = listener.accept().await {
                kept.push(c);
            }
        });
        let client = Client::with_timeout(&base, None, Duration::from_millis(300)).unwrap();
        let e = client.get_text("/v1/status").await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, CliError::TimedOut { .. }), "{text}");
        assert!(!text.contains("is it running"), "{text}");
        assert!(text.contains("did not answer within"), "{text}");
        held.abort();
        // Nothing listening: unreachable.
        let gone = Client::new("http://127.0.0.1:9", None).unwrap();
        let e = gone.get_text("/v1/status").await.unwrap_err();
        assert!(e.to_string().contains("is it running"), "{e}");
        assert!(BILLING_CHECK_TIMEOUT > crate::fiscalbox::billing::HANDLER_WITHIN);
    }

    #[test]
    fn config_secrets_are_redacted_and_layout_kept() {
        let text = "[till]\npin = \"1234\" # the PIN\ntimezone = \"Europe/Moscow\"\n[cloud]\ntoken = \"abcdefghijkl\"\ntoken_file = \"\"\n[register]\npassword = 30\nadmin_password = 30\n";
        let r = redact_config(text);
        assert!(!r.contains("1234") && !r.contains("abcdefghijkl"), "{r}");
        assert!(r.contains("pin = \"<redacted>\""));
        assert!(r.contains("timezone = \"Europe/Moscow\""));
        assert!(r.contains("password = \"<redacted>\""));
        assert!(
            r.contains("token_file = \"\""),
            "a path is not a secret: {r}"
        );
        assert_eq!(r.lines().count(), text.lines().count());
        assert_eq!(secrets_in_config(text), vec!["abcdefghijkl".to_string()]);
        // A short billing password (from its file) is scrubbed too; the
        // PIN is not (never logged).
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "k7x2Q\n").unwrap();
        let cfg = format!(
            "[till]\npin = \"1234\"\n[fiscalbox.billing]\npassword_file = \"{}\"\n[cloud]\ntoken = \"abc\"\n",
            pw.display()
        );
        assert_eq!(secrets_in_config(&cfg), vec!["k7x2Q".to_string()]);
        assert_eq!(
            scrub("login k7x2Q total 1234 abc", &secrets_in_config(&cfg)),
            "login <redacted> total 1234 abc"
        );
        assert_eq!(
            scrub("x abcdefghijkl y", &secrets_in_config(text)),
            "x <redacted> y"
        );
    }

    #[test]
    fn status_summary_flags_attention() {
        let s = json!({
            "version": "0.1.0", "uptime_s": 5,
            "config": {"country": "ru", "timezone": "Europe/Moscow"},
            "attention": ["printer is faulted: paper out"],
            "devices": [{"name": "printer", "state": "faulted", "path": "/dev/usb/lp0", "reason": "paper out"}],
            "journal": {"receipts_total": 2, "receipts_today": 2, "backlog": 0, "rejected": [{"number": 2, "id": "r2", "error": "bad"}], "size_bytes": 4096, "writable": true},
            "cloud": {"online": false, "since": "2026-01-01T00:00:00Z", "last_error": "connect refused"}
        });
        let (text, attention) = summarize(&s);
        assert!(attention);
        assert!(
            text.contains("NEEDS ATTENTION:\n  ! printer is faulted: paper out"),
            "{text}"
        );
        assert!(
            text.contains("printer   faulted    /dev/usb/lp0 (paper out)"),
            "{text}"
        );
        assert!(
            text.contains("OFFLINE since 2026-01-01T00:00:00Z (connect refused)"),
            "{text}"
        );
        assert!(text.contains("rejected #2 r2: bad"), "{text}");
        let mut ok = s.clone();
        ok["attention"] = json!([]);
        let (text, attention) = summarize(&ok);
        assert!(!attention);
        assert!(text.contains("OK: nothing needs attention"));
        // A critical deadline alone makes the exit code non-zero.
        ok["deadlines"] = json!([{
            "kind": "ofd_block", "severity": "critical",
            "bites_at": "2026-12-01T10:00:00Z", "seconds_left": 172800,
            "message": "3 document(s) not confirmed by the OFD, the oldest 28 days old: the drive blocks receipts in 2 days",
            "action": "connect the till to the internet so the OFD queue drains",
            "source": "register FF39"
        }]);
        let (text, attention) = summarize(&ok);
        assert!(attention, "{text}");
        assert!(
            text.contains("[critical] 3 document(s) not confirmed"),
            "{text}"
        );
        assert!(
            text.contains("-> connect the till to the internet"),
            "{text}"
        );
        ok["deadlines"][0]["severity"] = json!("warn");
        assert!(!summarize(&ok).1);
    }
}
