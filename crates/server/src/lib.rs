//! The daemon side of continuous patching, served by `drydock serve`.
//!
//! | module | owns |
//! |---|---|
//! | [`store`] | the SQLite database of workflows and runs (`<data dir>/workflows.db`) |
//! | [`runner`] | executing a run: trigger → scan → patch against a registry |
//! | [`scheduler`] | when workflows are due, the loop that triggers them, failing runs a stop interrupted |
//! | [`status`] | the per-image status of a workflow (ACR's `workflow list`), from its runs |
//! | [`api`] | the HTTP API under `/api/v1` and its wire types |
//! | [`dashboard`] | the HTML page at `/` |
//!
//! Nothing here listens on a socket: the API and the dashboard are
//! [`axum::Router`]s the binary serves beside the embedded registry.

/// The HTTP API under `/api/v1` and its wire types.
pub mod api;
/// The HTML dashboard at `/`.
pub mod dashboard;
/// Executing runs: trigger → scan → patch.
pub mod runner;
/// When workflows are due, and the loop that triggers them.
pub mod scheduler;
/// The per-image status of a workflow, from its runs.
pub mod status;
/// The SQLite store of workflows and runs.
pub mod store;
