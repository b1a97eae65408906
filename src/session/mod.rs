//! The engine and the statement router: one path for every statement,
//! whether it comes from pgwire, the CLI or the scheduler.
//!
//! [`Engine`] owns the DataFusion `SessionContext` with one schema per
//! Salesforce connection plus `reports`; its router ([`router`]) takes the
//! statements sfsql must handle itself (DML on Salesforce tables,
//! `SET/SHOW sfsql.*`, `EXPLAIN` of such DML) and leaves the rest to
//! DataFusion. [`SfsqlHook`] puts the router in front of pgwire.

mod engine;
mod explain;
mod hook;
mod output;
pub mod progress;
mod refresh;
mod router;
mod run_log;
mod settings;
mod writes;

pub use engine::{Connection, Engine, EngineError};
pub use hook::{SfsqlHook, described_plan, rows_response, user_error};
pub use refresh::lone_function_call;
pub use router::{Origin, Routed, StatementError, StatementResult, WriteReport};
pub use run_log::{RunRecorder, StopSignal, WriteLog, WriteTarget};
pub use settings::{Settings, SettingsError};
pub use writes::DmlResult;
