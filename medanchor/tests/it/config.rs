//! `medanchor.toml`: `config check` shows every setting and where it came
//! from (file, environment, default), never a secret's value; unknown keys
//! and ill-shaped values stop it; and `up` runs with what the file says —
//! here an `[anomaly]` threshold the node's rules then apply.

use std::process::Command;

use super::verify::{free_port, rt, sign_in, Ports, Up};

fn check(file: &std::path::Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_medanchor"))
        .args(["config", "check", "--config"])
        .arg(file)
        .env_remove("MEDANCHOR_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("run medanchor config check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines().find(|l| l.split_whitespace().next() == Some(key)).unwrap_or_else(|| panic!("no {key} in\n{out}"))
}

#[test]
fn config_check_shows_each_setting_and_its_source_and_refuses_what_it_does_not_know() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("medanchor.toml");
    std::fs::write(
        &file,
        r#"
api_bind = "127.0.0.1:9090"
backup_every_secs = 3600
storage_price = ["STANDARD=0.02", "GLACIER=0.004"]
webhook_allow_private = true
log_format = "json"
smtp_url = "smtp://mailer:hunter2-password@127.0.0.1:2525"

[anomaly]
denials = 20
"#,
    )
    .expect("write");
    let token = "s3cr3t-scraper-token";
    let (ok, out, err) = check(&file, &[("MEDANCHOR_API_BIND", "127.0.0.1:9191"), ("MEDANCHOR_METRICS_TOKEN", token)]);
    assert!(ok, "{err}");
    assert!(
        line(&out, "api_bind").contains("127.0.0.1:9191") && line(&out, "api_bind").ends_with("environment"),
        "{out}"
    );
    assert!(line(&out, "backup_every_secs").contains("3600") && line(&out, "backup_every_secs").ends_with("file"));
    assert!(line(&out, "storage_price").contains("STANDARD=0.02,GLACIER=0.004"), "{out}");
    assert!(line(&out, "webhook_allow_private").contains("true"));
    assert!(line(&out, "log_format").contains("json") && line(&out, "log_format").ends_with("file"), "{out}");
    assert!(line(&out, "api_data_dir").ends_with("default"));
    assert!(out.contains("denials 20 in 10 min"), "{out}");
    assert!(line(&out, "MEDANCHOR_METRICS_TOKEN").contains("(set, hidden)"));
    assert!(line(&out, "smtp_url").contains("smtp://mailer:***@127.0.0.1:2525"), "{out}");
    for secret in [token, "hunter2-password"] {
        assert!(!out.contains(secret) && !err.contains(secret), "a secret was printed");
    }

    for (text, says) in [
        ("api_bnd = \"127.0.0.1:1\"\n", "unknown key \"api_bnd\""),
        ("api_bind = [\"127.0.0.1:1\"]\n", "api_bind takes one value"),
        ("webhook_allow_private = \"yes\"\n", "webhook_allow_private is true or false"),
        ("[anomaly]\ndenials_per_day = 3\n", "[anomaly]"),
        ("backup_every_secs = \"soon\"\n", "soon"),
        ("api_bind = \n", "not TOML"),
    ] {
        std::fs::write(&file, text).expect("write");
        let (ok, _, err) = check(&file, &[]);
        assert!(!ok, "{text} was accepted");
        assert!(err.contains(says), "{text}: {err}");
    }
}

#[test]
fn up_applies_the_files_anomaly_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let file = root.join("medanchor.toml");
    std::fs::write(&file, "webhook_allow_private = true\n\n[anomaly]\ndenials = 3\n").expect("write");
    let ports = Ports { rpc: free_port(), indexer: free_port(), api: free_port() };
    let api = ports.api();
    let _up = Up::start_with(&root, &ports, &["--config", &file.display().to_string()]);
    rt().block_on(async {
        let http = reqwest::Client::new();
        let stranger = sign_in(&api, "wallet_3").await;
        // Three refusals: a flag under the file's threshold (the default
        // is ten).
        for _ in 0..3 {
            let r = http
                .get(format!("{api}/v1/records/0x{}", "ab".repeat(16)))
                .bearer_auth(&stranger)
                .send()
                .await
                .expect("get");
            assert_eq!(r.status(), 404);
        }
        let auditor = sign_in(&api, "faucet").await;
        let flags: serde_json::Value = http
            .get(format!("{api}/v1/admin/flags"))
            .bearer_auth(&auditor)
            .send()
            .await
            .expect("flags")
            .json()
            .await
            .expect("json");
        let rules: Vec<&str> = flags.as_array().expect("flags").iter().filter_map(|f| f["rule"].as_str()).collect();
        assert_eq!(rules, ["repeated-denials"], "{flags}");
        assert_eq!(flags[0]["numbers"]["threshold"], 3.0);
    });
}
