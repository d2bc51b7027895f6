//! Version ordering checked against the package managers themselves:
//! `dpkg --compare-versions` on real version pairs from Debian's Packages
//! indexes, `rpm.vercmp` (Debian's `rpm` package) on tricky and real pairs,
//! and apk-tools' own test vectors. Needs network access to deb.debian.org
//! and the `rpm` package (scripts/install-test-deps.sh).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

use pkgdb::version::{apk, dpkg, rpm};
use testkit::{Lcg, index_entries, packages_index, run};

/// Real version pairs: every package whose version differs between bookworm
/// and bookworm-security / -updates, plus random pairs across the archive.
fn real_pairs() -> Vec<(String, String)> {
    let main =
        packages_index("http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages.xz");
    let security = packages_index(
        "http://deb.debian.org/debian-security/dists/bookworm-security/main/binary-amd64/Packages.xz",
    );
    let updates = packages_index(
        "http://deb.debian.org/debian/dists/bookworm-updates/main/binary-amd64/Packages.xz",
    );
    let released: BTreeMap<String, String> = index_entries(&main)
        .into_iter()
        .map(|[name, version, ..]| (name, version))
        .collect();
    let mut pairs = Vec::new();
    for [name, version, ..] in index_entries(&security)
        .into_iter()
        .chain(index_entries(&updates))
    {
        if let Some(old) = released.get(&name) {
            pairs.push((old.clone(), version.clone()));
            pairs.push((version, old.clone()));
        }
    }
    let versions: Vec<&String> = released.values().collect();
    let mut random = Lcg(12);
    for _ in 0..2500 {
        let a = versions[random.below(versions.len())];
        let b = versions[random.below(versions.len())];
        pairs.push((a.clone(), b.clone()));
    }
    // Neighbours in sorted order differ in small ways: the hard cases.
    let mut sorted: Vec<&String> = versions.clone();
    sorted.sort();
    sorted.dedup();
    for window in sorted.windows(2).step_by(7).take(1500) {
        pairs.push((window[0].clone(), window[1].clone()));
    }
    pairs
}

/// Valid versions where an empty digit run meets a run of zeros, which dpkg
/// treats as equal numbers: the `debversion` crate orders them otherwise
/// (see the module doc of `pkgdb::version::dpkg`).
const EMPTY_DIGIT_RUNS: &[(&str, &str)] = &[
    ("1.0~", "1.0~0"),
    ("1a", "1a0"),
    ("1.0-1+", "1.0-1+0"),
    ("1.", "1.0~"),
    ("1.0+", "1.0+0~"),
];

fn symbol(ordering: Ordering) -> &'static str {
    match ordering {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

#[test]
fn dpkg_order_matches_dpkg_compare_versions() {
    let mut pairs = real_pairs();
    assert!(pairs.len() > 3000, "only {} pairs", pairs.len());
    for (a, b) in EMPTY_DIGIT_RUNS {
        pairs.push((a.to_string(), b.to_string()));
        pairs.push((b.to_string(), a.to_string()));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pairs");
    let mut file = std::fs::File::create(&input).unwrap();
    for (a, b) in &pairs {
        writeln!(file, "{a} {b}").unwrap();
    }
    drop(file);
    let script = r#"while read -r a b; do
        if dpkg --compare-versions "$a" lt "$b"; then echo "<";
        elif dpkg --compare-versions "$a" eq "$b"; then echo "=";
        else echo ">"; fi
    done < "$1""#;
    let oracle = run(Command::new("sh").args(["-c", script, "sh"]).arg(&input));
    let expected: Vec<&str> = oracle.lines().collect();
    assert_eq!(expected.len(), pairs.len());
    let mismatches: Vec<_> = pairs
        .iter()
        .zip(&expected)
        .filter(|((a, b), want)| symbol(dpkg::compare(a, b)) != **want)
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} differ from dpkg: {:?}",
        mismatches.len(),
        pairs.len(),
        &mismatches[..mismatches.len().min(10)]
    );
    for (a, _) in &pairs {
        dpkg::Version::parse(a)
            .unwrap_or_else(|e| panic!("a real archive version is refused: {e}"));
    }
}

#[test]
fn rpm_order_matches_rpm_vercmp() {
    let pieces = [
        "1.0",
        "1.0~rc1",
        "1.0~rc2",
        "1.0^git1",
        "1.0^",
        "1.0~",
        "1.0a",
        "1.0.1",
        "1.00",
        "01.0",
        "1.01",
        "1_0",
        "1..0",
        "a",
        "1.a",
        "1.0a1",
        "1.0.a",
        "2",
        "10",
        "1:1.0",
        "0:1.0",
        "2:0.1",
        "1.0-1",
        "1.0-1.el9",
        "1.0-1.el9_4",
        "1.0-2.fc40",
        "1.0-1~bp1",
        "1.0-1^x",
        "1.0-0.1.rc1",
        "1.0+git",
        "3.0.7-24.el9",
        "3.0.7-27.el9",
        "1.2.3-r0",
        "abc",
        "ABC",
        "1.0.0.0",
        "20240101",
        "1.0.0~beta^1",
    ];
    let mut pairs: Vec<(String, String)> = Vec::new();
    for a in pieces {
        for b in pieces {
            pairs.push((a.to_string(), b.to_string()));
        }
    }
    pairs.extend(real_pairs().into_iter().step_by(3));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pairs");
    let mut file = std::fs::File::create(&input).unwrap();
    for (a, b) in &pairs {
        writeln!(file, "{a} {b}").unwrap();
    }
    drop(file);
    let lua = format!(
        "%{{lua: for line in io.lines('{}') do local a, b = line:match('^(%S+) (%S+)$'); print(rpm.vercmp(a, b) .. ' ') end}}",
        input.display()
    );
    let oracle = run(Command::new("rpm").arg("--eval").arg(lua));
    // rpm's lua `print` adds no newline: results are space-separated.
    let expected: Vec<&str> = oracle.split_whitespace().collect();
    assert_eq!(expected.len(), pairs.len());
    let mismatches: Vec<_> = pairs
        .iter()
        .zip(&expected)
        .filter(|((a, b), want)| {
            let ours = match rpm::compare(a, b) {
                Ordering::Less => "-1",
                Ordering::Equal => "0",
                Ordering::Greater => "1",
            };
            ours != **want
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} differ from rpm: {:?}",
        mismatches.len(),
        pairs.len(),
        &mismatches[..mismatches.len().min(10)]
    );
}

/// A selection of apk-tools' own test vectors (`test/version.data` in
/// alpinelinux/apk-tools), which `apk version -t` must satisfy. Debian has
/// no apk-tools package to run as an oracle.
#[test]
fn apk_order_matches_apk_tools_test_vectors() {
    let vectors = "2.34 > 0.1.0_alpha\n0.1.0_alpha < 0.1.3_alpha\n0.1.0_alpha2 > 0.1.0_alpha\n\
        0.1.0_alpha < 2.2.39-r1\n1.0.4-r3 < 1.0.4-r4\n1.1 > 1.1_alpha1\n1.2 < 1.3_alpha\n\
        1.3_alpha2 < 1.3_alpha3\n0.8_beta1 < 0.8_beta2\n3.10.18-r1 > 2.3.0b-r1\n2.3.0b-r1 < 2.3.0b-r2\n\
        0.12.3 > 0.12\n0.12 < 0.13_beta1\n1.2.11 < 1.2.12.1\n3.1_p16 < 3.1_p17\n1.06-r6 < 006\n\
        006 > 1.0.0\n1.2.2-r1 > 1.2.2\n2.01.01_alpha10 > 0.94\n0.99.3.20040818 > 0.7\n\
        1.00_beta2 > 0.9.2\n4.2.52_p2-r1 < 4.2.52_p4-r2\n20050718-r1 < 20050718-r2\n\
        3.0.20060720 < 20060720\n2.5.1-r8 < 2.5.1a-r1\n1.3.5-r10 > 1.3.5-r8\n20040401 > 2.0.0_rc3-r1\n\
        3.0.0-r2 < 021109-r3\n3.9_pre20060124 > 0.01\n1.1.7 < 6b-r7\n0.10.0 < 0.10.1_rc1\n\
        1.1a < 1.3a\n0.15.1b-r2 > 0.15.1b\n22.7-r1 < 22.7.3-r1\n2.1_pre20 < 2.1_pre26\n\
        02.08.01b < 4.77\n1.6d > 1.2.07.8\n1.07-r1 < 1.07.5\n0.1_pre20060810 < 0.1_pre20060817\n\
        0.59s-r11 < 0.65\n0.20070118 < 0.20070207_rc1\n4.5_p1-r1 > 4.5_p1\n0.9.8c-r1 < 0.9.8d\n\
        1.7 < 1.7b\n1.8.5 < 1.8.5_p2\n2.9.11_pre20051101-r3 > 2.9.11_pre20051101\n\
        1.6.8_p12-r1 > 1.6.8_p9-r2\n0.9.28-r2 < 0.9.28.1\n1.2.5_rc2 > 0.1\n2.12r-r4 < 2.12r-r5\n\
        7.0.17 < 7.0.174\n0.3.4_pre20061029 < 0.4.0\n1.3-r0 < 1.3.1-r0\n1.3_pre1-r1 < 1.3.2\n\
        1.0_p10-r0 > 1.0_p9-r0\n1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0\n";
    for line in vectors.lines() {
        let [a, op, b] = line.split_whitespace().collect::<Vec<_>>()[..] else {
            panic!("bad vector {line:?}");
        };
        assert_eq!(symbol(apk::compare(a, b)), op, "{line}");
        apk::Version::parse(a).unwrap();
        apk::Version::parse(b).unwrap();
    }
}
