//! `medanchor demo` against `medanchor up`, both as processes on free
//! loopback ports: every step of the story must behave (exit 0).

use std::process::Command;

use super::verify::{free_port, up_log, Ports, Up};

#[test]
fn demo_runs_against_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let _up = Up::start(dir.path(), &ports);
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor"))
        .arg("demo")
        .args(["--node", &ports.rpc(), "--api", &ports.api()])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run medanchor demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}\nup log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        up_log(dir.path())
    );
    for step in ["ERR-CONSENT-REVOKED", "VERIFIED", "tampering detected", "demo complete"] {
        assert!(stdout.contains(step), "{step:?} missing from:\n{stdout}");
    }
}
