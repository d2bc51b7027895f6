//! The publish sequence: open the image, plan and build its patch, write
//! it (new blobs first, the tag last), scan the result, attach the evidence.
//!
//! Owns the order of the steps and what stops them (a dry run, nothing to
//! upgrade, the destination already holding this patch, a cancellation
//! before anything is written); the steps themselves are
//! [`crate::publish`]'s and the patcher's. Called by `drydock patch` and by
//! workflow runs alike.

use std::path::PathBuf;

use oci::manifest::ContentRef;
use patch::patcher::{Outcome, Patcher, Request, ScriptMode, WantSource};
use scan::Scanner;

use crate::publish::{self, Evidence, Output, Written};
use crate::{Environment, EnvironmentError, RegistryPolicy};

/// What a patch upgrades.
#[derive(Debug, Clone)]
pub enum Wants {
    /// What a scan of each platform finds fixable.
    Scan,
    /// The fixable OS-package findings of a Trivy report.
    Report(Vec<Request>),
    /// Every package with a newer version in the suites.
    All,
}

/// How the patched image's tag is chosen.
#[derive(Debug, Clone)]
pub enum TagChoice {
    /// This tag.
    Named(String),
    /// The original's tag with this appended (`1.25` → `1.25-patched`).
    Suffix(String),
}

/// Another OCI layout to write the patched image to, instead of beside the original.
#[derive(Debug, Clone)]
pub struct LayoutOutput {
    /// The layout's directory.
    pub path: PathBuf,
    /// The tag there; absent, the [`TagChoice`]'s.
    pub tag: Option<String>,
}

/// One image to patch and publish.
#[derive(Debug, Clone)]
pub struct PatchRequest {
    /// A registry reference, `oci:DIR[:TAG]`, or a `docker save` archive.
    pub image: String,
    /// What to upgrade.
    pub wants: Wants,
    /// The patched image's tag.
    pub tag: TagChoice,
    /// Another layout to write to; absent, beside the original.
    pub output: Option<LayoutOutput>,
    /// How maintainer scripts and triggers are handled.
    pub scripts: ScriptMode,
    /// Plan only: read the image and the suites, write nothing.
    pub dry_run: bool,
    /// How the image's registry is reached.
    pub registry: RegistryPolicy,
}

/// A step of the sequence, as it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Copying the image into the working layout.
    Reading,
    /// Planning, downloading and building the layer (or running dpkg in the sandbox).
    Patching(ScriptMode),
    /// Writing the patched image to its destination.
    Writing,
    /// Scanning the patched image and attaching the evidence.
    Evidence,
}

/// Follows a patch as it goes, and may stop it before anything is written.
pub trait Observer: Sync {
    /// A step starts.
    fn stage(&self, _stage: Stage) {}
    /// Checked before the patched image is written: `true` stops the
    /// sequence with [`EnvironmentError::Canceled`].
    fn canceled(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
impl Observer for () {}

/// How a patch ended.
pub enum PatchResult {
    /// A dry run: the plan, nothing written.
    Planned {
        /// The plan per platform.
        outcome: Outcome,
    },
    /// Nothing to upgrade: nothing written.
    NothingToPatch {
        /// The (empty) plan per platform, with what was not upgraded and why.
        outcome: Outcome,
    },
    /// The destination already held exactly this patch under the tag.
    AlreadyPublished {
        /// The plan and layers per platform.
        outcome: Outcome,
        /// The patched image.
        patched: ContentRef,
        /// Where it is.
        written: Written,
    },
    /// The patched image was written, its evidence attached.
    Published {
        /// The plan and layers per platform.
        outcome: Outcome,
        /// The patched image.
        patched: ContentRef,
        /// Where it was written and what was sent.
        written: Written,
        /// The VEX document and the post-patch scans, as attached.
        evidence: Evidence,
    },
}

impl PatchResult {
    /// The plan and layers per platform.
    pub fn outcome(&self) -> &Outcome {
        match self {
            PatchResult::Planned { outcome }
            | PatchResult::NothingToPatch { outcome }
            | PatchResult::AlreadyPublished { outcome, .. }
            | PatchResult::Published { outcome, .. } => outcome,
        }
    }
}

impl Environment {
    /// Patches `request.image` with `patcher` and publishes the result:
    /// the original is never modified, the patched tag moves only once
    /// everything it points to is written, and the evidence (OpenVEX, the
    /// post-patch scans by `scanner`) is attached to it as referrers.
    pub async fn patch_and_publish(
        &self,
        patcher: &Patcher,
        scanner: &Scanner,
        request: &PatchRequest,
        observer: &dyn Observer,
    ) -> Result<PatchResult, EnvironmentError> {
        observer.stage(Stage::Reading);
        let source = publish::open(
            &request.image,
            self.registry_options(&request.registry),
            &self.layout().patch_cache(),
        )
        .await?;
        if source.archive.is_some() && request.output.is_none() && !request.dry_run {
            return Err(EnvironmentError::ArchiveNeedsOutput {
                image: request.image.clone(),
            });
        }
        let wants = match &request.wants {
            Wants::Scan => WantSource::Scan(scanner),
            Wants::Report(requests) => WantSource::Report(requests.clone()),
            Wants::All => WantSource::All,
        };
        observer.stage(Stage::Patching(request.scripts));
        let outcome = patcher
            .patch(
                &source.work,
                &source.content,
                &source.base_name,
                &wants,
                request.scripts,
                request.dry_run,
            )
            .await?;
        if request.dry_run {
            return Ok(PatchResult::Planned { outcome });
        }
        let Some(patched) = outcome.patched.clone() else {
            return Ok(PatchResult::NothingToPatch { outcome });
        };
        let output = output(request, source.tag.as_deref())?;
        if observer.canceled() {
            return Err(EnvironmentError::Canceled);
        }
        observer.stage(Stage::Writing);
        let written = publish::write(&source, &patched, output).await?;
        if written.unchanged {
            return Ok(PatchResult::AlreadyPublished {
                outcome,
                patched,
                written,
            });
        }
        observer.stage(Stage::Evidence);
        let evidence = publish::evidence(&outcome, &patched, &written, scanner).await?;
        publish::attach(&written, &patched, &evidence).await?;
        Ok(PatchResult::Published {
            outcome,
            patched,
            written,
            evidence,
        })
    }
}

/// Where the patched image goes and under which tag.
fn output(request: &PatchRequest, original_tag: Option<&str>) -> Result<Output, EnvironmentError> {
    let layout_tag = request.output.as_ref().and_then(|o| o.tag.clone());
    let tag = match (&request.tag, layout_tag, original_tag) {
        (TagChoice::Named(tag), _, _) => tag.clone(),
        (TagChoice::Suffix(_), Some(layout_tag), _) => layout_tag,
        (TagChoice::Suffix(suffix), None, Some(original)) => format!("{original}{suffix}"),
        (TagChoice::Suffix(_), None, None) => {
            return Err(EnvironmentError::NoTagToDerive {
                image: request.image.clone(),
            });
        }
    };
    Ok(match &request.output {
        Some(layout) => Output::Layout {
            path: layout.path.clone(),
            tag: layout.tag.clone().unwrap_or(tag),
        },
        None => Output::Beside(tag),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tag: TagChoice, output: Option<LayoutOutput>) -> PatchRequest {
        PatchRequest {
            image: "registry.local/app:1.25".to_string(),
            wants: Wants::Scan,
            tag,
            output,
            scripts: ScriptMode::Native,
            dry_run: false,
            registry: RegistryPolicy::default(),
        }
    }

    fn beside(output: Output) -> Option<String> {
        match output {
            Output::Beside(tag) => Some(tag),
            Output::Layout { .. } => None,
        }
    }

    #[test]
    fn the_patched_tag_is_named_or_derived_from_the_original() {
        let suffix = request(TagChoice::Suffix("-patched".into()), None);
        assert_eq!(
            beside(output(&suffix, Some("1.25")).unwrap()).as_deref(),
            Some("1.25-patched")
        );
        let named = request(TagChoice::Named("1.25-3".into()), None);
        assert_eq!(
            beside(output(&named, Some("1.25")).unwrap()).as_deref(),
            Some("1.25-3")
        );
        assert!(matches!(
            output(&suffix, None),
            Err(EnvironmentError::NoTagToDerive { .. })
        ));
    }

    #[test]
    fn a_layout_output_takes_its_own_tag_first() {
        let to_layout = |tag: Option<&str>, choice: TagChoice| {
            let request = request(
                choice,
                Some(LayoutOutput {
                    path: "/out".into(),
                    tag: tag.map(str::to_string),
                }),
            );
            match output(&request, None) {
                Ok(Output::Layout { tag, .. }) => tag,
                _ => panic!("a layout output"),
            }
        };
        assert_eq!(to_layout(Some("v1"), TagChoice::Suffix("-p".into())), "v1");
        assert_eq!(to_layout(None, TagChoice::Named("v2".into())), "v2");
        assert_eq!(to_layout(Some("v1"), TagChoice::Named("v2".into())), "v1");
    }
}
