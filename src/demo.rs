//! `sfsql demo`: a simulated org, the demo catalog (reports included) and the
//! Postgres server, in one process. Tests start the same thing on free ports.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Catalog, Env};
use crate::scheduler::{self, CronHook, SchedulerHandle, SchedulerOptions};
use crate::server::{self, ServerHandle};
use crate::session::Engine;
use crate::simulator::{self, SimConfig, SimHandle};

pub struct DemoOptions {
    pub catalog: PathBuf,
    pub listen: String,
    pub sim_addr: SocketAddr,
    pub sim: SimConfig,
}

pub struct Demo {
    pub sim: SimHandle,
    pub engine: Arc<Engine>,
    pub server: ServerHandle,
    /// Saved jobs, the run log and the scheduler loop.
    pub jobs: SchedulerHandle,
}

/// The environment the demo catalog expects: the simulator's URL and its
/// fixed client credentials (unless the user exported others).
pub fn demo_env(sim: &SimHandle) -> Env {
    let mut env = Env::default().with("SFSQL_SIM_URL", sim.base_url());
    if std::env::var("SFSQL_DEMO_CLIENT_ID").is_err() {
        env = env.with("SFSQL_DEMO_CLIENT_ID", simulator::DEMO_CLIENT_ID);
    }
    if std::env::var("SFSQL_DEMO_CLIENT_SECRET").is_err() {
        env = env.with("SFSQL_DEMO_CLIENT_SECRET", simulator::DEMO_CLIENT_SECRET);
    }
    env
}

/// Start the demo with the state directory (`.sfsql/`) and job files
/// (`sql/`) beside the catalog directory.
pub async fn start(opts: DemoOptions) -> Result<Demo, Box<dyn std::error::Error + Send + Sync>> {
    let jobs = SchedulerOptions::beside(&opts.catalog);
    start_with_jobs(opts, jobs).await
}

/// Start the demo with the scheduler's state and job files where `jobs`
/// says (tests use a temporary state directory); its settings are the
/// catalog's `[scheduler]` and `[alerts]`.
pub async fn start_with_jobs(
    opts: DemoOptions,
    mut jobs: SchedulerOptions,
) -> Result<Demo, Box<dyn std::error::Error + Send + Sync>> {
    let sim = simulator::start(opts.sim, opts.sim_addr).await?;
    let env = demo_env(&sim);
    let mut catalog = Catalog::load(&opts.catalog, &env)?;
    catalog.state_dir = jobs.state_dir.clone();
    jobs.config = catalog.server.scheduler.clone();
    jobs.alerts = catalog.server.alerts.clone();
    let engine = Arc::new(Engine::start(&catalog, &env).await?);
    let jobs = scheduler::start(Arc::clone(&engine), &jobs).await?;
    let server = server::start_with_hooks(
        Arc::clone(&engine),
        &catalog.server,
        &opts.listen,
        vec![Arc::new(CronHook::new(Arc::clone(&jobs.scheduler)))],
    )
    .await?;
    Ok(Demo {
        sim,
        engine,
        server,
        jobs,
    })
}
