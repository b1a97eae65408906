//! Benchmarks that measure sfsql alone: the simulator and `sfsql serve` as
//! two child processes of the bench (the `sfsql` binary cargo builds for
//! benches), so sfsql's own peak RSS (`VmHWM`) and CPU time (utime + stime)
//! are read from /proc without the simulator's org in them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::Error;

/// A child process, killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak (`VmHWM`) and current (`VmRSS`) resident memory, in MB.
    pub fn rss_mb(&self) -> (u64, u64) {
        status_mb(&format!("/proc/{}/status", self.pid()))
    }

    /// Start counting the peak again from the current RSS (clear_refs 5).
    pub fn reset_peak(&self) -> Result<(), Error> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")?;
        Ok(())
    }

    /// CPU time the process has used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which is in parentheses and may
        // hold spaces): state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (ticks(14) + ticks(15)) as f64 / clock_ticks()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// `VmHWM` and `VmRSS` of a /proc status file, in MB.
pub fn status_mb(path: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Spawn `sfsql args...` and wait for the stdout line starting with
/// `ready`; returns the process and the rest of that line. Later output
/// is drained by a thread; stderr goes to `log`.
fn spawn(
    args: &[&str],
    envs: &[(&str, &str)],
    log: &Path,
    ready: &str,
) -> Result<(Proc, String), Error> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfsql"))
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let proc = Proc { child };
    let mut lines = BufReader::new(stdout).lines();
    let found = loop {
        match lines.next() {
            Some(line) => {
                let line = line?;
                if let Some(rest) = line.strip_prefix(ready) {
                    break rest.trim().to_string();
                }
            }
            None => {
                return Err(format!(
                    "sfsql {} exited before `{ready}`: {}",
                    args.join(" "),
                    std::fs::read_to_string(log).unwrap_or_default()
                )
                .into());
            }
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Ok((proc, found))
}

/// `sfsql simulator` on a free port: the process and its base URL.
pub fn simulator(contacts: usize, latency_ms: u64, dir: &Path) -> Result<(Proc, String), Error> {
    let (contacts, latency) = (contacts.to_string(), latency_ms.to_string());
    spawn(
        &[
            "simulator",
            "--contacts",
            &contacts,
            "--latency-ms",
            &latency,
            "--daily-api-limit",
            "100000000",
        ],
        &[],
        &dir.join("simulator.log"),
        "Salesforce simulator on",
    )
}

/// `sfsql serve` of the demo catalog (copied into `dir`) against the
/// simulator at `sim_url`, on a free port: the process and its port.
pub fn serve(dir: &Path, sim_url: &str) -> Result<(Proc, u16), Error> {
    let catalog = dir.join("catalog");
    std::fs::create_dir_all(&catalog)?;
    for f in ["connections.toml", "server.toml"] {
        std::fs::copy(
            format!("{}/catalog/{f}", env!("CARGO_MANIFEST_DIR")),
            catalog.join(f),
        )?;
    }
    let catalog = catalog.to_string_lossy().to_string();
    let state = dir.join("state").to_string_lossy().to_string();
    let (proc, addr) = spawn(
        &[
            "serve",
            "--catalog",
            &catalog,
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            &state,
        ],
        &[
            ("SFSQL_SIM_URL", sim_url),
            ("SFSQL_DEMO_CLIENT_ID", sfsql::simulator::DEMO_CLIENT_ID),
            (
                "SFSQL_DEMO_CLIENT_SECRET",
                sfsql::simulator::DEMO_CLIENT_SECRET,
            ),
        ],
        &dir.join("serve.log"),
        "sfsql is serving on",
    )?;
    let port = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no port in `{addr}`"))?;
    Ok((proc, port))
}

/// The simulator's request counters (`GET /__sim/stats`).
pub async fn sim_stats(sim_url: &str) -> Result<serde_json::Value, Error> {
    Ok(reqwest::get(format!("{sim_url}/__sim/stats"))
        .await?
        .error_for_status()?
        .json()
        .await?)
}
