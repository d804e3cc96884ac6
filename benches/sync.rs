//! Sync throughput: how fast does fiscald drain a queue of receipts into a
//! processing that answers each call after 20 ms?
//!
//! `cargo bench --bench sync`; `FISCALD_BENCH_QUICK=1` for a smoke run.
//!
//! One run measures, against the same simulator settings:
//! - the baseline: the outbox worker with concurrency 1 — one request at a
//!   time, which is how the peers' pollers talk to their cloud;
//! - fiscald at its default concurrency (4) and at 32.
//!
//! Every scenario starts from a fresh journal holding N accepted receipts and
//! a fresh simulator, and ends when the outbox is empty. The simulator's
//! counters prove each receipt became exactly one document.

use fiscald::clock::{Clock, SystemClock};
use fiscald::config;
use fiscald::domain::{
    CalculationMethod, Item, Line, Money, Payment, PaymentKind, PaymentSubject, Quantity, Receipt,
    ReceiptKind, Source, TaxSystem, Vat,
};
use fiscald::journal::{Journal, NewReceipt, Options};
use fiscald::sim::cloud::{Knobs, SimCloud, SimConfig};
use fiscald::sync::client::CloudClient;
use fiscald::sync::worker::{Worker, WorkerConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LATENCY_MS: u64 = 20;

fn receipt(i: u64) -> Receipt {
    let price = Money(1000 + (i % 5000) as i64);
    Receipt {
        correction: None,
        marking_checks: vec![],
        discount: Default::default(),
        original_date: None,
        kind: ReceiptKind::Sale,
        tax_system: TaxSystem::Common,
        currency: "RUB".into(),
        items: vec![Item {
            receipt_discount: Default::default(),
            line: Line {
                name: format!("Товар {i}"),
                quantity: Quantity(1000),
                price,
                vat: Vat::Vat20,
                payment_subject: PaymentSubject::Commodity,
                calculation_method: CalculationMethod::FullPay,
                barcode: None,
                class_code: None,
                package_code: None,
                marking: vec![],
                unit: Default::default(),
                discount: Default::default(),
                agent: None,
            },
            total: price,
        }],
        payments: vec![Payment {
            kind: PaymentKind::Cash,
            amount: price,
        }],
        total: price,
        change: Money::ZERO,
        cashier: None,
        buyer: None,
        uz: None,
    }
}

struct Outcome {
    receipts: u64,
    seconds: f64,
    documents: u64,
    duplicates: u64,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.receipts as f64 / self.seconds
    }
}

async fn scenario(n: u64, concurrency: usize) -> Outcome {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&root).unwrap();
    let dir = tempfile::tempdir_in(&root).unwrap();
    let mut settings = config::load_str(config::DEMO_CONFIG).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let journal = Journal::open(
        Options {
            queue_capacity: 65_536,
            ..Options::from_settings(&settings, dir.path().join("journal.sqlite"))
        },
        clock.clone(),
    )
    .unwrap();
    // Queue N receipts (group-committed, untimed).
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let journal = journal.clone();
        tasks.spawn(async move {
            let new = NewReceipt {
                source: Source::Native,
                caller_key: None,
                receipt: receipt(i),
            };
            journal.accept(new, Duration::from_secs(60)).await.unwrap();
        });
        if tasks.len() >= 256 {
            tasks.join_next().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    assert_eq!(journal.sync_counts().await.unwrap().pending, n);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = SimCloud::start(
        listener,
        SimConfig {
            knobs: Knobs {
                latency_ms: Some(LATENCY_MS),
                ..Knobs::default()
            },
            ..SimConfig::default()
        },
    )
    .await;
    settings.cloud.base_url = sim.base_url();
    settings.cloud.concurrency = concurrency;
    settings.cloud.poll_interval = Duration::from_millis(50);
    let client =
        Arc::new(CloudClient::new(&settings.cloud, journal.clone(), clock.clone()).unwrap());
    let started = Instant::now();
    let worker = Worker::spawn(
        journal.clone(),
        client,
        clock,
        WorkerConfig {
            concurrency,
            retry: settings.cloud.retry,
            poll_interval: settings.cloud.poll_interval,
            probe_interval: settings.cloud.probe_interval,
        },
        Arc::new(tokio::sync::Notify::new()),
    );
    loop {
        let counts = journal.sync_counts().await.unwrap();
        if counts.pending == 0 {
            break;
        }
        assert_eq!(counts.parked, 0, "no receipt may be rejected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    worker.stop(Duration::from_secs(10)).await;
    let stats = sim.stats();
    sim.stop().await;
    let j = journal.clone();
    tokio::task::spawn_blocking(move || j.close())
        .await
        .unwrap();
    Outcome {
        receipts: n,
        seconds,
        documents: stats.cloud.documents,
        duplicates: stats.cloud.duplicates,
    }
}

fn main() {
    let quick = std::env::var_os("FISCALD_BENCH_QUICK").is_some();
    let (n_serial, n_default, n_wide) = if quick {
        (20, 40, 200)
    } else {
        (300, 2_000, 10_000)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "sync benchmark: simulator latency {LATENCY_MS} ms per request; 2 requests per receipt (register, read document)"
    );
    let runs = [
        ("one at a time (baseline)", n_serial, 1),
        ("fiscald, concurrency 4 (default)", n_default, 4),
        ("fiscald, concurrency 32", n_wide, 32),
    ];
    let mut results = Vec::new();
    for (name, n, c) in runs {
        let o = rt.block_on(scenario(n, c));
        assert_eq!(o.documents, o.receipts, "{name}: one document per receipt");
        println!(
            "{name:<36} {:>6} receipts in {:>7.2} s = {:>8.1} receipts/s   documents {}  duplicate registrations {}",
            o.receipts,
            o.seconds,
            o.rate(),
            o.documents,
            o.duplicates
        );
        results.push(o);
    }
    let base = results[0].rate();
    println!("ratio default/baseline: {:.1}x", results[1].rate() / base);
    println!(
        "ratio concurrency 32/baseline: {:.1}x (target >= 10x)",
        results[2].rate() / base
    );
}
