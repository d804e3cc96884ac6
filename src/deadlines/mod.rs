//! Deadlines before they bite: readings from the register (and, when present,
//! the marking module) plus the time now → the conditions that will stop the
//! till selling, each with the moment it bites, the time left, a severity
//! from configurable thresholds and the action that prevents it.
//!
//! Pure: no I/O, the clock passed in. The device thread fills [`Readings`]
//! ([`board`] keeps the latest per register path); the status page,
//! `/v1/status`, `/metrics`, `fiscald status` and receipt replies all show
//! [`evaluate`]'s output. [`Crossings`] decides when a journald warning is due
//! (once per threshold crossing, not every poll).
//!
//! The legal and device rules behind each condition (sources in
//! `shared/spec/marking-and-fn-health.md` part B):
//! - fiscal drive expiry: FF03 date; at expiry the tax service deregisters
//!   the register (54-ФЗ ст. 4.2 п. 16);
//! - OFD block: the drive refuses new documents once the oldest document not
//!   confirmed by the OFD is more than 30 days old (FF39 first unsent date;
//!   shtrih-m/fr_drv_ng#44, javapos_shtrih#74);
//! - marking module lockout: ЛМ ЧЗ enters `sync_error` 72 h after `lastSync`;
//! - shift limit: a shift open more than 24 h blocks sales until a Z report
//!   (register mode 3, error 0x4E / FN 0x16);
//! - clock: FN error 0x17 when the register clock and the drive's timer
//!   differ by more than 5 min (sigmarnd page in the spec note);
//! - FiscalBox memory: the box's fiscal module counts receipts and Z reports
//!   against maxima (`/info/` `receipt_count` / `receipt_max_count`,
//!   `zreport_count` / `zreport_max_count`, spec `fiscalbox.md` "Tools"); a
//!   full Z-report space refuses a new shift (`ERROR_ZREPORT_SPACE_IS_FULL`).
//!   Maxima the box does not report are ASSUMED in `fiscalbox::facts`.

pub mod auto_z;
mod board;

pub use board::{RegisterBoard, board};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// The drive refuses new documents when its oldest unconfirmed one is older.
pub const OFD_BLOCK_AFTER: Duration = Duration::days(30);
/// ЛМ ЧЗ enters `sync_error` this long after its last sync.
pub const MARKING_LOCKOUT_AFTER: Duration = Duration::hours(72);
/// A shift open longer than this blocks sales.
pub const SHIFT_LIMIT: Duration = Duration::hours(24);
/// FN error 0x17 beyond this clock difference.
pub const CLOCK_LIMIT_S: i64 = 5 * 60;

/// FF01 warning flag bits (spec part B; pyshtrih and the FN protocol).
pub mod fn_flags {
    pub const URGENT_REPLACEMENT: u8 = 0x01;
    pub const RESOURCE_30_DAYS: u8 = 0x02;
    pub const ARCHIVE_90_PERCENT: u8 = 0x04;
    pub const OFD_TIMEOUT: u8 = 0x08;
}

/// What can stop the till selling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The fiscal drive's expiry date (FF03).
    FnExpiry,
    /// The 30-day OFD block (FF39).
    OfdBlock,
    /// The marking local module's 72 h lockout (ЛМ ЧЗ `lastSync`).
    MarkingLockout,
    /// The 24 h shift limit (FF40 / 0x11 and the shift's opening time).
    ShiftLimit,
    /// The register's clock against the till's (0x11 date and time).
    ClockSkew,
    /// The till's own clock is not synchronized (systemd-timesyncd / adjtimex).
    TimeSync,
    /// The drive's archive or document resource (FF01 flag b2, FF63).
    FnMemory,
    /// The drive reports OFD answer timeouts (FF01 flag b3).
    OfdTimeout,
    /// The FiscalBox fiscal module's receipt and Z-report counters against
    /// their maxima (`/info/`).
    FiscalboxMemory,
    /// The drive's area of sale notifications for marked goods, waiting to
    /// be uploaded to ОИСМ through the OFD (FF70).
    MarkingNotifications,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::FnExpiry,
        Kind::OfdBlock,
        Kind::MarkingLockout,
        Kind::ShiftLimit,
        Kind::ClockSkew,
        Kind::TimeSync,
        Kind::FnMemory,
        Kind::OfdTimeout,
        Kind::FiscalboxMemory,
        Kind::MarkingNotifications,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FnExpiry => "fn_expiry",
            Kind::OfdBlock => "ofd_block",
            Kind::MarkingLockout => "marking_lockout",
            Kind::ShiftLimit => "shift_limit",
            Kind::ClockSkew => "clock_skew",
            Kind::TimeSync => "time_sync",
            Kind::FnMemory => "fn_memory",
            Kind::OfdTimeout => "ofd_timeout",
            Kind::FiscalboxMemory => "fiscalbox_memory",
            Kind::MarkingNotifications => "marking_notifications",
        }
    }

    /// What a technician or the shop does to prevent it.
    pub fn action(self) -> &'static str {
        match self {
            Kind::FnExpiry => {
                "order a new fiscal drive and have the register re-registered before the date"
            }
            Kind::OfdBlock => {
                "connect the till to the internet so the OFD queue drains (check the OFD settings and contract)"
            }
            Kind::MarkingLockout => {
                "connect the marking local module (ЛМ ЧЗ) to the internet so it syncs"
            }
            Kind::ShiftLimit => "run the Z report (POST /v1/shifts/close) and open a new shift",
            Kind::ClockSkew => {
                "set the register's clock (close the shift first) and keep the till synchronized"
            }
            Kind::TimeSync => "enable time synchronization on the till (timedatectl set-ntp true)",
            Kind::FnMemory => "plan a fiscal drive replacement: its archive is nearly full",
            Kind::OfdTimeout => "check the till's internet link and the OFD settings",
            Kind::FiscalboxMemory => {
                "have the FiscalBox's fiscal module replaced or re-initialized by the service center before it is full"
            }
            Kind::MarkingNotifications => {
                "connect the till to the internet so the drive uploads its marking notifications through the OFD (check the OFD settings)"
            }
        }
    }

    /// Where the reading comes from.
    pub fn source(self) -> &'static str {
        match self {
            Kind::FnExpiry => "register FF03 (expiry date, re-registrations left)",
            Kind::OfdBlock => "register FF39 (unsent count, first unsent document and its date)",
            Kind::MarkingLockout => "marking module GET /api/v1/status (lastSync)",
            Kind::ShiftLimit => "register 0x11 mode and the shift's opening time",
            Kind::ClockSkew => "register 0x11 date and time against the till's clock",
            Kind::TimeSync => "/run/systemd/timesync/synchronized, adjtimex",
            Kind::FnMemory => "register FF01 warning flag b2, FF63 documents left",
            Kind::OfdTimeout => "register FF01 warning flag b3",
            Kind::FiscalboxMemory => {
                "FiscalBox GET /info/ (receipt_count / receipt_max_count, zreport_count / zreport_max_count)"
            }
            Kind::MarkingNotifications => {
                "register FF70 (marking check state, notification area fill, notifications queued)"
            }
        }
    }
}

/// How urgent, in rising order (the order sorts on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warn,
    Critical,
    /// Already biting: the till cannot do what the condition guards.
    Blocking,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warn => "warn",
            Severity::Critical => "critical",
            Severity::Blocking => "blocking",
        }
    }

    /// The `/metrics` gauge value.
    pub fn level(self) -> i64 {
        self as i64
    }
}

/// Everything read from the devices, each `None` when not (yet) known.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Readings {
    /// When the register readings were taken.
    pub taken_at: Option<DateTime<Utc>>,
    /// FF03: the end of the drive's last valid day.
    pub fn_expires_at: Option<DateTime<Utc>>,
    pub reregistrations_left: Option<u8>,
    /// FF01 warning flags ([`fn_flags`]).
    pub fn_warnings: Option<u8>,
    /// FF63: documents the 5-year archive can still take (approximate).
    pub fn_documents_left: Option<u32>,
    /// FF39: documents not confirmed by the OFD.
    pub ofd_unsent: Option<u32>,
    pub ofd_first_unsent: Option<u32>,
    /// FF39: when the oldest unconfirmed document was made.
    pub ofd_oldest_unsent_at: Option<DateTime<Utc>>,
    /// When the open shift was opened; `None` when closed or unknown.
    pub shift_opened_at: Option<DateTime<Utc>>,
    /// Register clock minus till clock, seconds.
    pub register_clock_offset_s: Option<i64>,
    /// The till's clock is synchronized (NTP); `None` when it cannot be told.
    pub time_synced: Option<bool>,
    /// The marking module's last sync.
    pub marking_last_sync: Option<DateTime<Utc>>,
    /// The FiscalBox fiscal module's counters, as its worker last read them.
    pub fiscalbox: Option<BoxCapacity>,
    /// FF70: the drive's marking notifications.
    pub marking_notifications: Option<MarkingNotifications>,
}

/// FF70 as the deadlines see it (`devices::shtrih::command::McStatus`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MarkingNotifications {
    /// The drive reports marking work blocked (check state 0).
    pub blocked: bool,
    /// The area's fill in the drive's steps: 0 under 50 %, 1 50–80 %,
    /// 2 80–90 %, 3 over 90 %.
    pub area_fill: u8,
    /// Notifications not yet uploaded or confirmed.
    pub queued: u16,
}

/// The FiscalBox fiscal module's counters against their maxima (`/info/`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BoxCapacity {
    pub receipts: i64,
    pub receipts_max: i64,
    pub zreports: i64,
    pub zreports_max: i64,
}

/// When a countdown turns warn / critical: time left at or below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Countdown {
    pub warn: Duration,
    pub critical: Duration,
}

/// The thresholds (configurable; `[deadlines]` in fiscald.toml).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub fn_expiry: Countdown,
    pub ofd_block: Countdown,
    pub marking_lockout: Countdown,
    pub shift_limit: Countdown,
    /// Register-vs-till clock difference, seconds, for warn and critical
    /// (blocking beyond [`CLOCK_LIMIT_S`]).
    pub clock_warn_s: i64,
    pub clock_critical_s: i64,
    /// FF63 documents left at or below which the archive warns.
    pub fn_documents_warn: u32,
    /// FiscalBox receipt or Z-report memory used, in percent of the maximum,
    /// at or above which it warns / is critical (blocking when full).
    pub fiscalbox_warn_percent: i64,
    pub fiscalbox_critical_percent: i64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            // The drive's own flags: b1 at 30 days, b0 at 3 days.
            fn_expiry: Countdown {
                warn: Duration::days(30),
                critical: Duration::days(3),
            },
            // Oldest unsent 5 days old: warn; 25 days old: critical.
            ofd_block: Countdown {
                warn: Duration::days(25),
                critical: Duration::days(5),
            },
            // 24 h without a sync: warn; 60 h: critical.
            marking_lockout: Countdown {
                warn: Duration::hours(48),
                critical: Duration::hours(12),
            },
            // Open 20 h: warn; 23 h: critical.
            shift_limit: Countdown {
                warn: Duration::hours(4),
                critical: Duration::hours(1),
            },
            clock_warn_s: 60,
            clock_critical_s: 4 * 60,
            fn_documents_warn: 10_000,
            fiscalbox_warn_percent: 90,
            fiscalbox_critical_percent: 98,
        }
    }
}

/// One deadline as every surface shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub kind: Kind,
    pub severity: Severity,
    /// When it bites (RFC 3339 in JSON); `None` for states, not countdowns.
    pub bites_at: Option<DateTime<Utc>>,
    /// Seconds until it bites (negative once past); `None` for states.
    pub seconds_left: Option<i64>,
    /// What is the case, in words ("the fiscal drive expires in 2 days").
    pub message: String,
    pub action: &'static str,
    pub source: &'static str,
}

impl Condition {
    fn new(
        kind: Kind,
        severity: Severity,
        bites_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        message: String,
    ) -> Condition {
        Condition {
            kind,
            severity,
            bites_at,
            seconds_left: bites_at.map(|t| (t - now).num_seconds()),
            message,
            action: kind.action(),
            source: kind.source(),
        }
    }

    /// One line for a cashier or a log: "critical: … — action".
    pub fn line(&self) -> String {
        format!(
            "{}: {} — {}",
            self.severity.as_str(),
            self.message,
            self.action
        )
    }
}

/// "2 days 3 h", "5 h 20 min", "40 min", "past".
pub fn human(left: Duration) -> String {
    let s = left.num_seconds();
    if s <= 0 {
        return "now".into();
    }
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    match (d, h) {
        (0, 0) => format!("{} min", m.max(1)),
        (0, _) => format!("{h} h {m} min"),
        (_, 0) => format!("{d} day{}", if d == 1 { "" } else { "s" }),
        _ => format!("{d} day{} {h} h", if d == 1 { "" } else { "s" }),
    }
}

fn countdown(left: Duration, c: Countdown) -> Severity {
    if left <= Duration::zero() {
        Severity::Blocking
    } else if left <= c.critical {
        Severity::Critical
    } else if left <= c.warn {
        Severity::Warn
    } else {
        Severity::Ok
    }
}

/// Readings + now → every condition that can be told, most urgent first
/// (severity, then the soonest). Conditions at `ok` are included so the page
/// can show the countdown; [`warnings`] keeps only the ones to act on.
pub fn evaluate(r: &Readings, t: &Thresholds, now: DateTime<Utc>) -> Vec<Condition> {
    let mut out = Vec::new();
    if let Some(at) = r.fn_expires_at {
        let left = at - now;
        let mut sev = countdown(left, t.fn_expiry);
        // The drive's own flags win over a date read wrongly.
        let flags = r.fn_warnings.unwrap_or(0);
        if flags & fn_flags::URGENT_REPLACEMENT != 0 {
            sev = sev.max(Severity::Critical);
        } else if flags & fn_flags::RESOURCE_30_DAYS != 0 {
            sev = sev.max(Severity::Warn);
        }
        let rereg = r
            .reregistrations_left
            .map(|n| format!(" ({n} re-registrations left)"))
            .unwrap_or_default();
        let message = if left > Duration::zero() {
            format!("the fiscal drive expires in {}{rereg}", human(left))
        } else {
            format!("the fiscal drive has expired{rereg}")
        };
        out.push(Condition::new(Kind::FnExpiry, sev, Some(at), now, message));
    }
    if let Some(oldest) = r.ofd_oldest_unsent_at
        && r.ofd_unsent.unwrap_or(1) > 0
    {
        let at = oldest + OFD_BLOCK_AFTER;
        let left = at - now;
        let sev = countdown(left, t.ofd_block);
        let age = now - oldest;
        let n = r.ofd_unsent.map(|n| format!("{n} ")).unwrap_or_default();
        let message = if left > Duration::zero() {
            format!(
                "{n}document(s) not confirmed by the OFD, the oldest {} old: the drive blocks receipts in {}",
                human(age),
                human(left)
            )
        } else {
            format!(
                "the drive blocks receipts: the oldest document not confirmed by the OFD is {} old (over 30 days)",
                human(age)
            )
        };
        out.push(Condition::new(Kind::OfdBlock, sev, Some(at), now, message));
    }
    if let Some(last) = r.marking_last_sync {
        let at = last + MARKING_LOCKOUT_AFTER;
        let left = at - now;
        let sev = countdown(left, t.marking_lockout);
        let message = if left > Duration::zero() {
            format!(
                "the marking module last synced {} ago: it stops checking codes in {}",
                human(now - last),
                human(left)
            )
        } else {
            format!(
                "the marking module has not synced for {}: it refuses code checks",
                human(now - last)
            )
        };
        out.push(Condition::new(
            Kind::MarkingLockout,
            sev,
            Some(at),
            now,
            message,
        ));
    }
    if let Some(opened) = r.shift_opened_at {
        let at = opened + SHIFT_LIMIT;
        let left = at - now;
        let sev = countdown(left, t.shift_limit);
        let message = if left > Duration::zero() {
            format!(
                "the shift has been open {}: sales stop in {} unless it is closed",
                human(now - opened),
                human(left)
            )
        } else {
            format!(
                "the shift has been open {} (over 24 h): sales are blocked until the Z report",
                human(now - opened)
            )
        };
        out.push(Condition::new(
            Kind::ShiftLimit,
            sev,
            Some(at),
            now,
            message,
        ));
    }
    if let Some(off) = r.register_clock_offset_s {
        let a = off.abs();
        let sev = if a > CLOCK_LIMIT_S {
            Severity::Blocking
        } else if a >= t.clock_critical_s {
            Severity::Critical
        } else if a >= t.clock_warn_s {
            Severity::Warn
        } else {
            Severity::Ok
        };
        let message = format!(
            "the register's clock is {a} s {} the till's",
            if off >= 0 { "ahead of" } else { "behind" }
        );
        out.push(Condition::new(Kind::ClockSkew, sev, None, now, message));
    }
    if let Some(synced) = r.time_synced {
        let (sev, message) = if synced {
            (Severity::Ok, "the till's clock is synchronized".to_string())
        } else {
            (
                Severity::Warn,
                "the till's clock is not synchronized (NTP)".to_string(),
            )
        };
        out.push(Condition::new(Kind::TimeSync, sev, None, now, message));
    }
    let flags = r.fn_warnings.unwrap_or(0);
    let low_docs = r.fn_documents_left.filter(|&n| n <= t.fn_documents_warn);
    if flags & fn_flags::ARCHIVE_90_PERCENT != 0
        || low_docs.is_some()
        || r.fn_documents_left.is_some()
    {
        let warn = flags & fn_flags::ARCHIVE_90_PERCENT != 0 || low_docs.is_some();
        let message = match (r.fn_documents_left, warn) {
            (Some(n), true) => {
                format!("the fiscal drive's archive is nearly full ({n} documents left)")
            }
            (None, _) => "the fiscal drive's archive is 90 % full".to_string(),
            (Some(n), false) => format!("the fiscal drive's archive can take {n} more documents"),
        };
        let sev = if warn { Severity::Warn } else { Severity::Ok };
        out.push(Condition::new(Kind::FnMemory, sev, None, now, message));
    }
    if flags & fn_flags::OFD_TIMEOUT != 0 {
        out.push(Condition::new(
            Kind::OfdTimeout,
            Severity::Warn,
            None,
            now,
            "the fiscal drive reports OFD answer timeouts".into(),
        ));
    }
    if let Some(b) = r.fiscalbox {
        out.push(fiscalbox_memory(b, t, now));
    }
    if let Some(m) = r.marking_notifications {
        out.push(marking_notifications(m, now));
    }
    sort(&mut out);
    out
}

/// The marking notification area (FF70): the drive's own fill steps decide.
/// Over 90 % is critical (the spec note's "> 90 % full = warn" is the
/// latest a technician should hear of it), 80–90 % warns, and a drive that
/// reports marking work blocked cannot sell marked goods.
fn marking_notifications(m: MarkingNotifications, now: DateTime<Utc>) -> Condition {
    let fill = match m.area_fill {
        0 => "under 50 %",
        1 => "50–80 %",
        2 => "80–90 %",
        _ => "over 90 %",
    };
    let (sev, message) = if m.blocked {
        (
            Severity::Blocking,
            format!(
                "the fiscal drive has blocked marked sales: {} notifications wait to be uploaded (area {fill} full)",
                m.queued
            ),
        )
    } else {
        let sev = match m.area_fill {
            0 | 1 => Severity::Ok,
            2 => Severity::Warn,
            _ => Severity::Critical,
        };
        (
            sev,
            format!(
                "{} marking notifications wait to be uploaded; the drive's area is {fill} full",
                m.queued
            ),
        )
    };
    Condition::new(Kind::MarkingNotifications, sev, None, now, message)
}

/// The FiscalBox memory condition: the fuller of its two counters decides.
fn fiscalbox_memory(b: BoxCapacity, t: &Thresholds, now: DateTime<Utc>) -> Condition {
    let level = |used: i64, max: i64| {
        if max <= 0 {
            Severity::Ok
        } else if used >= max {
            Severity::Blocking
        } else if used * 100 >= max * t.fiscalbox_critical_percent {
            Severity::Critical
        } else if used * 100 >= max * t.fiscalbox_warn_percent {
            Severity::Warn
        } else {
            Severity::Ok
        }
    };
    let sev = level(b.receipts, b.receipts_max).max(level(b.zreports, b.zreports_max));
    let message = format!(
        "the FiscalBox fiscal module holds {} of {} receipts ({} left) and {} of {} Z reports ({} left){}",
        b.receipts,
        b.receipts_max,
        (b.receipts_max - b.receipts).max(0),
        b.zreports,
        b.zreports_max,
        (b.zreports_max - b.zreports).max(0),
        if sev == Severity::Blocking {
            ": it is full and refuses new documents"
        } else {
            ""
        }
    );
    Condition::new(Kind::FiscalboxMemory, sev, None, now, message)
}

/// Most urgent first: severity, then the soonest deadline, then the kind.
pub fn sort(c: &mut [Condition]) {
    c.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(
                a.seconds_left
                    .unwrap_or(i64::MAX)
                    .cmp(&b.seconds_left.unwrap_or(i64::MAX)),
            )
            .then(a.kind.cmp(&b.kind))
    });
}

/// The conditions a cashier or technician must act on (warn and above).
pub fn warnings(c: &[Condition]) -> Vec<&Condition> {
    c.iter().filter(|c| c.severity >= Severity::Warn).collect()
}

/// Remembers each kind's last severity so a warning is logged once per
/// threshold crossing, not on every poll.
#[derive(Debug, Default)]
pub struct Crossings {
    last: HashMap<Kind, Severity>,
}

impl Crossings {
    /// The conditions whose severity changed since the last call (rising to
    /// warn or above, or falling back), updating the memory. A kind that
    /// disappeared counts as back to ok.
    pub fn update<'a>(&mut self, now: &'a [Condition]) -> Vec<&'a Condition> {
        let mut changed = Vec::new();
        for c in now {
            let before = self.last.insert(c.kind, c.severity).unwrap_or(Severity::Ok);
            if before != c.severity {
                changed.push(c);
            }
        }
        self.last.retain(|k, _| now.iter().any(|c| c.kind == *k));
        changed
    }
}

#[cfg(test)]
mod tests;

/// Whether the till's clock is synchronized: systemd-timesyncd's flag file
/// when timesyncd runs (`/run/systemd/timesync/synchronized`, created on
/// the first sync), else the kernel's `adjtimex` state (TIME_ERROR = not
/// synchronized). Local reads only, no waiting.
pub fn time_synced() -> Option<bool> {
    let dir = std::path::Path::new("/run/systemd/timesync");
    if dir.is_dir() {
        return Some(dir.join("synchronized").exists());
    }
    let mut tx = nix::libc::timex {
        modes: 0,
        ..unsafe_zeroed_timex()
    };
    // SAFETY: adjtimex with modes = 0 only reads the kernel's clock state
    // into a struct we own.
    let state = unsafe { nix::libc::adjtimex(&mut tx) };
    match state {
        -1 => None,
        nix::libc::TIME_ERROR => Some(false),
        _ => Some(true),
    }
}

fn unsafe_zeroed_timex() -> nix::libc::timex {
    // SAFETY: timex is a plain C struct of integers; all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// Where the daemon's surfaces take the deadlines from: the register's
/// readings on the [`board`] and the configured thresholds.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub register: Option<std::path::PathBuf>,
    pub thresholds: Thresholds,
    /// The marking local module's last sync, as its status poller last read it.
    pub marking_last_sync: Option<std::sync::Arc<std::sync::Mutex<Option<DateTime<Utc>>>>>,
    /// The FiscalBox's memory counters, as its worker last read them.
    pub fiscalbox: Option<std::sync::Arc<std::sync::Mutex<Option<BoxCapacity>>>>,
}

impl Source {
    /// The conditions now (none before the first reading).
    pub fn conditions(&self, now: DateTime<Utc>) -> Vec<Condition> {
        let readings = self
            .register
            .as_ref()
            .and_then(|p| board().get(p))
            .unwrap_or_default();
        let readings = Readings {
            marking_last_sync: self
                .marking_last_sync
                .as_ref()
                .and_then(|m| *m.lock().expect("marking reading")),
            fiscalbox: self
                .fiscalbox
                .as_ref()
                .and_then(|m| *m.lock().expect("fiscalbox reading")),
            ..readings
        };
        evaluate(&readings, &self.thresholds, now)
    }

    /// One line per condition at warn or above, for receipt replies.
    pub fn warning_lines(&self, now: DateTime<Utc>) -> Vec<String> {
        warnings(&self.conditions(now))
            .into_iter()
            .map(Condition::line)
            .collect()
    }
}
