//! The human table: per target a heading, one row per finding, and the
//! `Total: N (UNKNOWN: a, LOW: b, MEDIUM: c, HIGH: d, CRITICAL: e)` line
//! that ends it.

use crate::report::{Finding, Report, TargetResult};

const HEADERS: [&str; 7] = [
    "Library",
    "Vulnerability",
    "Severity",
    "Status",
    "Installed Version",
    "Fixed Version",
    "Title",
];
const MAX_TITLE: usize = 60;

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

fn row(finding: &Finding) -> [String; 7] {
    [
        finding.package.name.clone(),
        finding.vulnerability_id.clone(),
        finding.severity.as_str().to_string(),
        finding.status.as_str().to_string(),
        finding.package.version.clone(),
        finding.fixed_version().unwrap_or_default().to_string(),
        truncate(finding.title.as_deref().unwrap_or_default(), MAX_TITLE),
    ]
}

fn line(widths: &[usize; 7], left: char, middle: char, right: char) -> String {
    let segments: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
    format!("{left}{}{right}", segments.join(&middle.to_string()))
}

fn cells(widths: &[usize; 7], values: &[String; 7]) -> String {
    let padded: Vec<String> = values
        .iter()
        .zip(widths)
        .map(|(value, width)| format!(" {value}{} ", " ".repeat(width - value.chars().count())))
        .collect();
    format!("│{}│", padded.join("│"))
}

fn target_table(target: &TargetResult, out: &mut String) {
    out.push_str(&format!(
        "\n{}\n{}\n",
        target.target,
        "=".repeat(target.target.chars().count())
    ));
    if !target.findings.is_empty() {
        let rows: Vec<[String; 7]> = target.findings.iter().map(row).collect();
        let mut widths = HEADERS.map(|h| h.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        out.push_str(&line(&widths, '┌', '┬', '┐'));
        out.push('\n');
        out.push_str(&cells(&widths, &HEADERS.map(str::to_string)));
        out.push('\n');
        out.push_str(&line(&widths, '├', '┼', '┤'));
        out.push('\n');
        for row in &rows {
            out.push_str(&cells(&widths, row));
            out.push('\n');
        }
        out.push_str(&line(&widths, '└', '┴', '┘'));
        out.push('\n');
    }
    out.push_str(&target.total_line());
    out.push('\n');
}

/// Renders the report as tables, one per target.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    if let Some(os) = report.os.as_ref().filter(|os| os.eosl) {
        out.push_str(&format!(
            "WARNING: {} {} is end-of-life: its vendor no longer publishes fixes, so findings may be incomplete.\n",
            os.family.as_str(),
            os.name
        ));
    }
    for target in &report.results {
        target_table(target, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn rows_align_and_the_total_ends_the_target() {
        let text = render(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "nginx:1.25 (debian 12.5)");
        assert_eq!(
            lines.last().copied(),
            Some("Total: 2 (UNKNOWN: 0, LOW: 1, MEDIUM: 0, HIGH: 1, CRITICAL: 0)")
        );
        let table: Vec<&&str> = lines
            .iter()
            .filter(|l| l.starts_with(['┌', '│', '├', '└']))
            .collect();
        let width = table[0].chars().count();
        assert!(table.iter().all(|l| l.chars().count() == width), "{text}");
        assert!(
            text.contains("│ libc6   │ CVE-2024-2961 │ HIGH     │ fixed"),
            "{text}"
        );
    }

    #[test]
    fn empty_targets_still_total_and_eol_warns() {
        let mut report = sample();
        report.results[0].findings.clear();
        report.os.as_mut().unwrap().eosl = true;
        let text = render(&report);
        assert!(text.starts_with("WARNING: debian 12.5 is end-of-life"));
        assert!(!text.contains('┌'));
        assert!(text.ends_with("Total: 0 (UNKNOWN: 0, LOW: 0, MEDIUM: 0, HIGH: 0, CRITICAL: 0)\n"));
    }
}
