//! The Uzbek till against `fiscald sim fiscalbox` over real HTTP on port 0:
//! the FiscalBox backend fiscalizes every journaled receipt exactly once
//! through outages and lost replies.

mod common;

use common::{TestDaemon, uz_receipt};
use fiscald::sim::fiscalbox::{BoxConfig, BoxKnobs, SimFiscalBox};
use serde_json::Value;
use std::time::{Duration, Instant};

async fn sim_box() -> SimFiscalBox {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    SimFiscalBox::start(listener, BoxConfig::default()).await
}

/// Wait until every receipt in `ids` is fiscalized (bounded).
async fn wait_fiscalized(t: &TestDaemon, ids: &[String]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut done = Vec::new();
        for id in ids {
            let (_, r) = t.get(&format!("/v1/receipts/{id}")).await;
            if r["state"] == "fiscalized" {
                done.push(r);
            }
        }
        if done.len() == ids.len() {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} receipts fiscalized",
            done.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_reach_the_box_once_through_outages_and_lost_replies() {
    let fb = sim_box().await;
    let t = TestDaemon::start_uz(&fb.base_url(), |_| {}).await;
    // The box starts with its shift closed: the first sale gets 0x902D and
    // the worker opens the shift itself.
    let mut ids = Vec::new();
    for i in 0..16 {
        // Unplugged for receipts 4..8 and 12..16; two replies lost on the way.
        fb.set_knobs(BoxKnobs {
            down: Some((4..8).contains(&i) || (12..16).contains(&i)),
            lose_replies: (i == 2 || i == 9).then_some(1),
            ..BoxKnobs::default()
        });
        let (status, r) = t
            .post(&uz_receipt(&format!("Non {i}"), "5000.00"), None)
            .await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    fb.set_knobs(BoxKnobs {
        down: Some(false),
        ..BoxKnobs::default()
    });
    let receipts = wait_fiscalized(&t, &ids).await;
    let stats = fb.stats();
    assert_eq!(stats.counters.sales_created, 16, "{stats:?}");
    assert_eq!(stats.counters.receipts_per_uuid_max, 1);
    // The lost replies were found with order/last, not sent again.
    assert_eq!(stats.lost_replies, 2, "{stats:?}");
    assert_eq!(stats.counters.uuid_repeats, 0, "{stats:?}");
    assert!(stats.dropped_down > 0, "{stats:?}");
    assert_eq!(stats.counters.shifts_opened, 1);
    // Each receipt carries the box's fiscal data: its Soliq link is unique
    // and the sequence numbers are 1..=16.
    let mut seqs: Vec<u64> = receipts
        .iter()
        .map(|r| r["fiscal"]["fiscal_document_number"].as_u64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
    for r in &receipts {
        let qr = r["fiscal"]["qr"].as_str().unwrap();
        assert!(
            qr.starts_with("https://ofd.soliq.uz/check?t=UZ170703100189&r="),
            "{qr}"
        );
    }
    // The box's accumulators hold exactly the 16 sales.
    let cash = fb.with_model(|m| m.totals().0);
    assert_eq!(cash, 16 * 500_000);
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}
