//! The `fiscald` command line: the daemon, the demo, and config validation.
//! The only place that uses `anyhow`.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use fiscald::clock::SystemClock;
use fiscald::config::{self, DEFAULT_CONFIG_PATH, Settings};
use fiscald::sim::cloud::{Knobs, SimCloud, SimConfig};
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
    /// Validate a config file: exit 0 when valid, else list every problem.
    CheckConfig { path: PathBuf },
    /// Run a working till with nothing to configure.
    Demo {
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
    },
    /// Run a simulator of an outside system.
    Sim {
        #[command(subcommand)]
        what: SimCommand,
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
}

#[derive(Clone, Copy, ValueEnum)]
enum DemoCountry {
    Ru,
    Uz,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { path } => check_config(&path),
        Command::Run { config } => report(run(&config)),
        Command::Demo {
            state_dir,
            listen,
            country,
            sim_listen,
        } => report(demo(state_dir, listen, country, sim_listen)),
        Command::Sim { what } => report(sim(what)),
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

fn demo(
    state_dir: PathBuf,
    listen: Option<SocketAddr>,
    country: DemoCountry,
    sim_listen: SocketAddr,
) -> Result<()> {
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
    fiscald::logging::init();
    runtime()?.block_on(async move {
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
        eprintln!(
            "fiscald demo: {} till, journal {}, processing simulator {}\n  try: curl -s http://{}/v1/health",
            settings.profile.country,
            settings.journal_path.display(),
            sim.base_url(),
            settings.listen
        );
        let served = fiscald::daemon::run_until_signal(&settings, Arc::new(SystemClock)).await;
        sim.stop().await;
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
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn serve(settings: Settings) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(fiscald::daemon::run_until_signal(
        &settings,
        Arc::new(SystemClock),
    ))?;
    Ok(())
}
