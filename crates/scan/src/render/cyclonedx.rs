//! CycloneDX 1.6 JSON: the image as the subject, every installed package
//! as a component (with its source package as properties), the operating
//! system, and the findings as `vulnerabilities` pointing at components.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::report::Report;

/// Renders the report as a CycloneDX BOM with vulnerabilities.
pub fn render(report: &Report) -> String {
    let os = report.os.as_ref();
    let purl_of = |package| os.map(|os| os.purl(package));
    let mut components = Vec::new();
    if let Some(os) = os {
        components.push(json!({
            "bom-ref": format!("os:{}-{}", os.family.as_str(), os.name),
            "type": "operating-system",
            "name": os.family.as_str(),
            "version": os.name,
        }));
    }
    for target in &report.results {
        for package in &target.packages {
            let purl = purl_of(package);
            let reference = purl
                .clone()
                .unwrap_or_else(|| format!("{}@{}", package.name, package.version));
            let mut properties = vec![
                json!({"name": "drydock:package:source_name", "value": package.source_name}),
                json!({"name": "drydock:package:source_version", "value": package.source_version}),
            ];
            if let Some(layer) = &package.layer_diff_id {
                properties.push(json!({"name": "drydock:layer:diff_id", "value": layer}));
            }
            components.push(json!({
                "bom-ref": reference,
                "type": "library",
                "name": package.name,
                "version": package.version,
                "purl": purl,
                "properties": properties,
            }));
        }
    }
    // One vulnerability entry per id, affecting every package it was found in.
    let mut vulnerabilities: BTreeMap<&str, Value> = BTreeMap::new();
    for finding in report.results.iter().flat_map(|t| &t.findings) {
        let package = &finding.package;
        let reference =
            purl_of(package).unwrap_or_else(|| format!("{}@{}", package.name, package.version));
        let entry = vulnerabilities
            .entry(&finding.vulnerability_id)
            .or_insert_with(|| {
                json!({
                    "bom-ref": finding.vulnerability_id,
                    "id": finding.vulnerability_id,
                    "source": {"name": finding.severity_source, "url": finding.primary_url},
                    "ratings": [{
                        "source": {"name": finding.severity_source},
                        "severity": finding.severity.as_str().to_ascii_lowercase(),
                        "method": "other",
                    }],
                    "description": finding.title,
                    "affects": [],
                })
            });
        if let Some(affects) = entry["affects"].as_array_mut() {
            affects.push(json!({
                "ref": reference,
                "versions": [{"version": package.version, "status": "affected"}],
            }));
        }
        if let Some(fixed) = finding.fixed_version() {
            entry["recommendation"] =
                Value::String(format!("Upgrade {} to {fixed} or later", package.name));
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
    let bom = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "version": 1,
        "metadata": {
            "timestamp": report.created_at,
            "tools": {"components": [{"type": "application", "name": "drydock", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {"bom-ref": image_ref, "type": "container", "name": report.artifact_name},
        },
        "components": components,
        "vulnerabilities": vulnerabilities.into_values().collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&bom).unwrap_or_default()
}

#[cfg(test)]
mod tests {
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
