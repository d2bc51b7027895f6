//! Operating-system identity from the files every distribution ships:
//! `etc/os-release` (or `usr/lib/os-release`), `etc/debian_version`,
//! `etc/alpine-release`, `etc/redhat-release`.
//!
//! Owns parsing those files and combining them into one [`OsInfo`]. Pure: it
//! is handed the files' bytes (see [`OsFiles`]); it never reads disk and
//! never decides end-of-life (the `eol` module does, from an [`OsInfo`]).

use crate::error::{Error, Result};

/// The files identity is read from; `None` for a file the image lacks.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsFiles<'a> {
    /// `etc/os-release`, else `usr/lib/os-release`.
    pub os_release: Option<&'a [u8]>,
    /// `etc/debian_version` (a point release, or a codename on derivatives).
    pub debian_version: Option<&'a [u8]>,
    /// `etc/alpine-release`.
    pub alpine_release: Option<&'a [u8]>,
    /// `etc/redhat-release`, for RHEL-family images without os-release.
    pub redhat_release: Option<&'a [u8]>,
}

/// Who the operating system is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsInfo {
    /// os-release `ID`: `debian`, `ubuntu`, `alpine`, `rhel`, `rocky`, …
    pub id: String,
    /// os-release `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    /// os-release `VERSION_ID` (`12`, `24.04`, `3.20.3`, `9.4`).
    pub version_id: Option<String>,
    /// The point release when the distribution records one
    /// (`etc/debian_version` `12.5`, `etc/alpine-release` `3.20.3`).
    pub release: Option<String>,
    /// `VERSION_CODENAME` (or `UBUNTU_CODENAME`), e.g. `bookworm`, `noble`.
    pub codename: Option<String>,
    /// os-release `PRETTY_NAME` (`Debian GNU/Linux 12 (bookworm)`).
    pub pretty_name: Option<String>,
}

impl OsInfo {
    fn new(id: &str) -> OsInfo {
        OsInfo {
            id: id.to_string(),
            id_like: Vec::new(),
            version_id: None,
            release: None,
            codename: None,
            pretty_name: None,
        }
    }

    /// The major release used for advisories and end-of-life: `12` for
    /// Debian, `24.04` for Ubuntu, `3.20` for Alpine, `9` for RHEL family.
    pub fn major_release(&self) -> Option<String> {
        let version = self.version_id.as_deref().or(self.release.as_deref())?;
        let mut parts = version.split('.');
        let first = parts.next()?;
        Some(match self.id.as_str() {
            "ubuntu" | "alpine" | "wolfi" => match parts.next() {
                Some(second) => format!("{first}.{second}"),
                None => first.to_string(),
            },
            _ => first.to_string(),
        })
    }
}

/// Combines the identity files into one identity; `Ok(None)` when the image
/// has none of them (an unknown OS, or a `scratch`-based image).
pub fn identify(files: OsFiles) -> Result<Option<OsInfo>> {
    let mut info = match files.os_release {
        Some(bytes) => Some(parse_os_release(bytes)?),
        None => None,
    };
    let first_line = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    if let Some(bytes) = files.debian_version {
        let release = first_line(bytes);
        let info = info.get_or_insert_with(|| OsInfo::new("debian"));
        // Ubuntu and other derivatives ship Debian's file with a codename
        // ("bookworm/sid") in it: only Debian's own is a point release.
        if info.id == "debian" && release.starts_with(|c: char| c.is_ascii_digit()) {
            if info.version_id.is_none() {
                info.version_id = release.split('.').next().map(str::to_string);
            }
            info.release = Some(release);
        } else if info.id == "debian" && info.codename.is_none() {
            info.codename = release.split('/').next().map(str::to_string);
        }
    }
    if let Some(bytes) = files.alpine_release {
        let release = first_line(bytes);
        let info = info.get_or_insert_with(|| OsInfo::new("alpine"));
        if info.id == "alpine" && !release.is_empty() {
            info.version_id.get_or_insert_with(|| release.clone());
            info.release = Some(release);
        }
    }
    if let (None, Some(bytes)) = (&info, files.redhat_release) {
        info = parse_redhat_release(&first_line(bytes));
    }
    Ok(info)
}

/// Parses os-release (`KEY=value`, values optionally in single or double
/// quotes, `\` escapes inside double quotes, `#` comments).
pub fn parse_os_release(bytes: &[u8]) -> Result<OsInfo> {
    const FILE: &str = "os-release";
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::format(FILE, 1, format!("is not valid UTF-8 ({e})")))?;
    let mut info = OsInfo::new("");
    let mut ubuntu_codename = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, raw) = line.split_once('=').ok_or_else(|| {
            Error::format(
                FILE,
                index + 1,
                format!("expected KEY=value, found {line:?}"),
            )
        })?;
        let value = unquote(raw.trim()).ok_or_else(|| {
            Error::format(FILE, index + 1, format!("unbalanced quotes in {line:?}"))
        })?;
        let value = Some(value).filter(|v| !v.is_empty());
        match key.trim() {
            "ID" => info.id = value.unwrap_or_default().to_ascii_lowercase(),
            "ID_LIKE" => {
                info.id_like = value
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            }
            "VERSION_ID" => info.version_id = value,
            "VERSION_CODENAME" => info.codename = value,
            "UBUNTU_CODENAME" => ubuntu_codename = value,
            "PRETTY_NAME" => info.pretty_name = value,
            _ => {}
        }
    }
    if info.codename.is_none() {
        info.codename = ubuntu_codename;
    }
    if info.id.is_empty() {
        // os-release(5): ID defaults to "linux".
        info.id = "linux".to_string();
    }
    Ok(info)
}

fn unquote(raw: &str) -> Option<String> {
    let mut chars = raw.chars();
    match chars.next() {
        Some(q @ ('"' | '\'')) => {
            let inner = raw[1..].strip_suffix(q)?;
            if q == '\'' {
                return Some(inner.to_string());
            }
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    _ => {
                        out.push(c);
                        escaped = false;
                    }
                }
            }
            Some(out)
        }
        _ => Some(raw.to_string()),
    }
}

/// `Red Hat Enterprise Linux release 9.3 (Plow)`, `CentOS Linux release
/// 7.9.2009 (Core)`, `Rocky Linux release 9.4 (Blue Onyx)`.
fn parse_redhat_release(line: &str) -> Option<OsInfo> {
    let (name, rest) = line.split_once(" release ")?;
    let version = rest.split_whitespace().next()?.to_string();
    let id = match name {
        n if n.starts_with("Red Hat") => "rhel",
        n if n.starts_with("CentOS") => "centos",
        n if n.starts_with("Rocky") => "rocky",
        n if n.starts_with("AlmaLinux") => "almalinux",
        n if n.starts_with("Oracle") => "ol",
        n if n.starts_with("Fedora") => "fedora",
        _ => return None,
    };
    let mut info = OsInfo::new(id);
    info.version_id = Some(version);
    info.pretty_name = Some(line.to_string());
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &[u8] = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
    const UBUNTU: &[u8] = b"PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=noble\n";

    #[test]
    fn identifies_debian_with_point_release() {
        let files = OsFiles {
            os_release: Some(DEBIAN),
            debian_version: Some(b"12.7\n"),
            ..OsFiles::default()
        };
        let info = identify(files).unwrap().unwrap();
        assert_eq!(
            (
                info.id.as_str(),
                info.version_id.as_deref(),
                info.release.as_deref()
            ),
            ("debian", Some("12"), Some("12.7"))
        );
        assert_eq!(info.codename.as_deref(), Some("bookworm"));
        assert_eq!(info.major_release().as_deref(), Some("12"));
    }

    #[test]
    fn identifies_ubuntu_ignoring_debian_version() {
        let files = OsFiles {
            os_release: Some(UBUNTU),
            debian_version: Some(b"trixie/sid\n"),
            ..OsFiles::default()
        };
        let info = identify(files).unwrap().unwrap();
        assert_eq!(info.id, "ubuntu");
        assert_eq!(info.release, None);
        assert_eq!(info.id_like, ["debian"]);
        assert_eq!(info.major_release().as_deref(), Some("24.04"));
    }

    #[test]
    fn identifies_without_os_release() {
        let debian = identify(OsFiles {
            debian_version: Some(b"11.9"),
            ..OsFiles::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            (debian.id.as_str(), debian.version_id.as_deref()),
            ("debian", Some("11"))
        );
        let sid = identify(OsFiles {
            debian_version: Some(b"trixie/sid"),
            ..OsFiles::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(sid.codename.as_deref(), Some("trixie"));
        let alpine = identify(OsFiles {
            alpine_release: Some(b"3.20.3\n"),
            ..OsFiles::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(alpine.major_release().as_deref(), Some("3.20"));
        let rhel = identify(OsFiles {
            redhat_release: Some(b"Red Hat Enterprise Linux release 9.3 (Plow)\n"),
            ..OsFiles::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            (rhel.id.as_str(), rhel.major_release().as_deref()),
            ("rhel", Some("9"))
        );
        assert_eq!(identify(OsFiles::default()).unwrap(), None);
        assert_eq!(
            identify(OsFiles {
                redhat_release: Some(b"Something else"),
                ..OsFiles::default()
            })
            .unwrap(),
            None
        );
    }

    #[test]
    fn refuses_malformed_os_release() {
        let err = parse_os_release(b"ID=debian\nthis is not a pair\n").unwrap_err();
        assert!(
            err.to_string().contains("line 2: expected KEY=value"),
            "{err}"
        );
        let err = parse_os_release(b"ID=\"debian\n").unwrap_err();
        assert!(err.to_string().contains("unbalanced quotes"), "{err}");
        assert!(parse_os_release(b"ID=\xff").is_err());
        let escaped = parse_os_release(b"ID='alpine'\nPRETTY_NAME=\"a \\\"b\\\"\"\n").unwrap();
        assert_eq!(
            (escaped.id.as_str(), escaped.pretty_name.as_deref()),
            ("alpine", Some("a \"b\""))
        );
        assert_eq!(parse_os_release(b"").unwrap().id, "linux");
    }
}
