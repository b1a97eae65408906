//! End-to-end tests: the simulator, the engine and the Postgres server run
//! in-process on free ports, and real clients (tokio-postgres, psql) talk
//! to the server over TCP.

mod auth;
mod bulk_write;
mod cancel;
mod clients;
mod common;
mod explain_dml;
mod extended;
mod insert;
mod joins;
mod jwt;
mod limits;
mod oauth;
mod psql;
mod pushdown;
mod read_only;
mod reports_http;
mod reports_salesforce;
mod roles;
mod scheduler;
mod scheduler_alerts;
mod scheduler_catch_up;
mod scheduler_cli;
mod scheduler_crash;
mod scheduler_cutoff;
mod scheduler_loop;
mod scheduler_options;
mod scheduler_overlap;
mod scheduler_pause;
mod scheduler_reload;
mod scheduler_retention;
mod scheduler_waiting;
mod secrets;
mod slt;
mod tls;
mod token_expiry;
mod update_by_key;
mod write_outcomes;
