//! `medanchor up --tenants FILE` as a process: `default` and `north`
//! served side by side, each tenant's data and KEKs under its own
//! directories; a request naming no tenant is 400, a non-member 403, a
//! member of `north` signs in and works there, and `storage report
//! --tenant` answers for that tenant alone.

use std::process::Command;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::verify::{address, free_port, key, rt, Ports, Up};

fn client(tenant: &'static str) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert("x-tenant-id", HeaderValue::from_static(tenant));
    reqwest::Client::builder().default_headers(headers).build().expect("client")
}

#[test]
fn up_serves_the_tenants_of_a_file_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let file = root.join("tenants.toml");
    std::fs::write(
        &file,
        format!(
            "[[tenant]]\nid = \"north\"\nmembers = [\"{}\", \"{}\"]\nadmins = [\"{}\"]\nmax_attachment_mb = 1\n",
            address("wallet_1"),
            address("wallet_2"),
            address("wallet_3")
        ),
    )
    .expect("write");
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let up = Up::start_with(root, &ports, &["--tenants", &file.display().to_string()]);
    let api = ports.api();
    rt().block_on(async {
        let (default, north, bare) = (client("default"), client("north"), reqwest::Client::new());
        let doctor = medanchor_wallet::sign_in(&north, &api, &key("wallet_2")).await.expect("sign-in in north");
        let auditor = medanchor_wallet::sign_in(&default, &api, &key("faucet")).await.expect("sign-in in default");
        let me = |http: &reqwest::Client, token: &str| {
            http.get(format!("{api}/v1/me")).bearer_auth(token.to_string()).send()
        };
        let r = me(&bare, &doctor).await.expect("me");
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.expect("json")["code"], "tenant-required");
        assert_eq!(me(&north, &doctor).await.expect("me").status(), 200);
        assert_eq!(me(&default, &doctor).await.expect("me").status(), 200, "default lists no members");
        let r = me(&north, &auditor).await.expect("me");
        assert_eq!(r.status(), 403, "default's auditor is not north's");
        assert_eq!(r.json::<Value>().await.expect("json")["code"], "not-a-member");
        let r = me(&client("south"), &doctor).await.expect("me");
        assert_eq!(r.json::<Value>().await.expect("json")["code"], "unknown-tenant");
        // North's admin reads north's report from the command line.
        let admin = medanchor_wallet::sign_in(&north, &api, &key("wallet_3")).await.expect("sign-in");
        let out = Command::new(env!("CARGO_BIN_EXE_medanchor"))
            .args(["storage", "report", "--tenant", "north", "--json", "--api", &api])
            .env("MEDANCHOR_API_TOKEN", &admin)
            .output()
            .expect("storage report");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert!(report["tenants"].as_array().expect("tenants").iter().all(|t| t["tenant"] == "north"), "{report}");
        // Without --tenant a node of several tenants asks for one.
        let out = Command::new(env!("CARGO_BIN_EXE_medanchor"))
            .args(["storage", "report", "--api", &api])
            .env("MEDANCHOR_API_TOKEN", &admin)
            .output()
            .expect("storage report");
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("X-Tenant-ID"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    // Each tenant's own database and KEKs.
    assert!(root.join("api/tenants/north/db").is_dir());
    assert!(root.join("keys/tenants/north/kek-1.key").is_file());
    assert!(root.join("api/db").is_dir() && root.join("keys/kek-1.key").is_file(), "default keeps the roots");
    up.kill();
}
