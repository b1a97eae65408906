//! sfsql: Salesforce orgs and analytics reports as SQL tables behind a
//! Postgres wire-protocol server; integrations are saved SQL statements.
//!
//! # Layout
//!
//! | module | owns |
//! | --- | --- |
//! | [`config`] | the catalog directory: connections, reports, server users |
//! | [`salesforce`] | the HTTP client: OAuth flows and token store, SOQL query pages, describe, Collections |
//! | [`login`] | `sfsql login` / `logout` / `connections` over the catalog and the token store |
//! | [`soql`] | pure translation of DataFusion filters to SOQL and statement splitting |
//! | [`provider`] | DataFusion tables: a schema per connection, a table per sObject |
//! | [`reports`] | report sources in schema `reports`: files (CSV, Parquet, JSON, NDJSON), views |
//! | [`dml`] | UPDATE, INSERT, upsert, MERGE and DELETE as one change set -> diff -> Collections or Bulk writes, dry run |
//! | [`session`] | the engine and the statement router shared by every front end |
//! | [`state`] | the embedded store (SQLite in the state directory): jobs, runs, per-record outcomes |
//! | [`scheduler`] | pg_cron's interface (`cron.*` functions and tables), jobs from `sql/*.sql`, the scheduler loop |
//! | [`server`] | the Postgres wire protocol (pgwire + datafusion-postgres) |
//! | [`simulator`] | a local Salesforce org over HTTP for tests, benchmarks and the demo |
//! | [`demo`] | `sfsql demo`: simulator + demo catalog + server in one process |
//!
//! See `shared/DESIGN.md` for the decisions that hold these together.

pub mod config;
pub mod demo;
pub mod dml;
pub mod login;
pub mod provider;
pub mod reports;
pub mod salesforce;
pub mod scheduler;
pub mod server;
pub mod session;
pub mod simulator;
pub mod soql;
pub mod state;
