//! Debian relationship fields: `Depends`, `Pre-Depends`, `Breaks`,
//! `Conflicts`, `Provides` (Debian Policy §7.1).
//!
//! Owns parsing `a (>= 1.0) | b:any, c` into groups of alternatives and
//! deciding whether a version satisfies one relation. Architecture
//! restrictions (`[amd64]`) and build profiles (`<!nocheck>`) only appear
//! in source packages; they are accepted and ignored.

use std::cmp::Ordering;

use pkgdb::version::dpkg::compare;

/// A version constraint's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<<`: strictly earlier.
    Lt,
    /// `<=` (or the obsolete `<`): earlier or equal.
    Le,
    /// `=`: exactly.
    Eq,
    /// `>=` (or the obsolete `>`): later or equal.
    Ge,
    /// `>>`: strictly later.
    Gt,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "<<" => Op::Lt,
            // `<` and `>` are obsolete spellings of `<=` and `>=`.
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }

    /// The operator as Debian writes it (`<<`, `<=`, `=`, `>=`, `>>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

/// One relation: a package name, an optional architecture qualifier
/// (`:any`, `:native`, `:amd64`) and an optional version constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The package (or virtual package) named.
    pub name: String,
    /// The architecture qualifier after `:`, when there is one.
    pub arch: Option<String>,
    /// The operator and version in parentheses, when there are some.
    pub constraint: Option<(Op, String)>,
}

impl Relation {
    /// Whether `version` meets the constraint (always, without one).
    pub fn accepts(&self, version: &str) -> bool {
        let Some((op, wanted)) = &self.constraint else {
            return true;
        };
        let order = compare(version, wanted);
        match op {
            Op::Lt => order == Ordering::Less,
            Op::Le => order != Ordering::Greater,
            Op::Eq => order == Ordering::Equal,
            Op::Ge => order != Ordering::Less,
            Op::Gt => order == Ordering::Greater,
        }
    }
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some((op, version)) = &self.constraint {
            write!(f, " ({} {version})", op.as_str())?;
        }
        Ok(())
    }
}

/// Alternatives: satisfied when any one is.
pub type Group = Vec<Relation>;

/// A relation of a relationship field that does not parse; each variant
/// carries the relation as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelationError {
    /// An `[arch list]` or `<profiles>` restriction has no closing bracket.
    #[error("relation {0:?}: unclosed restriction")]
    UnclosedRestriction(String),
    /// A `(` version constraint has no closing `)`.
    #[error("relation {0:?}: unclosed version constraint")]
    UnclosedConstraint(String),
    /// A version constraint holds an operator and no version.
    #[error("relation {0:?}: constraint without a version")]
    NoVersion(String),
    /// A version constraint's operator is none of `<< <= = >= >>` (nor `<`, `>`).
    #[error("relation {0:?}: unknown operator")]
    UnknownOperator(String),
    /// A version constraint's version is empty or holds white space.
    #[error("relation {0:?}: malformed version")]
    MalformedVersion(String),
    /// The package name is empty or has characters Debian names do not have.
    #[error("relation {0:?}: invalid package name")]
    InvalidName(String),
}

/// Parses a relationship field into groups of alternatives.
pub fn parse(field: &str) -> Result<Vec<Group>, RelationError> {
    field
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|group| group.split('|').map(|r| parse_relation(r.trim())).collect())
        .collect()
}

fn parse_relation(text: &str) -> Result<Relation, RelationError> {
    let written = || text.to_string();
    let mut rest = text;
    // Drop `[arch list]` and `<profiles>` restrictions.
    for (open, close) in [('[', ']'), ('<', '>')] {
        if let Some(start) = rest.find(open)
            && !rest[..start].contains('(')
        {
            if !rest[start..].contains(close) {
                return Err(RelationError::UnclosedRestriction(written()));
            }
            rest = rest[..start].trim_end();
        }
    }
    let (name_part, constraint) = match rest.split_once('(') {
        Some((name, constraint)) => {
            let constraint = constraint
                .trim()
                .strip_suffix(')')
                .ok_or_else(|| RelationError::UnclosedConstraint(written()))?
                .trim();
            let split = constraint
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .ok_or_else(|| RelationError::NoVersion(written()))?;
            let op = Op::parse(&constraint[..split])
                .ok_or_else(|| RelationError::UnknownOperator(written()))?;
            let version = constraint[split..].trim();
            if version.is_empty() || version.contains(char::is_whitespace) {
                return Err(RelationError::MalformedVersion(written()));
            }
            (name.trim(), Some((op, version.to_string())))
        }
        None => (rest.trim(), None),
    };
    let (name, arch) = match name_part.split_once(':') {
        Some((name, arch)) => (name, Some(arch.to_string())),
        None => (name_part, None),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
    {
        return Err(RelationError::InvalidName(written()));
    }
    Ok(Relation {
        name: name.to_string(),
        arch,
        constraint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups_alternatives_and_constraints() {
        let groups =
            parse("libc6 (>= 2.34), libssl3:amd64 (>> 3.0.0) | libssl1.1, debconf (<< 2) | debconf-2.0 [amd64]").unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0][0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(groups[1][0].arch.as_deref(), Some("amd64"));
        assert_eq!(groups[1][1].name, "libssl1.1");
        assert_eq!(groups[2][1].name, "debconf-2.0");
        assert_eq!(parse("").unwrap(), Vec::<Group>::new());
        assert!(parse("Foo").is_err());
        assert!(parse("a (>= 1").is_err());
        assert!(parse("a (~ 1)").is_err());
    }

    #[test]
    fn checks_constraints_in_dpkg_order() {
        let relation = |text: &str| parse(text).unwrap().remove(0).remove(0);
        assert!(relation("a (>= 1.0~rc1)").accepts("1.0"));
        assert!(!relation("a (>> 1.0)").accepts("1.0"));
        assert!(relation("a (<< 1.0)").accepts("1.0~beta"));
        assert!(relation("a (= 1:2.0-1)").accepts("1:2.0-1"));
        assert!(!relation("a (= 1:2.0-1)").accepts("2.0-1"));
        assert!(relation("a (< 2)").accepts("2"));
        assert!(relation("a").accepts("anything"));
    }
}
