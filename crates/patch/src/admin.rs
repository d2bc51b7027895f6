//! The image's own dpkg settings that decide what an unpack writes: path
//! filters and stat overrides.
//!
//! Owns reading, from the image's files,
//! - the path filters of `/etc/dpkg/dpkg.cfg` and `/etc/dpkg/dpkg.cfg.d/*`
//!   (`path-exclude=GLOB`, `path-include=GLOB`; dpkg's rules: the last
//!   matching pattern decides, `*` also matches `/`, and an excluded
//!   directory or symlink is kept when an include pattern reaches inside it),
//!   which slim and Ubuntu images use to leave out documentation, manual
//!   pages and locales;
//! - the stat overrides of `/var/lib/dpkg/statoverride` (`USER GROUP MODE
//!   PATH`, names resolved through the image's `/etc/passwd` and
//!   `/etc/group`, `#ID` taken as a number), which dpkg applies to a path
//!   whenever it unpacks it.
//!
//! Pure once read; the layer builder applies them.

use std::collections::BTreeMap;

use pkgdb::Rootfs;

/// dpkg's main configuration file.
pub const DPKG_CFG: &str = "etc/dpkg/dpkg.cfg";
/// dpkg's directory of configuration fragments.
pub const DPKG_CFG_D: &str = "etc/dpkg/dpkg.cfg.d";
/// dpkg's stat overrides.
pub const STATOVERRIDE: &str = "var/lib/dpkg/statoverride";

/// A dpkg setting of the image that cannot be read as dpkg reads it.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A `path-exclude` or `path-include` pattern of dpkg's configuration is
    /// not a valid glob.
    #[error("/{file}: {option} pattern {pattern:?} is not a valid glob")]
    Filter {
        /// The configuration file, relative to the root.
        file: String,
        /// `path-exclude` or `path-include`.
        option: &'static str,
        /// The pattern as written.
        pattern: String,
        /// Why it is not a glob.
        #[source]
        source: glob::PatternError,
    },
    /// A line of the stat overrides is not `USER GROUP MODE PATH`.
    #[error("/{STATOVERRIDE}: line {line:?} is not USER GROUP MODE PATH")]
    StatOverrideLine {
        /// The line as written.
        line: String,
    },
    /// A stat override's mode is not an octal number.
    #[error("/{STATOVERRIDE}: line {line:?}: {mode:?} is not an octal mode")]
    StatOverrideMode {
        /// The line as written.
        line: String,
        /// The mode as written.
        mode: String,
    },
    /// A stat override's `#ID` owner or group is not a number.
    #[error("/{STATOVERRIDE}: {name:?} is not a numeric id")]
    NumericId {
        /// The owner or group as written.
        name: String,
    },
    /// A stat override names a user or group the image's `/etc/passwd` or
    /// `/etc/group` lacks.
    #[error("/{STATOVERRIDE}: {name:?} is not in the image's user or group database")]
    UnknownName {
        /// The user or group name.
        name: String,
    },
}

/// `path-exclude` and `path-include` patterns, in the order dpkg reads them.
#[derive(Debug, Clone, Default)]
pub struct PathFilters {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    include: bool,
    pattern: glob::Pattern,
    text: String,
}

/// `fnmatch(pattern, path, 0)`: no flag, so `*` and `?` match `/` too.
const FNMATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl PathFilters {
    /// The filters of an image: `dpkg.cfg`, then `dpkg.cfg.d/*` in name order.
    pub fn read(rootfs: &Rootfs) -> Result<PathFilters, AdminError> {
        let mut files: Vec<String> = Vec::new();
        if rootfs.read(DPKG_CFG).is_some() {
            files.push(DPKG_CFG.to_string());
        }
        files.extend(
            rootfs
                .list_files(DPKG_CFG_D)
                .into_iter()
                .filter(|f| dpkg_reads(f.rsplit('/').next().unwrap_or(f))),
        );
        let mut filters = PathFilters::default();
        for file in files {
            let Some(content) = rootfs.read(&file) else {
                continue;
            };
            filters.add(&file, &String::from_utf8_lossy(content.content))?;
        }
        Ok(filters)
    }

    /// Adds the filter options of the text of `file`, one configuration
    /// file (its path relative to the root).
    pub fn add(&mut self, file: &str, config: &str) -> Result<(), AdminError> {
        for line in config.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.trim_start_matches("--");
            let split = line
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(line.len());
            let (option, value) = line.split_at(split);
            let value = value.trim_start_matches(|c: char| c == '=' || c.is_whitespace());
            let (include, option) = match option {
                "path-include" => (true, "path-include"),
                "path-exclude" => (false, "path-exclude"),
                _ => continue,
            };
            let pattern = glob::Pattern::new(value).map_err(|source| AdminError::Filter {
                file: file.to_string(),
                option,
                pattern: value.to_string(),
                source,
            })?;
            self.rules.push(Rule {
                include,
                pattern,
                text: value.to_string(),
            });
        }
        Ok(())
    }

    /// Whether dpkg leaves out `path` (absolute, `/usr/share/doc/x`);
    /// `container` says it is a directory or a symlink.
    pub fn skips(&self, path: &str, container: bool) -> bool {
        let mut skip = false;
        for rule in &self.rules {
            if rule.pattern.matches_with(path, FNMATCH) {
                skip = !rule.include;
            }
        }
        if skip && container {
            // A more specific include can reach inside an excluded directory:
            // compare up to the include pattern's first wildcard.
            let path = path.trim_end_matches('/');
            for rule in self.rules.iter().filter(|r| r.include) {
                let literal = rule
                    .text
                    .find(['*', '?', '[', '\\'])
                    .unwrap_or(rule.text.len());
                let n = path.len().min(literal);
                if path.as_bytes()[..n] == rule.text.as_bytes()[..n] {
                    return false;
                }
            }
        }
        skip
    }
}

/// Whether dpkg reads a file of `dpkg.cfg.d` (it skips editor backups and
/// package manager leftovers: names with characters outside
/// `[A-Za-z0-9_-]`, as `run-parts` does).
fn dpkg_reads(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An owner, group and mode dpkg gives a path whenever it unpacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatOverride {
    /// The owner's numeric id.
    pub uid: u32,
    /// The group's numeric id.
    pub gid: u32,
    /// The permission bits (with setuid, setgid, sticky).
    pub mode: u32,
}

/// The image's stat overrides by absolute path.
pub fn stat_overrides(rootfs: &Rootfs) -> Result<BTreeMap<String, StatOverride>, AdminError> {
    let Some(file) = rootfs.read(STATOVERRIDE) else {
        return Ok(BTreeMap::new());
    };
    let text = |path: &str| rootfs.text(path).unwrap_or_default();
    parse_stat_overrides(
        &String::from_utf8_lossy(file.content),
        &text("etc/passwd"),
        &text("etc/group"),
    )
}

/// Parses `statoverride` lines, resolving names with `passwd` and `group`.
pub fn parse_stat_overrides(
    statoverride: &str,
    passwd: &str,
    group: &str,
) -> Result<BTreeMap<String, StatOverride>, AdminError> {
    let id_of = |table: &str, name: &str| -> Result<u32, AdminError> {
        if let Some(number) = name.strip_prefix('#') {
            return number.parse().map_err(|_| AdminError::NumericId {
                name: name.to_string(),
            });
        }
        table
            .lines()
            .find_map(|line| {
                let mut fields = line.split(':');
                (fields.next() == Some(name))
                    .then(|| fields.nth(1)?.parse().ok())
                    .flatten()
            })
            .ok_or_else(|| AdminError::UnknownName {
                name: name.to_string(),
            })
    };
    let mut overrides = BTreeMap::new();
    for line in statoverride.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.splitn(4, ' ');
        let (Some(user), Some(group_name), Some(mode), Some(path)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(AdminError::StatOverrideLine {
                line: line.to_string(),
            });
        };
        let mode = u32::from_str_radix(mode, 8).map_err(|_| AdminError::StatOverrideMode {
            line: line.to_string(),
            mode: mode.to_string(),
        })?;
        overrides.insert(
            path.to_string(),
            StatOverride {
                uid: id_of(passwd, user)?,
                gid: id_of(group, group_name)?,
                mode: mode & 0o7777,
            },
        );
    }
    Ok(overrides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_dpkgs_rules() {
        let mut filters = PathFilters::default();
        filters
            .add(
                "etc/dpkg/dpkg.cfg.d/slim",
                "# slim images\npath-exclude /usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\n\
                 --path-exclude=/usr/share/man/*\nforce-unsafe-io\n",
            )
            .unwrap();
        assert!(filters.skips("/usr/share/doc/curl/README", false));
        assert!(!filters.skips("/usr/share/doc/curl/copyright", false));
        // `*` crosses `/`.
        assert!(filters.skips("/usr/share/man/man1/curl.1.gz", false));
        // The excluded directory stays because an include reaches inside it.
        assert!(!filters.skips("/usr/share/doc/curl", true));
        assert!(filters.skips("/usr/share/man/man1", true));
        assert!(!filters.skips("/usr/bin/curl", false));
        let error = PathFilters::default()
            .add("etc/dpkg/dpkg.cfg", "path-exclude [")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("/etc/dpkg/dpkg.cfg: path-exclude pattern \"[\""),
            "{error}"
        );
    }

    #[test]
    fn dpkg_reads_only_plain_fragment_names() {
        assert!(dpkg_reads("docker") && dpkg_reads("excludes") && dpkg_reads("01_nodoc"));
        assert!(!dpkg_reads("docker.dpkg-old") && !dpkg_reads("excludes~"));
    }

    #[test]
    fn stat_overrides_resolve_names_in_the_image() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nmessagebus:x:100:102::/x:/bin/false\n";
        let group = "root:x:0:\nadm:x:4:\ncrontab:x:101:\n";
        let overrides = parse_stat_overrides(
            "root crontab 2755 /usr/bin/crontab\n#0 #4 750 /usr/bin/with space\n",
            passwd,
            group,
        )
        .unwrap();
        assert_eq!(
            overrides["/usr/bin/crontab"],
            StatOverride {
                uid: 0,
                gid: 101,
                mode: 0o2755
            }
        );
        assert_eq!(overrides["/usr/bin/with space"].gid, 4);
        assert!(matches!(
            parse_stat_overrides("nobody root 755 /x\n", passwd, group),
            Err(AdminError::UnknownName { .. })
        ));
        assert!(parse_stat_overrides("root root 9z /x\n", passwd, group).is_err());
    }
}
