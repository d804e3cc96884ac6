//! Deadlines end to end, on the register emulator moved by its clock and
//! knobs: a drive expiring in 2 days, an OFD queue whose oldest document is
//! 28 days old and a shift open 23 h show — with their time left and
//! severity — on the status page (headless Chromium), in `/v1/status`,
//! `/metrics` and a receipt reply's `warnings`; past 30 days the register
//! refuses, fiscald names the cause, keeps journaling, and fiscalizes every
//! held receipt exactly once when the queue drains.

mod common;

use common::TestDaemon;
use fiscald::config::{MarkingService, MarkingSettings, OnUnreachable, Secret};
use fiscald::sim::devices::control::{RegisterFaultsPatch, SimDevices, SimDevicesOptions};
use fiscald::sim::devices::register::DeadlineKnobs;
use fiscald::sim::marking::{MarkingKnobs, SimMarking};
use serde_json::Value;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The emulators in the till's zone (a register keeps the shop's local time).
fn emulators(dir: &std::path::Path) -> SimDevices {
    let demo = fiscald::config::load_str(fiscald::config::DEMO_CONFIG).unwrap();
    SimDevices::start(
        &dir.join("devices"),
        SimDevicesOptions {
            printer_pace_baud: None,
            seed: 13,
            timezone: Some(demo.timezone),
        },
    )
    .expect("emulators start")
}

/// A daemon on the emulators, reading deadlines every 200 ms.
async fn start_daemon(sim: &SimDevices) -> TestDaemon {
    TestDaemon::start_with(|s| {
        common::wire_emulators(s, sim);
        s.devices.register.as_mut().unwrap().reading_interval = Duration::from_millis(200);
    })
    .await
}

fn condition<'a>(list: &'a Value, kind: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|c| c["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} in {list:#}"))
}

fn left(c: &Value) -> i64 {
    c["seconds_left"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_deadlines_show_on_page_status_metrics_and_receipt_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let sim = emulators(dir.path());
    // One control call each (as `fiscald demo`'s control API takes them):
    // the shift opened 23 h ago, the drive's last day in 2 days, the OFD
    // link down with its oldest document 28 days old.
    sim.register.set_deadlines(&DeadlineKnobs {
        shift_age_hours: Some(23),
        fn_expires_in_days: Some(2),
        ..DeadlineKnobs::default()
    });
    sim.patch_register(&RegisterFaultsPatch {
        ofd_offline: Some(true),
        ..RegisterFaultsPatch::default()
    });
    sim.register.set_deadlines(&DeadlineKnobs {
        ofd_backlog_hours: Some(28 * 24),
        ..DeadlineKnobs::default()
    });
    // The marking local module last synced 70 h ago.
    let marking =
        SimMarking::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await;
    marking
        .set_knobs(MarkingKnobs {
            last_sync_age_ms: Some(70 * 3_600_000),
            ..Default::default()
        })
        .unwrap();
    let marking_url = marking.base_url();
    let d = TestDaemon::start_with(|s| {
        common::wire_emulators(s, &sim);
        s.devices.register.as_mut().unwrap().reading_interval = Duration::from_millis(200);
        s.marking = Some(MarkingSettings {
            online: None,
            local: Some(MarkingService {
                url: marking_url,
                secret: Secret::new("admin"),
                login: "admin".into(),
                client_id: "9999078900000001".into(),
            }),
            timeout: Duration::from_millis(400),
            on_unreachable: OnUnreachable::SellUnchecked,
        });
    })
    .await;

    let status = until("the deadline readings", async || {
        let (_, s) = d.get("/v1/status").await;
        let kinds = s["deadlines"].as_array()?.len();
        (kinds >= 4).then_some(s)
    })
    .await;
    let list = &status["deadlines"];
    // Most urgent first: all four are critical; the shift is soonest.
    assert_eq!(list[0]["kind"], "shift_limit", "{list:#}");
    let shift = condition(list, "shift_limit");
    assert_eq!(shift["severity"], "critical");
    // The register's dates have minutes, not seconds.
    assert!((3_300..=3_600).contains(&left(shift)), "{shift}");
    assert!(shift["action"].as_str().unwrap().contains("Z report"));
    let ofd = condition(list, "ofd_block");
    assert_eq!(ofd["severity"], "critical");
    assert!((2 * DAY - 120..=2 * DAY).contains(&left(ofd)), "{ofd}");
    assert!(
        ofd["action"]
            .as_str()
            .unwrap()
            .contains("internet so the OFD queue drains")
    );
    let lm = condition(list, "marking_lockout");
    assert_eq!(lm["severity"], "critical");
    assert!((2 * 3_600 - 60..=2 * 3_600).contains(&left(lm)), "{lm}");
    assert!(lm["action"].as_str().unwrap().contains("ЛМ ЧЗ"));
    let fn_expiry = condition(list, "fn_expiry");
    assert_eq!(fn_expiry["severity"], "critical");
    // The drive's last valid day is 2 days from today: it stops at the
    // midnight after, 2 to 3 days from now.
    assert!(
        (2 * DAY..=3 * DAY).contains(&left(fn_expiry)),
        "{fn_expiry}"
    );
    assert!(
        fn_expiry["message"]
            .as_str()
            .unwrap()
            .contains("expires in 2 days")
    );
    // The clocks agree: present and ok, not among the warnings.
    assert_eq!(condition(list, "clock_skew")["severity"], "ok");
    let attention = status["attention"].as_array().unwrap();
    assert!(
        attention
            .iter()
            .any(|a| a.as_str().unwrap().contains("shift has been open 23 h")),
        "{attention:?}"
    );

    // A receipt reply carries them for the cashier.
    let (code, reply) = d.post(&common::receipt("Хлеб", "45.00"), None).await;
    assert_eq!(code, 201, "{reply}");
    let warnings = &reply["warnings"];
    for kind in ["shift_limit", "marking_lockout", "ofd_block", "fn_expiry"] {
        assert_eq!(condition(warnings, kind)["severity"], "critical");
    }
    assert!(
        warnings
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["severity"] != "ok"),
        "{warnings:#}"
    );

    // /metrics: seconds left per condition.
    let metrics = d.get_text("/metrics").await;
    let gauge = |name: &str, kind: &str| -> i64 {
        let prefix = format!("fiscald_{name}{{kind=\"{kind}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert!((2 * DAY - 180..=2 * DAY).contains(&gauge("deadline_seconds_left", "ofd_block")));
    assert!((3_300..=3_600).contains(&gauge("deadline_seconds_left", "shift_limit")));
    assert!((2 * DAY..=3 * DAY).contains(&gauge("deadline_seconds_left", "fn_expiry")));
    assert!(
        (2 * 3_600 - 120..=2 * 3_600).contains(&gauge("deadline_seconds_left", "marking_lockout"))
    );
    for kind in ["ofd_block", "shift_limit", "fn_expiry", "marking_lockout"] {
        assert_eq!(gauge("deadline_severity", kind), 2, "{kind}");
    }

    // The page, as a browser builds it: the deadlines on top, most urgent first.
    let url = format!("{}/", d.base);
    let dom = tokio::task::spawn_blocking(move || common::chromium(&["--dump-dom", &url]))
        .await
        .unwrap();
    let start = dom.find("id=\"deadlines\"").expect("a deadlines section");
    assert!(
        start < dom.find("id=\"attention\"").unwrap()
            && start < dom.find("id=\"devices\"").unwrap(),
        "deadlines must be at the top"
    );
    let section = &dom[start..start + dom[start..].find("</section>").unwrap()];
    let rows: Vec<(&str, &str)> = section
        .match_indices("data-kind=\"")
        .map(|(i, m)| {
            let rest = &section[i + m.len()..];
            let kind = &rest[..rest.find('"').unwrap()];
            let s = rest.find("data-severity=\"").unwrap() + "data-severity=\"".len();
            (kind, &rest[s..s + rest[s..].find('"').unwrap()])
        })
        .collect();
    assert_eq!(
        &rows[..4],
        [
            ("shift_limit", "critical"),
            ("marking_lockout", "critical"),
            ("ofd_block", "critical"),
            ("fn_expiry", "critical")
        ],
        "{section}"
    );
    assert!(section.contains("last synced 2 days 22 h ago"), "{section}");
    assert!(section.contains("the oldest 28 days"), "{section}");
    assert!(section.contains("expires in 2 days"), "{section}");
    assert!(section.contains("sales stop in "), "{section}");
    let png = common::screenshot(
        &format!("{}/", d.base),
        "screenshots/deadlines.png",
        "430,1400",
    )
    .await;
    assert!(png.starts_with(b"\x89PNG"));

    d.daemon.stop().await.unwrap();
    marking.stop().await;
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_30_days_the_register_refuses_receipts_wait_and_go_once_after_the_queue_drains() {
    let dir = tempfile::tempdir().unwrap();
    let sim = emulators(dir.path());
    let d = start_daemon(&sim).await;
    // One sale goes through while all is well.
    let (code, first) = d.post(&common::receipt("Молоко", "80.00"), None).await;
    assert_eq!(code, 201, "{first}");
    let first_id = first["id"].as_str().unwrap().to_string();
    until("the first receipt fiscalized", async || {
        let (_, r) = d.get(&format!("/v1/receipts/{first_id}")).await;
        (r["state"] == "fiscalized").then_some(())
    })
    .await;
    // The OFD link has been down for 31 days.
    sim.patch_register(&RegisterFaultsPatch {
        ofd_offline: Some(true),
        ..RegisterFaultsPatch::default()
    });
    sim.register.set_deadlines(&DeadlineKnobs {
        ofd_backlog_hours: Some(31 * 24),
        ..DeadlineKnobs::default()
    });
    // fiscald names the cause on the register and in the deadlines.
    let status = until("the OFD block seen", async || {
        let (_, s) = d.get("/v1/status").await;
        let reg = s["devices"]
            .as_array()?
            .iter()
            .find(|x| x["name"] == "register")?
            .clone();
        (reg["state"] == "faulted").then_some(s)
    })
    .await;
    let reg = status["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "register")
        .unwrap();
    let reason = reg["reason"].as_str().unwrap();
    assert!(reason.contains("not confirmed by the OFD"), "{reason}");
    assert!(
        reason.contains("internet so the OFD queue drains"),
        "{reason}"
    );
    assert_eq!(
        condition(&status["deadlines"], "ofd_block")["severity"],
        "blocking"
    );

    // Receipts keep being accepted and journaled; none reaches the drive.
    let mut held = Vec::new();
    for i in 0..3 {
        let (code, r) = d
            .post(&common::receipt(&format!("Хлеб {i}"), "45.00"), None)
            .await;
        assert_eq!(code, 201, "{r}");
        assert_eq!(r["warnings"][0]["kind"], "ofd_block", "{r}");
        held.push(r["id"].as_str().unwrap().to_string());
    }
    // The register is held (faulted with the cause): nothing reaches the drive.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sim.register.snapshot().receipts.len(), 1);
    for id in &held {
        let (_, r) = d.get(&format!("/v1/receipts/{id}")).await;
        assert_eq!(r["state"], "accepted", "{r}");
    }

    // The link is back: the queue drains, the block lifts, each held receipt
    // is fiscalized exactly once.
    sim.patch_register(&RegisterFaultsPatch {
        ofd_offline: Some(false),
        ..RegisterFaultsPatch::default()
    });
    for id in &held {
        until("a held receipt fiscalized", async || {
            let (_, r) = d.get(&format!("/v1/receipts/{id}")).await;
            (r["state"] == "fiscalized").then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let snap = sim.register.snapshot();
    assert_eq!(snap.receipts.len(), 4, "exactly once each");
    assert_eq!(snap.ofd_unsent, 0);
    let (_, s) = d.get("/v1/status").await;
    assert!(
        s["deadlines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["kind"] != "ofd_block"),
        "{s:#}"
    );
    d.daemon.stop().await.unwrap();
    sim.stop();
}

/// FF70: with the OFD link down, a marked sale's notification waits in the
/// drive; as the area fills the status warns, turns critical past 90 % and
/// blocking when the drive blocks marking work; the link back drains it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_marking_notification_area_fills_while_offline_and_drains_when_online() {
    let dir = tempfile::tempdir().unwrap();
    let sim = emulators(dir.path());
    sim.patch_register(&RegisterFaultsPatch {
        ofd_offline: Some(true),
        ..RegisterFaultsPatch::default()
    });
    let d = start_daemon(&sim).await;
    let marking = async |want: &str, queued: u64| {
        until(
            &format!("marking notifications {want} with {queued} queued"),
            async || {
                let (_, s) = d.get("/v1/status").await;
                let c = s["deadlines"]
                    .as_array()?
                    .iter()
                    .find(|c| c["kind"] == "marking_notifications")?
                    .clone();
                let msg = c["message"].as_str()?;
                let counted =
                    msg.starts_with(&format!("{queued} ")) || msg.contains(&format!(": {queued} "));
                (c["severity"] == want && counted).then_some(c)
            },
        )
        .await
    };
    // A marked good sold: its sale notification waits for the OFD.
    let mut sale = common::receipt("Кеды", "20.00");
    sale["items"][0]["marking"] = serde_json::json!([common::MARKED_CODE]);
    let (code, r) = d.post(&sale, None).await;
    assert_eq!(code, 201, "{r}");
    marking("ok", 1).await;
    // The drive's area fills: 800 waiting of the emulated 1000 is 80–90 %.
    sim.register.set_deadlines(&DeadlineKnobs {
        mc_notifications: Some(799),
        ..DeadlineKnobs::default()
    });
    let warn = marking("warn", 800).await;
    assert!(
        warn["message"].as_str().unwrap().contains("80–90 %"),
        "{warn}"
    );
    assert!(warn["action"].as_str().unwrap().contains("OFD"), "{warn}");
    sim.register.set_deadlines(&DeadlineKnobs {
        mc_notifications: Some(949),
        ..DeadlineKnobs::default()
    });
    marking("critical", 950).await;
    sim.register.set_deadlines(&DeadlineKnobs {
        mc_notifications: Some(999),
        ..DeadlineKnobs::default()
    });
    let blocked = marking("blocking", 1000).await;
    assert!(
        blocked["message"]
            .as_str()
            .unwrap()
            .contains("blocked marked sales"),
        "{blocked}"
    );
    let metrics = d.get_text("/metrics").await;
    assert!(
        metrics.contains("fiscald_deadline_severity{kind=\"marking_notifications\"} 3"),
        "{metrics}"
    );
    // The link is back: the queue drains.
    sim.patch_register(&RegisterFaultsPatch {
        ofd_offline: Some(false),
        ..RegisterFaultsPatch::default()
    });
    marking("ok", 0).await;
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_z_runs_at_its_time_after_waiting_receipts_and_never_twice() {
    let dir = tempfile::tempdir().unwrap();
    let sim = emulators(dir.path());
    let demo = fiscald::config::load_str(fiscald::config::DEMO_CONFIG).unwrap();
    // The shift has been open 23 h; the Z time was a minute ago.
    sim.register.set_deadlines(&DeadlineKnobs {
        shift_age_hours: Some(23),
        ..DeadlineKnobs::default()
    });
    let now_local = chrono::Utc::now().with_timezone(&demo.timezone);
    let at = (now_local - chrono::Duration::minutes(1)).time();
    // A minute after midnight the "time a minute ago" is yesterday's: skip.
    if now_local.time() < chrono::NaiveTime::from_hms_opt(0, 2, 0).unwrap() {
        return;
    }
    // Paper out: a receipt waits for the register, which postpones the Z.
    sim.patch_register(&RegisterFaultsPatch {
        paper_out: Some(true),
        ..RegisterFaultsPatch::default()
    });
    let d = TestDaemon::start_with(|s| {
        common::wire_emulators(s, &sim);
        s.devices.register.as_mut().unwrap().reading_interval = Duration::from_millis(200);
        s.auto_z = Some(fiscald::config::AutoZSettings {
            at: chrono::NaiveTime::from_hms_opt(
                chrono::Timelike::hour(&at),
                chrono::Timelike::minute(&at),
                0,
            )
            .unwrap(),
            window: Duration::from_secs(3600),
        });
    })
    .await;
    let (code, r) = d.post(&common::receipt("Кефир", "60.00"), None).await;
    assert_eq!(code, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    until("the shift's opening time read", async || {
        let (_, s) = d.get("/v1/status").await;
        s["deadlines"]
            .as_array()?
            .iter()
            .any(|c| c["kind"] == "shift_limit")
            .then_some(())
    })
    .await;
    // Several ticks with the receipt waiting: no Z report.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snap = sim.register.snapshot();
    assert_eq!((snap.z_reports, snap.receipts.len()), (0, 0));
    // Paper back: the receipt goes first, then the Z report, once.
    sim.patch_register(&RegisterFaultsPatch {
        paper_out: Some(false),
        ..RegisterFaultsPatch::default()
    });
    until("the Z report", async || {
        (sim.register.snapshot().z_reports == 1).then_some(())
    })
    .await;
    let (_, r) = d.get(&format!("/v1/receipts/{id}")).await;
    assert_eq!(r["state"], "fiscalized", "{r}");
    let snap = sim.register.snapshot();
    assert_eq!(snap.receipts.len(), 1);
    assert_eq!(
        snap.receipts[0].shift, 1,
        "the receipt was in the old shift"
    );
    // A sale after the Z opens shift 2 (auto-open); no second Z today.
    let (code, r) = d.post(&common::receipt("Сыр", "300.00"), None).await;
    assert_eq!(code, 201, "{r}");
    let id2 = r["id"].as_str().unwrap().to_string();
    until("the second receipt", async || {
        let (_, r) = d.get(&format!("/v1/receipts/{id2}")).await;
        (r["state"] == "fiscalized").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snap = sim.register.snapshot();
    assert_eq!(snap.z_reports, 1, "never twice");
    assert!(snap.shift_open);
    assert_eq!(snap.shift_number, 2);
    d.daemon.stop().await.unwrap();
    sim.stop();
}
