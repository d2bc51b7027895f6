//! The workflow's config file, `continuouspatching.json` v1, parsed and
//! validated as ACR's `az acr supply-chain workflow` does.
//!
//! Owns [`Config`] and every rule a config must pass. Reads nothing but the
//! config file itself ([`Config::from_file`]); [`Config::parse`] is pure.
//!
//! ```json
//! {
//!   "version": "v1",
//!   "tag-convention": "incremental",
//!   "repositories": [
//!     { "repository": "nginx", "tags": ["1.25"], "enabled": true },
//!     { "repository": "api-firewall", "tags": ["*"] }
//!   ]
//! }
//! ```
//!
//! The checks, in ACR's order:
//! 1. The file: exists, is a regular file, at most [`MAX_CONFIG_BYTES`]
//!    (10 MiB), not empty, readable.
//! 2. JSON.
//! 3. The JSON schema: an object; `version` (required) is exactly `"v1"`;
//!    `tag-convention` (optional) is `"incremental"` (the default) or
//!    `"floating"`; `repositories` (required) is an array of at least one
//!    item, no two items equal; each item is an object with `repository`
//!    (a string) and `tags` (an array of at least one string, no two equal),
//!    both required, and `enabled` (optional boolean, default `true`).
//!    ACR's schema sets no `additionalProperties`, so unknown properties are
//!    accepted and ignored, at the top level and in items. Uniqueness is of
//!    whole items: two items may name the same repository.
//! 4. ACR's rules, for every item (disabled ones too), tag by tag: a tag
//!    ending in `-patched` or `-` and one to three digits is reserved
//!    ([`crate::tags::has_reserved_suffix`]); `*` must be the only tag.
//! 5. The in-task filter's rules: no empty `repository`, no empty tag.
//!
//! Where the messages come from (Azure/azure-cli-extensions, `src/acrcssc/`):
//! file checks from `azext_acrcssc/_validators.py`
//! (`_validate_continuouspatch_file`, verbatim but "10 MB" where Python
//! prints "10.0 MB"); JSON and schema errors from
//! `azext_acrcssc/helper/_constants.py` (`ERROR_MESSAGE_INVALID_JSON_PARSE`,
//! `ERROR_MESSAGE_INVALID_JSON_SCHEMA`, the schema
//! `CONTINUOUSPATCH_CONFIG_SCHEMA_V1`), with the problem appended (ACR only
//! logs it) and without the parts naming the CLI's options, which a CLI
//! adds back; the reserved-tag and `*` rules from `_validators.py`
//! (`_validate_continuouspatch_config`), verbatim, the `*` one naming the
//! repository; empty repository and tag from Azure/acr-cli
//! `internal/cssc/cssc.go` (`ValidateFilter`), verbatim with the place
//! appended. The messages for [`Config::parse`]'s own size checks are
//! drydock's. One deliberate difference: ACR's schema patterns
//! (`^(v1)$`, `^(floating|incremental)$`) are searched with Python's `re`,
//! whose `$` also matches before a final newline; here the values must be
//! exactly `v1`, `incremental` or `floating`.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::tags::{self, TagConvention};

/// The only config version.
pub const CONFIG_VERSION: &str = "v1";

/// The largest config accepted, in bytes (inclusive): 10 MiB, as ACR.
pub const MAX_CONFIG_BYTES: u64 = 10 * 1024 * 1024;

/// The tag that selects every original tag of a repository.
pub const WILDCARD_TAG: &str = "*";

/// A validated `continuouspatching.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    tag_convention: TagConvention,
    repositories: Vec<RepositoryFilter>,
}

/// One item of `repositories`: which tags of a repository the workflow patches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryFilter {
    repository: String,
    tags: TagSelection,
    enabled: bool,
}

/// The `tags` of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSelection {
    /// `["*"]`: every original tag of the repository.
    All,
    /// The listed tags, in the config's order, none of them `*`.
    Tags(Vec<String>),
}

impl Config {
    /// Reads and validates the config file at `path` (at most
    /// [`MAX_CONFIG_BYTES`] are read).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let not_readable = |source: io::Error| ConfigError::FileNotReadable {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ConfigError::FileNotFound {
                path: path.to_path_buf(),
            },
            _ => not_readable(source),
        })?;
        let metadata = file.metadata().map_err(not_readable)?;
        if !metadata.is_file() {
            return Err(ConfigError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        if metadata.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::FileTooLarge {
                path: path.to_path_buf(),
            });
        }
        if metadata.len() == 0 {
            return Err(ConfigError::FileEmpty {
                path: path.to_path_buf(),
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(not_readable)?;
        Config::parse(&bytes)
    }

    /// Validates a config's bytes (from a file, a request body, storage).
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.is_empty() {
            return Err(ConfigError::Empty);
        }
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                size: bytes.len() as u64,
            });
        }
        let json: Value = serde_json::from_slice(bytes)
            .map_err(|problem| ConfigError::InvalidJson { problem })?;
        let config = from_schema(&json).map_err(ConfigError::Schema)?;
        config.check_acr_rules()?;
        config.check_filter_rules()?;
        Ok(config)
    }

    /// `tag-convention`, [`TagConvention::Incremental`] when absent.
    pub fn tag_convention(&self) -> TagConvention {
        self.tag_convention
    }

    /// Every item of `repositories`, enabled or not, in the config's order.
    pub fn repositories(&self) -> &[RepositoryFilter] {
        &self.repositories
    }

    /// The items the workflow acts on (`enabled` absent or `true`).
    pub fn enabled_repositories(&self) -> impl Iterator<Item = &RepositoryFilter> {
        self.repositories.iter().filter(|item| item.enabled)
    }

    fn check_acr_rules(&self) -> Result<(), ConfigError> {
        for item in &self.repositories {
            for tag in item.configured_tags() {
                if tags::has_reserved_suffix(tag) {
                    return Err(ConfigError::ReservedTag {
                        repository: item.repository.clone(),
                        tag: tag.to_string(),
                    });
                }
                if tag == WILDCARD_TAG && item.configured_tags().len() > 1 {
                    return Err(ConfigError::WildcardWithOtherTags {
                        repository: item.repository.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn check_filter_rules(&self) -> Result<(), ConfigError> {
        for (index, item) in self.repositories.iter().enumerate() {
            if item.repository.is_empty() {
                return Err(ConfigError::EmptyRepository { index });
            }
            if item.configured_tags().iter().any(|tag| tag.is_empty()) {
                return Err(ConfigError::EmptyTag {
                    repository: item.repository.clone(),
                });
            }
        }
        Ok(())
    }
}

impl RepositoryFilter {
    /// The repository's name, as configured.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Which of its tags are selected.
    pub fn tags(&self) -> &TagSelection {
        &self.tags
    }

    /// False when the item says `"enabled": false`: the workflow skips it.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn configured_tags(&self) -> &[String] {
        match &self.tags {
            TagSelection::All => &[],
            TagSelection::Tags(tags) => tags,
        }
    }
}

/// Why a config was refused. Each message says what is wrong and where.
///
/// ACR's messages for a config that is empty, not JSON or not valid
/// against the schema name its CLI's options ("File used for --config …
/// Use --help to see the schema of the config file."); these say
/// "Config" instead and a CLI adds its own words.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// [`Config::from_file`]: nothing exists at the path.
    #[error("Config path file: {} does not exist in the path specified", .path.display())]
    FileNotFound {
        /// The config file's path, as given.
        path: PathBuf,
    },
    /// [`Config::from_file`]: the path is a directory or another
    /// non-regular file.
    #[error("Config path file: {} is not a valid file", .path.display())]
    NotAFile {
        /// The config file's path, as given.
        path: PathBuf,
    },
    /// [`Config::from_file`]: the file is larger than [`MAX_CONFIG_BYTES`].
    #[error("Config path file: {} is too large. Max size limit is 10 MB", .path.display())]
    FileTooLarge {
        /// The config file's path, as given.
        path: PathBuf,
    },
    /// [`Config::from_file`]: the file is empty.
    #[error("Config path file: {} is empty", .path.display())]
    FileEmpty {
        /// The config file's path, as given.
        path: PathBuf,
    },
    /// [`Config::from_file`]: opening, inspecting or reading the file
    /// failed for another reason than its absence (permissions, I/O).
    #[error("Config path file: '{}' is not readable", .path.display())]
    FileNotReadable {
        /// The config file's path, as given.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// [`Config::parse`] was given no bytes.
    #[error("Config is empty.")]
    Empty,
    /// [`Config::parse`] was given more than [`MAX_CONFIG_BYTES`].
    #[error("Config is too large ({size} bytes). Max size limit is 10 MB")]
    TooLarge {
        /// The config's size in bytes.
        size: u64,
    },
    /// The config is not JSON (ACR: "File used for --config cannot be
    /// parsed as a JSON file. Use --help to see the schema of the config
    /// file."). The problem is part of the message, as ACR logs it.
    #[error("Config cannot be parsed as a JSON file. Problem: {problem}.")]
    InvalidJson {
        /// Where and why the JSON parser stopped.
        problem: serde_json::Error,
    },
    /// The config is JSON but breaks the schema (ACR: "File used for
    /// --config is not a valid config JSON file. Use --help to see the
    /// schema of the config file.").
    #[error("Config is not a valid config JSON file. Problem: {0}.")]
    Schema(SchemaViolation),
    /// A configured tag ends in a suffix reserved for patch tags.
    #[error(
        "Configuration error: Repository '{repository}' with tag '{tag}' is not allowed. Tags ending with '*-patched' (floating tag) or '*-0' to '*-999' (incremental tag) are reserved for internal use."
    )]
    ReservedTag {
        /// The item's repository.
        repository: String,
        /// The reserved tag.
        tag: String,
    },
    /// An item lists `*` beside other tags.
    #[error(
        "Configuration error: Tag '*' is not allowed with other tags in the same repository. Use '*' as the only tag in the repository to avoid overlaps. Repository: '{repository}'."
    )]
    WildcardWithOtherTags {
        /// The item's repository.
        repository: String,
    },
    /// An item's `repository` is the empty string.
    #[error("Repository is required in the filter: $.repositories[{index}].repository is empty.")]
    EmptyRepository {
        /// The item's index in `repositories`.
        index: usize,
    },
    /// An item lists the empty string as a tag.
    #[error("Tag is required in the filter: repository '{repository}' has an empty tag.")]
    EmptyTag {
        /// The item's repository.
        repository: String,
    },
}

/// Where the config breaks the schema and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// The offending value's place, e.g. `$.repositories[0].tags`.
    pub at: String,
    /// What is wrong with it.
    pub problem: SchemaProblem,
}

/// How a value breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaProblem {
    /// A required property is absent.
    Missing,
    /// The value has the wrong JSON type; `expected` reads "a string", ….
    WrongType {
        /// The type the schema wants, with its article.
        expected: &'static str,
    },
    /// `version` is a string other than `v1`.
    UnsupportedVersion {
        /// The version given.
        found: String,
    },
    /// `tag-convention` is a string other than the two conventions.
    UnknownTagConvention {
        /// The convention given.
        found: String,
    },
    /// An array that needs at least one item has none.
    NoItems,
    /// An array item equals an earlier one.
    Duplicate {
        /// The place of the earlier, equal item.
        first: String,
    },
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = &self.at;
        match &self.problem {
            SchemaProblem::Missing => write!(f, "{at} is required"),
            SchemaProblem::WrongType { expected } => write!(f, "{at} must be {expected}"),
            SchemaProblem::UnsupportedVersion { found } => {
                write!(f, "{at} must be \"{CONFIG_VERSION}\", not {found:?}")
            }
            SchemaProblem::UnknownTagConvention { found } => {
                write!(
                    f,
                    "{at} must be \"incremental\" or \"floating\", not {found:?}"
                )
            }
            SchemaProblem::NoItems => write!(f, "{at} must have at least one item"),
            SchemaProblem::Duplicate { first } => {
                write!(f, "{at} repeats {first}: items must be unique")
            }
        }
    }
}

const OBJECT: &str = "a JSON object";
const STRING: &str = "a string";
const BOOLEAN: &str = "a boolean";
const ARRAY: &str = "an array";

fn violation(at: impl Into<String>, problem: SchemaProblem) -> SchemaViolation {
    SchemaViolation {
        at: at.into(),
        problem,
    }
}

fn from_schema(json: &Value) -> Result<Config, SchemaViolation> {
    let root = json
        .as_object()
        .ok_or_else(|| violation("$", SchemaProblem::WrongType { expected: OBJECT }))?;
    let repositories = required(root, "$", "repositories")?;
    let version = required(root, "$", "version")?;

    let version = string(version, "$.version")?;
    if version != CONFIG_VERSION {
        return Err(violation(
            "$.version",
            SchemaProblem::UnsupportedVersion {
                found: version.to_string(),
            },
        ));
    }

    let tag_convention = match root.get("tag-convention") {
        None => TagConvention::default(),
        Some(value) => {
            let name = string(value, "$.tag-convention")?;
            TagConvention::from_name(name).ok_or_else(|| {
                violation(
                    "$.tag-convention",
                    SchemaProblem::UnknownTagConvention {
                        found: name.to_string(),
                    },
                )
            })?
        }
    };

    let items = non_empty_unique_array(repositories, "$.repositories")?;
    let repositories = items
        .iter()
        .enumerate()
        .map(|(index, item)| repository_filter(item, &format!("$.repositories[{index}]")))
        .collect::<Result<_, _>>()?;
    Ok(Config {
        tag_convention,
        repositories,
    })
}

fn repository_filter(item: &Value, at: &str) -> Result<RepositoryFilter, SchemaViolation> {
    let object = item
        .as_object()
        .ok_or_else(|| violation(at, SchemaProblem::WrongType { expected: OBJECT }))?;
    let repository = required(object, at, "repository")?;
    let tags = required(object, at, "tags")?;
    let repository = string(repository, &format!("{at}.repository"))?.to_string();

    let tags_at = format!("{at}.tags");
    let tags = non_empty_unique_array(tags, &tags_at)?
        .iter()
        .enumerate()
        .map(|(index, tag)| string(tag, &format!("{tags_at}[{index}]")).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    let tags = if tags.len() == 1 && tags[0] == WILDCARD_TAG {
        TagSelection::All
    } else {
        TagSelection::Tags(tags)
    };

    let enabled = match object.get("enabled") {
        None => true,
        Some(value) => value.as_bool().ok_or_else(|| {
            violation(
                format!("{at}.enabled"),
                SchemaProblem::WrongType { expected: BOOLEAN },
            )
        })?,
    };
    Ok(RepositoryFilter {
        repository,
        tags,
        enabled,
    })
}

fn required<'a>(
    object: &'a Map<String, Value>,
    at: &str,
    property: &str,
) -> Result<&'a Value, SchemaViolation> {
    object
        .get(property)
        .ok_or_else(|| violation(format!("{at}.{property}"), SchemaProblem::Missing))
}

fn string<'a>(value: &'a Value, at: &str) -> Result<&'a str, SchemaViolation> {
    value
        .as_str()
        .ok_or_else(|| violation(at, SchemaProblem::WrongType { expected: STRING }))
}

/// `minItems: 1` and `uniqueItems: true`, comparing items as JSON values
/// (object keys in any order, `1` equal to `1.0`), in linear time.
fn non_empty_unique_array<'a>(value: &'a Value, at: &str) -> Result<&'a [Value], SchemaViolation> {
    let items = value
        .as_array()
        .ok_or_else(|| violation(at, SchemaProblem::WrongType { expected: ARRAY }))?;
    if items.is_empty() {
        return Err(violation(at, SchemaProblem::NoItems));
    }
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let mut key = String::new();
        canonical_json(item, &mut key);
        if let Some(first) = seen.insert(key, index) {
            return Err(violation(
                format!("{at}[{index}]"),
                SchemaProblem::Duplicate {
                    first: format!("{at}[{first}]"),
                },
            ));
        }
    }
    Ok(items)
}

/// Integers up to this magnitude are exact as floats (2^53).
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

/// A text that is equal for two values exactly when JSON Schema calls them
/// equal: object keys sorted, integral numbers written as integers.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<_> = object.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (key, value) in entries {
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(value, out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for item in items {
                canonical_json(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Number(number) => match number.as_f64() {
            Some(float)
                if number.is_f64() && float.fract() == 0.0 && float.abs() <= MAX_EXACT_FLOAT =>
            {
                out.push_str(&(float as i64).to_string());
            }
            _ => out.push_str(&number.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::parse(json.as_bytes())
    }

    fn schema_violation(json: &str) -> SchemaViolation {
        match parse(json) {
            Err(ConfigError::Schema(violation)) => violation,
            other => panic!("expected a schema violation for {json}, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_reference_example() {
        let config = parse(
            r#"{
              "version": "v1",
              "tag-convention": "floating",
              "repositories": [
                { "repository": "nginx", "tags": ["1.25", "1.26"], "enabled": true },
                { "repository": "api-firewall", "tags": ["*"] },
                { "repository": "old", "tags": ["1"], "enabled": false }
              ]
            }"#,
        )
        .unwrap();
        assert_eq!(config.tag_convention(), TagConvention::Floating);
        let items = config.repositories();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].repository(), "nginx");
        assert_eq!(
            items[0].tags(),
            &TagSelection::Tags(vec!["1.25".into(), "1.26".into()])
        );
        assert!(items[0].enabled());
        assert_eq!(items[1].tags(), &TagSelection::All);
        assert!(items[1].enabled(), "enabled defaults to true");
        assert!(!items[2].enabled());
        let enabled: Vec<_> = config
            .enabled_repositories()
            .map(RepositoryFilter::repository)
            .collect();
        assert_eq!(enabled, ["nginx", "api-firewall"]);
    }

    #[test]
    fn tag_convention_defaults_to_incremental() {
        let config =
            parse(r#"{"version":"v1","repositories":[{"repository":"a","tags":["1"]}]}"#).unwrap();
        assert_eq!(config.tag_convention(), TagConvention::Incremental);
        let config = parse(
            r#"{"version":"v1","tag-convention":"incremental","repositories":[{"repository":"a","tags":["1"]}]}"#,
        )
        .unwrap();
        assert_eq!(config.tag_convention(), TagConvention::Incremental);
    }

    #[test]
    fn unknown_properties_are_ignored_as_acrs_schema_allows_them() {
        let config = parse(
            r#"{"version":"v1","schedule":"1d","repositories":[{"repository":"a","tags":["1"],"note":{"x":1}}]}"#,
        )
        .unwrap();
        assert_eq!(config.repositories()[0].repository(), "a");
    }

    #[test]
    fn required_properties() {
        assert_eq!(
            schema_violation(r#"{"version":"v1"}"#),
            violation("$.repositories", SchemaProblem::Missing)
        );
        assert_eq!(
            schema_violation(r#"{"repositories":[{"repository":"a","tags":["1"]}]}"#),
            violation("$.version", SchemaProblem::Missing)
        );
        assert_eq!(
            schema_violation(r#"{"version":"v1","repositories":[{"tags":["1"]}]}"#),
            violation("$.repositories[0].repository", SchemaProblem::Missing)
        );
        assert_eq!(
            schema_violation(r#"{"version":"v1","repositories":[{"repository":"a"}]}"#),
            violation("$.repositories[0].tags", SchemaProblem::Missing)
        );
    }

    #[test]
    fn types() {
        let wrong = |at: &str, expected| violation(at, SchemaProblem::WrongType { expected });
        for (json, expected) in [
            ("[]", wrong("$", OBJECT)),
            ("\"v1\"", wrong("$", OBJECT)),
            (
                r#"{"version":1,"repositories":[{"repository":"a","tags":["1"]}]}"#,
                wrong("$.version", STRING),
            ),
            (
                r#"{"version":"v1","tag-convention":true,"repositories":[{"repository":"a","tags":["1"]}]}"#,
                wrong("$.tag-convention", STRING),
            ),
            (
                r#"{"version":"v1","repositories":{"repository":"a","tags":["1"]}}"#,
                wrong("$.repositories", ARRAY),
            ),
            (
                r#"{"version":"v1","repositories":["nginx"]}"#,
                wrong("$.repositories[0]", OBJECT),
            ),
            (
                r#"{"version":"v1","repositories":[{"repository":null,"tags":["1"]}]}"#,
                wrong("$.repositories[0].repository", STRING),
            ),
            (
                r#"{"version":"v1","repositories":[{"repository":"a","tags":"1"}]}"#,
                wrong("$.repositories[0].tags", ARRAY),
            ),
            (
                r#"{"version":"v1","repositories":[{"repository":"a","tags":["1",2]}]}"#,
                wrong("$.repositories[0].tags[1]", STRING),
            ),
            (
                r#"{"version":"v1","repositories":[{"repository":"a","tags":["1"],"enabled":"yes"}]}"#,
                wrong("$.repositories[0].enabled", BOOLEAN),
            ),
            (
                r#"{"version":"v1","repositories":[{"repository":"a","tags":["1"],"enabled":null}]}"#,
                wrong("$.repositories[0].enabled", BOOLEAN),
            ),
        ] {
            assert_eq!(schema_violation(json), expected, "{json}");
        }
    }

    #[test]
    fn version_and_tag_convention_values() {
        for version in ["v2", "V1", "v1 ", "v1\n", ""] {
            let json = format!(
                r#"{{"version":{},"repositories":[{{"repository":"a","tags":["1"]}}]}}"#,
                Value::String(version.into())
            );
            assert_eq!(
                schema_violation(&json),
                violation(
                    "$.version",
                    SchemaProblem::UnsupportedVersion {
                        found: version.into()
                    }
                )
            );
        }
        for convention in ["Floating", "semver", "floating\n", ""] {
            let json = format!(
                r#"{{"version":"v1","tag-convention":{},"repositories":[{{"repository":"a","tags":["1"]}}]}}"#,
                Value::String(convention.into())
            );
            assert_eq!(
                schema_violation(&json),
                violation(
                    "$.tag-convention",
                    SchemaProblem::UnknownTagConvention {
                        found: convention.into()
                    }
                )
            );
        }
    }

    #[test]
    fn arrays_need_items() {
        assert_eq!(
            schema_violation(r#"{"version":"v1","repositories":[]}"#),
            violation("$.repositories", SchemaProblem::NoItems)
        );
        assert_eq!(
            schema_violation(r#"{"version":"v1","repositories":[{"repository":"a","tags":[]}]}"#),
            violation("$.repositories[0].tags", SchemaProblem::NoItems)
        );
    }

    #[test]
    fn items_must_be_unique_as_json_values() {
        assert_eq!(
            schema_violation(
                r#"{"version":"v1","repositories":[{"repository":"a","tags":["1","2","1"]}]}"#
            ),
            violation(
                "$.repositories[0].tags[2]",
                SchemaProblem::Duplicate {
                    first: "$.repositories[0].tags[0]".into()
                }
            )
        );
        assert_eq!(
            schema_violation(
                r#"{"version":"v1","repositories":[
                    {"repository":"a","tags":["1"],"enabled":true},
                    {"repository":"b","tags":["1"]},
                    {"enabled":true,"tags":["1"],"repository":"a"}]}"#
            ),
            violation(
                "$.repositories[2]",
                SchemaProblem::Duplicate {
                    first: "$.repositories[0]".into()
                }
            )
        );
        assert_eq!(
            schema_violation(
                r#"{"version":"v1","repositories":[
                    {"repository":"a","tags":["1"],"x":1},
                    {"repository":"a","tags":["1"],"x":1.0}]}"#
            ),
            violation(
                "$.repositories[1]",
                SchemaProblem::Duplicate {
                    first: "$.repositories[0]".into()
                }
            )
        );
        // Items differing in anything are distinct, even for one repository;
        // so are `true` and `1`, and an absent `enabled` and an explicit one.
        let config = parse(
            r#"{"version":"v1","repositories":[
                {"repository":"a","tags":["1"]},
                {"repository":"a","tags":["2"]},
                {"repository":"a","tags":["1"],"enabled":true},
                {"repository":"a","tags":["1"],"x":true},
                {"repository":"a","tags":["1"],"x":1}]}"#,
        )
        .unwrap();
        assert_eq!(config.repositories().len(), 5);
    }

    #[test]
    fn canonical_json_is_order_and_number_form_independent() {
        let text = |json: &str| {
            let mut out = String::new();
            canonical_json(&serde_json::from_str(json).unwrap(), &mut out);
            out
        };
        assert_eq!(
            text(r#"{"b":[1.0,{"y":2,"x":"\""}],"a":null}"#),
            text(r#"{"a":null,"b":[1,{"x":"\"","y":2.0}]}"#)
        );
        assert_ne!(text("1"), text("true"));
        assert_ne!(text("1.5"), text("1"));
        assert_ne!(text(r#"["a","b"]"#), text(r#"["b","a"]"#));
        assert_ne!(text(r#"{"a,":1}"#), text(r#"{"a":",1"}"#));
    }

    #[test]
    fn reserved_tags_are_refused_with_acrs_message() {
        for tag in ["1.25-patched", "1.25-1", "1.25-0", "1.25-01", "1.25-999"] {
            let json = format!(
                r#"{{"version":"v1","repositories":[{{"repository":"nginx","tags":["1.24",{}]}}]}}"#,
                Value::String(tag.into())
            );
            let error = parse(&json).unwrap_err();
            assert!(
                matches!(&error, ConfigError::ReservedTag { repository, tag: t } if repository == "nginx" && t == tag)
            );
            assert_eq!(
                error.to_string(),
                format!(
                    "Configuration error: Repository 'nginx' with tag '{tag}' is not allowed. Tags ending with '*-patched' (floating tag) or '*-0' to '*-999' (incremental tag) are reserved for internal use."
                )
            );
        }
        // Disabled items are validated too, as ACR does.
        let error = parse(
            r#"{"version":"v1","repositories":[{"repository":"a","tags":["1-1"],"enabled":false}]}"#,
        )
        .unwrap_err();
        assert!(matches!(error, ConfigError::ReservedTag { .. }));
        // Tags that merely look numeric are fine.
        parse(r#"{"version":"v1","repositories":[{"repository":"a","tags":["1.0-1000","jammy-20240808","1.25-patched2"]}]}"#)
            .unwrap();
    }

    #[test]
    fn wildcard_must_be_alone() {
        let error =
            parse(r#"{"version":"v1","repositories":[{"repository":"a","tags":["1.0","*"]}]}"#)
                .unwrap_err();
        assert!(
            matches!(&error, ConfigError::WildcardWithOtherTags { repository } if repository == "a")
        );
        assert_eq!(
            error.to_string(),
            "Configuration error: Tag '*' is not allowed with other tags in the same repository. Use '*' as the only tag in the repository to avoid overlaps. Repository: 'a'."
        );
        // ACR checks tag by tag: a reserved tag before the `*` wins.
        let error =
            parse(r#"{"version":"v1","repositories":[{"repository":"a","tags":["1.0-1","*"]}]}"#)
                .unwrap_err();
        assert!(matches!(error, ConfigError::ReservedTag { .. }));
        let error =
            parse(r#"{"version":"v1","repositories":[{"repository":"a","tags":["*","1.0-1"]}]}"#)
                .unwrap_err();
        assert!(matches!(error, ConfigError::WildcardWithOtherTags { .. }));
    }

    #[test]
    fn empty_names_are_refused_after_acrs_rules() {
        let error = parse(r#"{"version":"v1","repositories":[{"repository":"a","tags":["1"]},{"repository":"","tags":["1"]}]}"#)
            .unwrap_err();
        assert!(matches!(error, ConfigError::EmptyRepository { index: 1 }));
        assert_eq!(
            error.to_string(),
            "Repository is required in the filter: $.repositories[1].repository is empty."
        );
        let error =
            parse(r#"{"version":"v1","repositories":[{"repository":"a","tags":["1",""]}]}"#)
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Tag is required in the filter: repository 'a' has an empty tag."
        );
        // The CLI's rules run over every item before the filter's.
        let error = parse(r#"{"version":"v1","repositories":[{"repository":"","tags":["1"]},{"repository":"b","tags":["2-patched"]}]}"#)
            .unwrap_err();
        assert!(matches!(error, ConfigError::ReservedTag { .. }));
    }

    #[test]
    fn json_errors_use_acrs_message_with_the_problem() {
        let error = parse("{\"version\": \"v1\",").unwrap_err();
        assert!(matches!(error, ConfigError::InvalidJson { .. }));
        let message = error.to_string();
        assert!(
            message
                .starts_with("Config cannot be parsed as a JSON file. Problem: EOF while parsing"),
            "{message}"
        );
        assert!(matches!(parse("   "), Err(ConfigError::InvalidJson { .. })));
        assert!(matches!(
            Config::parse(b"\xff\xfe{}"),
            Err(ConfigError::InvalidJson { .. })
        ));
        assert!(matches!(
            parse("\u{feff}{}"),
            Err(ConfigError::InvalidJson { .. })
        ));
    }

    #[test]
    fn schema_errors_use_acrs_message_with_the_problem() {
        let error =
            parse(r#"{"version":"v1","repositories":[{"repository":"a","tags":[]}]}"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Config is not a valid config JSON file. Problem: $.repositories[0].tags must have at least one item."
        );
        let shown = |json: &str| parse(json).unwrap_err().to_string();
        assert!(
            shown(r#"{"version":"v2","repositories":[]}"#)
                .ends_with(r#"Problem: $.version must be "v1", not "v2"."#)
        );
        assert!(shown(r#"{"version":"v1"}"#).ends_with("Problem: $.repositories is required."));
        assert!(shown("[]").ends_with("Problem: $ must be a JSON object."));
        assert!(
            shown(r#"{"version":"v1","tag-convention":"x","repositories":[]}"#).ends_with(
                r#"Problem: $.tag-convention must be "incremental" or "floating", not "x"."#
            )
        );
        assert!(shown(r#"{"version":"v1","repositories":[{"repository":"a","tags":["1","1"]}]}"#)
            .ends_with("Problem: $.repositories[0].tags[1] repeats $.repositories[0].tags[0]: items must be unique."));
    }

    #[test]
    fn parse_checks_size() {
        assert!(matches!(Config::parse(b""), Err(ConfigError::Empty)));
        assert_eq!(ConfigError::Empty.to_string(), "Config is empty.");
        let mut big =
            br#"{"version":"v1","repositories":[{"repository":"a","tags":["1"]}]}"#.to_vec();
        big.resize(MAX_CONFIG_BYTES as usize, b' ');
        parse(std::str::from_utf8(&big).unwrap()).unwrap();
        big.push(b' ');
        assert!(matches!(
            Config::parse(&big),
            Err(ConfigError::TooLarge { size }) if size == MAX_CONFIG_BYTES + 1
        ));
    }

    #[test]
    fn from_file_checks_the_file_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("continuouspatching.json");

        let error = Config::from_file(&path).unwrap_err();
        assert!(matches!(error, ConfigError::FileNotFound { .. }));
        assert_eq!(
            error.to_string(),
            format!(
                "Config path file: {} does not exist in the path specified",
                path.display()
            )
        );

        let error = Config::from_file(dir.path()).unwrap_err();
        assert!(matches!(error, ConfigError::NotAFile { .. }));
        assert_eq!(
            error.to_string(),
            format!(
                "Config path file: {} is not a valid file",
                dir.path().display()
            )
        );

        std::fs::write(&path, b"").unwrap();
        let error = Config::from_file(&path).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("Config path file: {} is empty", path.display())
        );

        let file = File::create(&path).unwrap();
        file.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        let error = Config::from_file(&path).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "Config path file: {} is too large. Max size limit is 10 MB",
                path.display()
            )
        );

        std::fs::write(
            &path,
            br#"{"version":"v1","repositories":[{"repository":"nginx","tags":["1.25"]}]}"#,
        )
        .unwrap();
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config.repositories()[0].repository(), "nginx");

        std::fs::write(&path, b"not json").unwrap();
        assert!(matches!(
            Config::from_file(&path),
            Err(ConfigError::InvalidJson { .. })
        ));
    }
}
