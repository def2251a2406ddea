//! A real SeaweedFS (`weed mini`) on loopback for the storage tests:
//! installed by `scripts/lib.sh ensure_seaweedfs`, started on free ports
//! with one access key, stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "medanchor-test";
/// Its secret.
pub const SECRET_KEY: &str = "medanchor-test-secret-key";
/// The bucket created at start.
pub const BUCKET: &str = "medanchor";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// The pinned `weed`, installed when missing.
fn weed() -> PathBuf {
    let out = Command::new("bash")
        .arg("-c")
        .arg("source scripts/lib.sh && ensure_seaweedfs")
        .current_dir(repo_root())
        .output()
        .expect("bash");
    assert!(out.status.success(), "installing SeaweedFS failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let path = PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim());
    assert!(path.is_file(), "ensure_seaweedfs named {path:?}");
    path
}

/// A base port whose block (6 ports and their gRPC twins at +10000) is
/// free right now.
fn free_base() -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand::random::<u16>() % 9_000);
        let ports = (0..6).flat_map(|i| [base + i, base + i + 10_000]);
        let free = ports.map(|p| TcpListener::bind(("127.0.0.1", p))).collect::<Result<Vec<_>, _>>().is_ok();
        if free {
            return base;
        }
    }
    panic!("no free block of ports");
}

/// A running server.
pub struct Seaweed {
    child: Child,
    /// The S3 endpoint.
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Seaweed {
    /// Starts a server and waits until its S3 endpoint answers.
    pub fn start() -> Seaweed {
        let weed = weed();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("s3.json");
        let identities = format!(
            r#"{{"identities":[{{"name":"medanchor","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(&config, identities).expect("s3 config");
        let base = free_base();
        let port = |i: u16| (base + i).to_string();
        let log = std::fs::File::create(dir.path().join("weed.log")).expect("log");
        let child = Command::new(weed)
            .args(["mini", &format!("-dir={}", dir.path().join("data").display())])
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={}", port(0)))
            .arg(format!("-volume.port={}", port(1)))
            .arg(format!("-filer.port={}", port(2)))
            .arg(format!("-s3.port={}", port(3)))
            .arg(format!("-webdav.port={}", port(4)))
            .arg(format!("-admin.port={}", port(5)))
            .args(["-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.config={}", config.display()))
            .arg(format!("-bucket={BUCKET}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start weed mini");
        let endpoint = format!("http://127.0.0.1:{}", port(3));
        let server = Seaweed { child, endpoint, _dir: dir };
        // Ready when the S3 port refuses an unsigned request (403): the
        // filer and the bucket are up behind it.
        let started = Instant::now();
        loop {
            let answer = status_of(&server.endpoint, &format!("/{BUCKET}"));
            if answer == "403" {
                return server;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "SeaweedFS did not start (last answer {answer:?})");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The status line of an unsigned `GET path` (empty when nothing answers).
fn status_of(endpoint: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://");
    let Ok(mut conn) = std::net::TcpStream::connect(host) else { return String::new() };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if conn.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut head = [0u8; 12];
    match conn.read_exact(&mut head) {
        Ok(()) => String::from_utf8_lossy(&head[9..12]).into_owned(),
        Err(_) => String::new(),
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
