//! Report renderers, one module per format. Each is a pure function from a
//! [`crate::Report`] to text, as a `String` ([`render`]) or streamed to a
//! writer ([`write`]: the JSON formats are serialized from borrowed structs
//! straight into it, never built in memory first).

/// CycloneDX 1.5 JSON: the inventory and its vulnerabilities.
pub mod cyclonedx;
/// SARIF 2.1.0, for code-scanning dashboards.
pub mod sarif;
/// The human-readable table.
pub mod table;
/// Trivy-compatible JSON.
pub mod trivy;

use std::io::{self, Write};

/// The output formats `drydock scan --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The human-readable table.
    Table,
    /// Trivy-compatible JSON.
    Json,
    /// SARIF 2.1.0.
    Sarif,
    /// CycloneDX JSON.
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

/// Writes `report` in `format` to `out`: the same bytes as [`render`].
pub fn write(report: &crate::Report, format: Format, out: &mut impl Write) -> io::Result<()> {
    match format {
        Format::Table => out.write_all(table::render(report).as_bytes()),
        Format::Json => pretty_json(&trivy::document(report), out),
        Format::Sarif => pretty_json(&sarif::document(report), out),
        Format::CycloneDx => pretty_json(&cyclonedx::document(report), out),
    }
}

/// `value` as indented JSON, as `serde_json::to_string_pretty` writes it.
fn pretty_json(value: &impl serde::Serialize, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(out, value).map_err(io::Error::from)
}

/// `value` as indented JSON in a `String`.
fn pretty_string(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn written_and_rendered_reports_are_the_same_bytes() {
        let report = sample();
        for format in [
            Format::Table,
            Format::Json,
            Format::Sarif,
            Format::CycloneDx,
        ] {
            let mut written = Vec::new();
            write(&report, format, &mut written).unwrap();
            let rendered = render(&report, format);
            if format == Format::CycloneDx {
                // Each rendering has its own serial number.
                let mask = |text: &str| text.split("urn:uuid:").next().unwrap().to_string();
                assert_eq!(mask(&String::from_utf8(written).unwrap()), mask(&rendered));
            } else {
                assert_eq!(String::from_utf8(written).unwrap(), rendered, "{format:?}");
            }
        }
    }

    /// The JSON formats are written from structs whose fields are declared in
    /// alphabetical order where they once came from a `serde_json::Value`
    /// (whose maps sort their keys): reading one back into a `Value` and
    /// printing that must give the same bytes.
    #[test]
    fn json_keys_stay_sorted_where_they_were() {
        let report = sample();
        for format in [Format::Sarif, Format::CycloneDx] {
            let text = render(&report, format);
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                serde_json::to_string_pretty(&value).unwrap(),
                text,
                "{format:?}"
            );
        }
    }
}
