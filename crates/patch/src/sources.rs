//! Where an image's packages come from: its APT sources.
//!
//! Owns reading the image's own configuration (one-line `sources.list`
//! entries and deb822 `.sources` files), the distribution defaults used when
//! the image has none, the security and updates pockets a patch always
//! consults, and mirror rewrites. Pure: the caller hands in file
//! contents.

use std::collections::BTreeSet;

use repo::distributions::{DEBIAN_ARCHIVE, DEBIAN_SECURITY, ubuntu_archives};

/// An APT source the image configures, or a mirror, that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// A one-line entry is a single word.
    #[error("{file} line {line}: incomplete entry: {text:?}")]
    Incomplete {
        /// The sources file, relative to the root.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The entry as written (without its comment).
        text: String,
    },
    /// A one-line entry starts with neither `deb` nor `deb-src`.
    #[error("{file} line {line}: an entry must start with deb or deb-src: {text:?}")]
    NotDeb {
        /// The sources file, relative to the root.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The entry as written (without its comment).
        text: String,
    },
    /// A one-line entry's `[options]` has no closing bracket.
    #[error("{file} line {line}: unclosed [options]: {text:?}")]
    UnclosedOptions {
        /// The sources file, relative to the root.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The entry as written (without its comment).
        text: String,
    },
    /// A one-line entry lacks its URI or its suite.
    #[error("{file} line {line}: an entry needs a URI and a suite: {text:?}")]
    NoUriOrSuite {
        /// The sources file, relative to the root.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The entry as written (without its comment).
        text: String,
    },
    /// A deb822 paragraph of `Types: deb` lacks `URIs` or `Suites`.
    #[error("{file} line {line}: a deb paragraph needs URIs and Suites")]
    Deb822Incomplete {
        /// The `.sources` file, relative to the root.
        file: String,
        /// The 1-based line the paragraph starts on.
        line: usize,
    },
    /// A deb822 `.sources` file is not in control-file syntax.
    #[error(transparent)]
    Deb822Syntax(pkgdb::Error),
    /// A mirror is not an `http`, `https` or `file` URL.
    #[error("mirror {url:?} is not an http(s) or file URL")]
    Mirror {
        /// The URL as given.
        url: String,
    },
}

/// One suite of one archive with the components to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct AptSource {
    /// Base URL without a trailing slash (`http://deb.debian.org/debian`).
    pub uri: String,
    /// The suite (`bookworm-security`), as under `dists/`.
    pub suite: String,
    /// The components to read (`main`, `contrib`).
    pub components: Vec<String>,
    /// `[trusted=yes]` / `Trusted: yes`: the user vouches for an unsigned repository.
    pub trusted: bool,
    /// `signed-by`: the only keys that may sign the suite; `None`: apt's
    /// trusted keys (`/etc/apt/trusted.gpg`, `/etc/apt/trusted.gpg.d`).
    pub signed_by: Option<SignedBy>,
    /// The URI the image configures, when a mirror replaced it (apt's
    /// `Pin: origin` still names this host).
    pub mirrored_from: Option<String>,
}

impl AptSource {
    /// The host of the URI the image configures (empty for `file:`).
    pub fn configured_host(&self) -> &str {
        let uri = self.mirrored_from.as_deref().unwrap_or(&self.uri);
        uri.split_once("://")
            .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or(""))
            .unwrap_or("")
    }
}

/// The keys a `signed-by` option names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SignedBy {
    /// Keyring files, absolute paths in the image.
    Files(Vec<String>),
    /// An ASCII-armored key block written into a deb822 `.sources` file.
    Inline(String),
    /// Key fingerprints, to be looked up among apt's trusted keys.
    Fingerprints(Vec<String>),
}

impl SignedBy {
    /// Reads an option's value: an armored key block, or paths and
    /// fingerprints separated by commas or spaces.
    pub fn parse(value: &str) -> Option<SignedBy> {
        if value.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            return Some(SignedBy::Inline(value.trim().to_string()));
        }
        let items: Vec<String> = value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|i| !i.is_empty())
            .map(str::to_string)
            .collect();
        if items.is_empty() {
            None
        } else if items.iter().all(|i| i.starts_with('/')) {
            Some(SignedBy::Files(items))
        } else {
            Some(SignedBy::Fingerprints(items))
        }
    }
}

/// The distribution families drydock patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Debian (`deb.debian.org`).
    Debian,
    /// Ubuntu (`archive.ubuntu.com`, `ports.ubuntu.com`).
    Ubuntu,
}

impl Distribution {
    /// The family of an `os-release` `ID`; `None` for any other.
    pub fn from_os_id(id: &str) -> Option<Distribution> {
        match id {
            "debian" => Some(Distribution::Debian),
            "ubuntu" => Some(Distribution::Ubuntu),
            _ => None,
        }
    }

    /// Whether a source is one of the distribution's archives or a mirror
    /// of one: mirrors keep the archive's path (`/debian`,
    /// `/debian-security`, `/ubuntu`, `/ubuntu-ports`), and every component
    /// is one of the distribution's (Docker's `…/linux/debian bookworm
    /// stable` is not).
    pub fn is_archive(self, source: &AptSource) -> bool {
        let last = source
            .uri
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("");
        let (paths, components): (&[&str], &[&str]) = match self {
            Distribution::Debian => (
                &["debian", "debian-security"],
                &["main", "contrib", "non-free", "non-free-firmware"],
            ),
            Distribution::Ubuntu => (
                &["ubuntu", "ubuntu-ports"],
                &["main", "restricted", "universe", "multiverse"],
            ),
        };
        paths.contains(&last)
            && !source.components.is_empty()
            && source
                .components
                .iter()
                .all(|c| components.contains(&c.as_str()))
    }

    /// The archive and suites apt would use on a stock install of `codename`.
    pub fn defaults(self, codename: &str, architecture: &str) -> Vec<AptSource> {
        let source = |uri: &str, suite: String, components: &[&str]| AptSource {
            uri: uri.to_string(),
            suite,
            components: components.iter().map(|c| c.to_string()).collect(),
            ..AptSource::default()
        };
        match self {
            Distribution::Debian => vec![
                source(DEBIAN_ARCHIVE, codename.to_string(), &["main"]),
                source(DEBIAN_ARCHIVE, format!("{codename}-updates"), &["main"]),
                source(DEBIAN_SECURITY, format!("{codename}-security"), &["main"]),
            ],
            Distribution::Ubuntu => {
                let (archive, security) = ubuntu_archives(architecture);
                let components = ["main", "restricted", "universe", "multiverse"];
                vec![
                    source(archive, codename.to_string(), &components),
                    source(archive, format!("{codename}-updates"), &components),
                    source(security, format!("{codename}-security"), &components),
                ]
            }
        }
    }
}

/// Parses one-line `sources.list` text: `deb [options] URI SUITE COMPONENT…`.
/// `deb-src` lines and comments are skipped; a malformed line is an error
/// naming it.
pub fn parse_one_line(file: &str, text: &str) -> Result<Vec<AptSource>, SourcesError> {
    let mut sources = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = || (file.to_string(), number + 1, line.to_string());
        let (kind, rest) = line.split_once(char::is_whitespace).ok_or_else(|| {
            let (file, line, text) = at();
            SourcesError::Incomplete { file, line, text }
        })?;
        if kind == "deb-src" {
            continue;
        }
        if kind != "deb" {
            let (file, line, text) = at();
            return Err(SourcesError::NotDeb { file, line, text });
        }
        let mut rest = rest.trim_start();
        let mut trusted = false;
        let mut signed_by = None;
        if let Some(options) = rest.strip_prefix('[') {
            let (options, after) = options.split_once(']').ok_or_else(|| {
                let (file, line, text) = at();
                SourcesError::UnclosedOptions { file, line, text }
            })?;
            for option in options.split_whitespace() {
                let (name, value) = option.split_once('=').unwrap_or((option, ""));
                if name.eq_ignore_ascii_case("trusted") {
                    trusted = value.eq_ignore_ascii_case("yes");
                } else if name.eq_ignore_ascii_case("signed-by") {
                    signed_by = SignedBy::parse(value);
                }
            }
            rest = after.trim_start();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            let (file, line, text) = at();
            return Err(SourcesError::NoUriOrSuite { file, line, text });
        };
        sources.push(AptSource {
            uri: uri.trim_end_matches('/').to_string(),
            suite: suite.to_string(),
            components: words.map(str::to_string).collect(),
            trusted,
            signed_by,
            mirrored_from: None,
        });
    }
    Ok(sources)
}

/// Parses a deb822 `.sources` file: paragraphs with `Types`, `URIs`,
/// `Suites`, `Components`, optional `Enabled` and `Trusted`.
pub fn parse_deb822(file: &str, text: &str) -> Result<Vec<AptSource>, SourcesError> {
    let paragraphs =
        pkgdb::dpkg::paragraphs(file, text.as_bytes()).map_err(SourcesError::Deb822Syntax)?;
    let mut sources = Vec::new();
    for paragraph in paragraphs {
        let get = |name: &str| -> Vec<String> {
            paragraph
                .fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
                .map(|f| {
                    String::from_utf8_lossy(f.value)
                        .split_whitespace()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let yes = |values: Vec<String>| {
            values
                .first()
                .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
        };
        let enabled = get("Enabled");
        if enabled
            .first()
            .is_some_and(|v| v.eq_ignore_ascii_case("no"))
        {
            continue;
        }
        if !get("Types").iter().any(|t| t == "deb") {
            continue;
        }
        let (uris, suites) = (get("URIs"), get("Suites"));
        if uris.is_empty() || suites.is_empty() {
            return Err(SourcesError::Deb822Incomplete {
                file: file.to_string(),
                line: paragraph.line,
            });
        }
        let components = get("Components");
        let trusted = yes(get("Trusted"));
        let signed_by = paragraph
            .fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(b"Signed-By"))
            .and_then(|f| SignedBy::parse(&unfold(&String::from_utf8_lossy(f.value))));
        for uri in &uris {
            for suite in &suites {
                sources.push(AptSource {
                    uri: uri.trim_end_matches('/').to_string(),
                    suite: suite.clone(),
                    components: components.clone(),
                    trusted,
                    signed_by: signed_by.clone(),
                    mirrored_from: None,
                });
            }
        }
    }
    Ok(sources)
}

/// A deb822 multi-line value as written: continuation lines without their
/// leading space, ` .` lines empty.
fn unfold(value: &str) -> String {
    value
        .lines()
        .map(|line| match line.strip_prefix(' ').unwrap_or(line) {
            "." => "",
            line => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a patch reads of the distribution: the image's own entries for
/// its release's pockets (`-backports` and `-proposed` included when
/// configured; entries for other releases, such as a pinned `sid`, are
/// ignored), plus any of the default pockets (release, `-updates`,
/// `-security`) the configuration lacks, so a patch always sees the
/// security pocket. Third-party repositories (an archive that is not the
/// distribution's: `apt.postgresql.org`, Docker's `bookworm stable`, a PPA)
/// are not among them: they are signed with keys of their own and consulted
/// apart ([`third_party`]), so that they never stand in the way of the
/// distribution's security fixes. With no configuration at all this is the
/// defaults.
pub fn effective(
    configured: &[AptSource],
    distribution: Distribution,
    codename: &str,
    architecture: &str,
) -> Vec<AptSource> {
    // Backports and proposed only when the image configures them; their
    // `Release` marks them NotAutomatic, which apt's policy ranks lower.
    let pockets = [
        codename.to_string(),
        format!("{codename}-updates"),
        format!("{codename}-security"),
        format!("{codename}-backports"),
        format!("{codename}-proposed"),
    ];
    let mut sources: Vec<AptSource> = configured
        .iter()
        .filter(|s| pockets.contains(&s.suite) && distribution.is_archive(s))
        .cloned()
        .collect();
    let present: BTreeSet<String> = sources.iter().map(|s| s.suite.clone()).collect();
    for default in distribution.defaults(codename, architecture) {
        if !present.contains(&default.suite) {
            sources.push(default);
        }
    }
    sources.dedup();
    sources
}

/// The configured entries that are not the distribution's archive (a
/// vendor's suite, a PPA, whatever the suite's name): the third-party
/// suites a patch consults apart, each with its own keys. Entries of the
/// distribution's archive for other releases are neither.
pub fn third_party(configured: &[AptSource], distribution: Distribution) -> Vec<AptSource> {
    let mut found: Vec<AptSource> = configured
        .iter()
        .filter(|s| !distribution.is_archive(s))
        .cloned()
        .collect();
    found.dedup();
    found
}

/// A mirror rewrite: `FROM=TO` replaces the base URL prefix FROM; a
/// bare URL replaces the scheme and host of every source and keeps its path
/// (`http://mirror.local` turns `http://deb.debian.org/debian-security`
/// into `http://mirror.local/debian-security`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// `FROM=TO`: base URLs starting with `from` start with `to` instead.
    Prefix {
        /// The prefix replaced, without a trailing slash.
        from: String,
        /// Its replacement, without a trailing slash.
        to: String,
    },
    /// A bare URL: every base URL's scheme and host become this one's.
    Host(String),
}

impl std::str::FromStr for Mirror {
    type Err = SourcesError;

    fn from_str(text: &str) -> Result<Mirror, SourcesError> {
        let check = |url: &str| -> Result<String, SourcesError> {
            if url.starts_with("http://")
                || url.starts_with("https://")
                || url.starts_with("file:/")
            {
                Ok(url.trim_end_matches('/').to_string())
            } else {
                Err(SourcesError::Mirror {
                    url: url.to_string(),
                })
            }
        };
        match text.split_once('=') {
            Some((from, to)) => Ok(Mirror::Prefix {
                from: check(from)?,
                to: check(to)?,
            }),
            None => Ok(Mirror::Host(check(text)?)),
        }
    }
}

/// The URL `mirrors` make of the archive URL `official`; `None` when no
/// mirror applies to it.
pub fn mirrored(official: &str, mirrors: &[Mirror]) -> Option<String> {
    let mut source = [AptSource {
        uri: official.trim_end_matches('/').to_string(),
        ..AptSource::default()
    }];
    apply_mirrors(&mut source, mirrors);
    let [source] = source;
    source.mirrored_from.map(|_| source.uri)
}

/// Applies the first mirror that matches each source.
pub fn apply_mirrors(sources: &mut [AptSource], mirrors: &[Mirror]) {
    for source in sources {
        let configured = source.uri.clone();
        for mirror in mirrors {
            match mirror {
                Mirror::Prefix { from, to } => {
                    if let Some(rest) = source.uri.strip_prefix(from.as_str())
                        && (rest.is_empty() || rest.starts_with('/'))
                    {
                        source.uri = format!("{to}{rest}");
                        break;
                    }
                }
                Mirror::Host(host) => {
                    let path = source
                        .uri
                        .split_once("://")
                        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                        .unwrap_or("");
                    source.uri = format!("{host}{path}");
                    break;
                }
            }
        }
        if source.uri != configured {
            source.mirrored_from = Some(configured);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_line_entries() {
        let text = "# comment\ndeb http://deb.debian.org/debian bookworm main contrib\n\
deb-src http://deb.debian.org/debian bookworm main\n\
deb [arch=amd64 trusted=yes] http://example.org/repo/ stable main # trailing\n";
        let sources = parse_one_line("sources.list", text).unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert!(!sources[0].trusted);
        assert_eq!(sources[1].uri, "http://example.org/repo");
        assert!(sources[1].trusted);
        assert_eq!(
            parse_one_line("f", "deb http://x\n")
                .unwrap_err()
                .to_string(),
            "f line 1: an entry needs a URI and a suite: \"deb http://x\""
        );
        assert!(parse_one_line("f", "rpm http://x a b\n").is_err());
    }

    #[test]
    fn reads_signed_by_in_both_formats() {
        let line = parse_one_line(
            "f",
            "deb [arch=amd64 signed-by=/usr/share/keyrings/a.gpg,/etc/apt/keyrings/b.asc] http://x/ s main\n\
             deb [signed-by=ABCDEF0123456789] http://y s main\n",
        )
        .unwrap();
        assert_eq!(
            line[0].signed_by,
            Some(SignedBy::Files(vec![
                "/usr/share/keyrings/a.gpg".into(),
                "/etc/apt/keyrings/b.asc".into()
            ]))
        );
        assert!(matches!(line[1].signed_by, Some(SignedBy::Fingerprints(_))));
        let deb822 = parse_deb822(
            "x.sources",
            "Types: deb\nURIs: http://x\nSuites: s\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBF\n -----END PGP PUBLIC KEY BLOCK-----\n",
        )
        .unwrap();
        assert_eq!(
            deb822[0].signed_by,
            Some(SignedBy::Inline(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----"
                    .into()
            ))
        );
    }

    #[test]
    fn reads_deb822_like_the_official_debian_image() {
        let text = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\
Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n\n\
Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\n\
Enabled: no\nTypes: deb\nURIs: http://x\nSuites: y\nComponents: z\n";
        let sources = parse_deb822("debian.sources", text).unwrap();
        let suites: Vec<&str> = sources.iter().map(|s| s.suite.as_str()).collect();
        assert_eq!(
            suites,
            ["bookworm", "bookworm-updates", "bookworm-security"]
        );
        assert!(parse_deb822("f", "Types: deb\nSuites: x\n").is_err());
    }

    #[test]
    fn adds_missing_pockets_and_drops_other_releases() {
        let configured = parse_one_line(
            "f",
            "deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian sid main\n\
deb http://deb.debian.org/debian bookworm-backports main\n\
deb http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main\n\
deb [signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian bookworm stable\n\
deb https://packages.example.org/apt stable main\n",
        )
        .unwrap();
        let sources = effective(&configured, Distribution::Debian, "bookworm", "amd64");
        let apart: Vec<String> = third_party(&configured, Distribution::Debian)
            .iter()
            .map(|s| format!("{} {}", s.uri, s.suite))
            .collect();
        assert_eq!(
            apart,
            [
                "http://apt.postgresql.org/pub/repos/apt bookworm-pgdg",
                "https://download.docker.com/linux/debian bookworm",
                "https://packages.example.org/apt stable"
            ]
        );
        let suites: Vec<(&str, &str)> = sources
            .iter()
            .map(|s| (s.uri.as_str(), s.suite.as_str()))
            .collect();
        assert_eq!(
            suites,
            [
                (DEBIAN_ARCHIVE, "bookworm"),
                (DEBIAN_ARCHIVE, "bookworm-backports"),
                (DEBIAN_ARCHIVE, "bookworm-updates"),
                (DEBIAN_SECURITY, "bookworm-security")
            ]
        );
        let ubuntu = Distribution::Ubuntu.defaults("noble", "arm64");
        assert!(
            ubuntu
                .iter()
                .all(|s| s.uri.starts_with("http://ports.ubuntu.com"))
        );
    }

    #[test]
    fn rewrites_mirrors() {
        let mut sources = Distribution::Debian.defaults("bookworm", "amd64");
        let mirrors: Vec<Mirror> = vec![
            "http://deb.debian.org/debian-security=http://local/sec"
                .parse()
                .unwrap(),
            "http://mirror.local:8080/".parse().unwrap(),
        ];
        apply_mirrors(&mut sources, &mirrors);
        assert_eq!(sources[0].uri, "http://mirror.local:8080/debian");
        assert_eq!(sources[2].uri, "http://local/sec");
        assert_eq!(sources[0].configured_host(), "deb.debian.org");
        assert!("ftp://x".parse::<Mirror>().is_err());
        assert_eq!(
            mirrored("http://deb.debian.org/debian-security", &mirrors).as_deref(),
            Some("http://local/sec")
        );
        assert_eq!(mirrored("http://deb.debian.org/debian-security", &[]), None);
    }
}
