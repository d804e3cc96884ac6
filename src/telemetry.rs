//! What the process remembers about itself for the status page and
//! `GET /metrics`: request, sync and device latencies (Prometheus
//! histograms), errors by kind, the latest warnings and errors, and
//! per-minute series of the backlog and of acceptance latency for the page's
//! chart. In memory only: a restart starts them afresh (the journal holds
//! everything durable). One process-wide instance, [`global`], because the
//! tracing layer that feeds it is process-wide too.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Warnings and errors kept for the page.
pub const RECENT_MAX: usize = 50;
/// Minutes of chart history kept (6 hours).
pub const SERIES_MINUTES: usize = 360;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The route template (`/v1/receipts/{id}`), never the raw path: no
    /// unbounded label values.
    pub route: String,
    pub status: u16,
    pub dialect: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabels {
    pub device: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// One warning or error as logged.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    pub at: String,
    pub level: String,
    /// The module that logged it, e.g. `sync`, `devices`.
    pub kind: String,
    pub message: String,
}

/// One minute of the chart.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Minute {
    /// Unix minute (seconds / 60).
    pub minute: i64,
    /// Receipts waiting for fiscalization, last sample in the minute.
    pub backlog: Option<u64>,
    /// Receipts accepted in the minute.
    pub accepted: u64,
    /// Their slowest acceptance, milliseconds.
    pub accept_max_ms: u64,
    /// Sum of their acceptance times, milliseconds (mean = sum / accepted).
    pub accept_sum_ms: u64,
}

pub struct Telemetry {
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_seconds: Family<OutcomeLabels, Histogram>,
    pub accept_seconds: Histogram,
    pub sync_seconds: Family<OutcomeLabels, Histogram>,
    pub device_seconds: Family<DeviceLabels, Histogram>,
    pub errors: Family<KindLabels, Counter>,
    recent: Mutex<VecDeque<LogEntry>>,
    series: Mutex<VecDeque<Minute>>,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 1 ms … ~33 s, doubling.
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 16)
}

impl Telemetry {
    fn new() -> Telemetry {
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_seconds = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        let accept_seconds = Histogram::new(latency_buckets());
        let sync_seconds = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        let device_seconds = Family::<DeviceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        let errors = Family::<KindLabels, Counter>::default();
        // Series at 0 from the start, so that rate() over them works before
        // the first error of a kind.
        for kind in ["api", "daemon", "devices", "journal", "sync", "other"] {
            drop(errors.get_or_create(&KindLabels { kind: kind.into() }));
        }
        Telemetry {
            http_requests,
            http_seconds,
            accept_seconds,
            sync_seconds,
            device_seconds,
            errors,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_MAX)),
            series: Mutex::new(VecDeque::with_capacity(SERIES_MINUTES + 1)),
        }
    }

    /// Adds the process's metrics to `registry` (they stay shared: a
    /// registry made per scrape sees the live values).
    pub fn register_into(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route, status and dialect",
            self.http_requests.clone(),
        );
        registry.register(
            "http_request_seconds",
            "HTTP request duration by status class",
            self.http_seconds.clone(),
        );
        registry.register(
            "receipt_accept_seconds",
            "Time from request to committed reply for new receipts",
            self.accept_seconds.clone(),
        );
        registry.register(
            "sync_job_seconds",
            "Cloud fiscalization of one receipt, from taking the job to its outcome",
            self.sync_seconds.clone(),
        );
        registry.register(
            "device_request_seconds",
            "One request to a device (print, register command, drawer), queueing included",
            self.device_seconds.clone(),
        );
        registry.register(
            "errors",
            "Warnings and errors logged, by the module that logged them",
            self.errors.clone(),
        );
    }

    pub fn record_error(&self, entry: LogEntry) {
        self.errors
            .get_or_create(&KindLabels {
                kind: entry.kind.clone(),
            })
            .inc();
        let mut recent = self.recent.lock().expect("telemetry lock");
        if recent.len() == RECENT_MAX {
            recent.pop_front();
        }
        recent.push_back(entry);
    }

    /// Newest first.
    pub fn recent_errors(&self) -> Vec<LogEntry> {
        self.recent
            .lock()
            .expect("telemetry lock")
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    pub fn record_accept(&self, unix_s: i64, took: Duration) {
        self.accept_seconds.observe(took.as_secs_f64());
        let ms = took.as_millis() as u64;
        self.with_minute(unix_s, |m| {
            m.accepted += 1;
            m.accept_sum_ms += ms;
            m.accept_max_ms = m.accept_max_ms.max(ms);
        });
    }

    pub fn record_backlog(&self, unix_s: i64, backlog: u64) {
        self.with_minute(unix_s, |m| m.backlog = Some(backlog));
    }

    /// The chart's minutes, oldest first.
    pub fn series(&self) -> Vec<Minute> {
        self.series
            .lock()
            .expect("telemetry lock")
            .iter()
            .copied()
            .collect()
    }

    fn with_minute(&self, unix_s: i64, f: impl FnOnce(&mut Minute)) {
        let minute = unix_s.div_euclid(60);
        let mut series = self.series.lock().expect("telemetry lock");
        push_minute(&mut series, minute);
        if let Some(m) = series.iter_mut().rev().find(|m| m.minute == minute) {
            f(m);
        }
    }
}

/// Makes sure `minute` has a slot (a clock that went back writes into the
/// newest slot's past only if that minute is still kept) and drops minutes
/// older than [`SERIES_MINUTES`].
fn push_minute(series: &mut VecDeque<Minute>, minute: i64) {
    let newest = series.back().map(|m| m.minute);
    if newest.is_none_or(|n| minute > n) {
        series.push_back(Minute {
            minute,
            ..Minute::default()
        });
    }
    while series
        .front()
        .is_some_and(|m| m.minute <= minute - SERIES_MINUTES as i64)
    {
        series.pop_front();
    }
}

static GLOBAL: LazyLock<Telemetry> = LazyLock::new(Telemetry::new);

/// The process's telemetry.
pub fn global() -> &'static Telemetry {
    &GLOBAL
}

/// A tracing layer that keeps every warning and error for the page and
/// counts them by module for `/metrics`.
pub struct RecentErrors;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RecentErrors {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let level = *event.metadata().level();
        if level > tracing::Level::WARN {
            return;
        }
        let mut text = MessageText(String::new());
        event.record(&mut text);
        global().record_error(LogEntry {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            level: level.to_string().to_lowercase(),
            kind: kind_of(event.metadata().target()).to_string(),
            message: text.0,
        });
    }
}

/// `fiscald::sync::worker` → `sync`; anything outside the crate → `other`.
pub fn kind_of(target: &str) -> &str {
    match target.strip_prefix("fiscald::") {
        Some(rest) => rest.split("::").next().unwrap_or("other"),
        None if target == "fiscald" => "main",
        None => "other",
    }
}

/// The message first, then `key=value` for the other fields.
struct MessageText(String);

impl tracing::field::Visit for MessageText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keeps_six_hours_and_fills_the_minute_asked_for() {
        let t = Telemetry::new();
        t.record_backlog(0, 3);
        t.record_accept(30, Duration::from_millis(12));
        t.record_accept(59, Duration::from_millis(4));
        t.record_accept(61, Duration::from_millis(7));
        let s = t.series();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].backlog, Some(3));
        assert_eq!(
            (s[0].accepted, s[0].accept_max_ms, s[0].accept_sum_ms),
            (2, 12, 16)
        );
        assert_eq!((s[1].minute, s[1].accepted), (1, 1));
        t.record_backlog(60 * SERIES_MINUTES as i64 + 60, 1);
        let s = t.series();
        assert!(
            s.iter().all(|m| m.minute > 1),
            "minutes older than six hours dropped: {s:?}"
        );
    }

    #[test]
    fn recent_errors_are_bounded_and_newest_first() {
        let t = Telemetry::new();
        for i in 0..RECENT_MAX + 5 {
            t.record_error(LogEntry {
                at: String::new(),
                level: "warn".into(),
                kind: "sync".into(),
                message: format!("e{i}"),
            });
        }
        let r = t.recent_errors();
        assert_eq!(r.len(), RECENT_MAX);
        assert_eq!(r[0].message, format!("e{}", RECENT_MAX + 4));
        let mut registry = Registry::default();
        t.register_into(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(&format!("errors_total{{kind=\"sync\"}} {}", RECENT_MAX + 5)),
            "{text}"
        );
    }

    #[test]
    fn kinds_are_module_names() {
        assert_eq!(kind_of("fiscald::sync::worker"), "sync");
        assert_eq!(kind_of("fiscald::devices"), "devices");
        assert_eq!(kind_of("fiscald"), "main");
        assert_eq!(kind_of("hyper::proto"), "other");
    }
}
