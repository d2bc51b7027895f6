//! Alpine version ordering, as apk-tools 2 (`apk version -t`) does it:
//! `digits{.digits}[letter]{_suffix[digits]}[-rN]`, where the pre-release
//! suffixes `_alpha _beta _pre _rc` sort before the bare version and the
//! post-release suffixes `_cvs _svn _git _hg _p` after it; a component with
//! leading zeros (`.01`) sorts before any without, and more zeros sort lower.
//! A malformed tail stops the comparison where it starts.
//!
//! apk-tools 2's quirk is kept on purpose, since it is what Alpine's own
//! tool decides: after a last component of exactly `0`, a pre-release
//! suffix sorts *after* the bare version (`1.0_alpha > 1.0`, yet
//! `1.1_alpha < 1.1`).

use std::cmp::Ordering;
use std::fmt;

use super::VersionError;

const PRE_SUFFIXES: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST_SUFFIXES: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

/// A parsed, valid apk version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// Parses a version the way apk-tools does, refusing what it refuses.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let mut tokens = Tokens::new(text);
        if text.is_empty() {
            return Err(VersionError::new("apk", text, "it is empty"));
        }
        while tokens.kind != Kind::End {
            if tokens.kind == Kind::Invalid {
                let at = text.len() - tokens.rest.len();
                return Err(VersionError::new(
                    "apk",
                    text,
                    format!(
                        "unexpected text at byte {at} (expected digits{{.digits}}[letter]{{_suffix[N]}}[-rN])"
                    ),
                ));
            }
            tokens.next_value();
        }
        Ok(Version(text.to_string()))
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Token kinds in the order apk-tools ranks them: when one version ends
/// where the other goes on, the one whose next token ranks lower is newer
/// (except a pre-release suffix, which makes it older).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

struct Tokens<'a> {
    kind: Kind,
    rest: &'a [u8],
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Tokens<'a> {
        Tokens {
            kind: Kind::Digit,
            rest: text.as_bytes(),
        }
    }

    /// Reads the value of the current token and moves to the next one.
    fn next_value(&mut self) -> i64 {
        if self.rest.is_empty() {
            self.kind = Kind::End;
            return 0;
        }
        let mut next_kind = None;
        let (value, len) = match self.kind {
            Kind::DigitOrZero if self.rest[0] == b'0' => {
                let zeros = self.rest.iter().take_while(|&&b| b == b'0').count();
                next_kind = Some(Kind::Digit);
                (-(zeros as i64), zeros)
            }
            Kind::DigitOrZero | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
                let digits = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let value = self.rest[..digits].iter().fold(0i64, |v, &d| {
                    v.saturating_mul(10).saturating_add(i64::from(d - b'0'))
                });
                (value, digits)
            }
            Kind::Letter => (i64::from(self.rest[0]), 1),
            Kind::Suffix => match suffix_rank(self.rest) {
                Some((rank, len)) => (rank, len),
                None => {
                    self.kind = Kind::Invalid;
                    return -1;
                }
            },
            Kind::Invalid | Kind::End => {
                self.kind = Kind::Invalid;
                return -1;
            }
        };
        self.rest = &self.rest[len..];
        if self.rest.is_empty() {
            self.kind = Kind::End;
        } else if let Some(kind) = next_kind {
            self.kind = kind;
        } else {
            self.advance_kind();
        }
        value
    }

    /// Decides the kind of the next token from its first byte(s) and skips
    /// the separator.
    fn advance_kind(&mut self) {
        let first = self.rest[0];
        let next =
            if matches!(self.kind, Kind::Digit | Kind::DigitOrZero) && first.is_ascii_lowercase() {
                Kind::Letter
            } else if self.kind == Kind::Letter && first.is_ascii_digit() {
                Kind::Digit
            } else if self.kind == Kind::Suffix && first.is_ascii_digit() {
                Kind::SuffixNo
            } else {
                let kind = match first {
                    b'.' => Kind::DigitOrZero,
                    b'_' => Kind::Suffix,
                    b'-' if self.rest.get(1) == Some(&b'r') => {
                        self.rest = &self.rest[1..];
                        Kind::RevisionNo
                    }
                    _ => Kind::Invalid,
                };
                self.rest = &self.rest[1..];
                kind
            };
        let allowed_backwards = matches!(
            (next, self.kind),
            (Kind::DigitOrZero, Kind::Digit)
                | (Kind::Suffix, Kind::SuffixNo)
                | (Kind::Digit, Kind::Letter)
        );
        self.kind = if next < self.kind && !allowed_backwards {
            Kind::Invalid
        } else {
            next
        };
    }
}

/// A suffix's rank (negative for pre-release ones) and length.
fn suffix_rank(rest: &[u8]) -> Option<(i64, usize)> {
    let find = |list: &[&str]| list.iter().position(|s| rest.starts_with(s.as_bytes()));
    if let Some(i) = find(&PRE_SUFFIXES) {
        return Some((i as i64 - PRE_SUFFIXES.len() as i64, PRE_SUFFIXES[i].len()));
    }
    find(&POST_SUFFIXES).map(|i| (i as i64, POST_SUFFIXES[i].len()))
}

/// Orders two version strings as `apk version -t` (apk-tools 2) does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (Tokens::new(a), Tokens::new(b));
    let (mut av, mut bv) = (0, 0);
    while a.kind == b.kind && a.kind != Kind::End && a.kind != Kind::Invalid && av == bv {
        av = a.next_value();
        bv = b.next_value();
    }
    if av != bv {
        return av.cmp(&bv);
    }
    if a.kind == b.kind {
        return Ordering::Equal;
    }
    // Equal so far: the one that goes on is newer unless it goes on with a
    // pre-release (or unknown) suffix.
    let pre_release =
        |t: &Tokens| t.kind == Kind::Suffix && suffix_rank(t.rest).is_none_or(|(rank, _)| rank < 0);
    if pre_release(&a) {
        return Ordering::Less;
    }
    if pre_release(&b) {
        return Ordering::Greater;
    }
    b.kind.cmp(&a.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_suffixes_letters_and_revisions() {
        let ascending = [
            "1.1_alpha",
            "1.1_alpha2",
            "1.1_beta",
            "1.1_pre1",
            "1.1_rc1",
            "1.1",
            "1.1-r1",
            "1.1_cvs",
            "1.1_svn",
            "1.1_git",
            "1.1_hg",
            "1.1_p1",
            "1.1_p2-r3",
            "1.1a",
            "1.1b",
            "1.1.1",
            "1.2.3_rc1-r0",
            "1.2.3",
            "1.10",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Ordering::Less, "{pair:?}");
            assert_eq!(compare(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
        }
        assert_eq!(compare("1.0-r0", "1.0-r0"), Ordering::Equal);
        assert_eq!(compare("1.001", "1.01"), Ordering::Less);
        assert_eq!(compare("1.01", "1.1"), Ordering::Less);
        // apk-tools 2 quirk, kept: after a component that is exactly zero, a
        // pre-release suffix sorts after the bare version.
        assert_eq!(compare("1.0_alpha", "1.0"), Ordering::Greater);
        assert_eq!(compare("99999999999999999999999", "1"), Ordering::Greater);
    }

    #[test]
    fn validates_like_apk() {
        for good in [
            "1",
            "1.2.3",
            "1.2.3a",
            "1.2_rc1",
            "1.2_alpha_pre2",
            "1.2-r10",
            "20230311",
            "0.1_p16-r2",
        ] {
            Version::parse(good).unwrap();
        }
        for bad in [
            "",
            "A1",
            "1.0-1",
            "1.0_foo",
            "1.0bc",
            "1.0-r1a",
            "1.0 ",
            "1.0-r1_p1",
        ] {
            let e = Version::parse(bad).unwrap_err();
            assert!(e.to_string().contains("invalid apk version"), "{bad:?}");
        }
    }
}
