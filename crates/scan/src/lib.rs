//! drydock's scanner: findings for an image's OS packages and the reports
//! that present them.
//!
//! Today: the report model ([`report`]) and its renderers ([`render`]):
//! a table, Trivy-compatible JSON, SARIF and CycloneDX. Renderers only
//! present; they never decide what is vulnerable.

/// Matching installed packages against advisories, and the report filters.
pub mod matching;
/// The report's presentations: table, Trivy JSON, SARIF, CycloneDX.
pub mod render;
/// The report model.
pub mod report;
/// The scanner: images in, reports out.
pub mod scanner;

pub use report::{Finding, OsFamily, OsSummary, PackageEntry, Report, TargetResult};
pub use scanner::{Clock, ScanError, Scanner, ScannerOptions};
