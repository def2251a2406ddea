//! `medanchor storage apply-lifecycle` against moto's S3 server on
//! loopback (SeaweedFS, which the storage suite uses, has no transitions):
//! the rules of every tenant of a tenants file are applied and read back by
//! the command, then read again independently with boto3 (AWS's own SDK,
//! in moto's venv); bad files and missing credentials are refused before
//! anything is sent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const P: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("root").to_path_buf()
}

/// moto's server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
    python: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let out = Command::new("bash")
        .arg("-c")
        .arg("source scripts/lib.sh && ensure_moto")
        .current_dir(repo_root())
        .output()
        .expect("bash");
    assert!(out.status.success(), "installing moto failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let server = PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim());
    let python = server.with_file_name("python");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server");
    let endpoint = format!("http://127.0.0.1:{port}");
    let moto = Moto { child, endpoint, python };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

fn apply(moto: &Moto, bucket: &str, tenants: Option<&Path>, creds: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medanchor"));
    c.args(["storage", "apply-lifecycle", "--s3-bucket", bucket, "--s3-endpoint", &moto.endpoint]);
    if let Some(t) = tenants {
        c.arg("--tenants").arg(t);
    }
    c.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY").env_remove("AWS_SESSION_TOKEN");
    if creds {
        c.env("AWS_ACCESS_KEY_ID", "medanchor-test").env("AWS_SECRET_ACCESS_KEY", "medanchor-test-secret");
    }
    c.env("RUST_LOG", "warn").output().expect("run medanchor")
}

#[test]
fn apply_lifecycle_writes_one_rule_per_tenant_and_reads_it_back() {
    let moto = start_moto();
    let dir = tempfile::tempdir().expect("tempdir");
    // moto takes an unsigned bucket creation (it checks no signatures).
    let created = Command::new(&moto.python)
        .args([
            "-c",
            &format!(
                "import boto3; boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
                 aws_access_key_id='k', aws_secret_access_key='s').create_bucket(Bucket='records')",
                moto.endpoint
            ),
        ])
        .output()
        .expect("python");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));

    let file = dir.path().join("tenants.toml");
    std::fs::write(
        &file,
        format!(
            "[[tenant]]\nid = \"north\"\nmembers = [\"{P}\"]\n[tenant.lifecycle]\narchive_after_days = 30\n\
             archive_class = \"DEEP_ARCHIVE\"\nabort_multipart_after_days = 2\n\n[[tenant]]\nid = \"south\"\n"
        ),
    )
    .expect("write");
    let out = apply(&moto, "records", Some(&file), true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("lifecycle applied and read back (3 rules)"), "{stdout}");

    // Read back by AWS's SDK, not by our parser.
    let read = Command::new(&moto.python)
        .args([
            "-c",
            &format!(
                "import boto3, json; c = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
                 aws_access_key_id='k', aws_secret_access_key='s'); \
                 print(json.dumps(c.get_bucket_lifecycle_configuration(Bucket='records')['Rules']))",
                moto.endpoint
            ),
        ])
        .output()
        .expect("python");
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let rules: serde_json::Value = serde_json::from_slice(&read.stdout).expect("json");
    let mut seen: Vec<(String, String, u64, String, u64)> = rules
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                r["ID"].as_str().expect("id").to_string(),
                r["Filter"]["Prefix"].as_str().expect("prefix").to_string(),
                r["Transitions"][0]["Days"].as_u64().expect("days"),
                r["Transitions"][0]["StorageClass"].as_str().expect("class").to_string(),
                r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"].as_u64().expect("abort"),
            )
        })
        .collect();
    seen.sort();
    let want = |id: &str, p: &str, d: u64, c: &str, a: u64| (id.to_string(), p.to_string(), d, c.to_string(), a);
    assert_eq!(
        seen,
        [
            want("tenant-default", "default/", 90, "GLACIER", 7),
            want("tenant-north", "north/", 30, "DEEP_ARCHIVE", 2),
            want("tenant-south", "south/", 90, "GLACIER", 7),
        ]
    );
    // Every rule is enabled.
    assert!(rules.as_array().expect("rules").iter().all(|r| r["Status"] == "Enabled"));

    // Applying again replaces, not appends.
    let out = apply(&moto, "records", None, true);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(1 rules)"), "{}", String::from_utf8_lossy(&out.stderr));

    // Refusals before anything is sent: no credentials, a bad file, no
    // such bucket (the server's answer, precise).
    let out = apply(&moto, "records", Some(&file), false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AWS_ACCESS_KEY_ID"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[tenant]]\nid = \"north\"\n[tenant.lifecycle]\narchive_class = \"COLD\"\n").expect("write");
    let out = apply(&moto, "records", Some(&bad), true);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown storage class"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = apply(&moto, "no-such-bucket", None, true);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NoSuchBucket"), "{}", String::from_utf8_lossy(&out.stderr));
}
