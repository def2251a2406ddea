//! A scanning app in JavaScript (tests/js/share-link-compat.mjs: `jose`
//! and `node:crypto`, no medanchor code) verifies a link the node signed
//! and opens its release: our kid is the RFC 7638 thumbprint, our
//! signature is plain Ed25519 over the payload's JSON without `sig`, our
//! JWE is standard `dir`/`A256GCM`. A changed link or a foreign key fails.

use std::path::Path;
use std::process::{Command, Output};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use medanchor_api::share::link::{jwe_encrypt, LinkPayload, ShareKeys};

fn scan(content: &str, issuer_x: &str, jwe: &str) -> Output {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js");
    assert!(
        js.join("node_modules/jose").exists(),
        "tests/js has no node_modules: run ./scripts/test (or `npm install` in tests/js)"
    );
    Command::new("node")
        .args(["share-link-compat.mjs", content, issuer_x, jwe])
        .current_dir(&js)
        .output()
        .expect("run node")
}

#[test]
fn a_javascript_scanner_verifies_a_link_and_opens_its_release() {
    let keys = ShareKeys::derive(&[11; 32]);
    let release_key = [42u8; 32];
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() + 3_600;
    let mut payload = LinkPayload {
        url: format!("https://clinic.example/v1/share/links/{}", B64URL.encode([1u8; 32])),
        key: B64URL.encode(release_key),
        exp,
        flag: Some("P".into()),
        label: "medanchor share".into(),
        v: 1,
        iss: "https://clinic.example".into(),
        kid: String::new(),
        sig: None,
    };
    keys.sign(&mut payload);
    let release = r#"{"v":1,"records":[{"record_id":"0x0102","data_hash":"0xabcd"}]}"#;
    let jwe = jwe_encrypt(&release_key, release.as_bytes());
    let x = B64URL.encode(keys.issuer_key().as_bytes());

    let out = scan(&payload.encode(), &x, &jwe);
    assert!(out.status.success(), "the JS scanner refused a genuine link: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), release);

    let mut later = payload.clone();
    later.exp += 86_400;
    let other = B64URL.encode(ShareKeys::derive(&[12; 32]).issuer_key().as_bytes());
    for (what, content, key) in [("altered", later.encode(), x.clone()), ("foreign key", payload.encode(), other)] {
        let out = scan(&content, &key, &jwe);
        assert!(!out.status.success(), "the JS scanner accepted a link with {what}");
    }
}
