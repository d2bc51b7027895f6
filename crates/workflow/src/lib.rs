//! drydock's continuous-patching workflows, compatible with Azure Container
//! Registry's Continuous Patching (`az acr supply-chain workflow`, the
//! `acrcssc` Azure CLI extension): the pure parts.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | `continuouspatching.json` v1: parsing and every validation rule, with ACR's messages |
//! | [`tags`] | tag conventions (incremental `-1` … `-999`, floating `-patched`), patch tags, latest and next patch of a tag |
//! | [`matching`] | the dry run: a config against a registry listing, the 100-image limit, its text form |
//! | [`schedule`] | `--schedule Nd`: cron expression, the days of a month, the next run |
//! | [`run`] | run statuses, task kinds and skip reasons: the vocabulary others store and show |
//!
//! Nothing here touches the network, a database or the clock; the only I/O
//! is [`Config::from_file`] reading the config. Running the pipeline,
//! storing workflows and runs, the server API and the CLI build on this.
//!
//! drydock departs from ACR where ACR is wrong or fragile, and each module
//! says where: patch tags are the tags drydock *knows* it created (an
//! annotation on the manifest), never guessed from names; configured tags
//! are compared as text, not put into regular expressions; matched images
//! are unique and in a stable order; the default tag convention is
//! incremental everywhere; a tag at its patch limit is reported, not failed
//! on every run.
//!
//! ACR sources read for the rules and messages (nothing copied):
//! Azure/azure-cli-extensions `src/acrcssc/azext_acrcssc/` (`_validators.py`,
//! `_params.py`, `helper/_constants.py`, `helper/_utility.py`,
//! `helper/_taskoperations.py`, `helper/_workflow_status.py`,
//! `helper/_ociartifactoperations.py`, `templates/tmp_dry_run_template.yaml`,
//! `templates/task/cssc_trigger_workflow.yaml`, `cssc_scan_image.yaml`,
//! `cssc_patch_image.yaml`) and Azure/acr-cli (`cmd/acr/cssc.go`,
//! `internal/cssc/cssc.go`), the in-task filter.

pub mod config;
pub mod matching;
pub mod run;
pub mod schedule;
pub mod tags;

pub use config::{Config, ConfigError, RepositoryFilter, TagSelection};
pub use matching::{
    DryRun, MatchedImage, NotFound, NotFoundReason, TooManyImages, match_config, render_dry_run,
};
pub use run::{RunStatus, SkipReason, TaskKind, UnknownName};
pub use schedule::{Schedule, ScheduleError};
pub use tags::{PatchTag, PatchTagError, RepositoryTags, TagConvention};

/// Any error of this crate, for callers that want one type.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// A config file or text was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A schedule is not `Nd` with 1 ≤ N ≤ 30.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// No next patch tag can be named for a tag.
    #[error(transparent)]
    PatchTag(#[from] PatchTagError),
    /// A config matches more images than a workflow may patch.
    #[error(transparent)]
    TooManyImages(#[from] TooManyImages),
    /// A run status, task or skip reason is not one of its spellings.
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
}
