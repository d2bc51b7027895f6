//! Tag conventions: how patch tags are named, which tags of a repository
//! are patches, and which patch tag comes next.
//!
//! Owns [`TagConvention`], [`PatchTag`], the reserved-suffix rule the config
//! enforces ([`has_reserved_suffix`]) and [`RepositoryTags`], one
//! repository's tags split into originals and drydock's patches. Never
//! decides from a tag's name alone whether it is a patch.
//!
//! | convention | patch tags | history | limit |
//! |---|---|---|---|
//! | incremental (default) | `<tag>-1`, `<tag>-2`, … `<tag>-999` | kept | 999 patches per tag |
//! | floating | `<tag>-patched`, overwritten by each patch | none | none |
//!
//! Which tags are patches is decided by the caller's set of tags *known* to
//! be drydock's (patched manifests carry the `dev.drydock.patch.original`
//! annotation, see the `patch` crate's `image` module), each mapped to the
//! original tag it was built from. So an upstream tag `1.2-3` with no
//! annotation is an ordinary tag: `*` selects it, it is never taken for the
//! latest patch of `1.2`, and drydock never overwrites it (the next
//! incremental number skips over it).
//!
//! ACR's flaws this fixes (Azure/acr-cli `internal/cssc/cssc.go`, and the
//! trigger task `templates/task/cssc_trigger_workflow.yaml` of
//! Azure/azure-cli-extensions `src/acrcssc`):
//! - Patches are recognised by name (`^(.+)-([1-9]\d{0,2})$`,
//!   `^(.+)-patched$`), so an upstream `1.2-3` is hidden from `*` and taken
//!   for the newest patch of `1.2`: the scan then looks at the wrong image.
//! - A configured tag goes into a regular expression unescaped
//!   (`^` + tag + `(-[1-9]\d{0,2})?$`): the `.` of `1.25` matches any
//!   character, so `1x25-3` counts as a patch of `1.25`, and a tag holding
//!   other metacharacters (`+`) breaks the pattern.
//! - The CLI reserves `-0` … `-999` including `-0` and `-01`
//!   (`-[0-9]{1,3}`), the in-task filter only `-1` … `-999`
//!   (`-[1-9]\d{0,2}`) and the trigger script reads `-([0-9]{1,3})`: they
//!   disagree on `1.0-0` and `1.0-01`. Here the config keeps the CLI's rule
//!   (what ACR users are told) and patch detection uses no name rule at all;
//!   drydock's own numbers are always `1` … `999` without leading zeros.
//! - The filter's floating pattern in explicit mode (`-patched\d*`) also
//!   takes `1.25-patched2` for a patch.
//! - With no `tag-convention` in the config the filter groups tags by the
//!   floating pattern while the trigger names incremental patches; here the
//!   default is incremental for both.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// The highest incremental patch number: `<tag>-999` is the last patch.
pub const MAX_PATCH_NUMBER: u16 = 999;

/// The suffix word of the floating convention: `<tag>-patched`.
pub const FLOATING_SUFFIX: &str = "patched";

/// How patch tags are named (the config's `tag-convention`), spelled
/// `incremental` or `floating` (case matters, as in ACR).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum TagConvention {
    /// `<tag>-1`, `<tag>-2`, … `<tag>-999`: every patch keeps its own tag.
    #[default]
    Incremental,
    /// One mutable `<tag>-patched`, overwritten by each patch.
    Floating,
}

impl TagConvention {
    /// The config's spelling: `incremental` or `floating`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The convention the config spells `name`, exactly (case matters, as in ACR).
    pub fn from_name(name: &str) -> Option<TagConvention> {
        name.parse().ok()
    }
}

/// True when a configured tag ends in a suffix reserved for patch tags:
/// `-patched`, or `-` and one to three ASCII digits (`-0` … `-999`, leading
/// zeros included). ACR's CLI rule (`.*-patched$`, `.*-[0-9]{1,3}$`).
pub fn has_reserved_suffix(tag: &str) -> bool {
    let Some((_, suffix)) = tag.rsplit_once('-') else {
        return false;
    };
    suffix == FLOATING_SUFFIX
        || ((1..=3).contains(&suffix.len()) && suffix.bytes().all(|b| b.is_ascii_digit()))
}

/// What follows `<original>-` in a patch tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatchSuffix {
    /// Incremental: `1` … [`MAX_PATCH_NUMBER`].
    Number(u16),
    /// Floating: `patched`.
    Patched,
}

/// The tag of one patch of an original tag: `<original>-<N>` or
/// `<original>-patched`. Displays as the tag name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PatchTag {
    original: String,
    suffix: PatchSuffix,
}

impl PatchTag {
    /// The floating patch tag of `original`: `<original>-patched`.
    pub fn floating(original: &str) -> PatchTag {
        PatchTag {
            original: original.to_string(),
            suffix: PatchSuffix::Patched,
        }
    }

    /// `name` read as a patch tag of `original` under `convention`: exactly
    /// `<original>-<N>` with N in 1 … 999 written without leading zeros, or
    /// exactly `<original>-patched`. No pattern matching: `original` is
    /// compared as plain text.
    pub fn parse(original: &str, name: &str, convention: TagConvention) -> Option<PatchTag> {
        let suffix = name.strip_prefix(original)?.strip_prefix('-')?;
        let suffix = match convention {
            TagConvention::Floating => (suffix == FLOATING_SUFFIX).then_some(PatchSuffix::Patched),
            TagConvention::Incremental => canonical_patch_number(suffix).map(PatchSuffix::Number),
        }?;
        Some(PatchTag {
            original: original.to_string(),
            suffix,
        })
    }

    /// The original tag this patch is built from.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The part after `<original>-`.
    pub fn suffix(&self) -> PatchSuffix {
        self.suffix
    }

    /// The incremental number, `None` for the floating tag.
    pub fn number(&self) -> Option<u16> {
        match self.suffix {
            PatchSuffix::Number(number) => Some(number),
            PatchSuffix::Patched => None,
        }
    }

    /// The tag name, e.g. `1.25-3` or `1.25-patched`.
    pub fn name(&self) -> String {
        self.to_string()
    }

    fn incremental(original: &str, number: u16) -> PatchTag {
        PatchTag {
            original: original.to_string(),
            suffix: PatchSuffix::Number(number),
        }
    }
}

impl fmt::Display for PatchTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.suffix {
            PatchSuffix::Number(number) => write!(f, "{}-{number}", self.original),
            PatchSuffix::Patched => write!(f, "{}-{FLOATING_SUFFIX}", self.original),
        }
    }
}

/// `1` … `999` written without leading zeros.
fn canonical_patch_number(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 3 || text.starts_with('0') {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Why no next patch tag can be named for an original tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchTagError {
    /// Incremental numbering reached [`MAX_PATCH_NUMBER`].
    #[error(
        "New patch tag for '{original}' would be greater than {original}-999. No more than 999 patches can be created for a tag: use the \"floating\" tag-convention for this repository to keep patching '{original}'"
    )]
    LimitReached {
        /// The original tag.
        original: String,
    },
    /// The floating tag exists and drydock did not create it.
    #[error(
        "Tag '{tag}' already exists and was not created by drydock, which never overwrites it: rename or delete that tag, or use the \"incremental\" tag-convention for this repository"
    )]
    Occupied {
        /// The floating patch tag that is taken.
        tag: String,
    },
}

/// One repository's tags, split into original tags and the patch tags
/// drydock created for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryTags {
    tags: BTreeSet<String>,
    patch_origins: BTreeMap<String, String>,
}

impl RepositoryTags {
    /// `tags` is the repository's tag list; `patch_origins` maps each tag
    /// known to be a drydock patch to the original tag it was built from.
    /// Entries for tags not in `tags`, and entries naming themselves as
    /// their original, are ignored.
    pub fn new<I, S>(tags: I, patch_origins: &BTreeMap<String, String>) -> RepositoryTags
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tags: BTreeSet<String> = tags.into_iter().map(Into::into).collect();
        let patch_origins = patch_origins
            .iter()
            .filter(|(patch, original)| tags.contains(*patch) && patch != original)
            .map(|(patch, original)| (patch.clone(), original.clone()))
            .collect();
        RepositoryTags {
            tags,
            patch_origins,
        }
    }

    /// True when the repository has `tag` (original or patch).
    pub fn contains(&self, tag: &str) -> bool {
        self.tags.contains(tag)
    }

    /// The original a known patch tag was built from; `None` for any other tag.
    pub fn original_of(&self, tag: &str) -> Option<&str> {
        self.patch_origins.get(tag).map(String::as_str)
    }

    /// Every tag that is not a known patch, in order.
    pub fn originals(&self) -> impl Iterator<Item = &str> {
        self.tags
            .iter()
            .map(String::as_str)
            .filter(|tag| !self.patch_origins.contains_key(*tag))
    }

    /// The newest patch of `original` under `convention`: the highest
    /// `<original>-<N>`, or `<original>-patched`, among the known patches of
    /// `original`. Patches named after the other convention, or otherwise,
    /// are not considered.
    pub fn latest_patch(&self, original: &str, convention: TagConvention) -> Option<PatchTag> {
        self.patch_origins
            .iter()
            .filter(|(_, origin)| origin.as_str() == original)
            .filter_map(|(patch, _)| PatchTag::parse(original, patch, convention))
            .max()
    }

    /// The tag the next patch of `original` gets under `convention`.
    ///
    /// Incremental: one past the latest patch (or `-1`), skipping numbers
    /// whose tag exists but is not drydock's; past `-999` it is
    /// [`PatchTagError::LimitReached`]. Floating: `<original>-patched`,
    /// unless that tag exists and is not a known patch of `original`
    /// ([`PatchTagError::Occupied`]). `original` should be one of
    /// [`originals`](Self::originals).
    pub fn next_patch(
        &self,
        original: &str,
        convention: TagConvention,
    ) -> Result<PatchTag, PatchTagError> {
        match convention {
            TagConvention::Floating => {
                let tag = PatchTag::floating(original);
                let name = tag.name();
                if self.contains(&name) && self.original_of(&name) != Some(original) {
                    return Err(PatchTagError::Occupied { tag: name });
                }
                Ok(tag)
            }
            TagConvention::Incremental => {
                let latest = self
                    .latest_patch(original, convention)
                    .and_then(|tag| tag.number())
                    .unwrap_or(0);
                (latest + 1..=MAX_PATCH_NUMBER)
                    .map(|number| PatchTag::incremental(original, number))
                    .find(|tag| !self.contains(&tag.name()))
                    .ok_or_else(|| PatchTagError::LimitReached {
                        original: original.to_string(),
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository(tags: &[&str], patches: &[(&str, &str)]) -> RepositoryTags {
        let origins = patches
            .iter()
            .map(|(patch, original)| (patch.to_string(), original.to_string()))
            .collect();
        RepositoryTags::new(tags.iter().copied(), &origins)
    }

    #[test]
    fn reserved_suffixes_follow_acrs_cli_rule() {
        for tag in [
            "1.25-patched",
            "-patched",
            "1.0-0",
            "1.0-1",
            "1.0-01",
            "1.0-000",
            "1.0-999",
            "x-9",
        ] {
            assert!(has_reserved_suffix(tag), "{tag}");
        }
        for tag in [
            "1.25",
            "1.0-1000",
            "1.0-",
            "1.0-1a",
            "1.0-patched2",
            "patched",
            "1.0-PATCHED",
            "jammy-20240808",
            "1.0-٣",
            "*",
        ] {
            assert!(!has_reserved_suffix(tag), "{tag}");
        }
    }

    #[test]
    fn tag_conventions_spell_as_in_the_config() {
        assert_eq!(TagConvention::default(), TagConvention::Incremental);
        for convention in [TagConvention::Incremental, TagConvention::Floating] {
            assert_eq!(
                TagConvention::from_name(convention.as_str()),
                Some(convention)
            );
            assert_eq!(convention.to_string(), convention.as_str());
            let json = serde_json::to_string(&convention).unwrap();
            assert_eq!(json, format!("\"{convention}\""));
        }
        assert_eq!(TagConvention::from_name("Floating"), None);
        assert_eq!(TagConvention::from_name(""), None);
    }

    #[test]
    fn patch_tags_name_and_parse() {
        let tag = PatchTag::parse("1.25", "1.25-3", TagConvention::Incremental).unwrap();
        assert_eq!(tag.original(), "1.25");
        assert_eq!(tag.number(), Some(3));
        assert_eq!(tag.suffix(), PatchSuffix::Number(3));
        assert_eq!(tag.name(), "1.25-3");
        let floating = PatchTag::parse("1.25", "1.25-patched", TagConvention::Floating).unwrap();
        assert_eq!(floating, PatchTag::floating("1.25"));
        assert_eq!(floating.number(), None);
        assert_eq!(floating.to_string(), "1.25-patched");

        for (name, convention) in [
            ("1.25-0", TagConvention::Incremental),
            ("1.25-01", TagConvention::Incremental),
            ("1.25-1000", TagConvention::Incremental),
            ("1.25-+1", TagConvention::Incremental),
            ("1.25-patched", TagConvention::Incremental),
            ("1.25-1", TagConvention::Floating),
            ("1.25-patched2", TagConvention::Floating),
            ("1x25-3", TagConvention::Incremental),
            ("1.25", TagConvention::Incremental),
            ("1.253", TagConvention::Incremental),
        ] {
            assert_eq!(PatchTag::parse("1.25", name, convention), None, "{name}");
        }
        assert_eq!(
            PatchTag::parse("1.25", "1.25-999", TagConvention::Incremental)
                .and_then(|t| t.number()),
            Some(999)
        );
    }

    #[test]
    fn patches_are_known_never_guessed_from_names() {
        let tags = repository(
            &["1.2", "1.2-3", "1.25", "1.25-1", "1.25-2", "1.25-10"],
            &[("1.25-1", "1.25"), ("1.25-2", "1.25"), ("1.25-10", "1.25")],
        );
        assert_eq!(
            tags.originals().collect::<Vec<_>>(),
            ["1.2", "1.2-3", "1.25"]
        );
        assert_eq!(tags.original_of("1.25-2"), Some("1.25"));
        assert_eq!(tags.original_of("1.2-3"), None);
        assert_eq!(tags.latest_patch("1.2", TagConvention::Incremental), None);
        assert_eq!(
            tags.latest_patch("1.25", TagConvention::Incremental)
                .unwrap()
                .name(),
            "1.25-10",
            "numbers compare as numbers, not text"
        );
        assert_eq!(
            tags.next_patch("1.25", TagConvention::Incremental)
                .unwrap()
                .name(),
            "1.25-11"
        );
        // 1.2-3 is upstream's: never overwritten, numbering skips it.
        let tags = repository(
            &["1.2", "1.2-1", "1.2-2", "1.2-3"],
            &[("1.2-1", "1.2"), ("1.2-2", "1.2")],
        );
        assert_eq!(
            tags.latest_patch("1.2", TagConvention::Incremental)
                .unwrap()
                .name(),
            "1.2-2"
        );
        assert_eq!(
            tags.next_patch("1.2", TagConvention::Incremental)
                .unwrap()
                .name(),
            "1.2-4"
        );
    }

    #[test]
    fn original_names_are_plain_text_not_patterns() {
        let tags = repository(
            &["1.25", "1x25-3", "1.25+b", "1.25+b-1"],
            &[("1x25-3", "1.25"), ("1.25+b-1", "1.25+b")],
        );
        assert_eq!(tags.latest_patch("1.25", TagConvention::Incremental), None);
        assert_eq!(
            tags.next_patch("1.25", TagConvention::Incremental)
                .unwrap()
                .name(),
            "1.25-1"
        );
        assert_eq!(
            tags.latest_patch("1.25+b", TagConvention::Incremental)
                .unwrap()
                .name(),
            "1.25+b-1"
        );
    }

    #[test]
    fn known_patches_must_be_present_and_not_their_own_original() {
        let tags = repository(&["1.25", "1.25-1"], &[("1.25-2", "1.25"), ("1.25", "1.25")]);
        assert_eq!(tags.originals().collect::<Vec<_>>(), ["1.25", "1.25-1"]);
        assert_eq!(tags.original_of("1.25-2"), None);
        assert_eq!(tags.latest_patch("1.25", TagConvention::Incremental), None);
        assert_eq!(
            tags.next_patch("1.25", TagConvention::Incremental)
                .unwrap()
                .name(),
            "1.25-2",
            "the unannotated 1.25-1 is skipped"
        );
    }

    #[test]
    fn incremental_numbering_stops_after_999() {
        let mut names: Vec<String> = (1..=998).map(|n| format!("7-{n}")).collect();
        let mut origins: BTreeMap<String, String> =
            names.iter().map(|n| (n.clone(), "7".to_string())).collect();
        names.push("7".into());
        let tags = RepositoryTags::new(names.clone(), &origins);
        assert_eq!(
            tags.next_patch("7", TagConvention::Incremental)
                .unwrap()
                .name(),
            "7-999"
        );

        names.push("7-999".into());
        origins.insert("7-999".into(), "7".into());
        let tags = RepositoryTags::new(names.clone(), &origins);
        assert_eq!(
            tags.latest_patch("7", TagConvention::Incremental)
                .unwrap()
                .number(),
            Some(999)
        );
        let error = tags
            .next_patch("7", TagConvention::Incremental)
            .unwrap_err();
        assert_eq!(
            error,
            PatchTagError::LimitReached {
                original: "7".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "New patch tag for '7' would be greater than 7-999. No more than 999 patches can be created for a tag: use the \"floating\" tag-convention for this repository to keep patching '7'"
        );
        // The floating convention has no limit.
        assert_eq!(
            tags.next_patch("7", TagConvention::Floating)
                .unwrap()
                .name(),
            "7-patched"
        );

        // A foreign tag at -999 also exhausts the numbers.
        let tags = repository(&["7", "7-998", "7-999"], &[("7-998", "7")]);
        assert!(matches!(
            tags.next_patch("7", TagConvention::Incremental),
            Err(PatchTagError::LimitReached { .. })
        ));
    }

    #[test]
    fn floating_tag_is_reused_but_never_taken_from_others() {
        let fresh = repository(&["1.25"], &[]);
        assert_eq!(fresh.latest_patch("1.25", TagConvention::Floating), None);
        assert_eq!(
            fresh.next_patch("1.25", TagConvention::Floating).unwrap(),
            PatchTag::floating("1.25")
        );

        let patched = repository(&["1.25", "1.25-patched"], &[("1.25-patched", "1.25")]);
        assert_eq!(
            patched.latest_patch("1.25", TagConvention::Floating),
            Some(PatchTag::floating("1.25"))
        );
        assert_eq!(
            patched.next_patch("1.25", TagConvention::Floating).unwrap(),
            PatchTag::floating("1.25")
        );

        let foreign = repository(&["1.25", "1.25-patched"], &[]);
        let error = foreign
            .next_patch("1.25", TagConvention::Floating)
            .unwrap_err();
        assert_eq!(
            error,
            PatchTagError::Occupied {
                tag: "1.25-patched".into()
            }
        );
        assert!(
            error
                .to_string()
                .starts_with("Tag '1.25-patched' already exists and was not created by drydock")
        );
    }

    #[test]
    fn latest_patch_follows_the_configured_convention() {
        let tags = repository(
            &["1.25", "1.25-1", "1.25-2", "1.25-patched"],
            &[
                ("1.25-1", "1.25"),
                ("1.25-2", "1.25"),
                ("1.25-patched", "1.25"),
            ],
        );
        assert_eq!(
            tags.latest_patch("1.25", TagConvention::Incremental)
                .unwrap()
                .name(),
            "1.25-2"
        );
        assert_eq!(
            tags.latest_patch("1.25", TagConvention::Floating)
                .unwrap()
                .name(),
            "1.25-patched"
        );
    }

    #[test]
    fn patches_with_other_names_are_grouped_but_not_numbered() {
        let tags = repository(&["1.25", "1.25-custom"], &[("1.25-custom", "1.25")]);
        assert_eq!(tags.originals().collect::<Vec<_>>(), ["1.25"]);
        assert_eq!(tags.latest_patch("1.25", TagConvention::Incremental), None);
        assert_eq!(tags.latest_patch("1.25", TagConvention::Floating), None);
    }
}
