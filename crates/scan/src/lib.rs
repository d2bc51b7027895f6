//! drydock's scanner: findings for an image's OS packages and the reports
//! that present them.
//!
//! Today: the report model ([`report`]) and its renderers ([`render`]):
//! a table, Trivy-compatible JSON, SARIF and CycloneDX. Renderers only
//! present; they never decide what is vulnerable.

pub mod matching;
pub mod render;
pub mod report;
pub mod scanner;

pub use report::{Finding, OsFamily, OsSummary, PackageEntry, Report, TargetResult};
pub use scanner::{ScanError, Scanner, ScannerOptions};
