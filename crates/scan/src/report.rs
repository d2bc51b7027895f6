//! What a scan found, independent of how it is shown.
//!
//! Owns the report model every renderer reads: the artifact, its OS (with
//! end-of-life state), one result per target (today: the OS packages), the
//! packages of that target and the findings against them. Also the
//! package-URL (purl) spelling shared by every format. Pure data; no I/O.

use advisory::{Severity, Status};

/// The package ecosystem of a target, as Trivy names it in `Results[].Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum OsFamily {
    /// Debian and its derivatives that keep Debian's advisories.
    Debian,
    /// Ubuntu.
    Ubuntu,
    /// Alpine Linux.
    Alpine,
    /// Red Hat Enterprise Linux and the rpm-based distributions Trivy files under it.
    Redhat,
}

impl OsFamily {
    /// Trivy's name for the family (`debian`, `ubuntu`, `alpine`, `redhat`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    fn purl_type(self) -> &'static str {
        match self {
            OsFamily::Debian | OsFamily::Ubuntu => "deb",
            OsFamily::Alpine => "apk",
            OsFamily::Redhat => "rpm",
        }
    }
}

/// The operating system of the scanned image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsSummary {
    /// The distribution family.
    pub family: OsFamily,
    /// The release as users name it: `12.5`, `24.04`, `3.20.3`.
    pub name: String,
    /// End of service life: the vendor no longer publishes fixes.
    pub eosl: bool,
}

/// One installed package, as the reports list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageEntry {
    /// The binary package's name.
    pub name: String,
    /// The installed version (with epoch, as the package manager spells it).
    pub version: String,
    /// The package's architecture (`amd64`, `all`, `x86_64`, `noarch`).
    pub architecture: String,
    /// The source package it was built from (advisories are filed under it).
    pub source_name: String,
    /// The source package's version.
    pub source_version: String,
    /// The diff id of the layer the package came from, when known.
    pub layer_diff_id: Option<String>,
}

/// One vulnerability affecting one installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `CVE-…`, `DSA-…`, `USN-…`, as the advisory names it.
    pub vulnerability_id: String,
    /// The affected installed package.
    pub package: PackageEntry,
    /// Fixed (in which version), or why not.
    pub status: Status,
    /// The rating the report shows.
    pub severity: Severity,
    /// Whose rating `severity` is (`debian`, `ubuntu`, `nvd`, …).
    pub severity_source: String,
    /// Where to read about the vulnerability.
    pub primary_url: Option<String>,
    /// A one-line description, when the advisory has one.
    pub title: Option<String>,
}

impl Finding {
    /// The version that fixes it, when one is published.
    pub fn fixed_version(&self) -> Option<&str> {
        self.status.fixed_version()
    }
}

/// The findings for one target (the OS packages of an image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetResult {
    /// `nginx:1.25 (debian 12.5)`.
    pub target: String,
    /// The target's package ecosystem.
    pub family: OsFamily,
    /// Every installed package of the target.
    pub packages: Vec<PackageEntry>,
    /// The vulnerabilities found that the filters kept.
    pub findings: Vec<Finding>,
}

impl TargetResult {
    /// Counts per severity, in [`Severity::ALL`] order.
    pub fn totals(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for finding in &self.findings {
            counts[finding.severity as usize] += 1;
        }
        counts
    }

    /// `Total: N (UNKNOWN: a, LOW: b, MEDIUM: c, HIGH: d, CRITICAL: e)`.
    pub fn total_line(&self) -> String {
        let counts = self.totals();
        let parts: Vec<String> = Severity::ALL
            .iter()
            .zip(counts)
            .map(|(severity, count)| format!("{severity}: {count}"))
            .collect();
        format!("Total: {} ({})", self.findings.len(), parts.join(", "))
    }
}

/// What one scan of one image found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The image as the user named it.
    pub artifact_name: String,
    /// The image's manifest digest, when it came from a registry or layout.
    pub artifact_digest: Option<String>,
    /// The image's operating system, when known.
    pub os: Option<OsSummary>,
    /// The image configuration document, as stored.
    pub image_config: serde_json::Value,
    /// One result per target (today, the OS packages).
    pub results: Vec<TargetResult>,
    /// RFC 3339 time of the scan.
    pub created_at: String,
}

/// Appends `text` to `out` as a purl component: RFC 3986 unreserved
/// characters stay, every other byte is percent-encoded.
fn push_purl_escaped(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

impl OsSummary {
    /// `pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12.5`, as
    /// Trivy writes it: an epoch moves from the version into an `epoch` qualifier.
    pub fn purl(&self, package: &PackageEntry) -> String {
        let (epoch, version) = match package.version.split_once(':') {
            Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) => (Some(epoch), rest),
            _ => (None, package.version.as_str()),
        };
        let family = self.family.as_str();
        let mut purl = String::with_capacity(64 + package.name.len() + version.len());
        purl.push_str("pkg:");
        purl.push_str(self.family.purl_type());
        purl.push('/');
        purl.push_str(family);
        purl.push('/');
        push_purl_escaped(&mut purl, &package.name);
        purl.push('@');
        push_purl_escaped(&mut purl, version);
        purl.push_str("?arch=");
        push_purl_escaped(&mut purl, &package.architecture);
        if let Some(epoch) = epoch {
            purl.push_str("&epoch=");
            purl.push_str(epoch);
        }
        purl.push_str("&distro=");
        purl.push_str(family);
        purl.push('-');
        push_purl_escaped(&mut purl, &self.name);
        purl
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn package(name: &str, version: &str) -> PackageEntry {
        PackageEntry {
            name: name.to_string(),
            version: version.to_string(),
            architecture: "amd64".to_string(),
            source_name: name.to_string(),
            source_version: version.to_string(),
            layer_diff_id: Some("sha256:aaaa".to_string()),
        }
    }

    pub fn sample() -> Report {
        let libc = package("libc6", "2.36-9+deb12u4");
        let os = OsSummary {
            family: OsFamily::Debian,
            name: "12.5".to_string(),
            eosl: false,
        };
        let finding = |id: &str, severity, status| Finding {
            vulnerability_id: id.to_string(),
            package: libc.clone(),
            status,
            severity,
            severity_source: "debian".to_string(),
            primary_url: Some(format!("https://security-tracker.debian.org/tracker/{id}")),
            title: Some("glibc: out-of-bounds write".to_string()),
        };
        Report {
            artifact_name: "nginx:1.25".to_string(),
            artifact_digest: None,
            os: Some(os),
            image_config: serde_json::json!({"architecture": "amd64", "os": "linux"}),
            results: vec![TargetResult {
                target: "nginx:1.25 (debian 12.5)".to_string(),
                family: OsFamily::Debian,
                packages: vec![libc.clone(), package("tzdata", "2024a-0+deb12u1")],
                findings: vec![
                    finding(
                        "CVE-2024-2961",
                        Severity::High,
                        Status::Fixed {
                            fixed_version: "2.36-9+deb12u7".to_string(),
                        },
                    ),
                    finding("CVE-2010-4756", Severity::Low, Status::WillNotFix),
                ],
            }],
            created_at: "2026-11-23T12:00:00Z".to_string(),
        }
    }

    #[test]
    fn totals_and_purls() {
        let report = sample();
        assert_eq!(
            report.results[0].total_line(),
            "Total: 2 (UNKNOWN: 0, LOW: 1, MEDIUM: 0, HIGH: 1, CRITICAL: 0)"
        );
        let os = report.os.as_ref().unwrap();
        assert_eq!(
            os.purl(&report.results[0].packages[0]),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12.5"
        );
        assert_eq!(
            os.purl(&package("libgcc-s1", "1:12.2.0-14")),
            "pkg:deb/debian/libgcc-s1@12.2.0-14?arch=amd64&epoch=1&distro=debian-12.5"
        );
        assert_eq!(
            os.purl(&package("libc++1", "1.0~rc1+b2 é")),
            "pkg:deb/debian/libc%2B%2B1@1.0~rc1%2Bb2%20%C3%A9?arch=amd64&distro=debian-12.5"
        );
    }
}
