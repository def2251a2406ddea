//! `medanchor share …`: access codes and QR links from the command line.
//! Patients make, list and revoke shares; providers redeem a code or a
//! scanned QR link and read through the grant; anyone checks a scanned QR
//! offline against the node's pinned key (`share verify`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use base64::Engine;
use clap::{Args, Subcommand};
use medanchor_api::share::link::{self, LinkPayload};
use medanchor_wallet::keys::StacksKey;
use medanchor_wallet::{import_key, KeySource};
use serde_json::{json, Value};

use crate::client::Session;
use crate::wallet::{self, KeyArgs};

/// Who signs in, and to which API.
#[derive(Debug, Args)]
pub struct Signer {
    /// Sign in with a Devnet.toml account (public test keys: devnet only)
    /// instead of the key file.
    #[arg(long)]
    devnet_account: Option<String>,
    #[command(flatten)]
    key: KeyArgs,
    /// The API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
}

impl Signer {
    fn key(&self) -> anyhow::Result<StacksKey> {
        match &self.devnet_account {
            Some(name) => Ok(import_key(KeySource::DevnetAccount(name))?),
            None => wallet::unlock(&self.key),
        }
    }

    async fn session(&self) -> anyhow::Result<Session> {
        Session::open(&self.api, &self.key()?).await
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// (patient) Makes a 6-digit access code; with --qr also a signed QR
    /// link, written as PNG and/or SVG.
    Create {
        #[command(flatten)]
        signer: Signer,
        /// Data types, comma-separated (lab-results, basic-info, …;
        /// all-standard never includes mental-health or genetic).
        #[arg(long, value_delimiter = ',', required = true)]
        types: Vec<String>,
        /// 1h, 6h, 24h or 7d.
        #[arg(long, default_value = "24h")]
        duration: String,
        /// Invalidated after one redemption.
        #[arg(long)]
        single_use: bool,
        /// At most this many redemptions.
        #[arg(long)]
        max_uses: Option<u32>,
        /// Also make a signed QR link.
        #[arg(long)]
        qr: bool,
        /// The QR link needs the code as passcode.
        #[arg(long, requires = "qr")]
        passcode: bool,
        /// Write the QR as PNG here.
        #[arg(long, requires = "qr")]
        png: Option<PathBuf>,
        /// Write the QR as SVG here.
        #[arg(long, requires = "qr")]
        svg: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// (patient) Lists your shares, how many are active, and the lock state.
    List {
        #[command(flatten)]
        signer: Signer,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// (patient) Revokes a share: its code, link and grants end at once.
    Revoke {
        #[command(flatten)]
        signer: Signer,
        /// The share id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// (patient) Lifts the lock-out after too many failed attempts.
    Unlock {
        #[command(flatten)]
        signer: Signer,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// (provider) Redeems a patient's code; prints the grant and the records
    /// it opens.
    Redeem {
        #[command(flatten)]
        signer: Signer,
        /// The patient's principal.
        #[arg(long)]
        patient: String,
        /// The 6-digit code the patient read out.
        #[arg(long)]
        code: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// (provider) Redeems a scanned QR link (checked offline first when
    /// --issuer-key is given) and decrypts what it releases.
    Open {
        #[command(flatten)]
        signer: Signer,
        /// The scanned content (`shlink:/…`).
        content: String,
        /// The 6-digit code, when the link needs it.
        #[arg(long)]
        passcode: Option<String>,
        /// The node's pinned link-signing key (`share issuer`).
        #[arg(long)]
        issuer_key: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// (provider) Reads a record through a grant.
    Read {
        #[command(flatten)]
        signer: Signer,
        /// The grant from `redeem` or `open`.
        #[arg(long)]
        grant: String,
        /// The record id.
        record: String,
    },
    /// Checks a scanned QR offline: issued by the pinned key, unaltered,
    /// unexpired. Exit 0 only then; no network.
    Verify {
        /// The scanned content (`shlink:/…`).
        content: String,
        /// The node's link-signing key (base64url or hex), pinned once from
        /// `share issuer`.
        #[arg(long)]
        issuer_key: String,
        /// Check as of this time (unix seconds; default now).
        #[arg(long)]
        now: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints the node's link-signing key, to pin for `verify`.
    Issuer {
        /// The API.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn print(json_out: bool, v: &Value, human: impl FnOnce(&Value)) {
    if json_out {
        println!("{v}");
    } else {
        human(v);
    }
}

/// Runs a share command.
pub fn run(command: ShareCommand) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(dispatch(command))
}

async fn dispatch(command: ShareCommand) -> anyhow::Result<()> {
    match command {
        ShareCommand::Create { signer, types, duration, single_use, max_uses, qr, passcode, png, svg, json } => {
            let s = signer.session().await?;
            let body = json!({
                "data_types": types, "duration": duration, "single_use": single_use,
                "max_uses": max_uses, "qr": qr, "passcode": passcode,
            });
            let v = s.send("/v1/share/codes", Some(&body), &[]).await?.ok()?;
            if let Some(path) = &png {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v["qr"]["png_base64"].as_str().context("no QR in the answer")?)?;
                std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(path) = &svg {
                std::fs::write(path, v["qr"]["svg"].as_str().context("no QR in the answer")?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let out = json!({
                "code": v["code"], "share": v["share"], "qr_content": v["qr"]["content"],
                "png": png, "svg": svg,
            });
            print(json, &out, |o| {
                println!("code      {}  (read it out; shown once)", o["code"].as_str().unwrap_or(""));
                println!("share     {}", o["share"]["id"].as_str().unwrap_or(""));
                println!("covers    {}", o["share"]["data_types"]);
                println!("expires   {}", crate::client::utc(o["share"]["expires_ms"].as_u64().unwrap_or(0)));
                if let Some(c) = o["qr_content"].as_str() {
                    println!("qr        {c}");
                }
                for (what, p) in [("png", &png), ("svg", &svg)] {
                    if let Some(p) = p {
                        println!("{what:<9} {}", p.display());
                    }
                }
            });
        }
        ShareCommand::List { signer, json } => {
            let v = signer.session().await?.send("/v1/share/codes", None, &[]).await?.ok()?;
            print(json, &v, |v| {
                println!("{} active of at most {}; locked: {}", v["active"], v["max_active"], v["locked"]);
                for i in v["items"].as_array().into_iter().flatten() {
                    println!(
                        "{}  {:<8} {} uses, {} failures, expires {}  {}",
                        i["id"].as_str().unwrap_or(""),
                        i["state"].as_str().unwrap_or(""),
                        i["uses"],
                        i["failures"],
                        crate::client::utc(i["expires_ms"].as_u64().unwrap_or(0)),
                        i["data_types"]
                    );
                }
            });
        }
        ShareCommand::Revoke { signer, id, json } => {
            let path = format!("/v1/share/codes/{id}/revoke");
            let v = signer.session().await?.send(&path, Some(&json!({})), &[]).await?.ok()?;
            print(json, &v, |v| println!("share {} is {}", v["id"].as_str().unwrap_or(""), v["state"]));
        }
        ShareCommand::Unlock { signer, json } => {
            let v = signer.session().await?.send("/v1/share/unlock", Some(&json!({})), &[]).await?.ok()?;
            print(json, &v, |v| println!("unlocked ({} failures in all)", v["lifetime_failures"]));
        }
        ShareCommand::Redeem { signer, patient, code, json } => {
            let s = signer.session().await?;
            let grant =
                s.send("/v1/share/redeem", Some(&json!({ "patient": patient, "code": code })), &[]).await?.ok()?;
            let out = with_records(&s, grant).await?;
            print(json, &out, print_grant);
        }
        ShareCommand::Open { signer, content, passcode, issuer_key, json } => {
            let payload = match &issuer_key {
                Some(k) => link::verify(&content, &link::parse_issuer_key(k).map_err(anyhow::Error::msg)?, now_s())?,
                None => {
                    eprintln!("warning: not checked offline (no --issuer-key); the node still checks the capability");
                    LinkPayload::decode(&content)?
                }
            };
            // The session token goes only to the API given, never to a URL
            // read from a QR code.
            let api = signer.api.trim().trim_end_matches('/');
            if payload.iss.trim_end_matches('/') != api {
                bail!("this link was issued by {}; pass --api {} to redeem it there", payload.iss, payload.iss);
            }
            let capability = payload.capability().context("the link has no capability")?;
            let s = signer.session().await?;
            let body = json!({ "passcode": passcode });
            let mut grant = s.send(&format!("/v1/share/links/{capability}"), Some(&body), &[]).await?.ok()?;
            let jwe = grant["release"].as_str().context("no release document")?.to_string();
            let release = link::jwe_decrypt(&payload.release_key()?, &jwe)?;
            grant["release"] = serde_json::from_slice(&release).context("the release is not JSON")?;
            let out = with_records(&s, grant).await?;
            print(json, &out, |o| {
                println!(
                    "release   share {} of {}: {} until {}, decrypted with the QR's key",
                    o["release"]["share_id"].as_str().unwrap_or(""),
                    o["release"]["patient"].as_str().unwrap_or(""),
                    o["release"]["data_types"],
                    crate::client::utc(o["release"]["expires_ms"].as_u64().unwrap_or(0))
                );
                print_grant(o);
            });
        }
        ShareCommand::Read { signer, grant, record } => {
            let s = signer.session().await?;
            let v = s
                .send(&format!("/v1/records/{record}"), None, &[(medanchor_api::app::GRANT_HEADER, &grant)])
                .await?
                .ok()?;
            println!("{v}");
        }
        ShareCommand::Verify { content, issuer_key, now, json } => {
            let key = link::parse_issuer_key(&issuer_key).map_err(anyhow::Error::msg)?;
            let payload = link::verify(&content, &key, now.unwrap_or_else(now_s))?;
            let out = json!({
                "valid": true, "iss": payload.iss, "kid": payload.kid, "exp": payload.exp,
                "passcode": payload.needs_passcode(), "url": payload.url,
            });
            print(json, &out, |o| {
                println!(
                    "VALID: issued by {} (key {}), unaltered, expires {}{}",
                    o["iss"].as_str().unwrap_or(""),
                    o["kid"].as_str().unwrap_or(""),
                    crate::client::utc(o["exp"].as_u64().unwrap_or(0) * 1000),
                    if payload.needs_passcode() { "; needs the 6-digit code" } else { "" }
                );
            });
        }
        ShareCommand::Issuer { api, json } => {
            let api = api.trim().trim_end_matches('/');
            let v: Value = reqwest::get(format!("{api}/v1/share/issuer"))
                .await
                .with_context(|| format!("reaching the API at {api}"))?
                .error_for_status()?
                .json()
                .await?;
            print(json, &v, |v| {
                println!("iss   {}", v["iss"].as_str().unwrap_or(""));
                println!("kid   {}", v["kid"].as_str().unwrap_or(""));
                println!("key   {}  (pin it: share verify --issuer-key …)", v["jwk"]["x"].as_str().unwrap_or(""));
            });
        }
    }
    Ok(())
}

/// Adds the records a grant lets the provider list.
async fn with_records(s: &Session, mut grant: Value) -> anyhow::Result<Value> {
    let token = grant["grant"].as_str().context("no grant in the answer")?.to_string();
    let patient = grant["patient"].as_str().context("no patient in the answer")?.to_string();
    let page = s
        .send(&format!("/v1/patients/{patient}/records"), None, &[(medanchor_api::app::GRANT_HEADER, &token)])
        .await?
        .ok()?;
    grant["records"] = page["items"].clone();
    Ok(grant)
}

fn print_grant(o: &Value) {
    println!("grant     {}  (send as X-Share-Grant; `share read --grant …`)", o["grant"].as_str().unwrap_or(""));
    println!("patient   {}", o["patient"].as_str().unwrap_or(""));
    println!("method    {}", o["method"].as_str().unwrap_or(""));
    println!("expires   {}", crate::client::utc(o["expires_ms"].as_u64().unwrap_or(0)));
    for a in o["access"].as_array().into_iter().flatten() {
        let why = a["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default();
        println!(
            "  {:<20} {}{why}",
            a["data_type"].as_str().unwrap_or(""),
            if a["allowed"] == true { "readable" } else { "refused" }
        );
    }
    println!("records   {} readable now:", o["records"].as_array().map_or(0, Vec::len));
    for r in o["records"].as_array().into_iter().flatten() {
        println!(
            "  {}  {}  v{}",
            r["record_id"].as_str().unwrap_or(""),
            r["record_type"].as_str().unwrap_or(""),
            r["version"]
        );
    }
}
