//! What the upgraded packages' maintainer scripts and triggers do, and how
//! a patch handled each: reproduced natively, or not run (and then said in
//! the summary, the report and the VEX document). The vocabulary only; the
//! layer builder decides; [`fixed_and_pending`] is the one place that says
//! which vulnerabilities a patch may call fixed.

use std::collections::BTreeSet;
use std::fmt;

use crate::plan::{Plan, Reason};

/// How a patch handled one effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// The layer holds what the script would have left.
    Reproduced,
    /// Neither reproduced nor run: the image differs from what apt leaves.
    NotRun,
    /// The script itself ran, in the sandbox (sandbox mode).
    Run,
}

impl fmt::Display for Handling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handling::Reproduced => "reproduced",
            Handling::NotRun => "not run",
            Handling::Run => "run in the sandbox",
        })
    }
}

/// One effect of a package's maintainer scripts or triggers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptEffect {
    /// The package whose script or trigger it is.
    pub package: String,
    /// What the script changes (`update-ca-certificates: …`).
    pub effect: String,
    /// Whether the patch reproduced it, ran it, or neither.
    pub handling: Handling,
    /// The fix of the package's vulnerabilities takes effect only with this
    /// effect (a trust store hook): when it was not run, the evidence must
    /// not call them fixed.
    pub fix_depends_on_it: bool,
}

impl ScriptEffect {
    /// An effect the fix needs that the patch neither reproduced nor ran.
    pub fn leaves_fix_pending(&self) -> bool {
        self.handling == Handling::NotRun && self.fix_depends_on_it
    }
}

/// The vulnerabilities a plan fixes, and those whose packages it upgrades
/// but whose fix still waits for an effect that was not run (never to be
/// reported fixed).
pub fn fixed_and_pending(
    plan: &Plan,
    effects: &[ScriptEffect],
) -> (BTreeSet<String>, BTreeSet<String>) {
    let waiting: BTreeSet<&str> = effects
        .iter()
        .filter(|e| e.leaves_fix_pending())
        .map(|e| e.package.as_str())
        .collect();
    let (mut fixed, mut pending) = (BTreeSet::new(), BTreeSet::new());
    for step in &plan.steps {
        if let Reason::Requested(ids) = &step.reason {
            let into = if waiting.contains(step.name.as_str()) {
                &mut pending
            } else {
                &mut fixed
            };
            into.extend(ids.iter().cloned());
        }
    }
    // One package still waiting keeps a vulnerability it shares with others pending.
    let fixed = fixed.difference(&pending).cloned().collect();
    (fixed, pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;

    fn step(name: &str, ids: &[&str]) -> Step {
        crate::plan::test_step(name, ("all", "2"), true, ids)
    }

    #[test]
    fn a_fix_waiting_for_an_effect_is_never_counted_fixed() {
        let plan = Plan {
            steps: vec![
                step("ca-certificates", &["CVE-1", "CVE-2"]),
                step("openssl", &["CVE-2", "CVE-3"]),
            ],
            skipped: vec![],
        };
        let hook = ScriptEffect {
            package: "ca-certificates".into(),
            effect: "update-ca-certificates hook /etc/ca-certificates/update.d/jks".into(),
            handling: Handling::NotRun,
            fix_depends_on_it: true,
        };
        let (fixed, pending) = fixed_and_pending(&plan, std::slice::from_ref(&hook));
        assert_eq!(fixed.into_iter().collect::<Vec<_>>(), ["CVE-3"]);
        assert_eq!(pending.into_iter().collect::<Vec<_>>(), ["CVE-1", "CVE-2"]);
        let reproduced = ScriptEffect {
            handling: Handling::Reproduced,
            ..hook
        };
        let (fixed, pending) = fixed_and_pending(&plan, &[reproduced]);
        assert_eq!(fixed.len(), 3);
        assert!(pending.is_empty());
    }
}
