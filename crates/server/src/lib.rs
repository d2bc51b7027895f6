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

pub mod api;
pub mod dashboard;
pub mod runner;
pub mod scheduler;
pub mod status;
pub mod store;
