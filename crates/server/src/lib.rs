//! The daemon side of continuous patching (work in progress).

pub mod runner;
pub mod store;
