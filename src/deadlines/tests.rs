//! Every threshold, with a manual clock.

use super::*;
use crate::clock::{Clock, ManualClock};
use chrono::TimeZone;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

fn one(r: &Readings, now: DateTime<Utc>, kind: Kind) -> Condition {
    evaluate(r, &Thresholds::default(), now)
        .into_iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} condition"))
}

/// Walks `now` towards `deadline` and checks the severity at each side of
/// every threshold.
fn walk(kind: Kind, r: &Readings, deadline: DateTime<Utc>, c: Countdown) {
    let clock = ManualClock::new(deadline - c.warn - Duration::seconds(1));
    let sev = |clock: &ManualClock| one(r, clock.now(), kind).severity;
    assert_eq!(sev(&clock), Severity::Ok, "{kind:?} just before warn");
    clock.advance(Duration::seconds(1));
    assert_eq!(sev(&clock), Severity::Warn, "{kind:?} at warn");
    clock.set(deadline - c.critical - Duration::seconds(1));
    assert_eq!(sev(&clock), Severity::Warn, "{kind:?} just before critical");
    clock.advance(Duration::seconds(1));
    assert_eq!(sev(&clock), Severity::Critical, "{kind:?} at critical");
    clock.set(deadline - Duration::seconds(1));
    assert_eq!(sev(&clock), Severity::Critical, "{kind:?} a second before");
    assert_eq!(one(r, clock.now(), kind).seconds_left, Some(1));
    clock.advance(Duration::seconds(1));
    assert_eq!(sev(&clock), Severity::Blocking, "{kind:?} at the deadline");
    assert_eq!(one(r, clock.now(), kind).bites_at, Some(deadline));
}

#[test]
fn fn_expiry_thresholds() {
    let expires = t0() + Duration::days(100);
    let r = Readings {
        fn_expires_at: Some(expires),
        reregistrations_left: Some(11),
        fn_warnings: Some(0),
        ..Readings::default()
    };
    walk(Kind::FnExpiry, &r, expires, Thresholds::default().fn_expiry);
    let c = one(&r, expires - Duration::days(2), Kind::FnExpiry);
    assert_eq!(c.seconds_left, Some(2 * 86_400));
    assert_eq!(c.severity, Severity::Critical);
    assert!(c.message.contains("expires in 2 days"), "{}", c.message);
    assert!(c.message.contains("11 re-registrations left"));
    assert!(c.action.contains("order a new fiscal drive"));
}

#[test]
fn fn_flags_raise_expiry_severity() {
    let expires = t0() + Duration::days(100);
    let mut r = Readings {
        fn_expires_at: Some(expires),
        fn_warnings: Some(fn_flags::RESOURCE_30_DAYS),
        ..Readings::default()
    };
    assert_eq!(one(&r, t0(), Kind::FnExpiry).severity, Severity::Warn);
    r.fn_warnings = Some(fn_flags::URGENT_REPLACEMENT);
    assert_eq!(one(&r, t0(), Kind::FnExpiry).severity, Severity::Critical);
}

#[test]
fn ofd_block_thresholds() {
    let oldest = t0();
    let r = Readings {
        ofd_unsent: Some(3),
        ofd_first_unsent: Some(41),
        ofd_oldest_unsent_at: Some(oldest),
        ..Readings::default()
    };
    let deadline = oldest + Duration::days(30);
    walk(
        Kind::OfdBlock,
        &r,
        deadline,
        Thresholds::default().ofd_block,
    );
    let c = one(&r, oldest + Duration::days(28), Kind::OfdBlock);
    assert_eq!(c.seconds_left, Some(2 * 86_400));
    assert_eq!(c.severity, Severity::Critical);
    assert!(
        c.message.contains("the oldest 28 days old"),
        "{}",
        c.message
    );
    assert!(c.action.contains("internet so the OFD queue drains"));
    // Nothing unsent: no condition, whatever the old date says.
    let drained = Readings {
        ofd_unsent: Some(0),
        ..r
    };
    assert!(
        evaluate(&drained, &Thresholds::default(), deadline)
            .iter()
            .all(|c| c.kind != Kind::OfdBlock)
    );
}

#[test]
fn marking_lockout_thresholds() {
    let last = t0();
    let r = Readings {
        marking_last_sync: Some(last),
        ..Readings::default()
    };
    walk(
        Kind::MarkingLockout,
        &r,
        last + Duration::hours(72),
        Thresholds::default().marking_lockout,
    );
    let c = one(&r, last + Duration::hours(70), Kind::MarkingLockout);
    assert_eq!(c.seconds_left, Some(2 * 3_600));
    assert_eq!(c.severity, Severity::Critical);
}

#[test]
fn shift_limit_thresholds() {
    let opened = t0();
    let r = Readings {
        shift_opened_at: Some(opened),
        ..Readings::default()
    };
    walk(
        Kind::ShiftLimit,
        &r,
        opened + Duration::hours(24),
        Thresholds::default().shift_limit,
    );
    let c = one(&r, opened + Duration::hours(23), Kind::ShiftLimit);
    assert_eq!(c.seconds_left, Some(3_600));
    assert_eq!(c.severity, Severity::Critical);
    assert!(c.action.contains("Z report"));
}

#[test]
fn clock_thresholds_both_directions() {
    let t = Thresholds::default();
    for sign in [1, -1] {
        let at = |s: i64| {
            one(
                &Readings {
                    register_clock_offset_s: Some(sign * s),
                    ..Readings::default()
                },
                t0(),
                Kind::ClockSkew,
            )
            .severity
        };
        assert_eq!(at(t.clock_warn_s - 1), Severity::Ok);
        assert_eq!(at(t.clock_warn_s), Severity::Warn);
        assert_eq!(at(t.clock_critical_s - 1), Severity::Warn);
        assert_eq!(at(t.clock_critical_s), Severity::Critical);
        assert_eq!(at(CLOCK_LIMIT_S), Severity::Critical);
        assert_eq!(at(CLOCK_LIMIT_S + 1), Severity::Blocking);
    }
}

#[test]
fn time_sync_memory_and_ofd_timeout() {
    let r = Readings {
        time_synced: Some(false),
        fn_warnings: Some(fn_flags::OFD_TIMEOUT),
        fn_documents_left: Some(250_000),
        ..Readings::default()
    };
    let c = evaluate(&r, &Thresholds::default(), t0());
    let sev = |k: Kind| c.iter().find(|c| c.kind == k).map(|c| c.severity);
    assert_eq!(sev(Kind::TimeSync), Some(Severity::Warn));
    assert_eq!(sev(Kind::OfdTimeout), Some(Severity::Warn));
    assert_eq!(sev(Kind::FnMemory), Some(Severity::Ok));
    let full = Readings {
        fn_documents_left: Some(Thresholds::default().fn_documents_warn),
        time_synced: Some(true),
        ..Readings::default()
    };
    let c = evaluate(&full, &Thresholds::default(), t0());
    assert_eq!(
        c.iter()
            .find(|c| c.kind == Kind::FnMemory)
            .map(|c| c.severity),
        Some(Severity::Warn)
    );
    assert_eq!(
        c.iter()
            .find(|c| c.kind == Kind::TimeSync)
            .map(|c| c.severity),
        Some(Severity::Ok)
    );
}

#[test]
fn configured_thresholds_are_used() {
    let t = Thresholds {
        shift_limit: Countdown {
            warn: Duration::hours(8),
            critical: Duration::hours(2),
        },
        ..Thresholds::default()
    };
    let r = Readings {
        shift_opened_at: Some(t0()),
        ..Readings::default()
    };
    let sev = |h: i64| evaluate(&r, &t, t0() + Duration::hours(h))[0].severity;
    assert_eq!(sev(15), Severity::Ok);
    assert_eq!(sev(16), Severity::Warn);
    assert_eq!(sev(22), Severity::Critical);
}

#[test]
fn most_urgent_first() {
    let now = t0();
    let r = Readings {
        fn_expires_at: Some(now + Duration::days(2)),
        ofd_unsent: Some(1),
        ofd_oldest_unsent_at: Some(now - Duration::days(28)),
        marking_last_sync: Some(now - Duration::hours(70)),
        shift_opened_at: Some(now - Duration::hours(23)),
        register_clock_offset_s: Some(400),
        time_synced: Some(true),
        ..Readings::default()
    };
    let kinds: Vec<Kind> = evaluate(&r, &Thresholds::default(), now)
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            Kind::ClockSkew,
            Kind::ShiftLimit,
            Kind::MarkingLockout,
            Kind::FnExpiry,
            Kind::OfdBlock,
            Kind::TimeSync,
        ]
    );
    let all = evaluate(&r, &Thresholds::default(), now);
    assert_eq!(warnings(&all).len(), 5);
}

#[test]
fn crossings_log_once_per_threshold() {
    let clock = ManualClock::new(t0());
    let r = Readings {
        shift_opened_at: Some(t0()),
        ..Readings::default()
    };
    let mut x = Crossings::default();
    let t = Thresholds::default();
    let mut logged = Vec::new();
    // Poll every 10 minutes for 26 hours.
    for _ in 0..(26 * 6) {
        let c = evaluate(&r, &t, clock.now());
        for c in x.update(&c) {
            logged.push(c.severity);
        }
        clock.advance(Duration::minutes(10));
    }
    assert_eq!(
        logged,
        [Severity::Warn, Severity::Critical, Severity::Blocking]
    );
    // The Z report: the condition disappears, and a new shift starts fresh.
    assert!(x.update(&[]).is_empty());
    let c = evaluate(&r, &t, t0() + Duration::hours(21));
    assert_eq!(x.update(&c).len(), 1);
}

#[test]
fn human_durations() {
    assert_eq!(human(Duration::days(2)), "2 days");
    assert_eq!(human(Duration::days(1) + Duration::hours(3)), "1 day 3 h");
    assert_eq!(human(Duration::minutes(90)), "1 h 30 min");
    assert_eq!(human(Duration::seconds(20)), "1 min");
    assert_eq!(human(Duration::zero()), "now");
}

#[test]
fn fiscalbox_memory_thresholds() {
    let r = |receipts: i64, zreports: i64| Readings {
        fiscalbox: Some(BoxCapacity {
            receipts,
            receipts_max: 1_000,
            zreports,
            zreports_max: 100,
        }),
        ..Readings::default()
    };
    let sev = |receipts, zreports| one(&r(receipts, zreports), t0(), Kind::FiscalboxMemory);
    // Receipts: warn at 90 %, critical at 98 %, blocking when full.
    assert_eq!(sev(899, 0).severity, Severity::Ok);
    assert_eq!(sev(900, 0).severity, Severity::Warn);
    assert_eq!(sev(979, 0).severity, Severity::Warn);
    assert_eq!(sev(980, 0).severity, Severity::Critical);
    assert_eq!(sev(999, 0).severity, Severity::Critical);
    assert_eq!(sev(1_000, 0).severity, Severity::Blocking);
    // Z reports the same; the fuller counter decides.
    assert_eq!(sev(0, 89).severity, Severity::Ok);
    assert_eq!(sev(0, 90).severity, Severity::Warn);
    assert_eq!(sev(0, 98).severity, Severity::Critical);
    assert_eq!(sev(900, 100).severity, Severity::Blocking);
    let c = sev(980, 12);
    assert_eq!(
        c.message,
        "the FiscalBox fiscal module holds 980 of 1000 receipts (20 left) and 12 of 100 Z reports (88 left)"
    );
    assert_eq!((c.bites_at, c.seconds_left), (None, None));
    assert!(sev(1_000, 0).message.ends_with("refuses new documents"));
    // A maximum of 0 (unknown) never warns by itself.
    let unknown = Readings {
        fiscalbox: Some(BoxCapacity {
            receipts: 5,
            ..BoxCapacity::default()
        }),
        ..Readings::default()
    };
    assert_eq!(
        one(&unknown, t0(), Kind::FiscalboxMemory).severity,
        Severity::Ok
    );
    // Configured percentages are used.
    let t = Thresholds {
        fiscalbox_warn_percent: 50,
        ..Thresholds::default()
    };
    assert_eq!(evaluate(&r(500, 0), &t, t0())[0].severity, Severity::Warn);
}

#[test]
fn fiscalbox_info_maxima_fall_back_to_the_assumed_ones() {
    use crate::fiscalbox::facts::{self, Info};
    let info = Info {
        receipt_count: 7,
        receipt_max_count: 0,
        zreport_count: 2,
        zreport_max_count: 500,
        ..Info::default()
    };
    assert_eq!(
        info.capacity(),
        BoxCapacity {
            receipts: 7,
            receipts_max: facts::ASSUMED_RECEIPT_MAX_COUNT,
            zreports: 2,
            zreports_max: 500,
        }
    );
}

/// FF70: the drive's own fill steps decide; a blocked drive is blocking.
#[test]
fn marking_notification_area_steps() {
    let sev = |area_fill, blocked| {
        let r = Readings {
            marking_notifications: Some(MarkingNotifications {
                blocked,
                area_fill,
                queued: 7,
            }),
            ..Readings::default()
        };
        one(&r, t0(), Kind::MarkingNotifications).severity
    };
    assert_eq!(sev(0, false), Severity::Ok);
    assert_eq!(sev(1, false), Severity::Ok);
    assert_eq!(sev(2, false), Severity::Warn);
    assert_eq!(sev(3, false), Severity::Critical);
    assert_eq!(sev(3, true), Severity::Blocking);
    // Not read (a drive without FF70): no condition at all.
    assert!(
        evaluate(&Readings::default(), &Thresholds::default(), t0())
            .iter()
            .all(|c| c.kind != Kind::MarkingNotifications)
    );
}
