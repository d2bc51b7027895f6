//! Report renderers, one module per format. Each is a pure function from a
//! [`crate::Report`] to text.

pub mod cyclonedx;
pub mod sarif;
pub mod table;
pub mod trivy;

/// The output formats `drydock scan --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Sarif,
    CycloneDx,
}

/// Renders `report` in `format`.
pub fn render(report: &crate::Report, format: Format) -> String {
    match format {
        Format::Table => table::render(report),
        Format::Json => trivy::render(report),
        Format::Sarif => sarif::render(report),
        Format::CycloneDx => cyclonedx::render(report),
    }
}
