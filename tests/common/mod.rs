//! Shared test plumbing: an in-process daemon on port 0 over a journal in a
//! temp dir, and the path to the built binary for process-level tests.
#![allow(dead_code)]

use fiscald::clock::{Clock, SystemClock};
use fiscald::config::{self, Settings};
use fiscald::daemon::Daemon;
use serde_json::{Value, json};
use std::sync::Arc;
use tempfile::TempDir;

pub struct TestDaemon {
    pub daemon: Daemon,
    pub base: String,
    pub dir: TempDir,
    pub client: reqwest::Client,
}

pub fn settings(dir: &std::path::Path) -> Settings {
    let mut s = config::load_str(config::DEMO_CONFIG).expect("demo config");
    s.journal_path = dir.join("journal.sqlite");
    s.listen = "127.0.0.1:0".parse().unwrap();
    // Tests that sync turn it on with a simulator to talk to.
    s.cloud.enabled = false;
    // Tests that use devices start emulators and point the paths at them.
    s.devices.register = None;
    s.devices.printer = None;
    s.devices.drawer.via = config::DrawerVia::None;
    s
}

impl TestDaemon {
    pub async fn start() -> TestDaemon {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> TestDaemon {
        Self::start_with_clock(tweak, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(
        tweak: impl FnOnce(&mut Settings),
        clock: Arc<dyn Clock>,
    ) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        tweak(&mut s);
        let daemon = Daemon::start(&s, clock).await.expect("daemon starts");
        let base = format!("http://{}", daemon.addr);
        TestDaemon {
            daemon,
            base,
            dir,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub async fn post(&self, body: &Value, key: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/v1/receipts", self.base))
            .json(body);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Receipts in the journal, as `/v1/health` counts them.
    pub async fn receipt_count(&self) -> u64 {
        let (_, h) = self.get("/v1/health").await;
        h["journal"]["receipts"].as_u64().unwrap()
    }
}

/// A valid receipt: one line of `price` × 1, paid in cash.
pub fn receipt(name: &str, price: &str) -> Value {
    json!({
        "type": "sale",
        "items": [{"name": name, "quantity": 1, "price": price, "vat": "20"}],
        "payments": [{"kind": "cash", "amount": price}]
    })
}

pub fn example(name: &str) -> Value {
    let path = format!("{}/docs/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}
