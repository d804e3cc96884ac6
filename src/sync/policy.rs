//! The retry policy, pure: what to do after a failed call to the processing,
//! and when. No I/O and no clock or randomness of its own — the caller passes
//! the attempt count and a jitter value in `[0, 1)`, so tests pin every case.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// How a call to the processing failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The processing could not be reached at all (refused, no route, DNS).
    Connect(String),
    /// No (complete) reply within the time limit.
    Timeout(String),
    /// The connection broke mid-call (reset, truncated reply): the server may
    /// have committed — the case idempotency keys exist for.
    Transport(String),
    /// An HTTP reply with a failing status.
    Status {
        code: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    /// A reply we could not read.
    Protocol(String),
}

impl Failure {
    /// Whether the failure says the processing is unreachable (offline).
    pub fn is_offline(&self) -> bool {
        matches!(self, Failure::Connect(_))
    }

    /// One line for `last_error` and logs. Never contains a token.
    pub fn describe(&self) -> String {
        match self {
            Failure::Connect(m) => format!("processing unreachable: {m}"),
            Failure::Timeout(m) => format!("timed out: {m}"),
            Failure::Transport(m) => format!("connection broken: {m}"),
            Failure::Status { code, message, .. } => format!("HTTP {code}: {message}"),
            Failure::Protocol(m) => format!("unreadable reply: {m}"),
        }
    }
}

/// What to do about a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this long. Transient failures are retried without end:
    /// a receipt is never dropped.
    Retry { after: Duration },
    /// Get a fresh token, then try again at once.
    Reauthenticate,
    /// The processing refuses the receipt itself: an operator must look.
    Reject(String),
    /// The processing holds a different receipt under this idempotency key.
    Conflict(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay between attempts.
    pub cap: Duration,
    /// Longest `Retry-After` honoured (a longer one is capped to this).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// Exponential back-off with "equal jitter": after the `attempts`-th
    /// failure (1-based), half of `min(cap, base × 2^(attempts−1))` plus a
    /// jittered other half. Jitter spreads a fleet of tills that all lost
    /// their link at the same moment.
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exp.min(20)).min(self.cap);
        let jitter = jitter.clamp(0.0, 1.0);
        full / 2 + full.mul_f64(jitter / 2.0)
    }

    pub fn decide(&self, failure: &Failure, attempts: u32, jitter: f64) -> Decision {
        let backoff = || Decision::Retry {
            after: self.backoff(attempts, jitter),
        };
        match failure {
            Failure::Connect(_)
            | Failure::Timeout(_)
            | Failure::Transport(_)
            | Failure::Protocol(_) => backoff(),
            Failure::Status {
                code,
                retry_after,
                message,
            } => match code {
                401 => Decision::Reauthenticate,
                400 | 422 => Decision::Reject(message.clone()),
                409 => Decision::Conflict(message.clone()),
                429 | 503 => match retry_after {
                    Some(after) => Decision::Retry {
                        after: (*after).min(self.max_retry_after),
                    },
                    None => backoff(),
                },
                // 5xx, and statuses that mean our setup is wrong (403, 404):
                // keep the receipt and keep trying; last_error shows why.
                _ => backoff(),
            },
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// Online or offline, derived from what calls return: a connect failure means
/// offline; any HTTP reply at all means online.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Connectivity {
    pub online: bool,
    pub since: DateTime<Utc>,
    pub last_error: Option<String>,
}

impl Connectivity {
    pub fn new(now: DateTime<Utc>) -> Self {
        Connectivity {
            online: true,
            since: now,
            last_error: None,
        }
    }

    /// Returns true when this changed the state.
    pub fn reached(&mut self, now: DateTime<Utc>) -> bool {
        let changed = !self.online;
        if changed {
            self.online = true;
            self.since = now;
        }
        changed
    }

    /// Returns true when this changed the state.
    pub fn failed(&mut self, failure: &Failure, now: DateTime<Utc>) -> bool {
        self.last_error = Some(failure.describe());
        if failure.is_offline() && self.online {
            self.online = false;
            self.since = now;
            return true;
        }
        if !failure.is_offline() {
            return self.reached(now);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn status(code: u16, retry_after: Option<u64>) -> Failure {
        Failure::Status {
            code,
            retry_after: retry_after.map(Duration::from_secs),
            message: format!("status {code}"),
        }
    }

    #[test]
    fn backoff_grows_exponentially_to_the_cap_with_bounded_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(2, 0.0), Duration::from_secs(1));
        assert_eq!(p.backoff(4, 1.0), Duration::from_secs(8));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(300));
        assert_eq!(p.backoff(u32::MAX, 0.0), Duration::from_secs(150));
        for attempts in 1..40 {
            for j in [0.0, 0.3, 0.999] {
                let d = p.backoff(attempts, j);
                assert!(d <= p.cap && d >= p.base / 2, "{attempts} {j} {d:?}");
            }
        }
    }

    #[test]
    fn every_failure_kind_has_its_decision() {
        let p = RetryPolicy::default();
        let retry = Decision::Retry {
            after: Duration::from_millis(500),
        };
        assert_eq!(p.decide(&Failure::Connect("refused".into()), 1, 0.0), retry);
        assert_eq!(p.decide(&Failure::Timeout("30s".into()), 1, 0.0), retry);
        assert_eq!(p.decide(&Failure::Transport("reset".into()), 1, 0.0), retry);
        assert_eq!(
            p.decide(&Failure::Protocol("garbage".into()), 1, 0.0),
            retry
        );
        assert_eq!(p.decide(&status(500, None), 1, 0.0), retry);
        assert_eq!(p.decide(&status(502, None), 1, 0.0), retry);
        assert_eq!(p.decide(&status(404, None), 1, 0.0), retry);
        assert_eq!(
            p.decide(&status(401, None), 1, 0.0),
            Decision::Reauthenticate
        );
        assert_eq!(
            p.decide(&status(400, None), 1, 0.0),
            Decision::Reject("status 400".into())
        );
        assert_eq!(
            p.decide(&status(422, None), 1, 0.0),
            Decision::Reject("status 422".into())
        );
        assert_eq!(
            p.decide(&status(409, None), 1, 0.0),
            Decision::Conflict("status 409".into())
        );
        assert_eq!(
            p.decide(&status(429, Some(7)), 1, 0.0),
            Decision::Retry {
                after: Duration::from_secs(7)
            }
        );
        assert_eq!(
            p.decide(&status(503, Some(100_000)), 1, 0.0),
            Decision::Retry {
                after: Duration::from_secs(3600)
            }
        );
        assert_eq!(
            p.decide(&status(429, None), 3, 0.0),
            Decision::Retry {
                after: Duration::from_secs(2)
            }
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn connectivity_follows_results() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let mut c = Connectivity::new(t0);
        assert!(
            !c.failed(&status(500, None), t0),
            "an HTTP reply means the link is up"
        );
        assert!(c.online);
        assert!(c.failed(&Failure::Connect("refused".into()), t0));
        assert!(!c.online);
        assert!(!c.failed(&Failure::Connect("refused".into()), t0));
        assert!(c.reached(t0));
        assert!(c.online);
    }
}
