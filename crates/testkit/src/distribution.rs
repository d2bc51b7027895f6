//! CNCF Distribution 2.8, the peer registry from Debian's `docker-registry`
//! package, started on a free port with its own storage and stopped when
//! dropped: over plain HTTP on loopback, or over TLS on the machine's own
//! address with a certificate from a private certificate authority.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running CNCF Distribution registry.
pub struct Distribution {
    child: Child,
    /// `127.0.0.1:PORT`, or `ADDRESS:PORT` over TLS.
    pub address: String,
    /// Over TLS, the PEM certificate of the authority that signed the registry's certificate.
    pub ca_certificate: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

/// The machine's first non-loopback IPv4 address: a registry there is
/// spoken to over HTTPS (drydock and every client use plain HTTP on loopback).
pub fn non_loopback_address() -> String {
    let out = Command::new("hostname")
        .arg("-I")
        .output()
        .expect("hostname -I lists the machine's addresses");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|address| {
            address
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .expect("a TLS registry test needs a non-loopback IPv4 address on this machine")
        .to_string()
}

/// Writes a certificate authority (`ca.pem`) and, signed by it, a server
/// certificate for `ip` (`server.pem`, `server.key`) under `dir`, with openssl.
fn certificates(dir: &Path, ip: &str) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is required (scripts/install-test-deps.sh installs it)");
        assert!(status.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=drydock test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=drydock test registry",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        format!("subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}

impl Distribution {
    /// A registry over plain HTTP on a loopback port.
    pub fn start() -> Distribution {
        Distribution::launch("127.0.0.1", false)
    }

    /// A registry over TLS on the machine's own address
    /// ([`non_loopback_address`]); its certificate is trusted only through
    /// [`Distribution::ca_certificate`].
    pub fn start_tls() -> Distribution {
        Distribution::launch(&non_loopback_address(), true)
    }

    fn launch(ip: &str, tls: bool) -> Distribution {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tls_config = if tls {
            certificates(dir.path(), ip);
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.pem").display(),
                dir.path().join("server.key").display()
            )
        } else {
            String::new()
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n{tls_config}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is required (scripts/install-test-deps.sh installs it)");
        let address = format!("{ip}:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(&address).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Distribution {
            child,
            address,
            ca_certificate: tls.then(|| dir.path().join("ca.pem")),
            _dir: dir,
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
