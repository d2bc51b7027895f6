//! RPM version ordering: `rpmvercmp` on each of epoch, version and release
//! (`[epoch:]version[-release]`), as `rpm.vercmp` / `rpmdev-vercmp` do.
//! `rpmvercmp` splits strings into runs of digits and runs of letters
//! (anything else separates); digit runs compare numerically and beat letter
//! runs; `~` sorts before everything, even the end; `^` sorts after the end
//! but before anything else.

use std::cmp::Ordering;
use std::fmt;

use super::VersionError;

/// A parsed rpm EVR (epoch, version, release).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// The digits before `:`, when present.
    pub epoch: Option<String>,
    /// Between the epoch and the last hyphen.
    pub version: String,
    /// After the last hyphen, when present.
    pub release: Option<String>,
}

impl Version {
    /// Parses `[epoch:]version[-release]`: the epoch must be a number, the
    /// version non-empty, and no part may contain whitespace.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let err = |reason: &str| VersionError::new("rpm", text, reason);
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        if text.contains(char::is_whitespace) {
            return Err(err("it contains whitespace"));
        }
        if let Some((epoch, _)) = text.split_once(':')
            && (epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(err("the epoch before ':' is not a number"));
        }
        let (epoch, version, release) = split(text);
        if version.is_empty() {
            return Err(err("the version is empty"));
        }
        if release == Some("") {
            return Err(err("the release after '-' is empty"));
        }
        Ok(Version {
            epoch: epoch.map(str::to_string),
            version: version.to_string(),
            release: release.map(str::to_string),
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(epoch) = &self.epoch {
            write!(f, "{epoch}:")?;
        }
        f.write_str(&self.version)?;
        if let Some(release) = &self.release {
            write!(f, "-{release}")?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        compare_evr(
            (
                self.epoch.as_deref(),
                &self.version,
                self.release.as_deref(),
            ),
            (
                other.epoch.as_deref(),
                &other.version,
                other.release.as_deref(),
            ),
        )
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders two `[epoch:]version[-release]` strings as `rpm.vercmp` (rpm 4.18)
/// does: a missing epoch is 0 and a missing release sorts before any release.
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_evr(split(a), split(b))
}

type Evr<'a> = (Option<&'a str>, &'a str, Option<&'a str>);

fn compare_evr((ae, av, ar): Evr, (be, bv, br): Evr) -> Ordering {
    rpmvercmp(ae.unwrap_or("0"), be.unwrap_or("0"))
        .then_with(|| rpmvercmp(av, bv))
        .then_with(|| rpmvercmp(ar.unwrap_or(""), br.unwrap_or("")))
}

/// Splits at the first `:` (when what precedes it is a number) and the last `-`.
fn split(text: &str) -> Evr<'_> {
    let (epoch, rest) = match text.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(epoch), rest)
        }
        _ => (None, text),
    };
    match rest.rsplit_once('-') {
        Some((version, release)) => (epoch, version, Some(release)),
        None => (epoch, rest, None),
    }
}

/// rpm's segment comparison of one version or release string.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let separator = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    loop {
        a = &a[a.iter().take_while(|c| separator(c)).count()..];
        b = &b[b.iter().take_while(|c| separator(c)).count()..];
        let (ac, bc) = (a.first().copied(), b.first().copied());
        if ac == Some(b'~') || bc == Some(b'~') {
            if ac != Some(b'~') {
                return Ordering::Greater;
            }
            if bc != Some(b'~') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        if ac == Some(b'^') || bc == Some(b'^') {
            if ac.is_none() {
                return Ordering::Less;
            }
            if bc.is_none() {
                return Ordering::Greater;
            }
            if ac != Some(b'^') {
                return Ordering::Greater;
            }
            if bc != Some(b'^') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        let (Some(first), Some(_)) = (ac, bc) else {
            break;
        };
        let numeric = first.is_ascii_digit();
        let in_segment = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let (alen, blen) = (
            a.iter().take_while(|c| in_segment(c)).count(),
            b.iter().take_while(|c| in_segment(c)).count(),
        );
        if blen == 0 {
            // Segments of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut sa, mut sb) = (&a[..alen], &b[..blen]);
        if numeric {
            sa = &sa[sa.iter().take_while(|&&c| c == b'0').count()..];
            sb = &sb[sb.iter().take_while(|&&c| c == b'0').count()..];
            let by_length = sa.len().cmp(&sb.len());
            if by_length != Ordering::Equal {
                return by_length;
            }
        }
        let by_text = sa.cmp(sb);
        if by_text != Ordering::Equal {
            return by_text;
        }
        a = &a[alen..];
        b = &b[blen..];
    }
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_as_rpmvercmp() {
        let ascending = [
            "1.a10", "1.0~rc1", "1.0", "1.0^git1", "1.0^git2", "1.0a", "1.0.1", "1.1", "1.10", "2",
            "2.0.1a", "2.0.1b", "10",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(rpmvercmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
            assert_eq!(rpmvercmp(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
        }
        assert_eq!(rpmvercmp("1.0", "1_0"), Ordering::Equal);
        assert_eq!(rpmvercmp("1.0", "1.00"), Ordering::Equal);
        assert_eq!(rpmvercmp("a", "1"), Ordering::Less);
        assert_eq!(rpmvercmp("1.0^", "1.0"), Ordering::Greater);
        assert_eq!(rpmvercmp("1.0~", "1.0"), Ordering::Less);
    }

    #[test]
    fn compares_evr() {
        assert_eq!(compare("1:1.0-1", "2.0-1"), Ordering::Greater);
        assert_eq!(compare("0:1.0-1", "1.0-1"), Ordering::Equal);
        assert_eq!(compare("1.0-1.el9", "1.0-2.el9"), Ordering::Less);
        assert_eq!(compare("1.0", "1.0-5"), Ordering::Less);
        let v = Version::parse("2:3.0.7-24.el9").unwrap();
        assert_eq!(v.to_string(), "2:3.0.7-24.el9");
        assert!(v > Version::parse("3.1-1").unwrap());
        for bad in ["", "x:1", ":1", "1.0-", "1 0", "1:-1"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}
