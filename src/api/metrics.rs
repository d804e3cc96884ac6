//! `GET /metrics` in the Prometheus text format: the process's histograms
//! and counters (`telemetry`), plus gauges read from the journal, the
//! devices and the sync at scrape time. Label values are closed sets
//! (states, kinds, sources, device names): no receipt ids, no secrets.

use super::Shared;
use crate::devices::runtime::DeviceState;
use crate::telemetry;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceiptLabels {
    state: String,
    /// The dialect the receipt came in.
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeviceStateLabels {
    device: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadlineLabels {
    kind: String,
}

const DEVICE_STATES: [DeviceState; 5] = [
    DeviceState::Absent,
    DeviceState::Connecting,
    DeviceState::Ready,
    DeviceState::Busy,
    DeviceState::Faulted,
];

pub(super) async fn get_metrics(State(app): Shared) -> Response {
    let report = super::status::collect(&app).await;
    let mut registry = Registry::with_prefix("fiscald");
    telemetry::global().register_into(&mut registry);

    let left = Family::<DeadlineLabels, Gauge>::default();
    let severity = Family::<DeadlineLabels, Gauge>::default();
    for c in &report.deadlines {
        let labels = DeadlineLabels {
            kind: c.kind.as_str().to_string(),
        };
        if let Some(s) = c.seconds_left {
            left.get_or_create(&labels).set(s);
        }
        severity.get_or_create(&labels).set(c.severity.level());
    }
    registry.register(
        "deadline_seconds_left",
        "Seconds until the deadline stops the till (fn_expiry, ofd_block, marking_lockout, shift_limit); negative once past",
        left,
    );
    registry.register(
        "deadline_severity",
        "Each deadline's severity: 0 ok, 1 warn, 2 critical, 3 blocking",
        severity,
    );

    let receipts = Family::<ReceiptLabels, Gauge>::default();
    for c in &report.journal.by_source {
        receipts
            .get_or_create(&ReceiptLabels {
                state: c.state.clone(),
                source: c.key.clone(),
            })
            .set(c.count as i64);
    }
    registry.register(
        "receipts",
        "Receipts in the journal by state and source (dialect)",
        receipts,
    );

    let jobs = Family::<JobLabels, Gauge>::default();
    for c in &report.journal.queue {
        jobs.get_or_create(&JobLabels {
            kind: c.key.clone(),
            state: c.state.clone(),
        })
        .set(c.count as i64);
    }
    // Kinds with nothing waiting still show, as 0: alert rules see the series.
    for kind in [
        "fiscalize",
        "register",
        "fiscalbox",
        "fiscalbox_confirm",
        "print",
    ] {
        for state in ["pending", "parked"] {
            drop(jobs.get_or_create(&JobLabels {
                kind: kind.into(),
                state: state.into(),
            }));
        }
    }
    registry.register(
        "queue_jobs",
        "Outbox jobs waiting (pending) or parked, by job kind",
        jobs,
    );

    let age = Gauge::<i64>::default();
    age.set(report.journal.oldest_unfiscalized_age_s.unwrap_or(0));
    registry.register(
        "backlog_oldest_age_seconds",
        "Age of the oldest receipt not yet fiscalized (0 when none waits)",
        age,
    );
    let size = Gauge::<i64>::default();
    size.set(report.journal.size_bytes as i64);
    registry.register("journal_size_bytes", "Size of the SQLite journal", size);
    let writable = Gauge::<i64>::default();
    writable.set(report.journal.writable as i64);
    registry.register(
        "journal_writable",
        "1 when the journal writer answers",
        writable,
    );

    let devices = Family::<DeviceStateLabels, Gauge>::default();
    for d in &report.devices {
        for s in DEVICE_STATES {
            devices
                .get_or_create(&DeviceStateLabels {
                    device: d.name.to_string(),
                    state: serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                })
                .set((d.state == s) as i64);
        }
    }
    registry.register("device_state", "1 for the state each device is in", devices);

    if let Some(online) = report.cloud.online {
        let g = Gauge::<i64>::default();
        g.set(online as i64);
        registry.register("cloud_online", "1 when the cloud processing answers", g);
        let since = Gauge::<i64>::default();
        since.set(
            report
                .cloud
                .since
                .as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map_or(0, |t| t.timestamp()),
        );
        registry.register(
            "cloud_state_since_timestamp_seconds",
            "When the cloud last went online or offline (unix time)",
            since,
        );
    }
    let up = Gauge::<i64>::default();
    up.set(report.uptime_s as i64);
    registry.register("uptime_seconds", "Seconds since the daemon started", up);

    let mut text = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
