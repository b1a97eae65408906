//! What every benchmark starts with: its arguments, the demo (simulator,
//! engine, Postgres server) on free ports over a catalog directory, and a
//! tokio-postgres client connected to it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use sfsql::demo::{self, Demo, DemoOptions};
use sfsql::simulator::SimConfig;
use tokio_postgres::{Client, NoTls};

pub mod procs;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The numeric command-line arguments (cargo bench adds `--bench`).
pub fn args<T: std::str::FromStr>() -> Vec<T> {
    std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// The demo over `catalog` with `sim`, and a client of its server.
pub async fn start(catalog: &Path, sim: SimConfig) -> Result<(Demo, Client), Error> {
    let d = demo::start(DemoOptions {
        catalog: catalog.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        sim_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        sim,
    })
    .await?;
    let client = connect(d.server.addr.port()).await?;
    Ok((d, client))
}

pub fn conn_str(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=demo password=demo dbname=demo")
}

pub async fn connect(port: u16) -> Result<Client, Error> {
    let (client, connection) = tokio_postgres::connect(&conn_str(port), NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The bench's Python, with simple-salesforce and pandas pinned by
/// benches/python/requirements.txt (installed from PyPI on first use).
pub fn bench_python() -> Result<PathBuf, Error> {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let venv = target.join("bench-venv");
    let python = venv.join("bin/python");
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/requirements.txt");
    let stamp = venv.join("requirements.txt");
    if std::fs::read(&lock).ok() != std::fs::read(&stamp).ok() {
        println!(
            "installing the baseline's Python packages into {}",
            venv.display()
        );
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()?
            .success()
            && Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&lock)
                .status()?
                .success();
        if !ok {
            return Err("could not install benches/python/requirements.txt".into());
        }
        std::fs::copy(&lock, &stamp)?;
    }
    Ok(python)
}

/// Peak (`VmHWM`) and current (`VmRSS`) resident memory of this process,
/// in MB.
pub fn rss_mb() -> (u64, u64) {
    procs::status_mb("/proc/self/status")
}
