//! The `fiscald` command line: the daemon, the demo, and config validation.
//! The only place that uses `anyhow`.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use fiscald::clock::SystemClock;
use fiscald::config::{self, DEFAULT_CONFIG_PATH, Settings};
use fiscald::sim::cloud::{Knobs, SimCloud, SimConfig};
use fiscald::sim::devices::control::{SimDevices, SimDevicesOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "fiscald", version, about = "Till-side fiscal agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// Config file.
        #[arg(long, env = "FISCALD_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// The receipt archive: list its monthly files, find a receipt in it,
    /// or run retention now (receipts final for longer than retain_days
    /// move from the journal into the archive).
    Archive {
        /// Config file (it says where the journal, and so the archive, is).
        #[arg(long, env = "FISCALD_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        #[command(subcommand)]
        what: ArchiveCommand,
    },
    /// Validate a config file: exit 0 when valid, else list every problem.
    CheckConfig { path: PathBuf },
    /// Run a working till with nothing to configure.
    Demo(DemoArgs),
    /// A technician's summary of the running daemon; exit code 1 when
    /// something needs attention, 2 when the daemon cannot be reached.
    Status {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the raw JSON of GET /v1/status instead.
        #[arg(long)]
        json: bool,
    },
    /// List, show, retry or discard receipts.
    Receipts {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        what: ReceiptsCommand,
    },
    /// Reconcile a period with the FiscalBox billing, through the running
    /// daemon's API (`POST /v1/billing/check`, operator token): the
    /// journal's fiscalized sales against the billing's orders count.
    /// Exit code 1 when they differ or the billing cannot be asked.
    Billing {
        #[command(subcommand)]
        what: BillingCommand,
    },
    /// Write a diagnostics tarball: redacted config, recent logs, journal
    /// statistics, device states, versions.
    Diagnostics {
        #[command(flatten)]
        api: ApiArgs,
        /// Where to write it.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Run a simulator of an outside system.
    Sim {
        #[command(subcommand)]
        what: SimCommand,
    },
    /// Bitrix24 REST cashbox helpers.
    Bitrix24 {
        #[command(subcommand)]
        what: Bitrix24Command,
    },
}

#[derive(Subcommand)]
enum Bitrix24Command {
    /// Print the JSON for `sale.cashbox.handler.add` (PRINT_URL, CHECK_URL and
    /// the CONFIG sections fiscald reads) for a fiscald reachable at --url.
    HandlerJson {
        /// The public base URL of the remote listener, e.g. https://till.example.com:8443
        #[arg(long)]
        url: String,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// The cloud fiscal processing (BIFIT-style), with fault knobs.
    Cloud {
        #[arg(long, default_value = "127.0.0.1:8731")]
        listen: SocketAddr,
        /// The connector token it accepts at login.
        #[arg(long, default_value = "demo-connector-token")]
        token: String,
        /// Added to every request.
        #[arg(long)]
        latency_ms: Option<u64>,
        /// 0..1: share of requests answered 500/503.
        #[arg(long)]
        failure_rate: Option<f64>,
        /// 0..1: share of requests held past the client's time limit.
        #[arg(long)]
        timeout_rate: Option<f64>,
        /// 0..1: share of registrations committed whose reply is then lost.
        #[arg(long)]
        reset_after_commit_rate: Option<f64>,
        /// Requests per second before 429 with Retry-After (0 = no limit).
        #[arg(long)]
        rate_limit_per_s: Option<u32>,
        /// Access token lifetime, seconds.
        #[arg(long)]
        token_lifetime_s: Option<u64>,
        /// How long a document stays PROCESSING.
        #[arg(long)]
        processing_delay_ms: Option<u64>,
        /// Reject receipts with an item name containing this text.
        #[arg(long)]
        reject_marker: Option<String>,
        /// Seed of the fault generator.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// The till's devices: a Shtrih-M fiscal register and an ESC/POS printer
    /// with a cash drawer, on pseudo-terminals at DIR/register and DIR/printer.
    Devices {
        /// Where the stable device paths are created.
        #[arg(long)]
        dir: PathBuf,
        /// Address of the control interface (faults, unplug, output).
        #[arg(long, default_value = "127.0.0.1:8732")]
        control: SocketAddr,
        /// Pace the printer like a UART at this baud (0: no pacing).
        #[arg(long, default_value_t = 115_200)]
        pace_baud: u32,
        /// Seed for the register's fiscal signs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The Uzbek FiscalBox (fiscal module, shifts, payment providers, card
    /// terminals), with fault knobs; `/sim/stats`, `/sim/knobs`.
    Fiscalbox {
        #[arg(long, default_value = "127.0.0.1:8733")]
        listen: SocketAddr,
        /// Fiscal module number.
        #[arg(long, default_value = "UZ170703100189")]
        terminal_id: String,
        /// Start unplugged (every request dropped unanswered).
        #[arg(long)]
        down: bool,
        /// Added to every request.
        #[arg(long)]
        slow_ms: Option<u64>,
        /// Lose the replies of the next N fiscal operations and confirms.
        #[arg(long)]
        lose_replies: Option<u32>,
        /// Refuse every refund (65275).
        #[arg(long)]
        refuse_refunds: bool,
        /// Seed of fiscal signs and payment ids.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The login the simulated billing (`/api/v1/login/`) accepts.
        #[arg(long, default_value = "shop")]
        billing_username: String,
        #[arg(long, default_value = "sim-billing-password")]
        billing_password: String,
        /// The INN the simulated billing counts orders for (any other INN
        /// counts none).
        #[arg(long, default_value = "306429662")]
        billing_inn: String,
        /// The billing's orders count leaves out the last N sales of a
        /// period (POST /sim/knobs {"billing_expire_tokens": true} expires
        /// every token issued so far).
        #[arg(long)]
        billing_lose_orders: Option<u32>,
    },
    /// The permissive-mode services for marking codes (Честный ЗНАК): the
    /// online check and the local module ЛМ ЧЗ, with fault knobs.
    Marking {
        #[arg(long, default_value = "127.0.0.1:8734")]
        listen: SocketAddr,
        /// Refuse a code: CODE=REASON (sold, blocked, not_found, invalid); repeatable.
        #[arg(long, value_parser = parse_refusal)]
        refuse: Vec<(String, String)>,
        /// Drop every connection, as if the service were not there.
        #[arg(long)]
        unreachable: bool,
        /// Only the online check fails; the local module answers.
        #[arg(long)]
        online_down: bool,
        /// Added before every answer.
        #[arg(long, default_value_t = 0)]
        slow_ms: u64,
        /// Age of the local module's last sync (72 h and more: sync_error).
        #[arg(long, default_value_t = 60_000)]
        last_sync_age_ms: i64,
    },
}

#[derive(Subcommand)]
enum BillingCommand {
    /// Check `--from` to `--to` (dates `YYYY-MM-DD`, whole days, or
    /// `YYYY-MM-DDTHH:MM:SS`; till-local time).
    Check {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

/// How the technician commands reach the daemon.
#[derive(clap::Args)]
struct ApiArgs {
    /// The daemon's API; by default the `[api] listen` of --config.
    #[arg(long, env = "FISCALD_URL")]
    url: Option<String>,
    /// The config file (for the API address, and for diagnostics).
    #[arg(long, env = "FISCALD_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// An operator token, sent as `Authorization: Bearer`.
    #[arg(long, env = "FISCALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl ApiArgs {
    fn client(&self) -> Result<fiscald::technician::Client> {
        self.client_within(fiscald::technician::REQUEST_TIMEOUT)
    }

    /// A client whose calls may take up to `timeout`.
    fn client_within(&self, timeout: std::time::Duration) -> Result<fiscald::technician::Client> {
        let url = match &self.url {
            Some(u) => u.clone(),
            None => match config::load_file(&self.config) {
                Ok(s) => {
                    let mut addr = s.listen;
                    if addr.ip().is_unspecified() {
                        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                    }
                    format!("http://{addr}")
                }
                Err(_) => "http://127.0.0.1:8730".to_string(),
            },
        };
        Ok(fiscald::technician::Client::with_timeout(
            &url,
            self.token.clone(),
            timeout,
        )?)
    }
}

#[derive(Subcommand)]
enum ReceiptsCommand {
    /// One line per receipt, oldest first.
    List {
        /// Only receipts in this state (accepted, fiscalized, rejected, …).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Continue after this receipt id.
        #[arg(long)]
        after: Option<String>,
    },
    /// One receipt with its history, as JSON.
    Show { id: String },
    /// Send a rejected receipt again.
    Retry { id: String },
    /// Give up on a rejected receipt.
    Discard {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

fn parse_refusal(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(c, r)| (c.to_string(), r.to_string()))
        .ok_or_else(|| format!("{s:?}: expected CODE=REASON"))
}

#[derive(Subcommand)]
enum ArchiveCommand {
    /// The monthly archive files, with their checksums (JSON).
    List,
    /// One archived receipt by id (JSON, as the API renders it).
    Find { id: String },
    /// Run retention once, now. Safe beside a running daemon, and safe to
    /// interrupt: the next run finishes what was left.
    Run,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DemoBackend {
    Cloud,
    Register,
}

#[derive(Clone, Copy, ValueEnum)]
enum DemoCountry {
    Ru,
    Uz,
}

/// `fiscald demo`'s flags.
#[derive(clap::Args)]
struct DemoArgs {
    /// Where the demo keeps its journal.
    #[arg(long, default_value = "demo-state")]
    state_dir: PathBuf,
    /// Address of the API.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Fiscal profile of the demo till.
    #[arg(long, value_enum, default_value_t = DemoCountry::Ru)]
    country: DemoCountry,
    /// Address of the built-in processing simulator.
    #[arg(long, default_value = "127.0.0.1:8731")]
    sim_listen: SocketAddr,
    /// Who fiscalizes: the cloud simulator, or the emulated fiscal register.
    #[arg(long, value_enum, default_value_t = DemoBackend::Cloud)]
    backend: DemoBackend,
    /// Address of the device emulators' control interface.
    #[arg(long, default_value = "127.0.0.1:8732")]
    devices_control: SocketAddr,
    /// Address of the simulated FiscalBox (`--country uz`).
    #[arg(long, default_value = "127.0.0.1:8733")]
    fiscalbox_listen: SocketAddr,
    /// Address of the built-in marking-service simulator (permissive mode).
    #[arg(long, default_value = "127.0.0.1:8734")]
    marking_listen: SocketAddr,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { path } => check_config(&path),
        Command::Run { config } => report(run(&config)),
        Command::Archive { config, what } => report(archive(&config, what)),
        Command::Demo(args) => report(demo(args)),
        Command::Sim { what } => report(sim(what)),
        Command::Bitrix24 {
            what: Bitrix24Command::HandlerJson { url },
        } => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                eprintln!("--url must be an http(s) URL such as https://till.example.com:8443");
                return ExitCode::from(2);
            }
            let json = fiscald::api::bitrix24::facts::handler_json(&url);
            println!(
                "{}",
                serde_json::to_string_pretty(&json).expect("JSON serializes")
            );
            ExitCode::SUCCESS
        }
        Command::Status { api, json } => status(&api, json),
        Command::Receipts { api, what } => report(receipts(&api, what)),
        Command::Billing { what } => billing(what),
        Command::Diagnostics { api, output } => report(diagnostics(&api, output)),
    }
}

fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fiscald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match config::load_file(path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", path.display());
            }
            eprintln!("{}: {} problem(s)", path.display(), problems.len());
            ExitCode::from(2)
        }
    }
}

fn load(path: &std::path::Path) -> Result<Settings> {
    config::load_file(path).map_err(|problems| {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("  {}: {p}", path.display()))
            .collect();
        anyhow::anyhow!("invalid configuration:\n{}", lines.join("\n"))
    })
}

fn run(config: &std::path::Path) -> Result<()> {
    let settings = load(config)?;
    fiscald::logging::init();
    serve(settings)
}

fn archive(config: &std::path::Path, what: ArchiveCommand) -> Result<()> {
    let settings = load(config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options =
        fiscald::journal::Options::from_settings(&settings, settings.journal_path.clone());
    let journal = fiscald::journal::Journal::open(options, Arc::new(SystemClock))?;
    let out = rt.block_on(async {
        match what {
            ArchiveCommand::List => Ok(serde_json::json!({
                "dir": journal.retention_policy().archive_dir.display().to_string(),
                "files": journal.archives().await?,
            })),
            ArchiveCommand::Find { id } => match journal.find_archived(id.clone()).await? {
                Some(r) => {
                    let mut body = fiscald::api::native::render(&r);
                    body["archived"] = true.into();
                    Ok(body)
                }
                None => Err(anyhow::anyhow!("receipt {id} is not in the archive")),
            },
            ArchiveCommand::Run => {
                use fiscald::clock::Clock;
                let report = journal.run_retention(SystemClock.now()).await;
                match &report.error {
                    Some(e) => Err(anyhow::anyhow!("retention failed: {e}")),
                    None => Ok(serde_json::to_value(&report)?),
                }
            }
        }
    });
    journal.close();
    println!("{}", serde_json::to_string_pretty(&out?)?);
    Ok(())
}

fn demo(args: DemoArgs) -> Result<()> {
    let DemoArgs {
        state_dir,
        listen,
        country,
        sim_listen,
        backend,
        devices_control,
        fiscalbox_listen,
        marking_listen,
    } = args;
    let text = match country {
        DemoCountry::Ru => config::DEMO_CONFIG,
        DemoCountry::Uz => config::DEMO_UZ_CONFIG,
    };
    let mut settings = match config::load_str(text) {
        Ok(s) => s,
        Err(problems) => bail!("the built-in demo config is invalid: {problems:?}"),
    };
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    settings.journal_path = state_dir.join("journal.sqlite");
    if let Some(listen) = listen {
        settings.listen = listen;
    }
    if !devices_control.ip().is_loopback() {
        bail!(
            "--devices-control {devices_control}: the emulators' control interface listens on loopback only"
        );
    }
    // The demo's API asks for a token like a till's should: one operator
    // token, kept (0600) in the state directory across runs.
    let token_path = state_dir.join("operator.token");
    let token = demo_token(&token_path)?;
    settings.api.tokens = vec![config::ApiToken {
        name: "demo operator".into(),
        role: config::Role::Operator,
        hash: config::TokenHash::of(&token),
    }];
    // The emulated devices live under the state directory.
    let devices_dir = std::fs::canonicalize(&state_dir)
        .unwrap_or(state_dir.clone())
        .join("devices");
    let register_path = devices_dir.join("register");
    let printer_path = devices_dir.join("printer");
    if let Some(p) = settings.devices.printer.as_mut() {
        p.path = printer_path.clone();
    }
    match backend {
        DemoBackend::Register => {
            if matches!(country, DemoCountry::Uz) {
                bail!(
                    "the Shtrih-M register fiscalizes Russian receipts only: use --backend cloud with --country uz"
                );
            }
            settings.devices.backend = config::Backend::Register;
            if let Some(r) = settings.devices.register.as_mut() {
                r.path = register_path.clone();
            }
        }
        // The cloud fiscalizes: no register on this till.
        DemoBackend::Cloud => settings.devices.register = None,
    }
    fiscald::logging::init();
    runtime()?.block_on(async move {
        let devices = Arc::new(
            SimDevices::start(&devices_dir, SimDevicesOptions { printer_pace_baud: Some(115_200), seed: 1, timezone: Some(settings.timezone) })
                .with_context(|| format!("cannot start the device emulators in {}", devices_dir.display()))?,
        );
        let control = tokio::net::TcpListener::bind(devices_control)
            .await
            .with_context(|| format!("cannot start the device control interface on {devices_control} (use --devices-control)"))?;
        let (control_stop, control_stopped) = tokio::sync::oneshot::channel::<()>();
        let control_task = tokio::spawn(fiscald::sim::devices::control::serve(control, devices.clone(), async {
            let _ = control_stopped.await;
        }));
        let listener = tokio::net::TcpListener::bind(sim_listen)
            .await
            .with_context(|| format!("cannot start the processing simulator on {sim_listen} (use --sim-listen)"))?;
        let sim = SimCloud::start(
            listener,
            SimConfig {
                connector_token: settings
                    .cloud
                    .token
                    .as_ref()
                    .map(|t| t.expose().to_string())
                    .unwrap_or_default(),
                timezone: settings.timezone,
                ..SimConfig::default()
            },
        )
        .await;
        settings.cloud.base_url = sim.base_url();
        // An Uzbek till fiscalizes through a (simulated) FiscalBox.
        let fiscalbox = match settings.fiscalbox.as_mut() {
            Some(fb) => {
                let listener = tokio::net::TcpListener::bind(fiscalbox_listen)
                    .await
                    .with_context(|| format!("cannot start the FiscalBox simulator on {fiscalbox_listen} (use --fiscalbox-listen)"))?;
                let sim = fiscald::sim::fiscalbox::SimFiscalBox::start(listener, Default::default()).await;
                fb.url = sim.base_url();
                eprintln!("  FiscalBox simulator {} (knobs: POST {}/sim/knobs)", sim.base_url(), sim.base_url());
                Some(sim)
            }
            None => None,
        };
        // Marked items are checked against the marking simulator: online
        // first, then the "local module" (the same simulator).
        let marking_listener = tokio::net::TcpListener::bind(marking_listen)
            .await
            .with_context(|| format!("cannot start the marking simulator on {marking_listen} (use --marking-listen)"))?;
        let marking = fiscald::sim::marking::SimMarking::start(marking_listener).await;
        settings.marking = Some(config::MarkingSettings {
            online: Some(config::MarkingService {
                url: marking.base_url(),
                secret: config::Secret::new("demo-true-api-token"),
                login: String::new(),
                client_id: String::new(),
            }),
            local: Some(config::MarkingService {
                url: marking.base_url(),
                secret: config::Secret::new("admin"),
                login: "admin".into(),
                client_id: "9999078900000001".into(),
            }),
            timeout: std::time::Duration::from_millis(1500),
            on_unreachable: config::OnUnreachable::SellUnchecked,
        });
        eprintln!("  marking simulator {}/sim/knobs (refuse a code: POST {{\"refuse\": {{\"<code>\": \"sold\"}}}})", marking.base_url());
        eprintln!(
            "fiscald demo: {} till, fiscalized by the {}, journal {}\n  processing simulator {}\n  emulated devices: {} (register), {} (printer); control http://{}/sim/devices\n  operator token: {token} (in {}; send it as Authorization: Bearer <token>)\n  try: TOKEN=$(cat {}); curl -s -H \"Authorization: Bearer $TOKEN\" http://{}/v1/health",
            settings.profile.country,
            match (backend, settings.fiscalbox.is_some()) { (_, true) => "FiscalBox", (DemoBackend::Cloud, _) => "cloud", (DemoBackend::Register, _) => "register" },
            settings.journal_path.display(),
            sim.base_url(),
            register_path.display(),
            printer_path.display(),
            devices_control,
            token_path.display(),
            token_path.display(),
            settings.listen
        );
        let served = fiscald::daemon::run_until_signal(&settings, Arc::new(SystemClock)).await;
        sim.stop().await;
        if let Some(fb) = fiscalbox {
            fb.stop().await;
        }
        marking.stop().await;
        let _ = control_stop.send(());
        let _ = control_task.await;
        if let Ok(devices) = Arc::try_unwrap(devices) {
            devices.stop();
        }
        served.map_err(anyhow::Error::from)
    })
}

fn sim(what: SimCommand) -> Result<()> {
    fiscald::logging::init();
    match what {
        SimCommand::Cloud {
            listen,
            token,
            latency_ms,
            failure_rate,
            timeout_rate,
            reset_after_commit_rate,
            rate_limit_per_s,
            token_lifetime_s,
            processing_delay_ms,
            reject_marker,
            seed,
        } => {
            let config = SimConfig {
                connector_token: token,
                knobs: Knobs {
                    latency_ms,
                    failure_rate,
                    timeout_rate,
                    reset_after_commit_rate,
                    rate_limit_per_s,
                    token_lifetime_s,
                    processing_delay_ms,
                    reject_marker,
                    seed,
                    ..Knobs::default()
                },
                ..SimConfig::default()
            };
            runtime()?.block_on(fiscald::sim::cloud::run_cli(listen, config))?;
            Ok(())
        }
        SimCommand::Fiscalbox {
            listen,
            terminal_id,
            down,
            slow_ms,
            lose_replies,
            refuse_refunds,
            seed,
            billing_username,
            billing_password,
            billing_inn,
            billing_lose_orders,
        } => runtime()?.block_on(async move {
            let config = fiscald::sim::fiscalbox::BoxConfig {
                terminal_id,
                seed,
                ..Default::default()
            };
            let knobs = fiscald::sim::fiscalbox::BoxKnobs {
                down: Some(down),
                slow_ms,
                lose_replies,
                drop_shift: None,
                refuse_refunds: Some(refuse_refunds),
                billing_lose_orders,
                billing_expire_tokens: None,
                billing_down: None,
                billing_hang: None,
            };
            let login = fiscald::sim::fiscalbox::BillingLogin {
                username: billing_username,
                password: billing_password,
                inn: billing_inn,
            };
            fiscald::sim::fiscalbox::run_cli(listen, config, knobs, login)
                .await
                .with_context(|| format!("FiscalBox simulator on {listen}"))
        }),
        SimCommand::Devices {
            dir,
            control,
            pace_baud,
            seed,
        } => runtime()?.block_on(async move {
            if !control.ip().is_loopback() {
                bail!(
                    "--control {control}: the emulators' control interface listens on loopback only"
                );
            }
            let devices = Arc::new(
                SimDevices::start(
                    &dir,
                    SimDevicesOptions {
                        printer_pace_baud: (pace_baud > 0).then_some(pace_baud),
                        seed,
                        timezone: None,
                    },
                )
                .with_context(|| {
                    format!("cannot start the device emulators in {}", dir.display())
                })?,
            );
            let listener = tokio::net::TcpListener::bind(control)
                .await
                .with_context(|| format!("cannot listen on {control}"))?;
            let addr = listener.local_addr()?;
            println!(
                "fiscald sim devices: register {}, printer {}; control http://{addr}/sim/devices",
                devices.register_path().display(),
                devices.printer_path().display()
            );
            fiscald::sim::devices::control::serve(listener, devices.clone(), async {
                fiscald::daemon::wait_for_signal().await;
            })
            .await?;
            if let Ok(devices) = Arc::try_unwrap(devices) {
                devices.stop();
            }
            Ok(())
        }),
        SimCommand::Marking {
            listen,
            refuse,
            unreachable,
            online_down,
            slow_ms,
            last_sync_age_ms,
        } => {
            let knobs = fiscald::sim::marking::MarkingKnobs {
                refuse: Some(refuse.into_iter().collect()),
                unreachable: Some(unreachable),
                online_down: Some(online_down),
                slow_ms: Some(slow_ms),
                last_sync_age_ms: Some(last_sync_age_ms),
            };
            runtime()?.block_on(fiscald::sim::marking::run_cli(listen, knobs))?;
            Ok(())
        }
    }
}

fn status(api: &ApiArgs, json: bool) -> ExitCode {
    let result = (|| -> Result<serde_json::Value> {
        let client = api.client()?;
        Ok(runtime()?.block_on(client.get_json("/v1/status"))?)
    })();
    match result {
        Ok(s) if json => {
            println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            ExitCode::from(
                if s["attention"].as_array().is_some_and(|a| !a.is_empty()) {
                    1
                } else {
                    0
                },
            )
        }
        Ok(s) => {
            let (text, attention) = fiscald::technician::summarize(&s);
            print!("{text}");
            ExitCode::from(if attention { 1 } else { 0 })
        }
        Err(e) => {
            eprintln!("fiscald: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn billing(what: BillingCommand) -> ExitCode {
    let BillingCommand::Check {
        api,
        from,
        to,
        json,
    } = what;
    let run = || -> Result<serde_json::Value> {
        // The daemon answers within billing::ANSWER_WITHIN (a delayed
        // check when the billing is slow): wait longer than that.
        let client = api.client_within(fiscald::technician::BILLING_CHECK_TIMEOUT)?;
        let path = format!(
            "/v1/billing/check?from={}&to={}",
            fiscald::technician::query_escape(&from),
            fiscald::technician::query_escape(&to)
        );
        Ok(runtime()?.block_on(client.post_json(&path, &serde_json::json!({})))?)
    };
    match run() {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                print!("{}", fiscald::technician::billing_lines(&r));
            }
            if r["result"] == "equal" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("fiscald: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn receipts(api: &ApiArgs, what: ReceiptsCommand) -> Result<()> {
    let client = api.client()?;
    runtime()?.block_on(async move {
        match what {
            ReceiptsCommand::List {
                state,
                limit,
                after,
            } => {
                let mut q = format!("/v1/receipts?limit={limit}");
                if let Some(s) = state {
                    q.push_str(&format!("&state={s}"));
                }
                if let Some(a) = after {
                    q.push_str(&format!("&after={a}"));
                }
                let page = client.get_json(&q).await?;
                print!("{}", fiscald::technician::receipt_lines(&page));
            }
            ReceiptsCommand::Show { id } => {
                let r = client.get_json(&format!("/v1/receipts/{id}")).await?;
                println!("{}", serde_json::to_string_pretty(&r)?);
            }
            ReceiptsCommand::Retry { id } => {
                let r = client
                    .post_json(&format!("/v1/receipts/{id}/retry"), &serde_json::json!({}))
                    .await?;
                println!("receipt {} is {} again", r["number"], r["state"]);
            }
            ReceiptsCommand::Discard { id, reason } => {
                let r = client
                    .post_json(
                        &format!("/v1/receipts/{id}/discard"),
                        &serde_json::json!({ "reason": reason }),
                    )
                    .await?;
                println!("receipt {} is {}", r["number"], r["state"]);
            }
        }
        Ok(())
    })
}

fn diagnostics(api: &ApiArgs, output: Option<PathBuf>) -> Result<()> {
    let client = api.client()?;
    let out = output.unwrap_or_else(|| {
        PathBuf::from(format!(
            "fiscald-diagnostics-{}.tar.gz",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    let bundle = runtime()?.block_on(fiscald::technician::gather(&client, Some(&api.config)));
    let written = fiscald::technician::write_tarball(&bundle, &out)?;
    println!("{}", written.display());
    Ok(())
}

/// The demo's operator token: read from `path`, or made (random, 0600).
fn demo_token(path: &std::path::Path) -> Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return config::secrets::read_token_file(path)
            .map(|s| s.expose().to_string())
            .map_err(anyhow::Error::msg);
    }
    let token: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{token}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Most threads the daemon's runtime starts for blocking work (journal
/// reads: the reader pool keeps 4 connections; more readers wait their turn).
const MAX_BLOCKING_THREADS: usize = 8;

fn serve(settings: Settings) -> Result<()> {
    // glibc gives every thread that allocates its own 64 MiB malloc arena and
    // keeps what it freed there; on a till two arenas are plenty and keep the
    // daemon's resident memory flat (docs/PERFORMANCE.md, "Resident memory").
    // Safety: mallopt takes glibc's own lock; no allocation is in flight here.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(fiscald::daemon::run_until_signal(
        &settings,
        Arc::new(SystemClock),
    ))?;
    Ok(())
}
