//! SARIF 2.1.0, as GitHub code scanning reads it: one rule per
//! vulnerability id, one result per finding, located at the image (there is
//! no source file to point at), with `security-severity` for GitHub's ranking.

use std::collections::BTreeMap;

use advisory::Severity;
use serde::Serialize;

use crate::report::Report;

// Written straight to JSON from these borrowed structs; fields are declared
// in alphabetical order, so keys come out sorted, as they always have.

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: [Run<'a>; 1],
    version: &'static str,
}

#[derive(Serialize)]
struct Run<'a> {
    #[serde(rename = "columnKind")]
    column_kind: &'static str,
    #[serde(rename = "originalUriBaseIds")]
    original_uri_base_ids: UriBaseIds,
    results: Vec<SarifResult<'a>>,
    tool: Tool<'a>,
}

#[derive(Serialize)]
struct UriBaseIds {
    #[serde(rename = "ROOTPATH")]
    root_path: Uri,
}

#[derive(Serialize)]
struct Uri {
    uri: &'static str,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
struct Driver<'a> {
    #[serde(rename = "fullName")]
    full_name: &'static str,
    #[serde(rename = "informationUri")]
    information_uri: &'static str,
    name: &'static str,
    rules: Vec<Rule<'a>>,
    version: &'static str,
}

#[derive(Serialize)]
struct Rule<'a> {
    #[serde(rename = "fullDescription")]
    full_description: Text<&'a str>,
    help: Text<String>,
    #[serde(rename = "helpUri")]
    help_uri: Option<&'a str>,
    id: &'a str,
    name: &'static str,
    properties: RuleProperties,
    #[serde(rename = "shortDescription")]
    short_description: Text<&'a str>,
}

#[derive(Serialize)]
struct Text<T> {
    text: T,
}

#[derive(Serialize)]
struct RuleProperties {
    precision: &'static str,
    #[serde(rename = "security-severity")]
    security_severity: &'static str,
    tags: [&'static str; 3],
}

#[derive(Serialize)]
struct SarifResult<'a> {
    level: &'static str,
    locations: [Location<'a>; 1],
    message: Text<String>,
    #[serde(rename = "ruleId")]
    rule_id: &'a str,
    #[serde(rename = "ruleIndex")]
    rule_index: usize,
}

#[derive(Serialize)]
struct Location<'a> {
    message: Text<String>,
    #[serde(rename = "physicalLocation")]
    physical_location: PhysicalLocation<'a>,
}

#[derive(Serialize)]
struct PhysicalLocation<'a> {
    #[serde(rename = "artifactLocation")]
    artifact_location: ArtifactLocation<'a>,
    region: Region,
}

#[derive(Serialize)]
struct ArtifactLocation<'a> {
    uri: &'a str,
    #[serde(rename = "uriBaseId")]
    uri_base_id: &'static str,
}

#[derive(Serialize)]
struct Region {
    #[serde(rename = "endColumn")]
    end_column: u32,
    #[serde(rename = "endLine")]
    end_line: u32,
    #[serde(rename = "startColumn")]
    start_column: u32,
    #[serde(rename = "startLine")]
    start_line: u32,
}

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
    super::pretty_string(&document(report))
}

/// The log, ready to serialize.
pub(super) fn document(report: &Report) -> impl Serialize + '_ {
    let findings = report
        .results
        .iter()
        .flat_map(|t| t.findings.iter().map(move |f| (t, f)));
    let mut rules: BTreeMap<&str, Rule> = BTreeMap::new();
    for (_, finding) in findings.clone() {
        rules.entry(&finding.vulnerability_id).or_insert_with(|| {
            let id = finding.vulnerability_id.as_str();
            let description = finding.title.as_deref().unwrap_or(id);
            Rule {
                full_description: Text { text: description },
                help: Text {
                    text: format!("{id}: {description}"),
                },
                help_uri: finding.primary_url.as_deref(),
                id,
                name: "OsPackageVulnerability",
                properties: RuleProperties {
                    precision: "very-high",
                    security_severity: security_severity(finding.severity),
                    tags: ["vulnerability", "security", finding.severity.as_str()],
                },
                short_description: Text { text: description },
            }
        });
    }
    let rule_index: BTreeMap<&str, usize> =
        rules.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let results = findings
        .map(|(target, finding)| {
            let package = &finding.package;
            let fixed = finding
                .fixed_version()
                .map(|v| format!(", fixed in {v}"))
                .unwrap_or_else(|| format!(" ({})", finding.status.as_str()));
            SarifResult {
                level: level(finding.severity),
                locations: [Location {
                    message: Text {
                        text: format!("{}: {}@{}", target.target, package.name, package.version),
                    },
                    physical_location: PhysicalLocation {
                        artifact_location: ArtifactLocation {
                            uri: &report.artifact_name,
                            uri_base_id: "ROOTPATH",
                        },
                        region: Region {
                            end_column: 1,
                            end_line: 1,
                            start_column: 1,
                            start_line: 1,
                        },
                    },
                }],
                message: Text {
                    text: format!(
                        "Package: {}\nInstalled Version: {}\nVulnerability {}\nSeverity: {}{}",
                        package.name,
                        package.version,
                        finding.vulnerability_id,
                        finding.severity,
                        fixed
                    ),
                },
                rule_id: &finding.vulnerability_id,
                rule_index: rule_index[finding.vulnerability_id.as_str()],
            }
        })
        .collect();
    Log {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        runs: [Run {
            column_kind: "utf16CodeUnits",
            original_uri_base_ids: UriBaseIds {
                root_path: Uri { uri: "file:///" },
            },
            results,
            tool: Tool {
                driver: Driver {
                    full_name: "drydock continuous patching scanner",
                    information_uri: "https://github.com/drydock-dev/drydock",
                    name: "drydock",
                    rules: rules.into_values().collect(),
                    version: env!("CARGO_PKG_VERSION"),
                },
            },
        }],
        version: "2.1.0",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

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
