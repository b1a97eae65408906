//! The engine and the statement router: one path for every statement,
//! whether it comes from pgwire, the CLI or (later) the scheduler.
//!
//! [`Engine`] owns the DataFusion `SessionContext` with one schema per
//! Salesforce connection plus `reports`; [`SfsqlHook`] sees each parsed
//! statement first and takes the ones sfsql must handle itself (DML on
//! Salesforce tables, `SET/SHOW sfsql.*`, `EXPLAIN` of such DML), leaving
//! the rest to DataFusion.

mod engine;
mod hook;
mod settings;

pub use engine::{Connection, Engine, EngineError, UpdateResult};
pub use hook::SfsqlHook;
pub use settings::{Settings, SettingsError};
