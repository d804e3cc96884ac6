//! Acceptance benchmark: what does fiscald add on top of one durable SQLite commit?
//!
//! `cargo bench --bench accept` (about 1–2 minutes); `FISCALD_BENCH_QUICK=1`
//! for a smoke run of a few seconds. `FISCALD_BENCH_CLIENT=reqwest` makes the
//! reqwest client the primary one (default: a raw HTTP/1.1 keep-alive client
//! on tokio `TcpStream`, whose own cost is lower; both are measured anyway).
//! See docs/PERFORMANCE.md for what the numbers mean.
//!
//! Everything runs in this one process: the daemon on its own multi-threaded
//! tokio runtime, the clients on a current-thread runtime on the main thread,
//! the journal in a temp dir under `target/` (a real disk, not tmpfs).

use fiscald::api::native;
use fiscald::clock::{Clock, SystemClock};
use fiscald::config;
use fiscald::daemon::Daemon;
use fiscald::domain::{Receipt, Source, validate};
use fiscald::journal::{Accepted, MIGRATIONS, NewReceipt};
use rusqlite::{Connection, TransactionBehavior, params};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    warmup: usize,
    bare: usize,
    serial: usize,
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
                bare: 200,
                serial: 200,
                concurrent: 2_000,
                concurrent_warmup: 256,
            }
        } else {
            Plan {
                quick,
                warmup: 300,
                bare: 3_000,
                serial: 3_000,
                concurrent: 20_000,
                concurrent_warmup: 2_000,
            }
        }
    }
}

/// The wall clock, counting its reads. The journal writer reads the clock
/// exactly once per committed batch (`writer::commit_batch`), so the count is
/// the number of group commits.
#[derive(Default)]
struct CountingClock(AtomicU64);

impl Clock for CountingClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.fetch_add(1, Ordering::Relaxed);
        SystemClock.now()
    }
}

impl CountingClock {
    fn reads(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One measured scenario.
struct Row {
    name: String,
    lat: Stats,
    /// Operations per second over the whole timed phase.
    rate: f64,
    /// Group commits during the phase, when known.
    commits: Option<u64>,
    /// CPU used during the phase, as % of one core: (writer, server, rest).
    cpu: Cpu,
}

/// CPU time of this process's threads, by role, in nanoseconds.
#[derive(Clone, Copy, Default)]
struct Cpu {
    /// The `journal-writer` thread.
    writer: f64,
    /// The daemon's tokio runtime (workers and blocking pool).
    server: f64,
    /// Everything else: the main thread (clients, baselines) and helpers.
    rest: f64,
}

impl Cpu {
    /// Sum of each thread's on-CPU time from `/proc/self/task/*/schedstat`.
    fn now() -> Cpu {
        let mut cpu = Cpu::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return cpu;
        };
        for task in tasks.flatten() {
            let dir = task.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let ns: f64 = std::fs::read_to_string(dir.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0.0);
            match comm.trim() {
                "journal-writer" => cpu.writer += ns,
                c if c.starts_with("fiscald-server") => cpu.server += ns,
                _ => cpu.rest += ns,
            }
        }
        cpu
    }

    /// Percent of one core used since `before`, over `wall`.
    fn since(before: Cpu, wall: Duration) -> Cpu {
        let after = Cpu::now();
        let pct = |a: f64, b: f64| (a - b) / 1e7 / wall.as_secs_f64();
        Cpu {
            writer: pct(after.writer, before.writer),
            server: pct(after.server, before.server),
            rest: pct(after.rest, before.rest),
        }
    }
}

/// Start of a timed phase.
struct Meter {
    start: Instant,
    clock: u64,
    cpu: Cpu,
}

impl Meter {
    fn start(clock: Option<&CountingClock>) -> Meter {
        let cpu = Cpu::now();
        Meter {
            clock: clock.map_or(0, |c| c.reads()),
            cpu,
            start: Instant::now(),
        }
    }

    /// `commits`: the clock to read the number of group commits from, or a
    /// known count.
    fn finish(self, name: String, samples: Vec<Duration>, commits: Commits<'_>) -> Row {
        let wall = self.start.elapsed();
        let cpu = Cpu::since(self.cpu, wall);
        Row {
            name,
            rate: samples.len() as f64 / wall.as_secs_f64(),
            commits: match commits {
                Commits::Clock(c) => Some(c.reads() - self.clock),
                Commits::Known(n) => Some(n),
                Commits::None => None,
            },
            lat: Stats::of(samples),
            cpu,
        }
    }
}

enum Commits<'a> {
    Clock(&'a CountingClock),
    Known(u64),
    None,
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

fn main() {
    let plan = Plan::from_env();
    let primary_reqwest = std::env::var("FISCALD_BENCH_CLIENT").is_ok_and(|v| v == "reqwest");
    let root = bench_root();
    std::fs::create_dir_all(&root).expect("create the bench dir under target/");

    println!(
        "fiscald accept benchmark ({} run)",
        if plan.quick { "QUICK" } else { "full" }
    );
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("  cpus: {cpus}");
    let (device, fstype, mount) = filesystem_of(&root);
    println!(
        "  temp dir: {} on {device} ({fstype}, mounted at {mount})",
        root.display()
    );
    if fstype == "tmpfs" || fstype == "ramfs" {
        println!(
            "  WARNING: the temp dir is in memory; fsync is free and the baseline is meaningless"
        );
    }
    println!(
        "  samples: bare {} / serial {} / c={CONCURRENCY} {} (warm-up {} / {})",
        plan.bare, plan.serial, plan.concurrent, plan.warmup, plan.concurrent_warmup
    );
    println!();

    valid_receipt();
    if std::env::var_os("TMP_EXP").is_some() {
        let plan = Plan { quick: false, warmup: 300, bare: 3000, serial: 3000, concurrent: 0, concurrent_warmup: 0 };
        for variant in ["plain", "sync_off", "no_autockpt"] {
            let dir = tempdir(&root);
            unsafe { std::env::set_var("TMP_VARIANT", variant) };
            let b = bare_commits(&dir.path().join("bare.sqlite"), &plan);
            let s1 = schema_commits(&dir.path().join("schema.sqlite"), &plan);
            let frames = |p: &Path| { let c = Connection::open(p).unwrap(); c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)).unwrap() };
            println!("{variant}: bare p50 {:.0} p99 {:.0} rate {:.0} cpu {:.0}% | 1b p50 {:.0} p99 {:.0} rate {:.0} cpu {:.0}% | frames bare {} 1b {}",
              b.lat.p50, b.lat.p99, b.rate, b.cpu.rest, s1.lat.p50, s1.lat.p99, s1.rate, s1.cpu.rest,
              frames(&dir.path().join("bare.sqlite")), frames(&dir.path().join("schema.sqlite")));
        }
        return;
    }
    let mut rows = Vec::new();

    // 1. Baseline: one INSERT + COMMIT per row, journal pragmas, real disk.
    let dir = tempdir(&root);
    let bare = bare_commits(&dir.path().join("bare.sqlite"), &plan);
    rows.push(bare);
    // 1b. The same, but fiscald's schema and the statements the writer runs
    // for one receipt: separates SQLite work from everything around it.
    let schema = schema_commits(&dir.path().join("schema.sqlite"), &plan);
    rows.push(schema);
    drop(dir);

    // 2 and 3: the daemon in-process.
    let dir = tempdir(&root);
    let mut settings = config::load_str(config::DEMO_CONFIG).expect("the demo config is valid");
    settings.journal_path = dir.path().join("journal.sqlite");
    settings.listen = "127.0.0.1:0".parse().expect("address");
    let clock = Arc::new(CountingClock::default());
    let server = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fiscald-server")
        .build()
        .expect("server runtime");
    let daemon = server
        .block_on(Daemon::start(&settings, clock.clone()))
        .expect("the daemon starts");
    let addr = daemon.addr;
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    if std::env::var_os("TMP_PROFILE").is_some() {
        client.block_on(async {
            let clock = &*clock;
            journal_direct(&daemon, CONCURRENCY, 2000, clock).await;
            eprintln!("PROFILE START");
            let r = journal_direct(&daemon, CONCURRENCY, 60000, clock).await;
            eprintln!("PROFILE END {} {:?}", r.rate, r.commits);
        });
        return;
    }
    let http = client.block_on(async {
        let mut out = HttpRows::default();
        let clock = &*clock;
        // Warm up both clients and the daemon (connection, page cache, WAL).
        serial(addr, Kind::Raw, Target::Accept, plan.warmup, clock).await;
        serial(addr, Kind::Reqwest, Target::Accept, plan.warmup, clock).await;

        // 2. Concurrency 1.
        out.serial_raw = Some(serial(addr, Kind::Raw, Target::Accept, plan.serial, clock).await);
        out.serial_reqwest =
            Some(serial(addr, Kind::Reqwest, Target::Accept, plan.serial, clock).await);
        // 3. Concurrency 64.
        for kind in [Kind::Raw, Kind::Reqwest] {
            concurrent(addr, kind, Target::Accept, plan.concurrent_warmup, clock).await;
            let row = concurrent(addr, kind, Target::Accept, plan.concurrent, clock).await;
            match kind {
                Kind::Raw => out.conc_raw = Some(row),
                Kind::Reqwest => out.conc_reqwest = Some(row),
            }
        }
        // Diagnostics: the HTTP floor (a 404 never reaches the journal) ...
        serial(addr, Kind::Raw, Target::NotFound, plan.warmup, clock).await;
        out.diag
            .push(serial(addr, Kind::Raw, Target::NotFound, plan.serial, clock).await);
        out.diag
            .push(concurrent(addr, Kind::Raw, Target::NotFound, plan.concurrent, clock).await);
        // ... and the journal without HTTP: tasks calling Journal::accept.
        out.diag
            .push(journal_direct(&daemon, 1, plan.serial, clock).await);
        out.diag
            .push(journal_direct(&daemon, CONCURRENCY, plan.concurrent, clock).await);
        out
    });

    // Bytes fiscald stores per receipt, for comparison with the baseline row.
    let stored = stored_bytes(&settings.journal_path);
    server.block_on(daemon.stop()).expect("the daemon stops");
    drop(server);
    drop(dir);

    let raw = (http.serial_raw.expect("ran"), http.conc_raw.expect("ran"));
    let req = (
        http.serial_reqwest.expect("ran"),
        http.conc_reqwest.expect("ran"),
    );
    let ((serial_row, conc_row), (other_serial, other_conc)) = if primary_reqwest {
        (req, raw)
    } else {
        (raw, req)
    };
    let bare_p99 = rows[0].lat.p99;
    let bare_rate = rows[0].rate;
    let p99_ratio = serial_row.lat.p99 / bare_p99;
    let tput_ratio = conc_row.rate / bare_rate;
    rows.push(serial_row);
    rows.push(conc_row);
    rows.push(other_serial);
    rows.push(other_conc);
    rows.extend(http.diag);

    print_table(&rows);
    println!();
    println!(
        "row sizes: baseline body {} B; fiscald stores {stored} B per receipt (receipt row + event row)",
        RECEIPT.len()
    );
    println!(
        "primary client: {}",
        if primary_reqwest {
            "reqwest"
        } else {
            "raw HTTP/1.1 keep-alive"
        }
    );
    println!();
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!(
        "RATIO p99(fiscald c=1) / p99(bare commit)       = {p99_ratio:.2}  (target <= 2: {})",
        verdict(p99_ratio <= 2.0)
    );
    println!(
        "RATIO throughput(c={CONCURRENCY}) / bare commit rate  = {tput_ratio:.2}  (target >= 10: {})",
        verdict(tput_ratio >= 10.0)
    );
}

#[derive(Default)]
struct HttpRows {
    serial_raw: Option<Row>,
    serial_reqwest: Option<Row>,
    conc_raw: Option<Row>,
    conc_reqwest: Option<Row>,
    diag: Vec<Row>,
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<44} {:>6} {:>7} {:>7} {:>8} {:>7} {:>7} {:>6} {:>5} {:>5} {:>5}",
        "scenario",
        "n",
        "p50 µs",
        "p99 µs",
        "p99.9µs",
        "max µs",
        "ops/s",
        "batch",
        "wr%",
        "srv%",
        "rest%"
    );
    println!("{}", "-".repeat(121));
    for r in rows {
        let batch = match r.commits {
            Some(c) if c > 0 => format!("{:.1}", r.lat.n as f64 / c as f64),
            _ => "-".into(),
        };
        println!(
            "{:<44} {:>6} {:>7.0} {:>7.0} {:>8.0} {:>7.0} {:>7.0} {:>6} {:>5.0} {:>5.0} {:>5.0}",
            r.name,
            r.lat.n,
            r.lat.p50,
            r.lat.p99,
            r.lat.p999,
            r.lat.max,
            r.rate,
            batch,
            r.cpu.writer,
            r.cpu.server,
            r.cpu.rest
        );
    }
    println!(
        "batch = receipts per group commit (the journal writer reads the clock once per commit)"
    );
    println!(
        "wr% / srv% / rest% = CPU during the phase in % of one core: journal-writer thread / \
         daemon runtime / main thread (clients, baselines)"
    );
}

// ---------------------------------------------------------------------------
// Baselines: SQLite alone.

fn open_like_the_journal(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open sqlite");
    let v = std::env::var("TMP_VARIANT").unwrap_or_default();
    if v == "no_autockpt" { conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap(); }
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .expect("journal_mode");
    assert!(mode.eq_ignore_ascii_case("wal"), "WAL mode refused: {mode}");
    conn.pragma_update(None, "synchronous", if v == "sync_off" { "OFF" } else { "FULL" })
        .expect("synchronous");
    conn.pragma_update(None, "foreign_keys", "ON")
        .expect("foreign_keys");
    conn
}

/// Time `n` transactions of `f`, after `warmup` untimed ones.
fn time_commits(
    conn: &mut Connection,
    warmup: usize,
    n: usize,
    name: &str,
    mut f: impl FnMut(&rusqlite::Transaction<'_>, usize),
) -> Row {
    let mut one = |conn: &mut Connection, i: usize| {
        let start = Instant::now();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        f(&tx, i);
        tx.commit().expect("commit");
        start.elapsed()
    };
    for i in 0..warmup {
        one(conn, i);
    }
    let mut samples = Vec::with_capacity(n);
    let meter = Meter::start(None);
    for i in 0..n {
        samples.push(one(conn, warmup + i));
    }
    meter.finish(name.into(), samples, Commits::Known(n as u64))
}

fn bare_commits(path: &Path, plan: &Plan) -> Row {
    let mut conn = open_like_the_journal(path);
    conn.execute_batch("CREATE TABLE receipts (number INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .expect("create");
    time_commits(
        &mut conn,
        plan.warmup,
        plan.bare,
        "1  bare INSERT+COMMIT (WAL, sync=FULL)",
        |tx, _| {
            tx.execute("INSERT INTO receipts (body) VALUES (?1)", [RECEIPT])
                .expect("insert");
        },
    )
}

fn schema_commits(path: &Path, plan: &Plan) -> Row {
    let mut conn = open_like_the_journal(path);
    {
        let tx = conn.transaction().expect("begin");
        for sql in MIGRATIONS {
            tx.execute_batch(sql).expect("migrate");
        }
        tx.commit().expect("commit");
    }
    let name = "1b same SQL as the journal writer, no HTTP";
    time_commits(&mut conn, plan.warmup, plan.serial, name, |tx, i| {
        // What writer::accept_one does for a receipt without a caller key.
        tx.execute_batch("SAVEPOINT one").expect("savepoint");
        let number: i64 = tx
            .query_row(
                "UPDATE counters SET value = value + 1 WHERE name = 'receipt_number' RETURNING value",
                [],
                |r| r.get(0),
            )
            .expect("counter");
        let id = format!("0197a000-0000-7000-8000-{i:012}");
        let at = "2025-06-01T12:00:00.000+03:00";
        tx.execute(
            "INSERT INTO receipts (number, id, source, state, idempotency_key, offline_url, total_minor,
                                   fingerprint, body, caller_key, created_at, updated_at)
             VALUES (?1, ?2, 'native', 'accepted', ?3, ?4, 50554, ?5, ?6, NULL, ?7, ?7)",
            params![
                number,
                id,
                format!("{number:08}1234{i:020}"),
                format!("http://127.0.0.1:8731/processing-api/receipt/{number:08}1234{i:020}"),
                "f".repeat(64),
                RECEIPT,
                at
            ],
        )
        .expect("insert receipt");
        tx.execute(
            "INSERT INTO receipt_events (receipt_id, at, actor, state, note) VALUES (?1, ?2, 'api:native', 'accepted', 'journaled')",
            params![id, at],
        )
        .expect("insert event");
        tx.execute_batch("RELEASE one").expect("release");
    })
}

fn stored_bytes(journal: &Path) -> u64 {
    let conn = Connection::open_with_flags(journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the journal read-only");
    conn.query_row(
        "SELECT
           (SELECT avg(length(id) + length(source) + length(state) + length(idempotency_key)
                      + length(offline_url) + length(fingerprint) + length(body)
                      + length(created_at) + length(updated_at) + 8 + 8) FROM receipts)
         + (SELECT avg(length(receipt_id) + length(at) + length(actor) + length(state)
                      + coalesce(length(note), 0) + 8) FROM receipt_events)",
        [],
        |r| r.get::<_, f64>(0),
    )
    .map(|b| b as u64)
    .unwrap_or(0)
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
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        // Read the head.
        let head_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos + 4;
            }
            let n = self.stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the daemon closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).expect("ASCII head");
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let mut length = None;
        for line in head.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
                assert!(
                    !(name.eq_ignore_ascii_case("transfer-encoding")),
                    "chunked replies are not supported by the raw client"
                );
            }
        }
        let total = head_end + length.expect("content-length in the reply");
        while self.buf.len() < total {
            let n = self.stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the daemon closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(self.buf.len(), total, "unexpected bytes after the reply");
        status
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
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
async fn serial(
    addr: SocketAddr,
    kind: Kind,
    target: Target,
    n: usize,
    clock: &CountingClock,
) -> Row {
    let shared = reqwest_client();
    let mut client = Client::new(addr, kind, target, &shared).await;
    // One request to open the connection before timing.
    assert_eq!(client.post().await, target.status());
    let mut samples = Vec::with_capacity(n);
    let meter = Meter::start(Some(clock));
    for _ in 0..n {
        let t = Instant::now();
        let status = client.post().await;
        samples.push(t.elapsed());
        assert_eq!(status, target.status(), "unexpected status");
    }
    meter.finish(label(kind, target, 1), samples, commits(target, clock))
}

fn commits(target: Target, clock: &CountingClock) -> Commits<'_> {
    match target {
        Target::Accept => Commits::Clock(clock),
        Target::NotFound => Commits::None,
    }
}

/// `n` requests from [`CONCURRENCY`] clients, each on its own connection
/// (raw) or from one shared pool (reqwest), all connected before timing.
async fn concurrent(
    addr: SocketAddr,
    kind: Kind,
    target: Target,
    n: usize,
    clock: &CountingClock,
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

    let meter = Meter::start(Some(clock));
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
    meter.finish(
        label(kind, target, CONCURRENCY),
        samples,
        commits(target, clock),
    )
}

/// [`CONCURRENCY`] tasks calling `Journal::accept` directly: the journal
/// writer's ceiling without HTTP, JSON parsing or validation.
async fn journal_direct(daemon: &Daemon, c: usize, n: usize, clock: &CountingClock) -> Row {
    let receipt = valid_receipt();
    let meter = Meter::start(Some(clock));
    let tasks = (0..c).map(|i| {
        let journal = daemon.journal.clone();
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
        Commits::Clock(clock),
    )
}

/// [`RECEIPT`] as the API would hand it to the journal.
fn valid_receipt() -> Receipt {
    let json: serde_json::Value = serde_json::from_str(RECEIPT).expect("receipt JSON");
    let draft =
        native::parse_receipt(&json).unwrap_or_else(|v| panic!("RECEIPT does not parse: {v:?}"));
    validate(draft, &config_profile()).unwrap_or_else(|v| panic!("RECEIPT is not valid: {v:?}"))
}

fn config_profile() -> fiscald::domain::Profile {
    config::load_str(config::DEMO_CONFIG)
        .expect("the demo config is valid")
        .profile
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

fn bench_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-tmp")
}

fn tempdir(root: &Path) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("accept-")
        .tempdir_in(root)
        .expect("temp dir under target/")
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
