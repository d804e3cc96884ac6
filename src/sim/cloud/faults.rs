//! Fault injection for the processing simulator: the knobs ([`Knobs`]) and
//! the seeded decision of what happens to each request ([`Faults`]).
//!
//! No I/O and no clock: the shell passes a monotonic instant in and performs
//! the decision (sleeps, error replies, a severed connection). The random
//! draws come from a seeded `StdRng`, so the same seed and the same request
//! sequence inject the same faults.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How long a "timed out" request is held before its 503, unless set.
pub const DEFAULT_HANG_MS: u64 = 30_000;

/// The simulator's knobs. Every field is optional: a `Knobs` is a patch, and
/// setting knobs merges the fields that are present over the ones in force
/// (`POST /sim/knobs {"failure_rate": 0.1}` changes the failure rate only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Added to every request, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// 0..1: reply 500 or 503 without doing anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    /// 0..1: hold the request `hang_ms`, then reply 503 without doing anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hang_ms: Option<u64>,
    /// 0..1: register the receipt, then drop the connection with no reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_after_commit_rate: Option<f64>,
    /// Requests per second served; above it 429 with `Retry-After: 1`. 0 = off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_s: Option<u32>,
    /// Access token lifetime for tokens issued from now on, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_lifetime_s: Option<u64>,
    /// How long documents registered from now on stay `PROCESSING`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_delay_ms: Option<u64>,
    /// Receipts with an item name containing this are rejected; `""` = off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_marker: Option<String>,
    /// Reseeds the fault generator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A knob value out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KnobsError {
    #[error("{name} must be a probability between 0 and 1, not {value}")]
    Rate { name: &'static str, value: f64 },
}

impl Knobs {
    /// The fault knobs of a healthy processing: no latency, no faults.
    pub fn calm() -> Knobs {
        Knobs {
            latency_ms: Some(0),
            failure_rate: Some(0.0),
            timeout_rate: Some(0.0),
            hang_ms: Some(DEFAULT_HANG_MS),
            reset_after_commit_rate: Some(0.0),
            rate_limit_per_s: Some(0),
            ..Knobs::default()
        }
    }

    /// Overlay the fields `patch` sets.
    pub fn merge(&mut self, patch: &Knobs) {
        fn take<T: Clone>(into: &mut Option<T>, from: &Option<T>) {
            if from.is_some() {
                into.clone_from(from);
            }
        }
        take(&mut self.latency_ms, &patch.latency_ms);
        take(&mut self.failure_rate, &patch.failure_rate);
        take(&mut self.timeout_rate, &patch.timeout_rate);
        take(&mut self.hang_ms, &patch.hang_ms);
        take(
            &mut self.reset_after_commit_rate,
            &patch.reset_after_commit_rate,
        );
        take(&mut self.rate_limit_per_s, &patch.rate_limit_per_s);
        take(&mut self.token_lifetime_s, &patch.token_lifetime_s);
        take(&mut self.processing_delay_ms, &patch.processing_delay_ms);
        take(&mut self.reject_marker, &patch.reject_marker);
        take(&mut self.seed, &patch.seed);
    }

    pub fn validate(&self) -> Result<(), KnobsError> {
        for (name, rate) in [
            ("failure_rate", self.failure_rate),
            ("timeout_rate", self.timeout_rate),
            ("reset_after_commit_rate", self.reset_after_commit_rate),
        ] {
            if let Some(value) = rate {
                if !(0.0..=1.0).contains(&value) {
                    return Err(KnobsError::Rate { name, value });
                }
            }
        }
        Ok(())
    }
}

/// Injected faults, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounters {
    /// Requests held for `latency_ms`.
    pub delayed: u64,
    pub failed_500: u64,
    pub failed_503: u64,
    /// Requests held `hang_ms`, then answered 503.
    pub timeouts: u64,
    /// Registrations committed and then left without a reply.
    pub resets_after_commit: u64,
    /// 429 replies.
    pub rate_limited: u64,
}

/// What to do with a request, decided when it arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Handle it.
    Serve,
    /// 429 with `Retry-After: 1`.
    RateLimited,
    /// Reply with this 5xx status, doing nothing.
    Fail(u16),
    /// Hold it this long, then reply 503, doing nothing.
    Hang(Duration),
}

/// The fault knobs in force, the seeded generator and the rate-limit window.
pub struct Faults {
    knobs: Knobs,
    rng: StdRng,
    /// Start of the current one-second window and the requests served in it.
    window: Option<(Instant, u32)>,
    counters: FaultCounters,
}

impl Faults {
    /// Starts from [`Knobs::calm`] with `knobs` merged over it.
    pub fn new(knobs: &Knobs) -> Result<Faults, KnobsError> {
        let mut faults = Faults {
            knobs: Knobs {
                seed: Some(0),
                ..Knobs::calm()
            },
            rng: StdRng::seed_from_u64(0),
            window: None,
            counters: FaultCounters::default(),
        };
        faults.merge(knobs)?;
        Ok(faults)
    }

    /// The knobs in force (the model's knobs are whatever was last set here).
    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }

    pub fn counters(&self) -> &FaultCounters {
        &self.counters
    }

    /// Merge `patch` over the knobs in force; nothing changes when it is invalid.
    pub fn merge(&mut self, patch: &Knobs) -> Result<(), KnobsError> {
        patch.validate()?;
        self.knobs.merge(patch);
        if let Some(seed) = patch.seed {
            self.rng = StdRng::seed_from_u64(seed);
        }
        if patch.rate_limit_per_s.is_some() {
            self.window = None;
        }
        Ok(())
    }

    /// Latency added to every request.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.knobs.latency_ms.unwrap_or(0))
    }

    /// Decide the fate of a request arriving at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        if self.knobs.latency_ms.unwrap_or(0) > 0 {
            self.counters.delayed += 1;
        }
        let limit = self.knobs.rate_limit_per_s.unwrap_or(0);
        if limit > 0 {
            let (start, served) = match self.window {
                Some((start, served))
                    if now.saturating_duration_since(start) < Duration::from_secs(1) =>
                {
                    (start, served)
                }
                _ => (now, 0),
            };
            if served >= limit {
                self.window = Some((start, served));
                self.counters.rate_limited += 1;
                return Admission::RateLimited;
            }
            self.window = Some((start, served + 1));
        }
        if self.draw(self.knobs.failure_rate) {
            return if self.rng.random_bool(0.5) {
                self.counters.failed_500 += 1;
                Admission::Fail(500)
            } else {
                self.counters.failed_503 += 1;
                Admission::Fail(503)
            };
        }
        if self.draw(self.knobs.timeout_rate) {
            self.counters.timeouts += 1;
            return Admission::Hang(Duration::from_millis(
                self.knobs.hang_ms.unwrap_or(DEFAULT_HANG_MS),
            ));
        }
        Admission::Serve
    }

    /// After a registration committed: should its reply be lost?
    pub fn reset_after_commit(&mut self) -> bool {
        let reset = self.draw(self.knobs.reset_after_commit_rate);
        if reset {
            self.counters.resets_after_commit += 1;
        }
        reset
    }

    /// No draw at all for a rate of 0, so turning an unrelated knob on does
    /// not shift the sequence of the others.
    fn draw(&mut self, rate: Option<f64>) -> bool {
        match rate {
            Some(r) if r >= 1.0 => true,
            Some(r) if r > 0.0 => self.rng.random::<f64>() < r,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(json: &str) -> Faults {
        Faults::new(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn calm_knobs_serve_everything() {
        let mut f = faults("{}");
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(f.admit(now), Admission::Serve);
            assert!(!f.reset_after_commit());
        }
        assert_eq!(f.counters(), &FaultCounters::default());
        assert_eq!(f.latency(), Duration::ZERO);
    }

    #[test]
    fn knobs_merge_only_what_is_set_and_refuse_bad_rates() {
        let mut f = faults(r#"{"failure_rate": 0.5, "latency_ms": 20}"#);
        f.merge(&serde_json::from_str(r#"{"latency_ms": 5}"#).unwrap())
            .unwrap();
        assert_eq!(f.knobs().failure_rate, Some(0.5));
        assert_eq!(f.latency(), Duration::from_millis(5));
        let bad: Knobs = serde_json::from_str(r#"{"timeout_rate": 1.5, "latency_ms": 1}"#).unwrap();
        assert_eq!(
            f.merge(&bad).unwrap_err().to_string(),
            "timeout_rate must be a probability between 0 and 1, not 1.5"
        );
        assert_eq!(f.latency(), Duration::from_millis(5), "nothing changed");
        assert!(serde_json::from_str::<Knobs>(r#"{"failure_rte": 0.5}"#).is_err());
        let shown = serde_json::to_value(f.knobs()).unwrap();
        assert_eq!(shown["hang_ms"], serde_json::json!(DEFAULT_HANG_MS));
        assert!(shown.get("reject_marker").is_none());
    }

    #[test]
    fn fault_rates_are_honoured_and_reproducible_by_seed() {
        let run = |seed: u64| {
            let mut f = faults(&format!(
                r#"{{"failure_rate": 0.2, "timeout_rate": 0.1, "hang_ms": 7, "seed": {seed}}}"#
            ));
            let now = Instant::now();
            let fates: Vec<Admission> = (0..10_000).map(|_| f.admit(now)).collect();
            (fates, f.counters().clone())
        };
        let (a, counts) = run(42);
        let (b, _) = run(42);
        let (c, _) = run(43);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let failed = counts.failed_500 + counts.failed_503;
        assert!((1_800..2_200).contains(&failed), "{counts:?}");
        assert!(
            counts.failed_500 > 800 && counts.failed_503 > 800,
            "{counts:?}"
        );
        // 10 % of the 80 % not failed.
        assert!((650..950).contains(&counts.timeouts), "{counts:?}");
        assert!(a.contains(&Admission::Hang(Duration::from_millis(7))));
    }

    #[test]
    fn certain_faults_always_fire() {
        let mut f = faults(r#"{"failure_rate": 1.0}"#);
        assert!(matches!(
            f.admit(Instant::now()),
            Admission::Fail(500 | 503)
        ));
        let mut f = faults(r#"{"reset_after_commit_rate": 1.0}"#);
        assert_eq!(f.admit(Instant::now()), Admission::Serve);
        assert!(f.reset_after_commit());
        assert_eq!(f.counters().resets_after_commit, 1);
    }

    #[test]
    fn the_rate_limit_serves_n_per_second_window() {
        let mut f = faults(r#"{"rate_limit_per_s": 3}"#);
        let t = Instant::now();
        let fates: Vec<Admission> = (0..5)
            .map(|i| f.admit(t + Duration::from_millis(i * 100)))
            .collect();
        assert_eq!(&fates[..3], &[Admission::Serve; 3]);
        assert_eq!(&fates[3..], &[Admission::RateLimited; 2]);
        assert_eq!(f.admit(t + Duration::from_millis(1000)), Admission::Serve);
        assert_eq!(f.counters().rate_limited, 2);
        f.merge(&Knobs {
            rate_limit_per_s: Some(0),
            ..Knobs::default()
        })
        .unwrap();
        for _ in 0..10 {
            assert_eq!(f.admit(t + Duration::from_millis(1001)), Admission::Serve);
        }
    }
}
