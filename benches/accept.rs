//! Acceptance benchmark: what does fiscald add on top of one durable SQLite commit?
//!
//! `cargo bench --bench accept` (well under a minute on 2 cores once built);
//! `FISCALD_BENCH_QUICK=1` for a smoke run of a few seconds.
//! `FISCALD_BENCH_CLIENT=reqwest` makes reqwest the client the ratios use
//! (default: a raw HTTP/1.1 keep-alive client on tokio `TcpStream`, which
//! costs less CPU; both are measured in every run). See docs/PERFORMANCE.md.
//!
//! Everything runs in this one process: the daemon on its own multi-threaded
//! tokio runtime, the clients on a current-thread runtime on the main thread,
//! every SQLite file in a temp dir under `target/` (a real disk, not tmpfs).
//! Cloud sync is switched off: this measures accepting receipts, not sending
//! them on.

mod common;

use fiscald::api::native;

use fiscald::clock::SystemClock;
use fiscald::config;
use fiscald::daemon::Daemon;
use fiscald::domain::{Receipt, Source, validate};
use fiscald::journal::{Accepted, Journal, NewReceipt};
use rusqlite::{Connection, TransactionBehavior};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The receipt every fiscald request posts (no Idempotency-Key: each POST is a
/// new receipt). Its JSON is also the body of the bare-SQLite baseline row.
const RECEIPT: &str = r#"{
  "type": "sale",
  "tax_system": "common",
  "cashier": {"name": "Иванова А.П."},
  "buyer": {"email": "buyer@example.com"},
  "items": [
    {"name": "Хлеб ржаной", "quantity": 2, "price": "45.50", "vat": "10",
     "payment_subject": "commodity", "calculation_method": "full_pay", "barcode": "4600000000015"},
    {"name": "Сыр, весовой", "quantity": "0.350", "price": "899.00", "total": "314.65", "vat": "22"},
    {"name": "Молоко 3,2% 1 л", "quantity": 1, "price": "89.90", "vat": "10",
     "payment_subject": "commodity", "calculation_method": "full_pay", "barcode": "4600000000022"},
    {"name": "Пакет-майка", "quantity": 1, "price": "9.99", "vat": "22"}
  ],
  "payments": [
    {"kind": "electronic", "amount": "300.00"},
    {"kind": "cash", "amount": "205.54"}
  ],
  "total": "505.54"
}"#;

const CONCURRENCY: usize = 64;

struct Plan {
    quick: bool,
    /// Untimed requests/commits before each serial phase.
    warmup: usize,
    /// Timed commits or requests in each serial (c=1) phase.
    serial: usize,
    /// Timed requests in each c=64 phase, and untimed ones before it.
    concurrent: usize,
    concurrent_warmup: usize,
}

impl Plan {
    fn from_env() -> Plan {
        let quick = std::env::var("FISCALD_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Plan {
                quick,
                warmup: 50,
                serial: 200,
                concurrent: 2_000,
                concurrent_warmup: 256,
            }
        } else {
            Plan {
                quick,
                warmup: 300,
                serial: 3_000,
                concurrent: 20_000,
                concurrent_warmup: 2_000,
            }
        }
    }
}

fn main() {
    let plan = Plan::from_env();
    let primary_reqwest = std::env::var("FISCALD_BENCH_CLIENT").is_ok_and(|v| v == "reqwest");
    let root = common::bench_root();
    std::fs::create_dir_all(&root).expect("create the bench dir under target/");
    valid_receipt();

    println!(
        "fiscald accept benchmark ({} run)",
        if plan.quick { "QUICK" } else { "full" }
    );
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    // What the rest of the machine is doing: other work skews fsync and latency.
    let idle_check = MachineCpu::now();
    std::thread::sleep(Duration::from_secs(1));
    let busy_before = MachineCpu::now().others_since(&idle_check);
    println!(
        "  cpus: {cpus}; CPU used by other processes in the second before the run: {:.0}%",
        busy_before.0
    );
    if busy_before.0 > 25.0 {
        println!("  WARNING: the machine is busy; other work skews latency and fsync times");
    }
    let run_start = MachineCpu::now();
    let (device, fstype, mount) = filesystem_of(&root);
    println!(
        "  temp dir: {} on {device} ({fstype}, mounted at {mount})",
        root.display()
    );
    if fstype == "tmpfs" || fstype == "ramfs" {
        println!(
            "  WARNING: the temp dir is in memory: fsync is free, the baseline is meaningless"
        );
    }
    println!(
        "  samples: {} per c=1 phase, {} per c={CONCURRENCY} phase (warm-up {} / {})",
        plan.serial, plan.concurrent, plan.warmup, plan.concurrent_warmup
    );
    println!();

    // 1. Baseline: one INSERT + COMMIT per row, the journal's pragmas, real disk.
    let dir = tempdir(&root);
    let bare = bare_commits(&dir.path().join("bare.sqlite"), &plan, "FULL");
    // The same without fsync: how much of a commit is the disk.
    let bare_nosync = bare_commits(&dir.path().join("nosync.sqlite"), &plan, "OFF");
    drop(dir);

    // 2 and 3: the daemon in-process, on the demo config.
    let dir = tempdir(&root);
    let mut settings = config::load_str(config::DEMO_CONFIG).expect("the demo config is valid");
    settings.journal_path = dir.path().join("journal.sqlite");
    settings.listen = "127.0.0.1:0".parse().expect("address");
    settings.cloud.enabled = false;
    let server = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fiscald-server")
        .build()
        .expect("server runtime");
    let daemon = server
        .block_on(Daemon::start(&settings, Arc::new(SystemClock)))
        .expect("the daemon starts");
    let addr = daemon.addr;
    let journal = daemon.journal.clone();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    let m = client.block_on(async {
        let j = &journal;
        let mut m = Measured::default();
        // Warm up both clients and the daemon (connections, caches, WAL).
        serial(addr, Kind::Raw, Target::Accept, plan.warmup, j).await;
        serial(addr, Kind::Reqwest, Target::Accept, plan.warmup, j).await;

        // 2. Concurrency 1.
        m.serial_raw = Some(serial(addr, Kind::Raw, Target::Accept, plan.serial, j).await);
        m.serial_reqwest = Some(serial(addr, Kind::Reqwest, Target::Accept, plan.serial, j).await);
        // 3. Concurrency 64.
        concurrent(addr, Kind::Raw, Target::Accept, plan.concurrent_warmup, j).await;
        m.conc_raw = Some(concurrent(addr, Kind::Raw, Target::Accept, plan.concurrent, j).await);
        concurrent(
            addr,
            Kind::Reqwest,
            Target::Accept,
            plan.concurrent_warmup,
            j,
        )
        .await;
        m.conc_reqwest =
            Some(concurrent(addr, Kind::Reqwest, Target::Accept, plan.concurrent, j).await);

        // Diagnostics: the HTTP floor (a 404 never reaches the journal) ...
        serial(addr, Kind::Raw, Target::NotFound, plan.warmup, j).await;
        m.diag
            .push(serial(addr, Kind::Raw, Target::NotFound, plan.serial, j).await);
        m.diag
            .push(concurrent(addr, Kind::Raw, Target::NotFound, plan.concurrent, j).await);
        // ... and the journal without HTTP: tasks calling Journal::accept.
        m.diag.push(journal_direct(j, 1, plan.serial).await);
        // ... and the handler's own work without I/O.
        m.diag.push(handler_cpu(j, plan.serial).await);
        m.diag
            .push(journal_direct(j, CONCURRENCY, plan.concurrent).await);
        m
    });

    let totals = journal.commit_stats();
    server.block_on(daemon.stop()).expect("the daemon stops");
    drop(server);
    drop(dir);

    let raw = (m.serial_raw.expect("ran"), m.conc_raw.expect("ran"));
    let req = (m.serial_reqwest.expect("ran"), m.conc_reqwest.expect("ran"));
    let ((serial_row, conc_row), (other_serial, other_conc)) = if primary_reqwest {
        (req, raw)
    } else {
        (raw, req)
    };
    let p99_ratio = serial_row.lat.p99 / bare.lat.p99;
    let tput_ratio = conc_row.rate / bare.rate;
    let conc_batch = conc_row.batch();
    let mut rows = vec![
        bare,
        serial_row,
        conc_row,
        bare_nosync,
        other_serial,
        other_conc,
    ];
    rows.extend(m.diag);

    print_table(&rows);
    println!();
    println!(
        "journal writer over the whole run: {} commits for {} commands, largest batch {}",
        totals.commits, totals.commands, totals.largest_batch
    );
    let (others, steal) = MachineCpu::now().others_since(&run_start);
    println!(
        "other processes used {others:.0}% of the machine's CPU during the run (steal {steal:.0}%)"
    );
    println!(
        "ratios use the {} client",
        if primary_reqwest {
            "reqwest"
        } else {
            "raw HTTP/1.1 keep-alive"
        }
    );
    println!();
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!(
        "RATIO p99(fiscald c=1) / p99(bare commit)         = {p99_ratio:.2}  (target <= 2: {})",
        verdict(p99_ratio <= 2.0)
    );
    println!(
        "RATIO throughput(c={CONCURRENCY}) / bare commit rate    = {tput_ratio:.2}  (target >= 10: {}; {} receipts per commit)",
        verdict(tput_ratio >= 10.0),
        conc_batch.map_or("?".into(), |b| format!("{b:.1}"))
    );
}

#[derive(Default)]
struct Measured {
    serial_raw: Option<Row>,
    serial_reqwest: Option<Row>,
    conc_raw: Option<Row>,
    conc_reqwest: Option<Row>,
    diag: Vec<Row>,
}

// ---------------------------------------------------------------------------
// Measuring.

/// One measured phase.
struct Row {
    name: String,
    lat: Stats,
    /// Operations per second over the whole timed phase.
    rate: f64,
    /// Commits and the operations they carried, when the phase commits.
    commits: Option<(u64, u64)>,
    /// CPU during the phase, in % of one core.
    cpu: Usage,
    /// Bytes the committing thread wrote per commit (WAL frames, checkpoints).
    written_per_commit: Option<f64>,
}

impl Row {
    /// Operations per commit.
    fn batch(&self) -> Option<f64> {
        match self.commits {
            Some((commits, ops)) if commits > 0 => Some(ops as f64 / commits as f64),
            _ => None,
        }
    }
}

/// Latency distribution, in microseconds.
struct Stats {
    n: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Stats {
        assert!(!samples.is_empty());
        samples.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        // Nearest rank.
        let pct = |p: f64| {
            let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            us(samples[rank.clamp(1, samples.len()) - 1])
        };
        Stats {
            n: samples.len(),
            p50: pct(50.0),
            p99: pct(99.0),
            p999: pct(99.9),
            max: us(*samples.last().expect("not empty")),
        }
    }
}

/// Per-role totals over this process's threads: on-CPU time (ns) from
/// `/proc/self/task/*/schedstat`, or bytes written from `.../io` (`wchar`).
#[derive(Clone, Copy, Default)]
struct Usage {
    /// The `journal-writer` thread.
    writer: f64,
    /// The daemon's tokio runtime (workers and blocking pool).
    server: f64,
    /// Everything else: the main thread (clients, baselines) and helpers.
    rest: f64,
}

impl Usage {
    fn sample() -> (Usage, Usage) {
        let mut cpu = Usage::default();
        let mut written = Usage::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return (cpu, written);
        };
        for task in tasks.flatten() {
            let dir = task.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let ns: f64 = std::fs::read_to_string(dir.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0.0);
            let wchar: f64 = std::fs::read_to_string(dir.join("io"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("wchar:"))
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0.0);
            let (c, w) = match comm.trim() {
                "journal-writer" => (&mut cpu.writer, &mut written.writer),
                name if name.starts_with("fiscald-server") => {
                    (&mut cpu.server, &mut written.server)
                }
                _ => (&mut cpu.rest, &mut written.rest),
            };
            *c += ns;
            *w += wchar;
        }
        (cpu, written)
    }

    fn minus(self, before: Usage) -> Usage {
        Usage {
            writer: self.writer - before.writer,
            server: self.server - before.server,
            rest: self.rest - before.rest,
        }
    }
}

/// Who committed during a phase.
enum Committer<'a> {
    /// The journal writer: commits and commands from its counters.
    Journal(&'a Journal),
    /// The main thread, once per operation (the bare baseline).
    Main,
    /// Nobody (requests that never reach the journal).
    Nobody,
}

/// Start of a timed phase.
struct Meter<'a> {
    committer: Committer<'a>,
    stats: Option<(u64, u64)>,
    cpu: Usage,
    written: Usage,
    start: Instant,
}

impl<'a> Meter<'a> {
    fn start(committer: Committer<'a>) -> Meter<'a> {
        let stats = match &committer {
            Committer::Journal(j) => {
                let s = j.commit_stats();
                Some((s.commits, s.commands))
            }
            _ => None,
        };
        let (cpu, written) = Usage::sample();
        Meter {
            committer,
            stats,
            cpu,
            written,
            start: Instant::now(),
        }
    }

    fn finish(self, name: String, samples: Vec<Duration>) -> Row {
        let wall = self.start.elapsed();
        let (cpu, written) = Usage::sample();
        let cpu = cpu.minus(self.cpu);
        let written = written.minus(self.written);
        let pct = |ns: f64| ns / 1e7 / wall.as_secs_f64();
        let (commits, bytes) = match (&self.committer, self.stats) {
            (Committer::Journal(j), Some((commits, commands))) => {
                let s = j.commit_stats();
                (
                    Some((s.commits - commits, s.commands - commands)),
                    written.writer,
                )
            }
            (Committer::Main, _) => (
                Some((samples.len() as u64, samples.len() as u64)),
                written.rest,
            ),
            _ => (None, 0.0),
        };
        Row {
            name,
            rate: samples.len() as f64 / wall.as_secs_f64(),
            written_per_commit: commits.filter(|c| c.0 > 0).map(|(c, _)| bytes / c as f64),
            commits,
            lat: Stats::of(samples),
            cpu: Usage {
                writer: pct(cpu.writer),
                server: pct(cpu.server),
                rest: pct(cpu.rest),
            },
        }
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<42} {:>6} {:>7} {:>7} {:>8} {:>7} {:>7} {:>6} {:>7} {:>5} {:>5} {:>5}",
        "scenario",
        "n",
        "p50 µs",
        "p99 µs",
        "p99.9µs",
        "max µs",
        "ops/s",
        "batch",
        "KB/cmt",
        "wr%",
        "srv%",
        "main%"
    );
    println!("{}", "-".repeat(127));
    for r in rows {
        let batch = r.batch().map_or("-".into(), |b| format!("{b:.1}"));
        let kb = r
            .written_per_commit
            .map_or("-".into(), |b| format!("{:.1}", b / 1024.0));
        println!(
            "{:<42} {:>6} {:>7.0} {:>7.0} {:>8.0} {:>7.0} {:>7.0} {:>6} {:>7} {:>5.0} {:>5.0} {:>5.0}",
            r.name,
            r.lat.n,
            r.lat.p50,
            r.lat.p99,
            r.lat.p999,
            r.lat.max,
            r.rate,
            batch,
            kb,
            r.cpu.writer,
            r.cpu.server,
            r.cpu.rest
        );
    }
    println!("batch   = operations per commit (group commit), from the journal writer's counters");
    println!("KB/cmt  = bytes the committing thread wrote per commit (WAL frames + checkpoints)");
    println!(
        "wr% srv% main% = CPU in % of one core: journal-writer thread / daemon runtime / main thread"
    );
}

// ---------------------------------------------------------------------------
// The baseline: SQLite alone.

fn bare_commits(path: &Path, plan: &Plan, synchronous: &str) -> Row {
    let mut conn = Connection::open(path).expect("open sqlite");
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .expect("journal_mode");
    assert!(mode.eq_ignore_ascii_case("wal"), "WAL mode refused: {mode}");
    conn.pragma_update(None, "synchronous", synchronous)
        .expect("synchronous");
    conn.execute_batch("CREATE TABLE receipts (number INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .expect("create");
    let one = |conn: &mut Connection| {
        let start = Instant::now();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        tx.execute("INSERT INTO receipts (body) VALUES (?1)", [RECEIPT])
            .expect("insert");
        tx.commit().expect("commit");
        start.elapsed()
    };
    for _ in 0..plan.warmup {
        one(&mut conn);
    }
    let meter = Meter::start(Committer::Main);
    let samples = (0..plan.serial).map(|_| one(&mut conn)).collect();
    let name = if synchronous == "FULL" {
        "1  bare INSERT+COMMIT (WAL, sync=FULL)".to_string()
    } else {
        format!("d  bare INSERT+COMMIT, sync={synchronous} (no fsync)")
    };
    meter.finish(name, samples)
}

// ---------------------------------------------------------------------------
// HTTP clients.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Hand-written HTTP/1.1 over one keep-alive `TcpStream` per client.
    Raw,
    /// reqwest, one shared keep-alive pool.
    Reqwest,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `POST /v1/receipts`, expecting 201.
    Accept,
    /// `POST /v1/nothing`, expecting 404: HTTP and routing only.
    NotFound,
}

impl Target {
    fn path(self) -> &'static str {
        match self {
            Target::Accept => "/v1/receipts",
            Target::NotFound => "/v1/nothing",
        }
    }
    fn status(self) -> u16 {
        match self {
            Target::Accept => 201,
            Target::NotFound => 404,
        }
    }
}

enum Client {
    Raw(RawConn),
    Reqwest(reqwest::Client, String),
}

impl Client {
    async fn new(addr: SocketAddr, kind: Kind, target: Target, shared: &reqwest::Client) -> Self {
        match kind {
            Kind::Raw => Client::Raw(RawConn::connect(addr, target).await),
            Kind::Reqwest => {
                Client::Reqwest(shared.clone(), format!("http://{addr}{}", target.path()))
            }
        }
    }

    /// One request; returns the status.
    async fn post(&mut self) -> u16 {
        match self {
            Client::Raw(c) => c.post().await,
            Client::Reqwest(c, url) => {
                let resp = c
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .body(RECEIPT)
                    .send()
                    .await
                    .expect("request");
                let status = resp.status().as_u16();
                resp.bytes().await.expect("response body");
                status
            }
        }
    }
}

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

struct RawConn {
    stream: TcpStream,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl RawConn {
    async fn connect(addr: SocketAddr, target: Target) -> RawConn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            target.path(),
            RECEIPT.len()
        )
        .into_bytes();
        request.extend_from_slice(RECEIPT.as_bytes());
        RawConn {
            stream,
            request,
            buf: Vec::with_capacity(8192),
        }
    }

    async fn post(&mut self) -> u16 {
        self.stream.write_all(&self.request).await.expect("send");
        common::read_reply(&mut self.stream, &mut self.buf).await
    }
}

fn label(kind: Kind, target: Target, c: usize) -> String {
    let client = match kind {
        Kind::Raw => "raw",
        Kind::Reqwest => "reqwest",
    };
    match target {
        Target::Accept => format!(
            "{} fiscald POST c={c} ({client})",
            if c == 1 { "2 " } else { "3 " }
        ),
        Target::NotFound => format!("d  HTTP floor: 404, c={c} ({client})"),
    }
}

/// `n` requests one after another on one connection.
async fn serial(addr: SocketAddr, kind: Kind, target: Target, n: usize, journal: &Journal) -> Row {
    let shared = reqwest_client();
    let mut client = Client::new(addr, kind, target, &shared).await;
    // One request to open the connection before timing.
    assert_eq!(client.post().await, target.status());
    let mut samples = Vec::with_capacity(n);
    let meter = Meter::start(committer(target, journal));
    for _ in 0..n {
        let t = Instant::now();
        let status = client.post().await;
        samples.push(t.elapsed());
        assert_eq!(status, target.status(), "unexpected status");
    }
    meter.finish(label(kind, target, 1), samples)
}

fn committer(target: Target, journal: &Journal) -> Committer<'_> {
    match target {
        Target::Accept => Committer::Journal(journal),
        Target::NotFound => Committer::Nobody,
    }
}

/// `n` requests from [`CONCURRENCY`] clients, each on its own connection
/// (raw) or from one shared pool (reqwest), all connected before timing.
async fn concurrent(
    addr: SocketAddr,
    kind: Kind,
    target: Target,
    n: usize,
    journal: &Journal,
) -> Row {
    let shared = reqwest_client();
    let mut clients = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        clients.push(Client::new(addr, kind, target, &shared).await);
    }
    // Open every connection (and fill reqwest's pool) before timing.
    let opened = clients.into_iter().map(|mut c| async move {
        assert_eq!(c.post().await, target.status());
        c
    });
    let clients = join_all(opened).await;

    let meter = Meter::start(committer(target, journal));
    let tasks = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| async move {
            let share = n / CONCURRENCY + usize::from(i < n % CONCURRENCY);
            let mut samples = Vec::with_capacity(share);
            for _ in 0..share {
                let t = Instant::now();
                let status = c.post().await;
                samples.push(t.elapsed());
                assert_eq!(status, target.status(), "unexpected status");
            }
            samples
        });
    let samples: Vec<Duration> = join_all(tasks).await.into_iter().flatten().collect();
    meter.finish(label(kind, target, CONCURRENCY), samples)
}

/// `c` tasks calling `Journal::accept` directly, `n` receipts in all: the
/// journal and its writer thread without HTTP, JSON parsing or validation.
async fn journal_direct(journal: &Journal, c: usize, n: usize) -> Row {
    let receipt = valid_receipt();
    let meter = Meter::start(Committer::Journal(journal));
    let tasks = (0..c).map(|i| {
        let journal = journal.clone();
        let receipt = receipt.clone();
        async move {
            let share = n / c + usize::from(i < n % c);
            let mut samples = Vec::with_capacity(share);
            for _ in 0..share {
                let new = NewReceipt {
                    source: Source::Native,
                    caller_key: None,
                    receipt: receipt.clone(),
                };
                let t = Instant::now();
                let done = journal.accept(new, Duration::from_secs(30)).await;
                samples.push(t.elapsed());
                assert!(
                    matches!(done, Ok(Accepted::Created(_))),
                    "journal accept failed"
                );
            }
            samples
        }
    });
    let samples: Vec<Duration> = join_all(tasks).await.into_iter().flatten().collect();
    meter.finish(
        format!("d  Journal::accept direct (no HTTP), c={c}"),
        samples,
    )
}

/// What `POST /v1/receipts` computes besides I/O, timed on this thread:
/// parse the body, check it, and render and encode the reply.
async fn handler_cpu(journal: &Journal, n: usize) -> Row {
    let new = NewReceipt {
        source: Source::Native,
        caller_key: None,
        receipt: valid_receipt(),
    };
    let Ok(Accepted::Created(stored)) = journal.accept(new, Duration::from_secs(30)).await else {
        panic!("journal accept failed");
    };
    let profile = config::load_str(config::DEMO_CONFIG)
        .expect("the demo config is valid")
        .profile;
    let one = || {
        let start = Instant::now();
        let json: serde_json::Value = serde_json::from_slice(RECEIPT.as_bytes()).expect("JSON");
        let draft = native::parse_receipt(&json).expect("parses");
        let receipt = validate(
            draft,
            &profile,
            chrono::NaiveDate::from_ymd_opt(2026, 11, 23).expect("a date"),
        )
        .expect("valid");
        let reply = serde_json::to_vec(&native::render(&stored)).expect("encodes");
        std::hint::black_box((receipt, reply));
        start.elapsed()
    };
    for _ in 0..n / 10 {
        one();
    }
    let meter = Meter::start(Committer::Nobody);
    let samples = (0..n).map(|_| one()).collect();
    meter.finish("d  handler CPU: parse+validate+render".into(), samples)
}

/// [`RECEIPT`] as the API hands it to the journal.
fn valid_receipt() -> Receipt {
    common::valid_receipt(RECEIPT)
}

/// Run the futures as tasks on the current runtime; their outputs in input order.
async fn join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("client task"));
    }
    out
}

// ---------------------------------------------------------------------------
// Where the temp files go.

fn tempdir(root: &Path) -> tempfile::TempDir {
    common::tempdir(root, "accept")
}

/// (device, fs type, mount point) of the mount holding `path`, from /proc/mounts.
fn filesystem_of(path: &Path) -> (String, String, String) {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(String, String, String)> = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(dev), Some(mnt), Some(fs)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if path.starts_with(mnt) && best.as_ref().is_none_or(|b| mnt.len() >= b.2.len()) {
            best = Some((dev.into(), fs.into(), mnt.into()));
        }
    }
    best.unwrap_or_else(|| ("?".into(), "?".into(), "?".into()))
}

/// Machine-wide and own CPU ticks, to tell how much other processes ran.
struct MachineCpu {
    /// Non-idle ticks of all CPUs, from the `cpu` line of `/proc/stat`.
    busy: u64,
    /// All ticks of all CPUs.
    total: u64,
    /// Ticks the hypervisor gave to someone else.
    steal: u64,
    /// This process's user + system ticks, from `/proc/self/stat`.
    own: u64,
}

impl MachineCpu {
    fn now() -> MachineCpu {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let f: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        let field = |i: usize| f.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        let own = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let after = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
                Some(after.get(11)?.parse::<u64>().ok()? + after.get(12)?.parse::<u64>().ok()?)
            })
            .unwrap_or(0);
        MachineCpu {
            busy: field(0) + field(1) + field(2) + field(5) + field(6) + field(7),
            total: f.iter().sum(),
            steal: field(7),
            own,
        }
    }

    /// (% of all CPUs used by other processes, % stolen) since `before`.
    fn others_since(&self, before: &MachineCpu) -> (f64, f64) {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        let busy = self.busy.saturating_sub(before.busy) as f64;
        let own = self.own.saturating_sub(before.own) as f64;
        let steal = self.steal.saturating_sub(before.steal) as f64;
        (
            (100.0 * (busy - own - steal) / total).max(0.0),
            100.0 * steal / total,
        )
    }
}
