//! The automatic Z report (optional, `[deadlines] auto_z_at`): at the
//! configured local time, close a shift that would otherwise pass 24 h —
//! only when nothing waits for the register, and never twice a day. Pure:
//! the shell in `daemon` feeds it what it reads and runs the Z report.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

/// What the shell knows at one tick, all in the till's local time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub now: NaiveDateTime,
    pub at: NaiveTime,
    /// How long after `at` it may still run (postponed by waiting receipts).
    pub window: Duration,
    pub shift_open: bool,
    pub shift_number: u32,
    /// When the open shift was opened (`None`: not known yet).
    pub shift_opened: Option<NaiveDateTime>,
    /// Register jobs (receipts, reports) waiting.
    pub pending_register_jobs: u64,
    /// The day an automatic Z report last ran.
    pub last_run: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Run,
    /// Due, but not safe now; asked again at the next tick.
    Postpone(&'static str),
    /// Not due.
    Idle,
}

pub fn decide(i: &Input) -> Decision {
    let today_at = i.now.date().and_time(i.at);
    if i.now < today_at || i.now >= today_at + i.window {
        return Decision::Idle;
    }
    if i.last_run == Some(i.now.date()) || !i.shift_open {
        return Decision::Idle;
    }
    // A shift opened after today's time is not closed until tomorrow's,
    // well inside 24 h; one of unknown age is left alone.
    match i.shift_opened {
        Some(opened) if opened < today_at => {}
        _ => return Decision::Idle,
    }
    if i.pending_register_jobs > 0 {
        return Decision::Postpone("receipts are waiting for the register");
    }
    Decision::Run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use chrono::{TimeZone, Utc};

    #[test]
    fn runs_at_the_time_only_when_safe_and_never_twice() {
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 10, 2, 59, 0).unwrap());
        let at = NaiveTime::from_hms_opt(3, 0, 0).unwrap();
        let opened = NaiveDate::from_ymd_opt(2026, 3, 9)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap();
        let mut input = Input {
            now: clock.now().naive_utc(),
            at,
            window: Duration::hours(1),
            shift_open: true,
            shift_number: 7,
            shift_opened: Some(opened),
            pending_register_jobs: 0,
            last_run: None,
        };
        let at_now = |clock: &ManualClock, i: &mut Input| {
            i.now = clock.now().naive_utc();
            decide(i)
        };
        assert_eq!(
            at_now(&clock, &mut input),
            Decision::Idle,
            "before the time"
        );
        clock.advance(Duration::minutes(1));
        input.pending_register_jobs = 2;
        assert_eq!(
            at_now(&clock, &mut input),
            Decision::Postpone("receipts are waiting for the register")
        );
        clock.advance(Duration::minutes(5));
        input.pending_register_jobs = 0;
        assert_eq!(at_now(&clock, &mut input), Decision::Run);
        // Ran: the shift is closed, and the day is marked.
        input.last_run = Some(clock.now().date_naive());
        assert_eq!(at_now(&clock, &mut input), Decision::Idle);
        // A new shift opened right after (a sale) is not closed again today.
        input.shift_number = 8;
        input.shift_opened = Some(clock.now().naive_utc());
        input.last_run = None;
        assert_eq!(at_now(&clock, &mut input), Decision::Idle);
        // Past the window nothing runs, even for an old shift.
        input.shift_opened = Some(opened);
        clock.advance(Duration::hours(1));
        assert_eq!(at_now(&clock, &mut input), Decision::Idle);
        // Closed shift, unknown age: nothing.
        clock.set(Utc.with_ymd_and_hms(2026, 3, 11, 3, 10, 0).unwrap());
        input.shift_open = false;
        assert_eq!(at_now(&clock, &mut input), Decision::Idle);
        input.shift_open = true;
        input.shift_opened = None;
        assert_eq!(at_now(&clock, &mut input), Decision::Idle);
        input.shift_opened = Some(opened);
        assert_eq!(at_now(&clock, &mut input), Decision::Run);
    }
}
