//! OpenVEX documents for a patch.
//!
//! Owns writing the OpenVEX v0.2.0 JSON a patch leaves as evidence: one
//! statement per fixed vulnerability, `status: fixed`, the patched image as
//! product (`pkg:oci/<name>@<digest>`) and the upgraded packages as
//! subcomponents (purls, as Copa writes them). A vulnerability whose fix
//! also needs a maintainer-script effect that the patch neither reproduced
//! nor ran (a trust store hook) is never called fixed: its statement says
//! `under_investigation`, with the missing effect in `status_notes`. Written by hand: the only
//! Rust crates for OpenVEX are unmaintained and the format is a few fields.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::effects::ScriptEffect;
use crate::plan::{Plan, Reason};

/// `pkg:deb/debian/libssl3@3.0.17-1~deb12u2?arch=amd64&distro=debian-12`.
pub(crate) fn deb_purl(
    distro: &str,
    release: &str,
    name: &str,
    version: &str,
    arch: &str,
) -> String {
    format!(
        "pkg:deb/{distro}/{name}@{}?arch={arch}&distro={distro}-{release}",
        version.replace('+', "%2B").replace(':', "%3A")
    )
}

/// `pkg:oci/nginx@sha256:…?repository_url=registry/library/nginx`.
pub fn oci_purl(repository: &str, digest: &str) -> String {
    let name = repository.rsplit('/').next().unwrap_or(repository);
    format!(
        "pkg:oci/{name}@{}?repository_url={}",
        digest.replace(':', "%3A"),
        repository
    )
}

/// One patched platform's contribution.
pub struct Patched<'a> {
    /// The platform's plan.
    pub plan: &'a Plan,
    /// The product's purl.
    pub product: String,
    /// The distribution's `os-release` `ID` (`debian`), for package purls.
    pub distro: &'a str,
    /// Its release (`12`), for package purls.
    pub release: &'a str,
    /// What the upgraded packages' scripts do and how the patch handled it.
    pub effects: &'a [ScriptEffect],
}

/// The document; `timestamp` in RFC 3339.
pub fn document(id: &str, timestamp: &str, patched: &[Patched]) -> Value {
    // (vulnerability, what the fix still waits for) -> product -> subcomponents
    type Statements = BTreeMap<(String, Option<String>), BTreeMap<String, Vec<String>>>;
    let mut statements: Statements = BTreeMap::new();
    for platform in patched {
        for step in &platform.plan.steps {
            let Reason::Requested(ids) = &step.reason else {
                continue;
            };
            let purl = deb_purl(
                platform.distro,
                platform.release,
                &step.name,
                step.to_version(),
                &step.architecture,
            );
            let pending: Vec<&str> = platform
                .effects
                .iter()
                .filter(|e| e.package == step.name && e.leaves_fix_pending())
                .map(|e| e.effect.as_str())
                .collect();
            let pending = (!pending.is_empty()).then(|| {
                format!(
                    "{} {} is installed, but the fix also needs {}, which the patch neither \
                     reproduced nor ran",
                    step.name,
                    step.to_version(),
                    pending.join("; ")
                )
            });
            for id in ids {
                statements
                    .entry((id.clone(), pending.clone()))
                    .or_default()
                    .entry(platform.product.clone())
                    .or_default()
                    .push(purl.clone());
            }
        }
    }
    let statements: Vec<Value> = statements
        .into_iter()
        .map(|((vulnerability, pending), products)| {
            let products: Vec<Value> = products
                .into_iter()
                .map(|(product, subcomponents)| {
                    json!({
                        "@id": product,
                        "subcomponents": subcomponents.into_iter().map(|s| json!({"@id": s})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            match pending {
                None => json!({
                    "vulnerability": {"name": vulnerability},
                    "products": products,
                    "status": "fixed",
                }),
                Some(notes) => json!({
                    "vulnerability": {"name": vulnerability},
                    "products": products,
                    "status": "under_investigation",
                    "status_notes": notes,
                }),
            }
        })
        .collect();
    json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": id,
        "author": "drydock",
        "timestamp": timestamp,
        "version": 1,
        "tooling": concat!("drydock ", env!("CARGO_PKG_VERSION")),
        "statements": statements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_per_fixed_vulnerability() {
        let step = |name: &str, ids: &[&str]| {
            crate::plan::test_step(name, ("amd64", "1:2+deb12u1"), true, ids)
        };
        let plan = Plan {
            steps: vec![
                step("libssl3", &["CVE-1", "CVE-2"]),
                step("openssl", &["CVE-1"]),
            ],
            skipped: vec![],
        };
        let product = oci_purl("localhost:5000/app", "sha256:ab");
        let doc = document(
            "urn:x",
            "2026-01-01T00:00:00Z",
            &[Patched {
                plan: &plan,
                product: product.clone(),
                distro: "debian",
                release: "12",
                effects: &[],
            }],
        );
        let statements = doc["statements"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["vulnerability"]["name"], "CVE-1");
        assert_eq!(statements[0]["status"], "fixed");
        assert_eq!(statements[0]["products"][0]["@id"], product.as_str());
        let subcomponents = statements[0]["products"][0]["subcomponents"]
            .as_array()
            .unwrap();
        assert_eq!(subcomponents.len(), 2);
        assert_eq!(
            subcomponents[0]["@id"],
            "pkg:deb/debian/libssl3@1%3A2%2Bdeb12u1?arch=amd64&distro=debian-12"
        );

        // A hook the fix needs was not run: CVE-2 (only libssl3's) is not called fixed.
        let effects = [
            ScriptEffect {
                package: "libssl3".into(),
                effect: "update-ca-certificates hook /etc/ca-certificates/update.d/jks".into(),
                handling: crate::effects::Handling::NotRun,
                fix_depends_on_it: true,
            },
            ScriptEffect {
                package: "openssl".into(),
                effect: "maintainer scripts (postinst)".into(),
                handling: crate::effects::Handling::NotRun,
                fix_depends_on_it: false,
            },
        ];
        let doc = document(
            "urn:x",
            "2026-01-01T00:00:00Z",
            &[Patched {
                plan: &plan,
                product,
                distro: "debian",
                release: "12",
                effects: &effects,
            }],
        );
        let statements = doc["statements"].as_array().unwrap();
        let by_status = |id: &str, status: &str| {
            statements
                .iter()
                .filter(|s| s["vulnerability"]["name"] == id && s["status"] == status)
                .count()
        };
        assert_eq!(by_status("CVE-2", "fixed"), 0);
        assert_eq!(by_status("CVE-2", "under_investigation"), 1);
        // CVE-1 is fixed in openssl, pending in libssl3: one statement each.
        assert_eq!(by_status("CVE-1", "fixed"), 1);
        assert_eq!(by_status("CVE-1", "under_investigation"), 1);
        let pending = statements
            .iter()
            .find(|s| s["status"] == "under_investigation")
            .unwrap();
        assert!(pending["status_notes"].as_str().unwrap().contains("jks"));
    }
}
