//! Patch plans: which package versions to install, and why.
//!
//! Owns the decision, as a pure function over the installed packages and
//! the candidates of the configured suites: the target of each requested
//! package is the newest candidate (which must reach the fixed version);
//! then, until nothing changes, every dependency of a new version
//! (`Pre-Depends`, `Depends`, with version constraints, `Provides` and
//! architecture qualifiers) that the image lacks or has too old is added,
//! every installed package whose own dependencies the new versions would
//! break is upgraded with them (as the siblings of one source are, which pin
//! each other with `=`), and `Breaks`/`Conflicts` between the result's
//! packages are resolved by upgrading or refused. A plan never removes a
//! package: what would need a removal is an error that says which package
//! and which relation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use pkgdb::version::dpkg::compare;
use repo::apt::packages::IndexPackage;

use crate::relation;

pub use crate::candidates::{Candidate, IndexOrigin};
pub use crate::relation::{Group, Op, Relation, RelationError};

/// What a plan knows about a package, installed or offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The binary package's name.
    pub name: String,
    /// Its dpkg architecture (`amd64`, `all`).
    pub architecture: String,
    /// Its version.
    pub version: String,
    /// The source package it is built from.
    pub source_name: String,
    /// The source package's version.
    pub source_version: String,
    /// `Multi-Arch` (`same`, `foreign`, `allowed`), when declared.
    pub multi_arch: Option<String>,
    /// `Pre-Depends`, as groups of alternatives.
    pub pre_depends: Vec<Group>,
    /// `Depends`, as groups of alternatives.
    pub depends: Vec<Group>,
    /// `Provides`: the virtual packages (with versions) it stands for.
    pub provides: Vec<Relation>,
    /// `Breaks`, as groups of alternatives.
    pub breaks: Vec<Group>,
    /// `Conflicts`, as groups of alternatives.
    pub conflicts: Vec<Group>,
}

/// The relationship fields of a package as written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    /// `Pre-Depends`.
    pub pre_depends: Option<&'a str>,
    /// `Depends`.
    pub depends: Option<&'a str>,
    /// `Provides`.
    pub provides: Option<&'a str>,
    /// `Breaks`.
    pub breaks: Option<&'a str>,
    /// `Conflicts`.
    pub conflicts: Option<&'a str>,
}

impl Facts {
    /// Builds facts from identity and relationship fields; a malformed
    /// field is an error naming the package.
    pub fn new(
        identity: [&str; 5],
        multi_arch: Option<&str>,
        fields: Fields,
    ) -> Result<Facts, PlanError> {
        let [name, architecture, version, source_name, source_version] = identity;
        let parse = |field: Option<&str>| {
            relation::parse(field.unwrap_or("")).map_err(|source| PlanError::BadRelation {
                package: format!("{name} {version}"),
                source,
            })
        };
        Ok(Facts {
            name: name.to_string(),
            architecture: architecture.to_string(),
            version: version.to_string(),
            source_name: source_name.to_string(),
            source_version: source_version.to_string(),
            multi_arch: multi_arch.map(str::to_string),
            pre_depends: parse(fields.pre_depends)?,
            depends: parse(fields.depends)?,
            provides: parse(fields.provides)?.into_iter().flatten().collect(),
            breaks: parse(fields.breaks)?,
            conflicts: parse(fields.conflicts)?,
        })
    }

    /// The facts of a package as an index (`Packages`) lists it.
    pub fn from_index(package: &IndexPackage) -> Result<Facts, PlanError> {
        Facts::new(
            [
                &package.name,
                &package.architecture,
                &package.version,
                &package.source_name,
                &package.source_version,
            ],
            package.multi_arch.as_deref(),
            Fields {
                pre_depends: package.pre_depends.as_deref(),
                depends: package.depends.as_deref(),
                provides: package.provides.as_deref(),
                breaks: package.breaks.as_deref(),
                conflicts: package.conflicts.as_deref(),
            },
        )
    }
}

/// A package the user (or a scan) wants upgraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The binary package, optionally `name:arch`.
    pub name: String,
    /// The source version that fixes it, when known (the scan and Trivy
    /// report fixed versions of the source package for Debian and Ubuntu).
    pub fixed_source_version: Option<String>,
    /// The vulnerabilities the upgrade fixes.
    pub vulnerabilities: Vec<String>,
}

/// What to upgrade.
#[derive(Debug, Clone)]
pub enum Wants {
    /// These packages, each at least to its fixed version.
    Packages(Vec<Request>),
    /// Every installed package that has a newer candidate.
    All,
}

/// Why a step is in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Requested; fixes these vulnerabilities (none known for `--update-all`).
    Requested(Vec<String>),
    /// A new version of this package depends on it.
    DependencyOf(String),
    /// Its installed version's relations would be broken by this package's new version.
    KeepsWorking(String),
}

/// One package the plan installs: an upgrade, or a package new to the image.
#[derive(Debug, Clone)]
pub struct Step {
    /// The binary package.
    pub name: String,
    /// Its architecture, as installed.
    pub architecture: String,
    /// The installed version; `None` when the package is new to the image.
    pub from: Option<String>,
    /// The version installed, and where it comes from.
    pub to: Candidate,
    /// Why the plan installs it.
    pub reason: Reason,
}

impl Step {
    /// The version the step installs.
    pub fn to_version(&self) -> &str {
        &self.to.package.version
    }
}

/// A requested package that the plan leaves as it is, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The package as requested.
    pub name: String,
    /// Why it is left, in words (already fixed, no newer version, held, ...).
    pub reason: String,
}

/// A patch plan: the packages to install, and the requested ones left as they are.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Sorted by name, then architecture.
    pub steps: Vec<Step>,
    /// Requested packages the plan leaves, with the reason.
    pub skipped: Vec<Skipped>,
}

impl Plan {
    /// Whether the plan installs nothing.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Every vulnerability a requested step fixes, sorted, once each.
    pub fn vulnerabilities(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .steps
            .iter()
            .filter_map(|s| match &s.reason {
                Reason::Requested(ids) => Some(ids.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// Why no plan can be made: each refusal names the package and relation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// The plan would have to upgrade a package the image holds (dpkg's
    /// `hold` selection, `apt-mark hold`).
    #[error(
        "the plan needs the held package {package} upgraded; apt keeps held packages back, and \
         so does drydock (apt-mark unhold {package} in the image to allow it)"
    )]
    Held {
        /// The held package.
        package: String,
    },
    /// A relationship field of an installed or offered package does not parse.
    #[error("{package}: malformed relationship field")]
    BadRelation {
        /// `name version` of the package.
        package: String,
        /// What is wrong with the field.
        #[source]
        source: RelationError,
    },
    /// A dependency of a new version that no configured suite can satisfy.
    #[error(
        "{package} {version} needs {relation}, which no configured suite can provide; \
         the plan is refused rather than leaving a broken package"
    )]
    Unsatisfiable {
        /// The package whose dependency it is.
        package: String,
        /// Its version.
        version: String,
        /// The dependency, as written.
        relation: String,
    },
    /// An installed package the upgrades break and that no suite has a
    /// working version of: only a removal would do.
    #[error(
        "upgrading {because} breaks the installed {package} {version} (it needs {relation}) and no \
         configured suite has a version of {package} that works with it: the only way out is \
         removing {package}, which drydock never does"
    )]
    NeedsRemoval {
        /// The installed package that breaks.
        package: String,
        /// Its installed version.
        version: String,
        /// Its dependency the upgrades break, as written.
        relation: String,
        /// The planned packages, comma-separated.
        because: String,
    },
    /// A `Breaks` or `Conflicts` between packages of the result that no
    /// other version resolves.
    #[error(
        "{package} declares {kind} {relation}, matched by {other}, and no configured suite has \
         another version of it that avoids this: resolving it needs a removal, which drydock never does"
    )]
    Conflict {
        /// `name version` of the declaring package.
        package: String,
        /// `Breaks` or `Conflicts`.
        kind: &'static str,
        /// The relation, as written.
        relation: String,
        /// `name version` of the package it matches.
        other: String,
    },
}

fn held_back(name: &str) -> Skipped {
    Skipped {
        name: name.to_string(),
        reason: "held (dpkg selection hold, apt-mark hold): kept back as apt keeps it".to_string(),
    }
}

/// One package of the resulting system.
#[derive(Debug, Clone)]
struct Member {
    facts: Facts,
    /// The plan installs this version.
    planned: bool,
}

struct Planner<'a> {
    native: &'a str,
    candidates: HashMap<&'a str, Vec<(&'a Candidate, Facts)>>,
    installed: &'a [Facts],
    /// By name: the packages of the resulting system.
    system: HashMap<String, Vec<Member>>,
    steps: BTreeMap<(String, String), Step>,
    /// (package, relation) pairs the image already failed before the plan:
    /// not the plan's to repair.
    broken_before: HashSet<(String, String)>,
}

/// Plans `wants` for a system of `installed` packages of dpkg architecture
/// `native`, from `available` candidates (all configured suites). Packages
/// named in `held` (dpkg's `hold` selection, `apt-mark hold`) are kept back
/// as apt keeps them: never upgraded, skipped with that reason when asked
/// for, and a plan that would need one upgraded is refused.
pub fn plan(
    installed: &[Facts],
    available: &[Candidate],
    native: &str,
    wants: &Wants,
    held: &BTreeSet<String>,
) -> Result<Plan, PlanError> {
    let mut candidates: HashMap<&str, Vec<(&Candidate, Facts)>> = HashMap::new();
    for candidate in available {
        let arch = candidate.package.architecture.as_str();
        if arch != native && arch != "all" && !installed.iter().any(|p| p.architecture == arch) {
            continue;
        }
        let facts = Facts::from_index(&candidate.package)?;
        candidates
            .entry(candidate.package.name.as_str())
            .or_default()
            .push((candidate, facts));
    }
    for list in candidates.values_mut() {
        // Newest first; among equal versions the first suite configured wins.
        list.sort_by(|a, b| compare(&b.1.version, &a.1.version));
    }
    let mut system: HashMap<String, Vec<Member>> = HashMap::new();
    for facts in installed {
        system.entry(facts.name.clone()).or_default().push(Member {
            facts: facts.clone(),
            planned: false,
        });
    }
    let mut planner = Planner {
        native,
        candidates,
        installed,
        system,
        steps: BTreeMap::new(),
        broken_before: HashSet::new(),
    };
    for package in installed {
        for group in package.pre_depends.iter().chain(&package.depends) {
            if !planner.group_satisfied(group, &package.architecture) {
                planner
                    .broken_before
                    .insert((package.name.clone(), group_text(group)));
            }
        }
    }
    let mut skipped = Vec::new();
    match wants {
        Wants::All => {
            for package in installed {
                if let Some((candidate, facts)) = planner.best(&package.name, &package.architecture)
                    && compare(&candidate.package.version, &package.version).is_gt()
                {
                    if held.contains(&package.name) {
                        skipped.push(held_back(&package.name));
                        continue;
                    }
                    let offer = (candidate.clone(), facts.clone());
                    planner.add(package, offer, Reason::Requested(Vec::new()));
                }
            }
        }
        Wants::Packages(requests) => {
            for request in requests {
                let name = request.name.split(':').next().unwrap_or(&request.name);
                if held.contains(name) {
                    skipped.push(held_back(&request.name));
                    continue;
                }
                if let Some(skip) = planner.request(request) {
                    skipped.push(skip);
                }
            }
        }
    }
    planner.close()?;
    if let Some(step) = planner
        .steps
        .values()
        .find(|s| s.from.is_some() && held.contains(&s.name))
    {
        return Err(PlanError::Held {
            package: step.name.clone(),
        });
    }
    Ok(Plan {
        steps: planner.steps.into_values().collect(),
        skipped,
    })
}

fn arch_fits(offered: &str, multi_arch: Option<&str>, wanted: &str, native: &str) -> bool {
    offered == "all"
        || offered == wanted
        || wanted == "any"
        || multi_arch == Some("foreign")
        || (wanted == "all" && offered == native)
}

impl<'a> Planner<'a> {
    /// The newest candidate named `name` for architecture `arch`.
    fn best(&self, name: &str, arch: &str) -> Option<(&'a Candidate, &Facts)> {
        let arch = if arch == "all" { self.native } else { arch };
        self.candidates
            .get(name)?
            .iter()
            .find(|(c, _)| {
                let offered = c.package.architecture.as_str();
                offered == arch || offered == "all"
            })
            .map(|(c, f)| (*c, f))
    }

    fn request(&mut self, request: &Request) -> Option<Skipped> {
        let skip = |reason: String| {
            Some(Skipped {
                name: request.name.clone(),
                reason,
            })
        };
        // `libssl3:amd64` (as Multi-Arch names are written) asks for one architecture.
        let (name, arch) = match request.name.split_once(':') {
            Some((name, arch)) => (name, Some(arch)),
            None => (request.name.as_str(), None),
        };
        let installed: Vec<&Facts> = self
            .installed
            .iter()
            .filter(|p| p.name == name && arch.is_none_or(|a| a == p.architecture))
            .collect();
        if installed.is_empty() {
            return skip("not installed in this image".to_string());
        }
        let mut skipped = None;
        for package in installed {
            if self
                .steps
                .contains_key(&(package.name.clone(), package.architecture.clone()))
            {
                if let Some(step) = self
                    .steps
                    .get_mut(&(package.name.clone(), package.architecture.clone()))
                    && let Reason::Requested(ids) = &mut step.reason
                {
                    ids.extend(request.vulnerabilities.iter().cloned());
                    ids.sort();
                    ids.dedup();
                }
                continue;
            }
            let fixed = request.fixed_source_version.as_deref();
            if let Some(fixed) = fixed
                && compare(&package.source_version, fixed).is_ge()
            {
                skipped = skip(format!(
                    "{} {} already has the fix (source {} ≥ {fixed})",
                    package.name, package.version, package.source_version
                ));
                continue;
            }
            let Some((candidate, facts)) = self.best(&package.name, &package.architecture) else {
                skipped = skip("no configured suite offers it".to_string());
                continue;
            };
            if compare(&facts.version, &package.version).is_le() {
                skipped = skip(format!(
                    "no configured suite has a version newer than {} (newest offered: {})",
                    package.version, facts.version
                ));
                continue;
            }
            if let Some(fixed) = fixed
                && compare(&facts.source_version, fixed).is_lt()
            {
                skipped = skip(format!(
                    "the fix needs source version {fixed}; the newest offered is {} ({})",
                    facts.source_version, candidate.suite
                ));
                continue;
            }
            let offer = (candidate.clone(), facts.clone());
            let package = package.clone();
            self.add(
                &package,
                offer,
                Reason::Requested(request.vulnerabilities.clone()),
            );
        }
        skipped
    }

    /// Puts `candidate` into the plan in place of `installed` (or as a new package).
    fn add(&mut self, installed: &Facts, offer: (Candidate, Facts), reason: Reason) {
        self.add_step(Some(installed), offer, reason)
    }

    /// `offer` is a candidate with the facts parsed when it was indexed.
    fn add_step(
        &mut self,
        installed: Option<&Facts>,
        (candidate, facts): (Candidate, Facts),
        reason: Reason,
    ) {
        let members = self.system.entry(facts.name.clone()).or_default();
        members.retain(|m| {
            installed.is_none_or(|i| m.facts.architecture != i.architecture)
                && m.facts.architecture != facts.architecture
        });
        members.push(Member {
            facts: facts.clone(),
            planned: true,
        });
        self.steps.insert(
            (facts.name.clone(), facts.architecture.clone()),
            Step {
                name: facts.name.clone(),
                architecture: facts.architecture.clone(),
                from: installed.map(|i| i.version.clone()),
                to: candidate,
                reason,
            },
        );
    }

    /// Whether the resulting system satisfies `relation` for a package of architecture `arch`.
    fn satisfied(&self, relation: &Relation, arch: &str) -> bool {
        let wanted = relation
            .arch
            .as_deref()
            .filter(|a| *a != "native")
            .unwrap_or(arch);
        let real = self.system.get(&relation.name).is_some_and(|members| {
            members.iter().any(|m| {
                arch_fits(
                    &m.facts.architecture,
                    m.facts.multi_arch.as_deref(),
                    wanted,
                    self.native,
                ) && relation.accepts(&m.facts.version)
            })
        });
        real || self.system.values().flatten().any(|m| {
            m.facts.provides.iter().any(|p| {
                p.name == relation.name
                    && match (&relation.constraint, &p.constraint) {
                        (None, _) => true,
                        (Some(_), Some((_, version))) => relation.accepts(version),
                        (Some(_), None) => false,
                    }
            })
        })
    }

    fn group_satisfied(&self, group: &Group, arch: &str) -> bool {
        group.iter().any(|r| self.satisfied(r, arch))
    }

    /// Adds dependencies and consistent upgrades until the system holds together.
    fn close(&mut self) -> Result<(), PlanError> {
        loop {
            let mut changed = false;
            let members: Vec<Member> = self.system.values().flatten().cloned().collect();
            for member in &members {
                let facts = &member.facts;
                for group in facts.pre_depends.iter().chain(&facts.depends) {
                    if self.group_satisfied(group, &facts.architecture)
                        || (!member.planned
                            && self
                                .broken_before
                                .contains(&(facts.name.clone(), group_text(group))))
                    {
                        continue;
                    }
                    if member.planned {
                        self.add_dependency(facts, group)?;
                    } else {
                        self.keep_working(facts, &group_text(group))?;
                    }
                    changed = true;
                    break;
                }
                if changed {
                    break;
                }
                if let Some(conflict) = self.conflict(member) {
                    self.resolve_conflict(conflict)?;
                    changed = true;
                    break;
                }
                if member.planned
                    && let Some(sibling) = self.unmatched_sibling(facts)
                {
                    self.match_sibling(&sibling, facts)?;
                    changed = true;
                    break;
                }
            }
            if !changed {
                return Ok(());
            }
        }
    }

    /// An installed `Multi-Arch: same` copy of a planned package for another
    /// architecture (`libssl3:i386` beside `libssl3:amd64`) that the plan
    /// leaves at another version: dpkg requires them to be equal.
    fn unmatched_sibling(&self, planned: &Facts) -> Option<Facts> {
        if planned.multi_arch.as_deref() != Some("same") {
            return None;
        }
        self.installed
            .iter()
            .find(|p| {
                p.name == planned.name
                    && p.architecture != planned.architecture
                    && p.architecture != "all"
                    && p.version != planned.version
                    && !self
                        .steps
                        .contains_key(&(p.name.clone(), p.architecture.clone()))
            })
            .cloned()
    }

    /// Upgrades `sibling` to the version of `planned`, or refuses the plan.
    fn match_sibling(&mut self, sibling: &Facts, planned: &Facts) -> Result<(), PlanError> {
        let offer = self.candidates.get(sibling.name.as_str()).and_then(|list| {
            list.iter()
                .find(|(c, f)| {
                    c.package.architecture == sibling.architecture && f.version == planned.version
                })
                .map(|(c, f)| ((*c).clone(), f.clone()))
        });
        let Some(offer) = offer else {
            return Err(PlanError::Unsatisfiable {
                package: format!("{}:{}", sibling.name, sibling.architecture),
                version: sibling.version.clone(),
                relation: format!(
                    "version {} to match {}:{} (Multi-Arch: same copies must be equal)",
                    planned.version, planned.name, planned.architecture
                ),
            });
        };
        self.add_step(
            Some(sibling),
            offer,
            Reason::KeepsWorking(format!("{}:{}", planned.name, planned.architecture)),
        );
        Ok(())
    }

    fn add_dependency(&mut self, dependent: &Facts, group: &Group) -> Result<(), PlanError> {
        for relation in group {
            let arch = relation
                .arch
                .as_deref()
                .filter(|a| !matches!(*a, "any" | "native"))
                .unwrap_or(&dependent.architecture)
                .to_string();
            let Some((candidate, facts)) = self.best(&relation.name, &arch) else {
                continue;
            };
            if !relation.accepts(&facts.version) {
                continue;
            }
            let offer = (candidate.clone(), facts.clone());
            let installed = self
                .installed
                .iter()
                .find(|p| {
                    p.name == relation.name
                        && arch_fits(&p.architecture, None, &offer.1.architecture, self.native)
                })
                .cloned();
            if let Some(installed) = &installed
                && self
                    .steps
                    .contains_key(&(installed.name.clone(), installed.architecture.clone()))
            {
                continue;
            }
            self.add_step(
                installed.as_ref(),
                offer,
                Reason::DependencyOf(dependent.name.clone()),
            );
            return Ok(());
        }
        Err(PlanError::Unsatisfiable {
            package: dependent.name.clone(),
            version: dependent.version.clone(),
            relation: group_text(group),
        })
    }

    /// Upgrades an installed package whose relations the plan broke, or refuses.
    fn keep_working(&mut self, installed: &Facts, relation: &str) -> Result<(), PlanError> {
        let because = self
            .steps
            .values()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        match self.best(&installed.name, &installed.architecture) {
            Some((candidate, facts)) if compare(&facts.version, &installed.version).is_gt() => {
                let offer = (candidate.clone(), facts.clone());
                let original = installed.clone();
                self.add(&original, offer, Reason::KeepsWorking(because));
                Ok(())
            }
            _ => Err(PlanError::NeedsRemoval {
                package: installed.name.clone(),
                version: installed.version.clone(),
                relation: relation.to_string(),
                because,
            }),
        }
    }

    /// A `Breaks`/`Conflicts` relation of `member` that another package of
    /// the system matches, when the plan is involved in it.
    fn conflict(&self, member: &Member) -> Option<Conflict> {
        let facts = &member.facts;
        for (kind, groups) in [("Breaks", &facts.breaks), ("Conflicts", &facts.conflicts)] {
            for relation in groups.iter().flatten() {
                let Some(others) = self.system.get(&relation.name) else {
                    continue;
                };
                for other in others {
                    if other.facts.name == facts.name
                        || !(member.planned || other.planned)
                        || !relation.accepts(&other.facts.version)
                    {
                        continue;
                    }
                    return Some(Conflict {
                        member: facts.clone(),
                        kind,
                        relation: relation.to_string(),
                        other: other.facts.clone(),
                        other_planned: other.planned,
                    });
                }
            }
        }
        None
    }

    fn resolve_conflict(&mut self, conflict: Conflict) -> Result<(), PlanError> {
        let refuse = || PlanError::Conflict {
            package: format!("{} {}", conflict.member.name, conflict.member.version),
            kind: conflict.kind,
            relation: conflict.relation.clone(),
            other: format!("{} {}", conflict.other.name, conflict.other.version),
        };
        if conflict.other_planned {
            return Err(refuse());
        }
        match self.best(&conflict.other.name, &conflict.other.architecture) {
            Some((candidate, facts))
                if compare(&facts.version, &conflict.other.version).is_gt() =>
            {
                let offer = (candidate.clone(), facts.clone());
                self.add(
                    &conflict.other,
                    offer,
                    Reason::KeepsWorking(conflict.member.name.clone()),
                );
                Ok(())
            }
            _ => Err(refuse()),
        }
    }
}

struct Conflict {
    member: Facts,
    kind: &'static str,
    relation: String,
    other: Facts,
    other_planned: bool,
}

fn group_text(group: &Group) -> String {
    group
        .iter()
        .map(Relation::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A plan step for other modules' tests: `name` to `version` from suite
/// `s`, upgrading from version 1 when `upgrade`, requested for `ids`.
#[cfg(test)]
pub(crate) fn test_step(
    name: &str,
    (architecture, version): (&str, &str),
    upgrade: bool,
    ids: &[&str],
) -> Step {
    Step {
        name: name.to_string(),
        architecture: architecture.to_string(),
        from: upgrade.then(|| "1".to_string()),
        to: Candidate {
            package: IndexPackage {
                name: name.to_string(),
                version: version.to_string(),
                architecture: architecture.to_string(),
                source_name: name.to_string(),
                source_version: version.to_string(),
                filename: format!("{name}.deb"),
                size: 1,
                sha256: "0".repeat(64),
                multi_arch: None,
                depends: None,
                pre_depends: None,
                provides: None,
                conflicts: None,
                breaks: None,
                replaces: None,
            },
            suite: "s".to_string(),
            base_url: "u".to_string(),
            offered_by: Vec::new(),
        },
        reason: Reason::Requested(ids.iter().map(|s| s.to_string()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str, version: &str, depends: &str) -> Facts {
        Facts::new(
            [name, "amd64", version, name, version],
            None,
            Fields {
                depends: Some(depends),
                ..Fields::default()
            },
        )
        .unwrap()
    }

    fn offer(suite: &str, name: &str, version: &str, fields: &[(&str, &str)]) -> Candidate {
        let field = |n: &str| {
            fields
                .iter()
                .find(|(f, _)| *f == n)
                .map(|(_, v)| v.to_string())
        };
        Candidate {
            package: IndexPackage {
                name: name.to_string(),
                version: version.to_string(),
                architecture: field("Architecture").unwrap_or("amd64".to_string()),
                source_name: field("Source").unwrap_or(name.to_string()),
                source_version: version.to_string(),
                filename: format!("pool/{name}_{version}.deb"),
                size: 1,
                sha256: "0".repeat(64),
                multi_arch: None,
                depends: field("Depends"),
                pre_depends: field("Pre-Depends"),
                provides: field("Provides"),
                conflicts: field("Conflicts"),
                breaks: field("Breaks"),
                replaces: None,
            },
            suite: suite.to_string(),
            base_url: "http://archive".to_string(),
            offered_by: Vec::new(),
        }
    }

    fn request(name: &str, fixed: &str) -> Wants {
        Wants::Packages(vec![Request {
            name: name.to_string(),
            fixed_source_version: Some(fixed.to_string()),
            vulnerabilities: vec!["CVE-2024-0001".to_string()],
        }])
    }

    fn summary(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| {
                format!(
                    "{} {}->{}",
                    s.name,
                    s.from.as_deref().unwrap_or("new"),
                    s.to_version()
                )
            })
            .collect()
    }

    #[test]
    fn multi_arch_same_copies_are_upgraded_together() {
        let same = |name: &str, arch: &str, version: &str| {
            Facts::new(
                [name, arch, version, name, version],
                Some("same"),
                Fields::default(),
            )
            .unwrap()
        };
        let installed = [
            same("libssl3", "amd64", "3.0.1-1"),
            same("libssl3", "i386", "3.0.1-1"),
        ];
        let offer_for = |arch: &str, version: &str| {
            let mut candidate = offer("bookworm-security", "libssl3", version, &[]);
            candidate.package.architecture = arch.to_string();
            candidate.package.multi_arch = Some("same".to_string());
            candidate
        };
        let available = [offer_for("amd64", "3.0.2-1"), offer_for("i386", "3.0.2-1")];
        let request = Wants::Packages(vec![Request {
            name: "libssl3:amd64".to_string(),
            fixed_source_version: Some("3.0.2-1".to_string()),
            vulnerabilities: vec![],
        }]);
        let plan = plan(&installed, &available, "amd64", &request, &BTreeSet::new()).unwrap();
        let arches: Vec<&str> = plan.steps.iter().map(|s| s.architecture.as_str()).collect();
        assert_eq!(arches, ["amd64", "i386"]);
        // Without the i386 copy in the suites, the plan is refused, never left skewed.
        let error = super::plan(
            &installed,
            &available[..1],
            "amd64",
            &request,
            &BTreeSet::new(),
        )
        .unwrap_err();
        assert!(matches!(error, PlanError::Unsatisfiable { .. }), "{error}");
    }

    #[test]
    fn held_packages_are_kept_back_as_apt_keeps_them() {
        let installed = [
            facts("libssl3", "3.0.1-1", "libc6 (>= 2.36-9)"),
            facts("libc6", "2.36-9", ""),
        ];
        let available = [
            offer(
                "bookworm-security",
                "libssl3",
                "3.0.2-1",
                &[("Depends", "libc6 (>= 2.36-10)")],
            ),
            offer("bookworm-security", "libc6", "2.36-10", &[]),
        ];
        let held: BTreeSet<String> = ["libc6".to_string()].into();
        // Everything: the held package is skipped, and what needs it upgraded is refused.
        let error = plan(&installed, &available, "amd64", &Wants::All, &held).unwrap_err();
        assert_eq!(
            error,
            PlanError::Held {
                package: "libc6".into()
            }
        );
        // Asked for by name: skipped with the reason.
        let plan = plan(
            &installed,
            &available,
            "amd64",
            &request("libc6", "2.36-10"),
            &held,
        )
        .unwrap();
        assert!(plan.steps.is_empty());
        assert!(
            plan.skipped[0].reason.contains("held"),
            "{:?}",
            plan.skipped
        );
        // Not held: both upgraded.
        let plan = super::plan(
            &installed,
            &available,
            "amd64",
            &Wants::All,
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(
            summary(&plan),
            ["libc6 2.36-9->2.36-10", "libssl3 3.0.1-1->3.0.2-1"]
        );
    }

    #[test]
    fn takes_the_newest_candidate_and_adds_missing_dependencies() {
        let installed = [
            facts("libssl3", "3.0.1-1", "libc6 (>= 2.34)"),
            facts("libc6", "2.36-9", ""),
        ];
        let available = [
            offer("bookworm", "libssl3", "3.0.1-1", &[]),
            offer(
                "bookworm-security",
                "libssl3",
                "3.0.2-1",
                &[("Depends", "libc6 (>= 2.36-9), libzstd1 (>= 1.5)")],
            ),
            offer("bookworm-security", "libssl3", "3.0.1-2", &[]),
            offer("bookworm", "libzstd1", "1.5.4-2", &[]),
        ];
        let plan = plan(
            &installed,
            &available,
            "amd64",
            &request("libssl3", "3.0.1-2"),
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(
            summary(&plan),
            ["libssl3 3.0.1-1->3.0.2-1", "libzstd1 new->1.5.4-2"]
        );
        assert_eq!(
            plan.steps[1].reason,
            Reason::DependencyOf("libssl3".to_string())
        );
        assert_eq!(plan.vulnerabilities(), ["CVE-2024-0001"]);
    }

    #[test]
    fn upgrades_siblings_pinned_with_equals() {
        let installed = [
            facts("libc6", "2.36-9", ""),
            facts("libc-bin", "2.36-9", "libc6 (= 2.36-9)"),
        ];
        let available = [
            offer("s", "libc6", "2.36-9+deb12u4", &[]),
            offer(
                "s",
                "libc-bin",
                "2.36-9+deb12u4",
                &[("Depends", "libc6 (= 2.36-9+deb12u4)")],
            ),
        ];
        let plan = plan(
            &installed,
            &available,
            "amd64",
            &request("libc6", "2.36-9+deb12u4"),
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(
            summary(&plan),
            [
                "libc-bin 2.36-9->2.36-9+deb12u4",
                "libc6 2.36-9->2.36-9+deb12u4"
            ]
        );
        assert!(matches!(plan.steps[0].reason, Reason::KeepsWorking(_)));
    }

    #[test]
    fn refuses_plans_that_need_removals() {
        let installed = [
            facts("libc6", "2.36-9", ""),
            facts("old-tool", "1.0", "libc6 (<< 2.36-10)"),
        ];
        let available = [offer("s", "libc6", "2.37-1", &[])];
        let error = plan(
            &installed,
            &available,
            "amd64",
            &request("libc6", "2.37-1"),
            &BTreeSet::new(),
        )
        .unwrap_err();
        assert!(
            matches!(error, PlanError::NeedsRemoval { ref package, .. } if package == "old-tool"),
            "{error}"
        );
        assert!(error.to_string().contains("never does"));

        let installed = [facts("a", "1", "")];
        let available = [offer("s", "a", "2", &[("Depends", "ghost (>= 1)")])];
        let error = plan(
            &installed,
            &available,
            "amd64",
            &request("a", "2"),
            &BTreeSet::new(),
        )
        .unwrap_err();
        assert!(matches!(error, PlanError::Unsatisfiable { .. }), "{error}");

        let installed = [facts("a", "1", ""), facts("b", "1", "")];
        let available = [offer("s", "a", "2", &[("Breaks", "b (<< 5)")])];
        let error = plan(
            &installed,
            &available,
            "amd64",
            &request("a", "2"),
            &BTreeSet::new(),
        )
        .unwrap_err();
        assert!(
            matches!(error, PlanError::Conflict { ref other, .. } if other == "b 1"),
            "{error}"
        );
    }

    #[test]
    fn resolves_breaks_by_upgrading_and_uses_provides() {
        let installed = [
            facts("a", "1", ""),
            facts("b", "1", ""),
            facts("mta", "1", ""),
        ];
        let available = [
            offer(
                "s",
                "a",
                "2",
                &[("Breaks", "b (<< 2)"), ("Depends", "mail-transport-agent")],
            ),
            offer("s", "b", "2", &[]),
            offer("s", "mta", "1", &[("Provides", "mail-transport-agent")]),
        ];
        let installed_with_provides = {
            let mut list = installed.to_vec();
            list[2].provides = relation::parse("mail-transport-agent").unwrap().remove(0);
            list
        };
        let plan = plan(
            &installed_with_provides,
            &available,
            "amd64",
            &request("a", "2"),
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(summary(&plan), ["a 1->2", "b 1->2"]);
    }

    #[test]
    fn reports_requests_it_cannot_or_need_not_fix() {
        let installed = [facts("a", "2", ""), facts("b", "1", "")];
        let available = [offer("s", "b", "1.5", &[])];
        let wants = Wants::Packages(vec![
            Request {
                name: "a".into(),
                fixed_source_version: Some("2".into()),
                vulnerabilities: vec![],
            },
            Request {
                name: "b".into(),
                fixed_source_version: Some("3".into()),
                vulnerabilities: vec![],
            },
            Request {
                name: "c".into(),
                fixed_source_version: None,
                vulnerabilities: vec![],
            },
        ]);
        let plan = plan(&installed, &available, "amd64", &wants, &BTreeSet::new()).unwrap();
        assert!(plan.is_empty());
        let reasons: Vec<&str> = plan.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert!(reasons[0].contains("already has the fix"), "{reasons:?}");
        assert!(reasons[1].contains("needs source version 3"), "{reasons:?}");
        assert!(reasons[2].contains("not installed"), "{reasons:?}");
    }

    #[test]
    fn accepts_multi_arch_qualified_names() {
        let installed = [facts("libssl3", "3.0.1-1", "")];
        let available = [offer("s", "libssl3", "3.0.2-1", &[])];
        let plan = plan(
            &installed,
            &available,
            "amd64",
            &request("libssl3:amd64", "3.0.2-1"),
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(summary(&plan), ["libssl3 3.0.1-1->3.0.2-1"]);
        let plan = super::plan(
            &installed,
            &available,
            "amd64",
            &request("libssl3:arm64", "3.0.2-1"),
            &BTreeSet::new(),
        )
        .unwrap();
        assert!(plan.is_empty());
    }

    #[test]
    fn update_all_takes_every_newer_candidate() {
        let installed = [facts("a", "1", ""), facts("b", "1", "")];
        let available = [offer("s", "a", "1", &[]), offer("s", "b", "1.1", &[])];
        let plan = plan(
            &installed,
            &available,
            "amd64",
            &Wants::All,
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(summary(&plan), ["b 1->1.1"]);
    }
}
