//! The `fiscald` command line: the daemon, the demo, and config validation.
//! The only place that uses `anyhow`.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use fiscald::clock::SystemClock;
use fiscald::config::{self, DEFAULT_CONFIG_PATH, Settings};
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
        } => report(demo(state_dir, listen, country)),
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

fn demo(state_dir: PathBuf, listen: Option<SocketAddr>, country: DemoCountry) -> Result<()> {
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
    eprintln!(
        "fiscald demo: {} till, journal {}\n  try: curl -s http://{}/v1/health",
        settings.profile.country,
        settings.journal_path.display(),
        settings.listen
    );
    serve(settings)
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
