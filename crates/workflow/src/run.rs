//! The vocabulary of workflow runs that others store and show: the status
//! of a task run ([`RunStatus`]), the three tasks of a run ([`TaskKind`])
//! and why an image was not patched ([`SkipReason`]).
//!
//! Pure types with stable spellings; no run is started, stored or
//! cancelled here. [`RunStatus`] uses ACR's spellings, the values of
//! `az acr supply-chain workflow list --run-status` (Azure/azure-cli-extensions
//! `src/acrcssc/azext_acrcssc/helper/_workflow_status.py`,
//! `WorkflowTaskState`, read case-insensitively as the Azure CLI reads enum
//! arguments). ACR's skip reasons are lines of its scan task's log
//! (`templates/task/cssc_scan_image.yaml`: "PATCHING will be skipped as EOSL
//! is true for image …", "… as no vulnerability found in the image …");
//! drydock's are a closed set with texts of its own, and include reasons
//! ACR does not report as skips: a Windows image or one without a package
//! database (ACR fails those runs) and a tag at its patch limit (ACR fails
//! that image on every run after `-999`).

use std::fmt;

use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantArray, VariantNames};

/// A name that is not one of a vocabulary's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a {what}: use one of {}", .expected.join(", "))]
pub struct UnknownName {
    /// What was being read, e.g. "run status".
    pub what: &'static str,
    /// The name as given.
    pub given: String,
    /// The accepted spellings.
    pub expected: &'static [&'static str],
}

impl UnknownName {
    fn of<T: VariantNames>(what: &'static str, given: &str) -> UnknownName {
        UnknownName {
            what,
            given: given.to_string(),
            expected: T::VARIANTS,
        }
    }
}

/// Where a task run stands, as `--run-status` names it. Parses ACR's
/// spellings in any case (`failed`, `FAILED`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    EnumString,
    IntoStaticStr,
    VariantArray,
    VariantNames,
)]
#[strum(
    ascii_case_insensitive,
    parse_err_ty = UnknownName,
    parse_err_fn = unknown_run_status
)]
pub enum RunStatus {
    /// Waiting for its turn (a free slot, or its image's previous run).
    Queued,
    /// Being worked on.
    Running,
    /// Done: the trigger queued its scans, the scan queued a patch, the
    /// patch pushed its image.
    Succeeded,
    /// Ended with an error (its reason says which).
    Failed,
    /// The scan succeeded and found nothing to patch (see [`SkipReason`]).
    Skipped,
    /// Canceled by the user before it ended.
    Canceled,
}

fn unknown_run_status(given: &str) -> UnknownName {
    UnknownName::of::<RunStatus>("run status", given)
}

impl RunStatus {
    /// Every status, in the order a run moves through them.
    pub const ALL: &'static [RunStatus] = <RunStatus as VariantArray>::VARIANTS;

    /// ACR's spelling: `Queued`, `Running`, `Succeeded`, `Failed`,
    /// `Skipped`, `Canceled`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// True while the run may still change: `Queued` or `Running` (what
    /// `cancel-run` cancels).
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

/// The three tasks of a run, in order: the trigger matches the config and
/// queues scans, each scan may queue a patch. Spelled `trigger`, `scan`,
/// `patch` (case matters).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    EnumString,
    IntoStaticStr,
    VariantArray,
    VariantNames,
)]
#[serde(rename_all = "lowercase")]
#[strum(
    serialize_all = "lowercase",
    parse_err_ty = UnknownName,
    parse_err_fn = unknown_task
)]
pub enum TaskKind {
    /// Matches the config against the registry and queues the scans.
    Trigger,
    /// Scans one image for fixable vulnerabilities and queues its patch.
    Scan,
    /// Patches one image and pushes the patch tag.
    Patch,
}

fn unknown_task(given: &str) -> UnknownName {
    UnknownName::of::<TaskKind>("task", given)
}

impl TaskKind {
    /// Every task, in the order a run performs them.
    pub const ALL: &'static [TaskKind] = <TaskKind as VariantArray>::VARIANTS;

    /// `trigger`, `scan` or `patch`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What the task does, for `workflow show`.
    pub fn description(self) -> &'static str {
        match self {
            TaskKind::Trigger => {
                "Runs on the workflow's schedule: matches the configured repositories and tags against the registry and queues a scan of each matched image."
            }
            TaskKind::Scan => {
                "Scans the latest patch of an image (or the original when it has none) for fixable OS-package vulnerabilities and queues a patch when there are any."
            }
            TaskKind::Patch => {
                "Upgrades the vulnerable OS packages of the original image and pushes the result under the next patch tag."
            }
        }
    }
}

/// Why an image was scanned but not patched. Displays as a sentence for
/// users; [`as_str`](Self::as_str) is the stable code to store, and what
/// it parses from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    EnumString,
    IntoStaticStr,
    VariantArray,
    VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = UnknownName,
    parse_err_fn = unknown_skip_reason
)]
pub enum SkipReason {
    /// The OS is past its vendor's end of service life (EOSL).
    EndOfLife,
    /// Windows images are not patched.
    WindowsImage,
    /// The scan found no fixable OS-package vulnerability.
    NothingFixable,
    /// The tag has its 999th incremental patch.
    TagLimitReached,
    /// The image has no OS package database to patch against.
    NoPackageDatabase,
}

fn unknown_skip_reason(given: &str) -> UnknownName {
    UnknownName::of::<SkipReason>("skip reason", given)
}

impl SkipReason {
    /// Every reason.
    pub const ALL: &'static [SkipReason] = <SkipReason as VariantArray>::VARIANTS;

    /// The stable code: `end_of_life`, `windows_image`, `nothing_fixable`,
    /// `tag_limit_reached`, `no_package_database`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::EndOfLife => {
                "end-of-life OS (EOSL): its vendor publishes no more fixes; move the image to a supported release"
            }
            SkipReason::WindowsImage => "Windows image: only Linux images can be patched",
            SkipReason::NothingFixable => "no fixable OS vulnerabilities found",
            SkipReason::TagLimitReached => {
                "tag limit reached: no more than 999 patches can be created for a tag; use the \"floating\" tag-convention for this repository"
            }
            SkipReason::NoPackageDatabase => {
                "no package database: the image has no OS package database to patch against"
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_statuses_use_acrs_spellings() {
        let names: Vec<_> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "Queued",
                "Running",
                "Succeeded",
                "Failed",
                "Skipped",
                "Canceled"
            ]
        );
        for &status in RunStatus::ALL {
            assert_eq!(status.to_string().parse::<RunStatus>(), Ok(status));
            assert_eq!(
                status.as_str().to_lowercase().parse::<RunStatus>(),
                Ok(status)
            );
            assert_eq!(
                status.as_str().to_uppercase().parse::<RunStatus>(),
                Ok(status)
            );
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        assert_eq!(
            serde_json::from_str::<RunStatus>("\"Canceled\"").unwrap(),
            RunStatus::Canceled
        );
    }

    #[test]
    fn unknown_run_status_lists_the_choices() {
        for given in ["Cancelled", "Started", "Unknown", "", " Failed"] {
            let error = given.parse::<RunStatus>().unwrap_err();
            assert_eq!(error.given, given);
            assert_eq!(
                error.to_string(),
                format!(
                    "{given:?} is not a run status: use one of Queued, Running, Succeeded, Failed, Skipped, Canceled"
                )
            );
        }
    }

    #[test]
    fn only_queued_and_running_are_active() {
        let active: Vec<_> = RunStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, [RunStatus::Queued, RunStatus::Running]);
    }

    #[test]
    fn task_kinds() {
        let names: Vec<_> = TaskKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["trigger", "scan", "patch"]);
        for &kind in TaskKind::ALL {
            assert_eq!(kind.to_string().parse::<TaskKind>(), Ok(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
            assert!(kind.description().ends_with('.'));
        }
        assert_eq!(
            "Scan".parse::<TaskKind>().unwrap_err().to_string(),
            "\"Scan\" is not a task: use one of trigger, scan, patch"
        );
    }

    #[test]
    fn skip_reasons_have_codes_and_sentences() {
        let codes: Vec<_> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            codes,
            [
                "end_of_life",
                "windows_image",
                "nothing_fixable",
                "tag_limit_reached",
                "no_package_database"
            ]
        );
        for &reason in SkipReason::ALL {
            assert_eq!(reason.as_str().parse::<SkipReason>(), Ok(reason));
            assert_eq!(
                serde_json::to_string(&reason).unwrap(),
                format!("\"{}\"", reason.as_str())
            );
            assert_ne!(reason.to_string(), reason.as_str());
        }
        assert_eq!(
            SkipReason::NothingFixable.to_string(),
            "no fixable OS vulnerabilities found"
        );
        assert!(
            SkipReason::EndOfLife
                .to_string()
                .starts_with("end-of-life OS (EOSL)")
        );
        assert!(
            SkipReason::WindowsImage
                .to_string()
                .starts_with("Windows image")
        );
        assert!(
            SkipReason::TagLimitReached
                .to_string()
                .starts_with("tag limit reached")
        );
        assert!(
            SkipReason::NoPackageDatabase
                .to_string()
                .starts_with("no package database")
        );
        assert_eq!(
            "eosl".parse::<SkipReason>().unwrap_err().to_string(),
            "\"eosl\" is not a skip reason: use one of end_of_life, windows_image, nothing_fixable, tag_limit_reached, no_package_database"
        );
        assert!("End_Of_Life".parse::<SkipReason>().is_err());
    }
}
