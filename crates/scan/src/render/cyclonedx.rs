//! CycloneDX 1.6 JSON: the image as the subject, every installed package
//! as a component (with its source package as properties), the operating
//! system, and the findings as `vulnerabilities` pointing at components.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::{Finding, PackageEntry, Report};

// The structs below are written straight to JSON, without a
// `serde_json::Value` tree in between. Their fields are declared in
// alphabetical order, so keys come out sorted, as they always have.

#[derive(Serialize)]
struct Bom<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    #[serde(rename = "bomFormat")]
    bom_format: &'static str,
    components: Vec<Component<'a>>,
    metadata: Metadata<'a>,
    #[serde(rename = "serialNumber")]
    serial_number: String,
    #[serde(rename = "specVersion")]
    spec_version: &'static str,
    version: u32,
    vulnerabilities: Vec<Vulnerability<'a>>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    component: Subject<'a>,
    timestamp: &'a str,
    tools: Tools,
}

#[derive(Serialize)]
struct Subject<'a> {
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Tools {
    components: [Tool; 1],
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'static str,
}

/// The operating system (no properties, no purl) or an installed package.
#[derive(Serialize)]
struct Component<'a> {
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<Vec<Property<'a>>>,
    /// `null` when the report has no OS (always present for packages).
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<Option<String>>,
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'a str,
}

#[derive(Serialize)]
struct Property<'a> {
    name: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct Vulnerability<'a> {
    affects: Vec<Affects<'a>>,
    #[serde(rename = "bom-ref")]
    bom_ref: &'a str,
    description: Option<&'a str>,
    id: &'a str,
    ratings: [Rating<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    recommendation: Option<String>,
    source: Source<'a>,
}

#[derive(Serialize)]
struct Affects<'a> {
    #[serde(rename = "ref")]
    reference: String,
    versions: [AffectedVersion<'a>; 1],
}

#[derive(Serialize)]
struct AffectedVersion<'a> {
    status: &'static str,
    version: &'a str,
}

#[derive(Serialize)]
struct Rating<'a> {
    method: &'static str,
    severity: &'static str,
    source: RatingSource<'a>,
}

#[derive(Serialize)]
struct RatingSource<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Source<'a> {
    name: &'a str,
    url: Option<&'a str>,
}

/// CycloneDX's lower-case severity names.
fn severity(finding: &Finding) -> &'static str {
    match finding.severity {
        advisory::Severity::Unknown => "unknown",
        advisory::Severity::Low => "low",
        advisory::Severity::Medium => "medium",
        advisory::Severity::High => "high",
        advisory::Severity::Critical => "critical",
    }
}

/// Renders the report as a CycloneDX BOM with vulnerabilities.
pub fn render(report: &Report) -> String {
    super::pretty_string(&document(report))
}

/// The BOM, ready to serialize.
pub(super) fn document(report: &Report) -> impl Serialize + '_ {
    let os = report.os.as_ref();
    let purl_of = |package: &PackageEntry| os.map(|os| os.purl(package));
    let reference = |package: &PackageEntry, purl: Option<String>| {
        purl.unwrap_or_else(|| format!("{}@{}", package.name, package.version))
    };
    let mut components = Vec::new();
    if let Some(os) = os {
        components.push(Component {
            bom_ref: format!("os:{}-{}", os.family.as_str(), os.name),
            name: os.family.as_str(),
            properties: None,
            purl: None,
            kind: "operating-system",
            version: &os.name,
        });
    }
    for target in &report.results {
        for package in &target.packages {
            let purl = purl_of(package);
            let mut properties = vec![
                Property {
                    name: "drydock:package:source_name",
                    value: &package.source_name,
                },
                Property {
                    name: "drydock:package:source_version",
                    value: &package.source_version,
                },
            ];
            if let Some(layer) = &package.layer_diff_id {
                properties.push(Property {
                    name: "drydock:layer:diff_id",
                    value: layer,
                });
            }
            components.push(Component {
                bom_ref: reference(package, purl.clone()),
                name: &package.name,
                properties: Some(properties),
                purl: Some(purl),
                kind: "library",
                version: &package.version,
            });
        }
    }
    // One vulnerability entry per id, affecting every package it was found
    // in; the first finding of an id describes it, the last with a fixed
    // version recommends.
    let mut vulnerabilities: BTreeMap<&str, Vulnerability> = BTreeMap::new();
    for finding in report.results.iter().flat_map(|t| &t.findings) {
        let package = &finding.package;
        let entry = vulnerabilities
            .entry(&finding.vulnerability_id)
            .or_insert_with(|| Vulnerability {
                affects: Vec::new(),
                bom_ref: &finding.vulnerability_id,
                description: finding.title.as_deref(),
                id: &finding.vulnerability_id,
                ratings: [Rating {
                    method: "other",
                    severity: severity(finding),
                    source: RatingSource {
                        name: &finding.severity_source,
                    },
                }],
                recommendation: None,
                source: Source {
                    name: &finding.severity_source,
                    url: finding.primary_url.as_deref(),
                },
            });
        entry.affects.push(Affects {
            reference: reference(package, purl_of(package)),
            versions: [AffectedVersion {
                status: "affected",
                version: &package.version,
            }],
        });
        if let Some(fixed) = finding.fixed_version() {
            entry.recommendation = Some(format!("Upgrade {} to {fixed} or later", package.name));
        }
    }
    let image_ref = match &report.artifact_digest {
        Some(digest) => format!(
            "pkg:oci/{}@{}",
            report.artifact_name.rsplit('/').next().unwrap_or_default(),
            digest.replace(':', "%3A")
        ),
        None => report.artifact_name.clone(),
    };
    Bom {
        schema: "http://cyclonedx.org/schema/bom-1.6.schema.json",
        bom_format: "CycloneDX",
        components,
        metadata: Metadata {
            component: Subject {
                bom_ref: image_ref,
                name: &report.artifact_name,
                kind: "container",
            },
            timestamp: &report.created_at,
            tools: Tools {
                components: [Tool {
                    name: "drydock",
                    kind: "application",
                    version: env!("CARGO_PKG_VERSION"),
                }],
            },
        },
        serial_number: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        spec_version: "1.6",
        version: 1,
        vulnerabilities: vulnerabilities.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn components_and_vulnerabilities_reference_each_other() {
        let bom: Value = serde_json::from_str(&render(&sample())).unwrap();
        assert_eq!(bom["bomFormat"], "CycloneDX");
        let components = bom["components"].as_array().unwrap();
        assert_eq!(
            components.iter().filter(|c| c["type"] == "library").count(),
            2
        );
        assert!(
            components
                .iter()
                .any(|c| c["type"] == "operating-system" && c["version"] == "12.5")
        );
        let refs: Vec<&str> = components
            .iter()
            .filter_map(|c| c["bom-ref"].as_str())
            .collect();
        let vulnerabilities = bom["vulnerabilities"].as_array().unwrap();
        assert_eq!(vulnerabilities.len(), 2);
        for v in vulnerabilities {
            for affected in v["affects"].as_array().unwrap() {
                assert!(
                    refs.contains(&affected["ref"].as_str().unwrap()),
                    "{affected}"
                );
            }
        }
        let high = vulnerabilities
            .iter()
            .find(|v| v["id"] == "CVE-2024-2961")
            .unwrap();
        assert_eq!(high["ratings"][0]["severity"], "high");
        assert!(
            high["recommendation"]
                .as_str()
                .unwrap()
                .contains("2.36-9+deb12u7")
        );
    }
}
