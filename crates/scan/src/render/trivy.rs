//! Trivy's JSON report (schema version 2), field for field where drydock has
//! the data, so pipelines that read Trivy JSON (Copa's `--report` among
//! them) accept it unchanged.

use serde::Serialize;

use crate::report::{Finding, OsSummary, Report, TargetResult};

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyReport<'a> {
    schema_version: u32,
    created_at: &'a str,
    artifact_name: &'a str,
    artifact_type: &'static str,
    metadata: Metadata<'a>,
    results: Vec<TrivyResult<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    #[serde(rename = "OS", skip_serializing_if = "Option::is_none")]
    os: Option<TrivyOs<'a>>,
    #[serde(rename = "RepoDigests", skip_serializing_if = "Vec::is_empty")]
    repo_digests: Vec<String>,
    image_config: &'a serde_json::Value,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyOs<'a> {
    family: &'static str,
    name: &'a str,
    #[serde(rename = "EOSL", skip_serializing_if = "std::ops::Not::not")]
    eosl: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyResult<'a> {
    target: &'a str,
    class: &'static str,
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vulnerabilities: Vec<Vulnerability<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Vulnerability<'a> {
    #[serde(rename = "VulnerabilityID")]
    vulnerability_id: &'a str,
    #[serde(rename = "PkgID")]
    pkg_id: String,
    pkg_name: &'a str,
    pkg_identifier: PkgIdentifier,
    installed_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed_version: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<Layer<'a>>,
    severity_source: &'a str,
    #[serde(rename = "PrimaryURL", skip_serializing_if = "Option::is_none")]
    primary_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    severity: &'static str,
}

#[derive(Serialize)]
struct PkgIdentifier {
    #[serde(rename = "PURL", skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
}

#[derive(Serialize)]
struct Layer<'a> {
    #[serde(rename = "DiffID")]
    diff_id: &'a str,
}

fn vulnerability<'a>(os: Option<&OsSummary>, finding: &'a Finding) -> Vulnerability<'a> {
    let package = &finding.package;
    Vulnerability {
        vulnerability_id: &finding.vulnerability_id,
        pkg_id: format!("{}@{}", package.name, package.version),
        pkg_name: &package.name,
        pkg_identifier: PkgIdentifier {
            purl: os.map(|os| os.purl(package)),
        },
        installed_version: &package.version,
        fixed_version: finding.fixed_version(),
        status: finding.status.as_str(),
        layer: package
            .layer_diff_id
            .as_deref()
            .map(|diff_id| Layer { diff_id }),
        severity_source: &finding.severity_source,
        primary_url: finding.primary_url.as_deref(),
        title: finding.title.as_deref(),
        severity: finding.severity.as_str(),
    }
}

fn result<'a>(os: Option<&OsSummary>, target: &'a TargetResult) -> TrivyResult<'a> {
    TrivyResult {
        target: &target.target,
        class: "os-pkgs",
        kind: target.family.as_str(),
        vulnerabilities: target
            .findings
            .iter()
            .map(|f| vulnerability(os, f))
            .collect(),
    }
}

/// Renders the report as Trivy JSON.
pub fn render(report: &Report) -> String {
    super::pretty_string(&document(report))
}

/// The report, ready to serialize.
pub(super) fn document(report: &Report) -> impl Serialize + '_ {
    let os = report.os.as_ref();
    TrivyReport {
        schema_version: 2,
        created_at: &report.created_at,
        artifact_name: &report.artifact_name,
        artifact_type: "container_image",
        metadata: Metadata {
            os: os.map(|os| TrivyOs {
                family: os.family.as_str(),
                name: &os.name,
                eosl: os.eosl,
            }),
            // Only registry images have repository digests; layouts and directories do not.
            repo_digests: report
                .artifact_digest
                .iter()
                .filter(|_| {
                    !report.artifact_name.starts_with("oci:")
                        && !report.artifact_name.starts_with("dir:")
                })
                .map(|d| {
                    format!(
                        "{}@{d}",
                        report.artifact_name.split('@').next().unwrap_or_default()
                    )
                })
                .collect(),
            image_config: &report.image_config,
        },
        results: report.results.iter().map(|t| result(os, t)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn has_the_fields_copa_reads() {
        let json: serde_json::Value = serde_json::from_str(&render(&sample())).unwrap();
        assert_eq!(json["SchemaVersion"], 2);
        assert_eq!(json["Metadata"]["OS"]["Family"], "debian");
        assert_eq!(json["Metadata"]["OS"]["Name"], "12.5");
        assert_eq!(json["Metadata"]["ImageConfig"]["architecture"], "amd64");
        let result = &json["Results"][0];
        assert_eq!(result["Class"], "os-pkgs");
        assert_eq!(result["Type"], "debian");
        let v = &result["Vulnerabilities"][0];
        assert_eq!(v["VulnerabilityID"], "CVE-2024-2961");
        assert_eq!(v["PkgID"], "libc6@2.36-9+deb12u4");
        assert_eq!(v["PkgName"], "libc6");
        assert_eq!(v["InstalledVersion"], "2.36-9+deb12u4");
        assert_eq!(v["FixedVersion"], "2.36-9+deb12u7");
        assert_eq!(v["Status"], "fixed");
        assert_eq!(v["Severity"], "HIGH");
        assert_eq!(v["SeveritySource"], "debian");
        assert_eq!(v["Layer"]["DiffID"], "sha256:aaaa");
        assert!(
            v["PkgIdentifier"]["PURL"]
                .as_str()
                .unwrap()
                .starts_with("pkg:deb/debian/libc6@")
        );
        assert!(result["Vulnerabilities"][1].get("FixedVersion").is_none());
        assert_eq!(result["Vulnerabilities"][1]["Status"], "will_not_fix");
    }
}
