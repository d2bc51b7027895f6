//! The patched image's files against apt's, path by path.
//!
//! For each real image: `drydock patch --update-all`, in native mode and in
//! sandbox mode (`--run-maintainer-scripts`), then the image's own apt, in a
//! chroot of the original, installs exactly the versions drydock chose
//! (maintainer scripts and triggers run). The root filesystems must agree on
//! every path (type, mode, owner, content, link target,
//! `security.capability`) except what apt changes by running at all; native
//! mode may also leave out precompiled bytecode that apt made, sandbox mode
//! nothing. `dpkg -V` must report nothing more on either patch than on
//! apt's result. Needs root, network access to the archives and
//! scripts/install-test-deps.sh's tools (bubblewrap).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use patch_support::{drydock, patch_update_all, succeed};
use testkit::fidelity::{Difference, Tree, apt_install, differences};

mod patch_support;

const DEBIAN_POCKETS: &str = "deb http://deb.debian.org/debian bookworm-updates main\n\
deb http://deb.debian.org/debian-security bookworm-security main\n";

fn ubuntu_pockets(codename: &str) -> String {
    format!(
        "deb http://archive.ubuntu.com/ubuntu {codename}-updates main\n\
         deb http://security.ubuntu.com/ubuntu {codename}-security main\n"
    )
}

/// The root filesystem of `layout:tag`, unpacked by umoci. umoci 0.4 reads
/// gzip layers only, so skopeo first copies the image with zstd layers
/// recompressed (diff IDs, and so contents, unchanged).
fn unpack(layout: &Path, tag: &str, into: &Path) -> PathBuf {
    let gzip = into.join(format!("gzip-{tag}"));
    testkit::run(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-compress-format=gzip"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("oci:{}:{tag}", gzip.display())),
    );
    let bundle = into.join(format!("bundle-{tag}"));
    testkit::umoci_unpack(&gzip, tag, &bundle);
    bundle.join("rootfs")
}

/// (name, architecture) → version of the installed packages.
fn installed(root: &Path) -> BTreeMap<(String, String), String> {
    let admin = tempfile::tempdir().unwrap();
    std::fs::write(
        admin.path().join("status"),
        testkit::oracle::dpkg_status(root),
    )
    .unwrap();
    testkit::run(
        Command::new("dpkg-query")
            .arg(format!("--admindir={}", admin.path().display()))
            .args(["-W", "-f", "${Package} ${Architecture} ${Version}\n"]),
    )
    .lines()
    .filter_map(|l| {
        let mut words = l.split(' ');
        Some((
            (words.next()?.to_string(), words.next()?.to_string()),
            words.next()?.to_string(),
        ))
    })
    .collect()
}

/// `dpkg -V` lines of every package, without the ones naming paths apt's run changes.
fn verify_lines(root: &Path) -> Vec<String> {
    let mut lines: Vec<String> = testkit::oracle::dpkg_verify(root, &[])
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// What [`compare_with_apt`] found.
struct Comparison {
    /// Paths where native mode differs (besides bytecode apt compiled).
    found: Vec<Difference>,
    /// Paths where sandbox mode differs.
    sandbox_found: Vec<Difference>,
    apt_root: PathBuf,
    /// (name, architecture) → version before and after the patch.
    before: BTreeMap<(String, String), String>,
    after: BTreeMap<(String, String), String>,
}

/// Patches `tag` of a copy of `fixture`, has apt install the same versions
/// in a copy of the original, and compares the two roots.
fn compare_with_apt(fixture: &Path, tag: &str, pockets: &str, work: &Path) -> Comparison {
    let layout = work.join("layout");
    testkit::run(Command::new("cp").arg("-a").arg(fixture).arg(&layout));
    let data = work.join("data");
    let image = format!("oci:{}:{tag}", layout.display());
    succeed(patch_update_all(&data, &image, "patched", false));
    succeed(patch_update_all(&data, &image, "sandboxed", true));
    let original = unpack(&layout, tag, work);
    let patched = unpack(&layout, "patched", work);
    let sandboxed = unpack(&layout, "sandboxed", work);
    let before = installed(&original);
    let after = installed(&patched);
    let upgrades: Vec<(String, String)> = after
        .iter()
        .filter(|(key, version)| before.get(*key).is_some_and(|old| old != *version))
        .map(|((name, arch), version)| (format!("{name}:{arch}"), version.clone()))
        .collect();
    assert!(!upgrades.is_empty(), "the fixture should lack some updates");

    // apt's result: the original with the same upgrades (new dependencies pulled by apt).
    let bundle = work.join("bundle-apt");
    testkit::run(
        Command::new("cp")
            .arg("-a")
            .arg(original.parent().unwrap())
            .arg(&bundle),
    );
    let apt_root = bundle.join("rootfs");
    let log = apt_install(&apt_root, pockets, &upgrades);
    assert_eq!(
        installed(&apt_root),
        after,
        "apt installed other versions than the patch:\n{log}"
    );

    let apt_tree = Tree::read(&apt_root);
    let patched_tree = Tree::read(&patched);
    let found = differences(&apt_tree, &patched_tree);
    // Bytecode apt compiled that the patch leaves out (never stale bytecode).
    let found: Vec<Difference> = found
        .into_iter()
        .filter(|d| !(d.path.contains("/__pycache__/") && d.patched.is_none()))
        .collect();

    assert_eq!(
        installed(&sandboxed),
        after,
        "the two modes installed other versions"
    );
    let sandbox_found = differences(&apt_tree, &Tree::read(&sandboxed));

    let apt_verify = verify_lines(&apt_root);
    for (mode, root) in [("native", &patched), ("sandbox", &sandboxed)] {
        let extra: Vec<String> = verify_lines(root)
            .into_iter()
            .filter(|l| !apt_verify.contains(l))
            .collect();
        assert!(
            extra.is_empty(),
            "dpkg -V reports more on the {mode} patch than on apt's result:\n{extra:#?}"
        );
    }
    Comparison {
        found,
        sandbox_found,
        apt_root,
        before,
        after,
    }
}

fn mode_and_group(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.mode() & 0o7777, meta.gid())
}

fn version(table: &BTreeMap<(String, String), String>, name: &str) -> String {
    table
        .iter()
        .find(|((n, _), _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{name} is not installed"))
}

/// With `FIDELITY_KEEP` set, leaves the work directory (both roots) for inspection.
fn keep_when_asked(work: tempfile::TempDir) {
    if std::env::var_os("FIDELITY_KEEP").is_some() {
        eprintln!("kept {}", work.keep().display());
    }
}

/// Fails listing every difference of either mode; the whole lists are also
/// written to `target/tmp/fidelity-NAME.txt` and `fidelity-NAME-sandbox.txt`.
fn assert_no_differences(name: &str, comparison: &Comparison) {
    let mut failures = Vec::new();
    for (report, found) in [
        (name.to_string(), &comparison.found),
        (format!("{name}-sandbox"), &comparison.sandbox_found),
    ] {
        let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fidelity-{report}.txt"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        if !found.is_empty() {
            failures.push(format!(
                "{report}: {} paths differ from apt's result (all in {}):\n{}",
                found.len(),
                path.display(),
                lines[..lines.len().min(60)].join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn debian_image_with_applications_equals_apt_path_by_path() {
    let work = tempfile::tempdir().unwrap();
    let comparison = compare_with_apt(
        &testkit::debian_apps_layout(),
        testkit::DEBIAN_APPS_TAG,
        DEBIAN_POCKETS,
        work.path(),
    );
    keep_when_asked(work);
    // The fixture exercises the trust store: ca-certificates is upgraded.
    assert_ne!(
        version(&comparison.before, "ca-certificates"),
        version(&comparison.after, "ca-certificates")
    );
    assert_no_differences("debian-apps", &comparison);
}

/// Slim images' path filters, a stat override, a directory the admin gave
/// its own mode, an edited conffile, a held package, a packaged directory
/// replaced by a symlink, in layers of their own.
#[test]
fn image_with_filters_overrides_and_holds_equals_apt_path_by_path() {
    let work = tempfile::tempdir().unwrap();
    let comparison = compare_with_apt(
        &testkit::debian_real_layout(),
        testkit::DEBIAN_REAL_TAG,
        DEBIAN_POCKETS,
        work.path(),
    );
    let apt = &comparison.apt_root;
    // What the fixture claims to exercise, seen in apt's own result.
    assert_eq!(
        version(&comparison.before, "tzdata"),
        version(&comparison.after, "tzdata"),
        "tzdata is held"
    );
    assert_ne!(
        version(&comparison.before, "openssl"),
        version(&comparison.after, "openssl")
    );
    assert_eq!(mode_and_group(&apt.join("usr/bin/openssl")), (0o750, 4));
    assert_eq!(mode_and_group(&apt.join("etc/ssl/private")), (0o710, 4));
    let doc_files: Vec<String> = std::fs::read_dir(apt.join("usr/share/doc/openssl"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        doc_files,
        ["copyright"],
        "the path filters left documentation out"
    );
    assert!(apt.join("usr/share/perl").is_symlink());
    keep_when_asked(work);
    assert_no_differences("debian-real", &comparison);
}

/// A base, a layer where `apt-get remove` deleted a package, a layer adding
/// an application and its user; zstd layers.
#[test]
fn layered_zstd_image_equals_apt_path_by_path() {
    let work = tempfile::tempdir().unwrap();
    let comparison = compare_with_apt(
        &testkit::debian_layered_layout(),
        testkit::DEBIAN_LAYERED_TAG,
        DEBIAN_POCKETS,
        work.path(),
    );
    assert!(
        !comparison.after.keys().any(|(name, _)| name == "curl"),
        "curl was removed in a layer and stays removed"
    );
    assert!(comparison.apt_root.join("opt/app/run").exists());

    // The same image as a `docker save` archive gets the very same patch
    // layer (from the gzip copy `unpack` made: docker archives take no zstd).
    let archive = work.path().join("layered.tar");
    let tag = testkit::DEBIAN_LAYERED_TAG;
    testkit::run(
        Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!(
                "oci:{}:{tag}",
                work.path().join(format!("gzip-{tag}")).display()
            ))
            .arg(format!("docker-archive:{}:app:1", archive.display())),
    );
    let data = work.path().join("data");
    let refused = drydock(
        &data,
        &[
            "patch",
            &format!("docker-archive:{}", archive.display()),
            "--update-all",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--output"));
    let out = work.path().join("from-archive");
    succeed(drydock(
        &data,
        &[
            "patch",
            &format!("docker-archive:{}", archive.display()),
            "--update-all",
            "--output",
            &format!("oci:{}:patched", out.display()),
        ],
    ));
    assert_eq!(
        diff_ids(&out, "patched"),
        diff_ids(&work.path().join("layout"), "patched"),
        "the archive's patch differs from the layout's"
    );
    keep_when_asked(work);
    assert_no_differences("debian-layered", &comparison);
}

/// Debian 12 minbase for arm64 on this amd64 host: native mode runs
/// nothing, so it needs nothing; sandbox mode and apt's oracle run the
/// image's programs through qemu-user's emulator (registered by
/// scripts/install-test-deps.sh).
#[test]
fn arm64_debian_minbase_equals_apt_path_by_path() {
    assert!(
        testkit::runs_arm64(),
        "this host cannot run arm64 programs; scripts/install-test-deps.sh registers \
         qemu-user-static's emulator with binfmt_misc"
    );
    let work = tempfile::tempdir().unwrap();
    let comparison = compare_with_apt(
        &testkit::debian_arm64_layout(),
        testkit::DEBIAN_ARM64_TAG,
        DEBIAN_POCKETS,
        work.path(),
    );
    keep_when_asked(work);
    assert_no_differences("debian-arm64", &comparison);
}

/// An image without apt: sandbox mode has the image's dpkg alone install
/// the packages, pre-dependencies configured first. With no apt there is no
/// oracle; the result must hold the same versions as native mode's, leave
/// dpkg nothing to audit, and equal native mode's path by path but for
/// the bytecode only the scripts compile.
#[test]
fn image_without_apt_is_patched_by_its_own_dpkg() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    testkit::run(
        Command::new("cp")
            .arg("-a")
            .arg(testkit::debian_no_apt_layout())
            .arg(&layout),
    );
    let tag = testkit::DEBIAN_NO_APT_TAG;
    let image = format!("oci:{}:{tag}", layout.display());
    let data = work.path().join("data");
    succeed(patch_update_all(&data, &image, "patched", false));
    succeed(patch_update_all(&data, &image, "sandboxed", true));
    let original = unpack(&layout, tag, work.path());
    assert!(
        !original.join("usr/bin/apt-get").exists(),
        "the fixture has no apt"
    );
    let native = unpack(&layout, "patched", work.path());
    let sandboxed = unpack(&layout, "sandboxed", work.path());
    let after = installed(&native);
    assert_ne!(
        installed(&original),
        after,
        "the fixture should lack some updates"
    );
    assert_eq!(installed(&sandboxed), after);
    assert_eq!(testkit::oracle::dpkg_audit(&sandboxed), "");
    let found: Vec<Difference> = differences(&Tree::read(&native), &Tree::read(&sandboxed))
        .into_iter()
        .filter(|d| !(d.path.contains("/__pycache__/") && d.apt.is_none()))
        .collect();
    keep_when_asked(work);
    assert!(
        found.is_empty(),
        "sandbox mode without apt differs from native mode:\n{}",
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The diff IDs of `layout:tag`'s config.
fn diff_ids(layout: &Path, tag: &str) -> Vec<String> {
    let blob = |digest: &str| {
        std::fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag}"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(manifest["digest"].as_str().unwrap())).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn ubuntu_24_04_minbase_equals_apt_path_by_path() {
    let work = tempfile::tempdir().unwrap();
    let comparison = compare_with_apt(
        &testkit::ubuntu_layout(),
        testkit::UBUNTU_TAG,
        &ubuntu_pockets("noble"),
        work.path(),
    );
    keep_when_asked(work);
    assert_no_differences("ubuntu-noble", &comparison);
}

#[test]
fn ubuntu_22_04_minbase_equals_apt_path_by_path() {
    let work = tempfile::tempdir().unwrap();
    let comparison = compare_with_apt(
        &testkit::ubuntu_jammy_layout(),
        testkit::UBUNTU_JAMMY_TAG,
        &ubuntu_pockets("jammy"),
        work.path(),
    );
    keep_when_asked(work);
    assert_no_differences("ubuntu-jammy", &comparison);
}

/// Ubuntu 24.04 with tools whose maintainer scripts set a group and the
/// setgid bit (`ssh-agent`) or a file capability (`ping`).
#[test]
fn ubuntu_image_with_applications_equals_apt_path_by_path() {
    let work = tempfile::tempdir().unwrap();
    let comparison = compare_with_apt(
        &testkit::ubuntu_apps_layout(),
        testkit::UBUNTU_APPS_TAG,
        &ubuntu_pockets("noble"),
        work.path(),
    );
    // What the fixture claims to exercise, seen in apt's own result.
    let apt = &comparison.apt_root;
    assert_eq!(mode_and_group(&apt.join("usr/bin/ssh-agent")).0, 0o2755);
    assert_eq!(mode_and_group(&apt.join("etc/sudoers")).0, 0o440);
    keep_when_asked(work);
    assert_no_differences("ubuntu-apps", &comparison);
}

/// A vendor's APT repository on a local HTTP server: suite
/// `bookworm-vendor`, signed with a key of its own (made by gpg), offering
/// [`VENDOR_PACKAGE`] 1.0 and 1.1 (built by dpkg-deb).
struct VendorRepository {
    server: testkit::FileServer,
    /// The vendor's public key, armored; and another key, which did not sign.
    key: PathBuf,
    other_key: PathBuf,
    /// Version 1.0 of the package, to install in the image.
    old_deb: PathBuf,
}

const VENDOR_PACKAGE: &str = "drydock-vendor-tool";

impl VendorRepository {
    fn start(dir: &Path) -> VendorRepository {
        let gnupg = dir.join("gnupg");
        std::fs::create_dir_all(&gnupg).unwrap();
        std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let gpg = |args: &[&str]| {
            testkit::run(
                Command::new("gpg")
                    .env("GNUPGHOME", &gnupg)
                    .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
                    .args(args),
            )
        };
        let export = |user: &str, to: PathBuf| {
            gpg(&["--quick-gen-key", user, "rsa3072", "sign", "never"]);
            std::fs::write(&to, gpg(&["--armor", "--export", user])).unwrap();
            to
        };
        let key = export(
            "drydock test vendor <vendor@example.org>",
            dir.join("vendor.asc"),
        );
        let other_key = export("someone else <other@example.org>", dir.join("other.asc"));

        let repo = dir.join("repo");
        let pool = repo.join("pool");
        std::fs::create_dir_all(&pool).unwrap();
        for version in ["1.0", "1.1"] {
            let root = dir.join(format!("pkg-{version}"));
            std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
            std::fs::create_dir_all(root.join("usr/share").join(VENDOR_PACKAGE)).unwrap();
            std::fs::write(
                root.join("DEBIAN/control"),
                format!(
                    "Package: {VENDOR_PACKAGE}\nVersion: {version}\nArchitecture: all\n\
                     Maintainer: drydock tests <tests@example.org>\nDescription: a vendor's tool\n"
                ),
            )
            .unwrap();
            std::fs::write(
                root.join("usr/share").join(VENDOR_PACKAGE).join("VERSION"),
                version,
            )
            .unwrap();
            testkit::run(
                Command::new("dpkg-deb")
                    .args(["--root-owner-group", "--build"])
                    .arg(&root)
                    .arg(pool.join(format!("{VENDOR_PACKAGE}_{version}_all.deb"))),
            );
        }
        let index_dir = repo.join("dists/bookworm-vendor/main/binary-amd64");
        std::fs::create_dir_all(&index_dir).unwrap();
        let packages = testkit::run(
            Command::new("dpkg-scanpackages")
                .args(["--multiversion", "pool", "/dev/null"])
                .current_dir(&repo),
        );
        std::fs::write(index_dir.join("Packages"), &packages).unwrap();
        let digest = testkit::run(Command::new("sha256sum").arg(index_dir.join("Packages")));
        let date = testkit::run(Command::new("date").args(["-u", "-R"]));
        let release = format!(
            "Origin: drydock-vendor\nLabel: drydock vendor\nSuite: bookworm-vendor\n\
             Codename: bookworm-vendor\nDate: {}\nArchitectures: amd64\nComponents: main\n\
             SHA256:\n {} {} main/binary-amd64/Packages\n",
            date.trim(),
            digest.split_whitespace().next().unwrap(),
            packages.len()
        );
        let dists = repo.join("dists/bookworm-vendor");
        std::fs::write(dists.join("Release"), release).unwrap();
        gpg(&[
            "--digest-algo",
            "SHA512",
            "--local-user",
            "vendor@example.org",
            "--clearsign",
            "--output",
            dists.join("InRelease").to_str().unwrap(),
            dists.join("Release").to_str().unwrap(),
        ]);

        let server = testkit::FileServer::start(&repo);
        VendorRepository {
            server,
            key,
            other_key,
            old_deb: pool.join(format!("{VENDOR_PACKAGE}_1.0_all.deb")),
        }
    }
}

/// Adds a layer to `layout`'s `base` tag with `root` changed by `change`,
/// tagged `tag` (umoci unpack and repack).
fn derive(layout: &Path, base: &str, tag: &str, work: &Path, change: impl FnOnce(&Path)) {
    let bundle = work.join(format!("derive-{tag}"));
    testkit::umoci_unpack(layout, base, &bundle);
    change(&bundle.join("rootfs"));
    testkit::run(
        Command::new("umoci")
            .args(["repack", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(&bundle),
    );
    std::fs::remove_dir_all(&bundle).unwrap();
}

/// Upgrades the patch made: name → new version.
fn upgrades(layout: &Path, original: &str, patched: &str, work: &Path) -> BTreeMap<String, String> {
    let before = installed(&unpack(layout, original, work));
    installed(&unpack(layout, patched, work))
        .into_iter()
        .filter(|(key, version)| before.get(key) != Some(version))
        .map(|((name, _), version)| (name, version))
        .collect()
}

/// An image with a vendor's suite (its own key, named by `signed-by`) and
/// a package installed from it: `drydock patch --update-all` upgrades
/// exactly what the image's own apt upgrades, from Debian and the vendor;
/// with `/etc/apt/preferences.d` pins (the vendor's origin never, the
/// security suite by codename below the installed versions) exactly what
/// apt then upgrades; and with a suite whose key is not the one that signed it,
/// the suite is reported as not consulted and Debian's fixes still applied.
#[test]
fn third_party_suites_and_pins_are_what_apt_uses() {
    let work = tempfile::tempdir().unwrap();
    let vendor = VendorRepository::start(&work.path().join("vendor"));
    let layout = work.path().join("layout");
    testkit::run(
        Command::new("cp")
            .arg("-a")
            .arg(testkit::debian_layout())
            .arg(&layout),
    );
    let entry = |key: &str| {
        format!(
            "deb [signed-by=/etc/apt/keyrings/{key}] {} bookworm-vendor main\n",
            vendor.server.url
        )
    };
    derive(
        &layout,
        testkit::DEBIAN_TAG,
        "vendor",
        work.path(),
        |root| {
            std::fs::create_dir_all(root.join("etc/apt/keyrings")).unwrap();
            std::fs::copy(&vendor.key, root.join("etc/apt/keyrings/vendor.asc")).unwrap();
            std::fs::copy(&vendor.other_key, root.join("etc/apt/keyrings/other.asc")).unwrap();
            std::fs::write(
                root.join("etc/apt/sources.list.d/vendor.list"),
                entry("vendor.asc"),
            )
            .unwrap();
            std::fs::copy(&vendor.old_deb, root.join("tmp/tool.deb")).unwrap();
            testkit::run(
                Command::new("chroot")
                    .arg(root)
                    .args(["dpkg", "-i", "/tmp/tool.deb"]),
            );
            std::fs::remove_file(root.join("tmp/tool.deb")).unwrap();
        },
    );
    let pins = "Package: /^drydock-vendor/\nPin: origin \"127.0.0.1\"\nPin-Priority: -1\n\n\
                Package: *\nPin: release n=bookworm-security\nPin-Priority: 50\n";
    derive(&layout, "vendor", "vendor-pinned", work.path(), |root| {
        std::fs::create_dir_all(root.join("etc/apt/preferences.d")).unwrap();
        std::fs::write(root.join("etc/apt/preferences.d/vendor.pref"), pins).unwrap();
    });
    derive(&layout, "vendor", "vendor-wrong-key", work.path(), |root| {
        std::fs::write(
            root.join("etc/apt/sources.list.d/vendor.list"),
            entry("other.asc"),
        )
        .unwrap();
    });

    let data = work.path().join("data");
    let oracle = |tag: &str| {
        let dir = work.path().join(format!("oracle-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let root = unpack(&layout, tag, &dir);
        testkit::fidelity::apt_simulated_upgrade(&root, DEBIAN_POCKETS)
    };
    let patch = |tag: &str| {
        let image = format!("oci:{}:{tag}", layout.display());
        let patched = format!("{tag}-patched");
        let said = succeed(patch_update_all(&data, &image, &patched, false));
        let upgraded = if said.contains("Nothing to upgrade") {
            BTreeMap::new()
        } else {
            upgrades(&layout, tag, &patched, work.path())
        };
        (said, upgraded)
    };

    let expected = oracle("vendor");
    assert_eq!(
        expected.get(VENDOR_PACKAGE).map(String::as_str),
        Some("1.1"),
        "apt should take the vendor's newer version"
    );
    let (said, upgraded) = patch("vendor");
    assert!(said.contains("third-party suite consulted"), "{said}");
    assert_eq!(upgraded, expected, "drydock and apt upgrade differently");

    let pinned_expected = oracle("vendor-pinned");
    assert!(
        pinned_expected.len() < expected.len() && !pinned_expected.contains_key(VENDOR_PACKAGE),
        "the pins should hold packages back: {pinned_expected:?}"
    );
    let (_, pinned) = patch("vendor-pinned");
    assert_eq!(pinned, pinned_expected, "drydock and apt pin differently");

    let (said, unverified) = patch("vendor-wrong-key");
    assert!(
        said.contains("third-party suite not consulted") && said.contains("bookworm-vendor"),
        "{said}"
    );
    let mut debian_only = expected.clone();
    debian_only.remove(VENDOR_PACKAGE);
    assert_eq!(
        unverified, debian_only,
        "a suite that does not verify must not block Debian's fixes"
    );
    keep_when_asked(work);
}
