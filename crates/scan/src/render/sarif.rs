//! SARIF 2.1.0, as GitHub code scanning reads it: one rule per
//! vulnerability id, one result per finding, located at the image (there is
//! no source file to point at), with `security-severity` for GitHub's ranking.

use std::collections::BTreeMap;

use advisory::Severity;
use serde_json::{Value, json};

use crate::report::Report;

/// GitHub maps `security-severity` scores to its own levels; these sit inside each band.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Unknown => "0.0",
    }
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unknown => "note",
    }
}

/// Renders the report as a SARIF log.
pub fn render(report: &Report) -> String {
    let findings = report
        .results
        .iter()
        .flat_map(|t| t.findings.iter().map(move |f| (t, f)));
    let mut rules: BTreeMap<&str, Value> = BTreeMap::new();
    for (_, finding) in findings.clone() {
        rules.entry(&finding.vulnerability_id).or_insert_with(|| {
            let description = finding
                .title
                .clone()
                .unwrap_or_else(|| finding.vulnerability_id.clone());
            json!({
                "id": finding.vulnerability_id,
                "name": "OsPackageVulnerability",
                "shortDescription": {"text": description},
                "fullDescription": {"text": description},
                "helpUri": finding.primary_url,
                "help": {"text": format!("{}: {}", finding.vulnerability_id, description)},
                "properties": {
                    "precision": "very-high",
                    "security-severity": security_severity(finding.severity),
                    "tags": ["vulnerability", "security", finding.severity.as_str()],
                },
            })
        });
    }
    let rule_index: BTreeMap<&str, usize> =
        rules.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let results: Vec<Value> = findings
        .map(|(target, finding)| {
            let package = &finding.package;
            let fixed = finding
                .fixed_version()
                .map(|v| format!(", fixed in {v}"))
                .unwrap_or_else(|| format!(" ({})", finding.status.as_str()));
            json!({
                "ruleId": finding.vulnerability_id,
                "ruleIndex": rule_index[finding.vulnerability_id.as_str()],
                "level": level(finding.severity),
                "message": {"text": format!(
                    "Package: {}\nInstalled Version: {}\nVulnerability {}\nSeverity: {}{}",
                    package.name, package.version, finding.vulnerability_id, finding.severity, fixed
                )},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": report.artifact_name, "uriBaseId": "ROOTPATH"},
                        "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
                    },
                    "message": {"text": format!("{}: {}@{}", target.target, package.name, package.version)},
                }],
            })
        })
        .collect();
    let log = json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "drydock",
                "fullName": "drydock continuous patching scanner",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/drydock-dev/drydock",
                "rules": rules.into_values().collect::<Vec<_>>(),
            }},
            "results": results,
            "columnKind": "utf16CodeUnits",
            "originalUriBaseIds": {"ROOTPATH": {"uri": "file:///"}},
        }],
    });
    serde_json::to_string_pretty(&log).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn one_rule_per_id_and_one_result_per_finding() {
        let log: Value = serde_json::from_str(&render(&sample())).unwrap();
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let results = run["results"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(results.len(), 2);
        for result in results {
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], result["ruleId"]);
        }
        let high = results
            .iter()
            .find(|r| r["ruleId"] == "CVE-2024-2961")
            .unwrap();
        assert_eq!(high["level"], "error");
        assert!(
            high["message"]["text"]
                .as_str()
                .unwrap()
                .contains("fixed in 2.36-9+deb12u7")
        );
    }
}
