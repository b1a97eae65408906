//! `sfsql demo`: a simulated org, the demo catalog (reports included) and the
//! Postgres server, in one process. Tests start the same thing on free ports.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Catalog, Env};
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

pub async fn start(opts: DemoOptions) -> Result<Demo, Box<dyn std::error::Error + Send + Sync>> {
    let sim = simulator::start(opts.sim, opts.sim_addr).await?;
    let env = demo_env(&sim);
    let catalog = Catalog::load(&opts.catalog, &env)?;
    let engine = Arc::new(Engine::start(&catalog, &env).await?);
    let server = server::start(
        Arc::clone(&engine),
        catalog.server.users.clone(),
        &opts.listen,
    )
    .await?;
    Ok(Demo {
        sim,
        engine,
        server,
    })
}
