//! The web portal in a real browser: `tests/js/portal.test.mjs` (Debian's
//! Chromium driven by playwright-core under `node --test`) against a real
//! `medanchor up` on loopback. Screenshots (desktop and phone), the
//! accessibility report and the page weights are left in
//! `$CARGO_TARGET_TMPDIR/portal-artifacts`.

use std::path::Path;
use std::process::Command;

use super::verify::{free_port, up_log, Ports, Up};

#[test]
fn the_portal_works_in_a_real_browser_for_every_role() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js");
    assert!(
        js.join("node_modules/playwright-core").exists(),
        "tests/js has no node_modules: run ./scripts/test (or `npm install` in tests/js)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: ./scripts/test installs Debian's chromium");
    let root = tempfile::tempdir().expect("tempdir");
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let tombstones = root.path().join("tombstones").display().to_string();
    // A second tenant whose only member is the patient: the portal offers
    // both at sign-in and refuses the provider there.
    let tenants = root.path().join("tenants.toml");
    std::fs::write(
        &tenants,
        format!("[[tenant]]\nid = \"north\"\nmembers = [\"{}\"]\n", super::verify::address("wallet_1")),
    )
    .expect("tenants file");
    let tenants = tenants.display().to_string();
    let _up = Up::start_with(root.path(), &ports, &["--tombstones-dir", &tombstones, "--tenants", &tenants]);
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1", "portal.test.mjs"])
        .current_dir(&js)
        .env("MEDANCHOR_URL", ports.api())
        .env("MEDANCHOR_RPC", ports.rpc())
        .env("MEDANCHOR_API_DATA", root.path().join("api"))
        .env("MEDANCHOR_ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    println!("screenshots, accessibility and page weights: {}", artifacts.display());
    assert!(
        out.status.success(),
        "the browser tests failed:\n{stdout}\n{}\nup's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        up_log(root.path())
    );
    // Every page was screenshot at both widths.
    let shots = std::fs::read_dir(artifacts.join("screenshots")).expect("screenshots").count();
    assert!(shots >= 40, "only {shots} screenshots");
}
