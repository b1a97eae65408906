//! Helpers shared by the HTTP-level test binaries (simulator_http, bulk_http):
//! a simulator on a free port and the API version prefix both speak.

use std::net::SocketAddr;

use sfsql::simulator::{self, SimConfig, SimHandle};

pub const V: &str = "/services/data/v62.0";

/// A simulator with `contacts` seeded contacts per org, on 127.0.0.1:0.
pub async fn sim(contacts: usize) -> SimHandle {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    simulator::start(
        SimConfig {
            contacts,
            ..SimConfig::default()
        },
        addr,
    )
    .await
    .expect("simulator starts")
}
