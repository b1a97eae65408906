//! The `sfsql` command line: a thin layer over the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sfsql::config::{Catalog, Env};
use sfsql::scheduler::{self, CronHook, SchedulerOptions};
use sfsql::session::Engine;
use sfsql::simulator::SimConfig;
use sfsql::state::Store;
use sfsql::{demo, login, server, simulator};

#[derive(Parser)]
#[command(
    name = "sfsql",
    version,
    about = "Salesforce and reports as SQL tables behind a Postgres server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a simulated org, the demo reports and the Postgres server.
    Demo {
        /// Catalog directory (connections.toml, reports.toml, server.toml).
        #[arg(long, default_value = "catalog")]
        catalog: PathBuf,
        /// Postgres port.
        #[arg(long, default_value_t = 5433)]
        port: u16,
        /// Simulator port (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        sim_port: u16,
        /// Contacts seeded in each simulated org.
        #[arg(long, default_value_t = 2000)]
        contacts: usize,
    },
    /// Serve a catalog's connections and reports over the Postgres protocol.
    Serve {
        #[arg(long, default_value = "catalog")]
        catalog: PathBuf,
        /// Overrides server.toml's `listen`.
        #[arg(long)]
        listen: Option<String>,
        /// Jobs and run log (default: `.sfsql/` beside the catalog).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Saved jobs: list them, run one now, read its run log.
    Jobs {
        #[arg(long, default_value = "catalog", global = true)]
        catalog: PathBuf,
        /// Default: `.sfsql/` beside the catalog.
        #[arg(long, global = true)]
        state_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Run only the Salesforce simulator.
    Simulator {
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[arg(long, default_value_t = 2000)]
        contacts: usize,
        /// Added to every response, to imitate a real org's latency.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// DailyApiRequests Max of each org (past it: REQUEST_LIMIT_EXCEEDED).
        #[arg(long, default_value_t = SimConfig::default().daily_api_limit)]
        daily_api_limit: u64,
        /// PEM public key that JWT bearer assertions must be signed with.
        #[arg(long)]
        jwt_public_key: Option<PathBuf>,
    },
    /// Print a `password_hash` for a server.toml user: a SCRAM-SHA-256
    /// verifier as PostgreSQL stores it (reads the password from standard input).
    HashPassword,
    /// Log in to a connection: the web flow prints (and opens) the
    /// authorize URL and waits for the browser on the callback port; other
    /// flows check their credentials. Tokens go to `<state dir>/tokens.json`.
    Login {
        name: String,
        #[arg(long, default_value = "catalog")]
        catalog: PathBuf,
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Only print the URL.
        #[arg(long)]
        no_browser: bool,
    },
    /// Revoke a connection's token at the org and delete it.
    Logout {
        name: String,
        #[arg(long, default_value = "catalog")]
        catalog: PathBuf,
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Each connection's flow, status, user, org, instance, last refresh
    /// and API usage (never a token).
    Connections {
        #[arg(long, default_value = "catalog")]
        catalog: PathBuf,
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
}

/// Load the catalog with `state_dir` overriding the default state directory.
fn load_catalog(
    dir: &std::path::Path,
    state_dir: Option<PathBuf>,
    env: &Env,
) -> Result<Catalog, BoxError> {
    let mut catalog = Catalog::load(dir, env)?;
    if let Some(state_dir) = state_dir {
        catalog.state_dir = state_dir;
    }
    Ok(catalog)
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Every job, its schedule, next run and last run.
    List,
    /// Run a job now, in this process, and print its run.
    Run {
        name: String,
        /// Show what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A job's runs; with --errors, each failed record.
    Logs {
        name: String,
        #[arg(long)]
        errors: bool,
    },
}

/// Scheduler options for `catalog`, with `state_dir` overriding the default.
fn jobs_options(catalog: &std::path::Path, state_dir: Option<PathBuf>) -> SchedulerOptions {
    let mut opts = SchedulerOptions::beside(catalog);
    if let Some(dir) = state_dir {
        opts.state_dir = dir;
    }
    opts
}

/// The state store with the job files of `sql/` loaded as `sfsql serve`
/// loads them, so a file written since the server last looked shows at
/// once. A file that cannot load is said on stderr; the stored jobs stay
/// as they were.
fn jobs_store(opts: &SchedulerOptions) -> Result<Store, BoxError> {
    let store = Store::open(&opts.state_dir)?;
    if let Some(dir) = &opts.sql_dir
        && let Err(e) = scheduler::load_job_files(&store, dir, chrono::Utc::now())
    {
        eprintln!("warning: job files not loaded: {e}; the jobs are as last loaded");
    }
    Ok(store)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SFSQL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        // Colour codes only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Demo {
            catalog,
            port,
            sim_port,
            contacts,
        } => {
            let d = demo::start(demo::DemoOptions {
                catalog,
                listen: format!("127.0.0.1:{port}"),
                sim_addr: SocketAddr::from(([127, 0, 0, 1], sim_port)),
                sim: SimConfig {
                    contacts,
                    ..SimConfig::default()
                },
            })
            .await?;
            println!("sfsql demo is running.");
            println!(
                "  Salesforce simulator: {}  (client id {}, secret {})",
                d.sim.base_url(),
                simulator::DEMO_CLIENT_ID,
                simulator::DEMO_CLIENT_SECRET
            );
            println!("  Postgres server:      {}", d.server.addr);
            println!(
                "  Jobs and run log:     {}  (SELECT * FROM cron.job)",
                d.jobs.scheduler.store().dir().display()
            );
            println!();
            println!(
                "  psql -h {} -p {} -U demo      (password: demo)",
                d.server.addr.ip(),
                d.server.addr.port()
            );
            println!();
            println!("Press Ctrl-C to stop.");
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Command::Serve {
            catalog: catalog_dir,
            listen,
            state_dir,
        } => {
            let env = Env::default();
            let catalog = load_catalog(&catalog_dir, state_dir.clone(), &env)?;
            if catalog.server.users.is_empty() {
                return Err("server.toml has no [users.NAME] entry; add one with password_hash from `sfsql hash-password`".into());
            }
            let engine = Arc::new(Engine::start(&catalog, &env).await?);
            let listen = listen.unwrap_or_else(|| catalog.server.listen.clone());
            let jobs = scheduler::start(
                Arc::clone(&engine),
                &SchedulerOptions {
                    config: catalog.server.scheduler.clone(),
                    alerts: catalog.server.alerts.clone(),
                    ..jobs_options(&catalog_dir, state_dir)
                },
            )
            .await?;
            let handle = server::start_with_hooks(
                engine,
                &catalog.server,
                &listen,
                vec![Arc::new(CronHook::new(Arc::clone(&jobs.scheduler)))],
            )
            .await?;
            println!("sfsql is serving on {}", handle.addr);
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Command::Jobs {
            catalog,
            state_dir,
            command,
        } => {
            let opts = jobs_options(&catalog, state_dir);
            let text = match command {
                JobsCommand::List => scheduler::cli::list(&jobs_store(&opts)?, chrono::Utc::now())?,
                JobsCommand::Logs { name, errors } => {
                    scheduler::cli::logs(&jobs_store(&opts)?, &name, errors)?
                }
                JobsCommand::Run { name, dry_run } => {
                    let env = Env::default();
                    let loaded = load_catalog(&catalog, Some(opts.state_dir.clone()), &env)?;
                    let engine = Arc::new(Engine::start(&loaded, &env).await?);
                    let jobs = scheduler::start(
                        engine,
                        &SchedulerOptions {
                            run_loop: false,
                            config: loaded.server.scheduler.clone(),
                            alerts: loaded.server.alerts.clone(),
                            ..opts
                        },
                    )
                    .await?;
                    scheduler::cli::run(&jobs.scheduler, &name, dry_run).await?
                }
            };
            print!("{text}");
            Ok(())
        }
        Command::Simulator {
            port,
            contacts,
            latency_ms,
            daily_api_limit,
            jwt_public_key,
        } => {
            let jwt_public_key_pem = match jwt_public_key {
                Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| {
                    format!("cannot read the JWT public key {}: {e}", path.display())
                })?),
                None => None,
            };
            let sim = simulator::start(
                SimConfig {
                    contacts,
                    latency: Duration::from_millis(latency_ms),
                    daily_api_limit,
                    jwt_public_key_pem,
                    ..SimConfig::default()
                },
                SocketAddr::from(([127, 0, 0, 1], port)),
            )
            .await?;
            println!("Salesforce simulator on {}", sim.base_url());
            println!(
                "  orgs: {} and {}",
                sim.org_url("production"),
                sim.org_url("sandbox")
            );
            println!(
                "  client id {}, secret {}",
                simulator::DEMO_CLIENT_ID,
                simulator::DEMO_CLIENT_SECRET
            );
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Command::Login {
            name,
            catalog,
            state_dir,
            no_browser,
        } => {
            let env = Env::default();
            let catalog = load_catalog(&catalog, state_dir, &env)?;
            let line = login::login(&catalog, &env, &name, |url| {
                println!("Open this URL in a browser and allow access:\n\n  {url}\n");
                println!("Waiting for the browser to come back to the callback...");
                if !no_browser {
                    login::open_browser(url);
                }
            })
            .await?;
            println!("{line}");
            Ok(())
        }
        Command::Logout {
            name,
            catalog,
            state_dir,
        } => {
            let catalog = load_catalog(&catalog, state_dir, &Env::default())?;
            println!("{}", login::logout(&catalog, &name).await?);
            Ok(())
        }
        Command::Connections { catalog, state_dir } => {
            let catalog = load_catalog(&catalog, state_dir, &Env::default())?;
            print!("{}", login::connections(&catalog)?);
            Ok(())
        }
        Command::HashPassword => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                return Err(
                    "no password on standard input: echo -n PASSWORD | sfsql hash-password".into(),
                );
            }
            println!("{}", server::Verifier::new(password));
            Ok(())
        }
    }
}
