//! The dry run: a config expanded against a registry's listing into the
//! images a run scans, and its text form.
//!
//! Owns [`match_config`], the 100-image limit ([`DryRun::check_image_limit`])
//! and [`render_dry_run`]. Pure: the caller lists the registry (tags per
//! repository and the patch tags drydock created, as
//! [`RepositoryTags`]); nothing here talks to a registry.
//!
//! Semantics, per enabled config item in the config's order (disabled
//! items are skipped):
//! - a repository missing from the listing puts every configured tag
//!   (`*` included) on the not-found list;
//! - `*` selects every original tag of the repository, in tag order; patch
//!   tags are never selected themselves, they are found as their
//!   original's latest patch;
//! - a listed tag is matched when present and not a patch; a missing tag,
//!   or a tag that is itself one of drydock's patches (patches are built
//!   from originals only), goes on the not-found list;
//! - an image reached twice (two items for one repository) is matched
//!   once, at its first place. ACR lists it twice and so scans and patches
//!   it twice per run; the order of ACR's `*` results is also random (a Go
//!   map), here it is stable.
//!
//! The text follows Azure/acr-cli's `acr cssc patch --dry-run
//! --show-patch-tags` (`cmd/acr/cssc.go`, `internal/cssc/cssc.go`:
//! `PrintNotFoundArtifacts`, `PrintFilteredResult`), which ACR's CLI prints
//! for `--dry-run` and whose `Matches found: N` line it reads for the limit:
//! "Configured Tag Convention: X" (acr-cli prints two spaces after the
//! colon, an artefact of Go's `Println`; one here), the not-found list, one
//! `repository,tag,latest patch tag` line per image (`N/A` without a patch)
//! and "Matches found: N". The limit message is the one of ACR's trigger
//! task (Azure/azure-cli-extensions
//! `src/acrcssc/azext_acrcssc/templates/task/cssc_trigger_workflow.yaml`),
//! verbatim after the count.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::config::{Config, TagSelection, WILDCARD_TAG};
use crate::tags::{PatchTag, PatchTagError, RepositoryTags, TagConvention};

/// The most images one workflow may match (inclusive), as ACR.
pub const MAX_MATCHED_IMAGES: usize = 100;

/// What the dry run shows when nothing matches; ACR's CLI also logs it as
/// a warning.
pub const NO_MATCHES_WARNING: &str = "No matching repository and tag found!";

/// One image a run scans (and patches when it has fixable vulnerabilities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedImage {
    /// The repository, as configured.
    pub repository: String,
    /// The original tag; every patch is built from it.
    pub tag: String,
    /// The newest patch under the configured convention, if any.
    pub latest_patch: Option<PatchTag>,
    /// The tag a patch made now would get, or why there is none (the run
    /// reports that image instead of patching it).
    pub next_patch: Result<PatchTag, PatchTagError>,
}

impl MatchedImage {
    /// The tag to scan: the latest patch, or the original when there is none.
    pub fn scan_target(&self) -> String {
        self.latest_patch
            .as_ref()
            .map_or_else(|| self.tag.clone(), PatchTag::name)
    }
}

/// A configured repository or tag with nothing to patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    /// The configured repository.
    pub repository: String,
    /// The configured tag (`*` for a wildcard item).
    pub tag: String,
    /// Why nothing matched.
    pub reason: NotFoundReason,
}

/// Why a configured tag matched no image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotFoundReason {
    /// The registry has no such repository.
    RepositoryMissing,
    /// The repository has no such tag.
    TagMissing,
    /// The tag is one of drydock's patches of `original`; configure the original.
    PatchTag {
        /// The original tag the patch was built from.
        original: String,
    },
}

/// The outcome of matching a config against a registry listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    /// The config's tag convention, which named the patch tags.
    pub tag_convention: TagConvention,
    /// In the config's order.
    pub not_found: Vec<NotFound>,
    /// In the config's order; within a `*` item, in tag order.
    pub matched: Vec<MatchedImage>,
}

/// More images match than a workflow may patch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{matched} images match the configuration. You have exceeded the maximum limit of 100 images that can be scheduled for continuous patching. Adjust the JSON filter to limit the number of images."
)]
pub struct TooManyImages {
    /// How many images the config matches.
    pub matched: usize,
}

impl DryRun {
    /// Refuses more than [`MAX_MATCHED_IMAGES`] matches (ACR refuses to
    /// create or update such a workflow, and fails its runs).
    pub fn check_image_limit(&self) -> Result<(), TooManyImages> {
        if self.matched.len() > MAX_MATCHED_IMAGES {
            return Err(TooManyImages {
                matched: self.matched.len(),
            });
        }
        Ok(())
    }

    /// [`NO_MATCHES_WARNING`] when nothing matched (not an error).
    pub fn no_matches_warning(&self) -> Option<&'static str> {
        self.matched.is_empty().then_some(NO_MATCHES_WARNING)
    }
}

/// Expands `config` against `registry` (repository name → its tags).
pub fn match_config(config: &Config, registry: &BTreeMap<String, RepositoryTags>) -> DryRun {
    let convention = config.tag_convention();
    let mut dry_run = DryRun {
        tag_convention: convention,
        not_found: Vec::new(),
        matched: Vec::new(),
    };
    let mut seen_matched: BTreeSet<(String, String)> = BTreeSet::new();
    let mut seen_not_found: BTreeSet<(String, String)> = BTreeSet::new();
    let mut not_found = |repository: &str, tag: &str, reason: NotFoundReason| {
        if seen_not_found.insert((repository.to_string(), tag.to_string())) {
            dry_run.not_found.push(NotFound {
                repository: repository.to_string(),
                tag: tag.to_string(),
                reason,
            });
        }
    };
    for item in config.enabled_repositories() {
        let repository = item.repository();
        let Some(tags) = registry.get(repository) else {
            let configured = match item.tags() {
                TagSelection::All => vec![WILDCARD_TAG.to_string()],
                TagSelection::Tags(tags) => tags.clone(),
            };
            for tag in &configured {
                not_found(repository, tag, NotFoundReason::RepositoryMissing);
            }
            continue;
        };
        let originals: Vec<&str> = match item.tags() {
            TagSelection::All => tags.originals().collect(),
            TagSelection::Tags(configured) => configured
                .iter()
                .filter(|tag| {
                    if !tags.contains(tag) {
                        not_found(repository, tag, NotFoundReason::TagMissing);
                        return false;
                    }
                    if let Some(original) = tags.original_of(tag) {
                        let original = original.to_string();
                        not_found(repository, tag, NotFoundReason::PatchTag { original });
                        return false;
                    }
                    true
                })
                .map(String::as_str)
                .collect(),
        };
        for original in originals {
            if seen_matched.insert((repository.to_string(), original.to_string())) {
                dry_run.matched.push(MatchedImage {
                    repository: repository.to_string(),
                    tag: original.to_string(),
                    latest_patch: tags.latest_patch(original, convention),
                    next_patch: tags.next_patch(original, convention),
                });
            }
        }
    }
    dry_run
}

/// The dry run as ACR's CLI prints it:
///
/// ```text
/// Configured Tag Convention: incremental
/// Artifacts specified in the filter that do not exist:
/// Repo,Tag
/// nginx,1.26
/// Not found: 1
/// Listing repositories and tags matching the filter with corresponding latest patch tag (if present):
/// Repo,Tag,LatestPatchTag
/// nginx,1.25,1.25-2
/// api-firewall,1.0,N/A
/// Matches found: 2
/// ```
///
/// The not-found block only appears when something was not found; with no
/// match, the listing is replaced by [`NO_MATCHES_WARNING`].
pub fn render_dry_run(dry_run: &DryRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Configured Tag Convention: {}", dry_run.tag_convention);
    if !dry_run.not_found.is_empty() {
        out.push_str("Artifacts specified in the filter that do not exist:\nRepo,Tag\n");
        for missing in &dry_run.not_found {
            let _ = writeln!(out, "{},{}", missing.repository, missing.tag);
        }
        let _ = writeln!(out, "Not found: {}", dry_run.not_found.len());
    }
    if dry_run.matched.is_empty() {
        let _ = writeln!(out, "{NO_MATCHES_WARNING}");
    } else {
        out.push_str(
            "Listing repositories and tags matching the filter with corresponding latest patch tag (if present):\nRepo,Tag,LatestPatchTag\n",
        );
        for image in &dry_run.matched {
            let latest = image
                .latest_patch
                .as_ref()
                .map_or_else(|| "N/A".to_string(), PatchTag::name);
            let _ = writeln!(out, "{},{},{latest}", image.repository, image.tag);
        }
    }
    let _ = writeln!(out, "Matches found: {}", dry_run.matched.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        Config::parse(json.as_bytes()).unwrap()
    }

    /// A repository for [`registry`]: name, tags, `(patch tag, original)` pairs.
    type Listed<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

    fn registry(repositories: &[Listed]) -> BTreeMap<String, RepositoryTags> {
        repositories
            .iter()
            .map(|(name, tags, patches)| {
                let origins = patches
                    .iter()
                    .map(|(patch, original)| (patch.to_string(), original.to_string()))
                    .collect();
                (
                    name.to_string(),
                    RepositoryTags::new(tags.iter().copied(), &origins),
                )
            })
            .collect()
    }

    /// A matched image by names: repository, tag, latest patch, next patch.
    type Row = (
        String,
        String,
        Option<String>,
        Result<String, PatchTagError>,
    );

    fn summary(dry_run: &DryRun) -> Vec<Row> {
        dry_run
            .matched
            .iter()
            .map(|image| {
                (
                    image.repository.clone(),
                    image.tag.clone(),
                    image.latest_patch.as_ref().map(PatchTag::name),
                    image
                        .next_patch
                        .as_ref()
                        .map(PatchTag::name)
                        .map_err(Clone::clone),
                )
            })
            .collect()
    }

    fn row(repository: &str, tag: &str, latest: Option<&str>, next: &str) -> Row {
        (
            repository.into(),
            tag.into(),
            latest.map(Into::into),
            Ok(next.into()),
        )
    }

    #[test]
    fn explicit_tags_wildcards_and_disabled_items() {
        let config = config(
            r#"{"version":"v1","repositories":[
                {"repository":"nginx","tags":["1.25","1.26"]},
                {"repository":"api-firewall","tags":["*"]},
                {"repository":"redis","tags":["7"],"enabled":false},
                {"repository":"missing","tags":["1","2"]}
            ]}"#,
        );
        let registry = registry(&[
            (
                "nginx",
                &["1.24", "1.25", "1.25-1", "1.25-2"],
                &[("1.25-1", "1.25"), ("1.25-2", "1.25")],
            ),
            (
                "api-firewall",
                &["0.9", "1.0", "1.0-1", "1.2-3", "latest"],
                &[("1.0-1", "1.0")],
            ),
            ("redis", &["7"], &[]),
        ]);
        let dry_run = match_config(&config, &registry);
        assert_eq!(dry_run.tag_convention, TagConvention::Incremental);
        assert_eq!(
            summary(&dry_run),
            vec![
                row("nginx", "1.25", Some("1.25-2"), "1.25-3"),
                row("api-firewall", "0.9", None, "0.9-1"),
                row("api-firewall", "1.0", Some("1.0-1"), "1.0-2"),
                row("api-firewall", "1.2-3", None, "1.2-3-1"),
                row("api-firewall", "latest", None, "latest-1"),
            ]
        );
        assert_eq!(
            dry_run.not_found,
            vec![
                NotFound {
                    repository: "nginx".into(),
                    tag: "1.26".into(),
                    reason: NotFoundReason::TagMissing
                },
                NotFound {
                    repository: "missing".into(),
                    tag: "1".into(),
                    reason: NotFoundReason::RepositoryMissing
                },
                NotFound {
                    repository: "missing".into(),
                    tag: "2".into(),
                    reason: NotFoundReason::RepositoryMissing
                },
            ]
        );
        assert_eq!(dry_run.matched[0].scan_target(), "1.25-2");
        assert_eq!(dry_run.matched[1].scan_target(), "0.9");
        assert_eq!(dry_run.check_image_limit(), Ok(()));
        assert_eq!(dry_run.no_matches_warning(), None);

        assert_eq!(
            render_dry_run(&dry_run),
            "Configured Tag Convention: incremental
Artifacts specified in the filter that do not exist:
Repo,Tag
nginx,1.26
missing,1
missing,2
Not found: 3
Listing repositories and tags matching the filter with corresponding latest patch tag (if present):
Repo,Tag,LatestPatchTag
nginx,1.25,1.25-2
api-firewall,0.9,N/A
api-firewall,1.0,1.0-1
api-firewall,1.2-3,N/A
api-firewall,latest,N/A
Matches found: 5
"
        );
    }

    #[test]
    fn floating_convention() {
        let config = config(
            r#"{"version":"v1","tag-convention":"floating","repositories":[{"repository":"nginx","tags":["*"]}]}"#,
        );
        let registry = registry(&[(
            "nginx",
            &["1.25", "1.25-1", "1.25-patched", "1.26"],
            &[("1.25-1", "1.25"), ("1.25-patched", "1.25")],
        )]);
        let dry_run = match_config(&config, &registry);
        assert_eq!(
            summary(&dry_run),
            vec![
                row("nginx", "1.25", Some("1.25-patched"), "1.25-patched"),
                row("nginx", "1.26", None, "1.26-patched"),
            ]
        );
        assert!(render_dry_run(&dry_run).starts_with("Configured Tag Convention: floating\n"));
    }

    #[test]
    fn wildcard_on_a_missing_repository_is_not_found() {
        let config =
            config(r#"{"version":"v1","repositories":[{"repository":"gone","tags":["*"]}]}"#);
        let dry_run = match_config(&config, &BTreeMap::new());
        assert_eq!(
            dry_run.not_found,
            vec![NotFound {
                repository: "gone".into(),
                tag: "*".into(),
                reason: NotFoundReason::RepositoryMissing
            }]
        );
        assert!(dry_run.matched.is_empty());
    }

    #[test]
    fn configured_patch_tags_are_not_originals() {
        let config = config(
            r#"{"version":"v1","repositories":[{"repository":"app","tags":["2.0-hotfix"]}]}"#,
        );
        let registry = registry(&[("app", &["2.0", "2.0-hotfix"], &[("2.0-hotfix", "2.0")])]);
        let dry_run = match_config(&config, &registry);
        assert!(dry_run.matched.is_empty());
        assert_eq!(
            dry_run.not_found,
            vec![NotFound {
                repository: "app".into(),
                tag: "2.0-hotfix".into(),
                reason: NotFoundReason::PatchTag {
                    original: "2.0".into()
                }
            }]
        );
    }

    #[test]
    fn images_reached_twice_are_matched_once() {
        let config = config(
            r#"{"version":"v1","repositories":[
                {"repository":"app","tags":["2"]},
                {"repository":"app","tags":["*"]},
                {"repository":"app","tags":["1","9"]},
                {"repository":"app","tags":["9"],"enabled":true}
            ]}"#,
        );
        let registry = registry(&[("app", &["1", "2", "3"], &[])]);
        let dry_run = match_config(&config, &registry);
        let tags: Vec<_> = dry_run
            .matched
            .iter()
            .map(|image| image.tag.as_str())
            .collect();
        assert_eq!(tags, ["2", "1", "3"]);
        assert_eq!(dry_run.not_found.len(), 1, "{:?}", dry_run.not_found);
    }

    #[test]
    fn patch_limit_errors_are_kept_per_image() {
        let mut tags = vec!["7".to_string()];
        let mut origins = BTreeMap::new();
        for n in 1..=999 {
            tags.push(format!("7-{n}"));
            origins.insert(format!("7-{n}"), "7".to_string());
        }
        let registry = BTreeMap::from([("app".to_string(), RepositoryTags::new(tags, &origins))]);
        let config =
            config(r#"{"version":"v1","repositories":[{"repository":"app","tags":["7"]}]}"#);
        let dry_run = match_config(&config, &registry);
        assert_eq!(
            summary(&dry_run),
            vec![(
                "app".into(),
                "7".into(),
                Some("7-999".into()),
                Err(PatchTagError::LimitReached {
                    original: "7".into()
                })
            )]
        );
        assert!(render_dry_run(&dry_run).contains("\napp,7,7-999\n"));
    }

    #[test]
    fn no_matches_is_a_warning() {
        let config =
            config(r#"{"version":"v1","repositories":[{"repository":"app","tags":["1"]}]}"#);
        let registry = registry(&[("app", &["2"], &[])]);
        let dry_run = match_config(&config, &registry);
        assert_eq!(dry_run.check_image_limit(), Ok(()));
        assert_eq!(
            dry_run.no_matches_warning(),
            Some("No matching repository and tag found!")
        );
        assert_eq!(
            render_dry_run(&dry_run),
            "Configured Tag Convention: incremental
Artifacts specified in the filter that do not exist:
Repo,Tag
app,1
Not found: 1
No matching repository and tag found!
Matches found: 0
"
        );
        let empty = registry_with_tags(0);
        let dry_run = match_config(&config_wildcard(), &empty);
        assert_eq!(
            render_dry_run(&dry_run),
            "Configured Tag Convention: incremental\nNo matching repository and tag found!\nMatches found: 0\n"
        );
    }

    fn config_wildcard() -> Config {
        config(r#"{"version":"v1","repositories":[{"repository":"app","tags":["*"]}]}"#)
    }

    fn registry_with_tags(count: usize) -> BTreeMap<String, RepositoryTags> {
        let tags: Vec<String> = (0..count).map(|n| format!("t{n:03}")).collect();
        BTreeMap::from([(
            "app".to_string(),
            RepositoryTags::new(tags, &BTreeMap::new()),
        )])
    }

    #[test]
    fn at_most_100_images() {
        let at_limit = match_config(&config_wildcard(), &registry_with_tags(MAX_MATCHED_IMAGES));
        assert_eq!(at_limit.matched.len(), 100);
        assert_eq!(at_limit.check_image_limit(), Ok(()));

        let over = match_config(
            &config_wildcard(),
            &registry_with_tags(MAX_MATCHED_IMAGES + 1),
        );
        let error = over.check_image_limit().unwrap_err();
        assert_eq!(error, TooManyImages { matched: 101 });
        assert_eq!(
            error.to_string(),
            "101 images match the configuration. You have exceeded the maximum limit of 100 images that can be scheduled for continuous patching. Adjust the JSON filter to limit the number of images."
        );
        assert!(render_dry_run(&over).ends_with("Matches found: 101\n"));
    }
}
