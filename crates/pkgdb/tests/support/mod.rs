//! Shared helpers of the integration tests: downloads cached under the
//! target directory, and running commands.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory under the target dir that survives between test runs.
pub fn cache_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pkgdb-images");
    std::fs::create_dir_all(&dir).unwrap();
    dir
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

/// (Package, Version, Architecture, Filename) of every paragraph of a Packages index.
pub fn index_entries(text: &str) -> Vec<[String; 4]> {
    text.split("\n\n")
        .filter_map(|paragraph| {
            let field = |name: &str| {
                paragraph
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                    .map(str::to_string)
            };
            Some([
                field("Package")?,
                field("Version")?,
                field("Architecture")?,
                field("Filename")?,
            ])
        })
        .collect()
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
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}
