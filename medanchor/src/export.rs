//! `medanchor export`: a patient's data as the API renders it for the
//! caller (a session token in `MEDANCHOR_API_TOKEN`): PDF, JSON, CSV zip
//! or FHIR R4, written to a file with its detached signature beside it
//! (`FILE.sig`; a PDF is signed inside). Check it with `medanchor verify
//! export FILE`.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;

use crate::progress::ProgressBar;

/// Options of `medanchor export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The patient (a principal).
    patient: String,
    /// `pdf`, `json`, `csv` or `fhir`.
    #[arg(long, default_value = "pdf")]
    format: String,
    /// First clinical date (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Last clinical date (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    /// Record types, comma separated (default: all).
    #[arg(long)]
    types: Option<String>,
    /// Where to write it (default: the name the API gives, here).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// The tenant, when the node serves several.
    #[arg(long)]
    tenant: Option<String>,
    /// The node's API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
}

/// Runs `medanchor export`.
pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(export(args))
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let token = std::env::var("MEDANCHOR_API_TOKEN").map_err(|_| {
        anyhow!("an export is made for a signed-in caller: set MEDANCHOR_API_TOKEN to your session token")
    })?;
    let mut url = reqwest::Url::parse(&format!(
        "{}/v1/patients/{}/export",
        args.api.trim().trim_end_matches('/'),
        args.patient.trim()
    ))
    .context("the API's URL")?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("format", &args.format);
        for (k, v) in [("from", &args.from), ("to", &args.to), ("types", &args.types)] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
    }
    let mut request = reqwest::Client::new().get(url.clone()).bearer_auth(token);
    if let Some(t) = &args.tenant {
        request = request.header("x-tenant-id", t);
    }
    let bar = ProgressBar::new("exporting");
    bar.show(0, 1);
    let mut response = request.send().await.with_context(|| format!("reaching {url}"))?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        bar.finish();
        bail!("HTTP {status}: {}", body["detail"].as_str().unwrap_or("the export was refused"));
    }
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (id, sha, signature) = (header("x-export-id"), header("x-export-sha256"), header("export-signature"));
    let name = header("content-disposition")
        .and_then(|d| d.split("filename=\"").nth(1).map(|n| n.trim_end_matches('"').to_string()))
        .filter(|n| !n.contains(['/', '\\']) && !n.starts_with('.'))
        .unwrap_or_else(|| format!("medanchor-export.{}", args.format));
    let total = response.content_length().unwrap_or(0);
    let mut bytes = Vec::with_capacity(total as usize);
    while let Some(chunk) = response.chunk().await.context("receiving the export")? {
        bytes.extend_from_slice(&chunk);
        bar.show(bytes.len() as u64, total.max(bytes.len() as u64));
    }
    bar.finish();
    let out = args.out.unwrap_or_else(|| PathBuf::from(name));
    std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "export {} written to {} ({} bytes, SHA-256 {})",
        id.unwrap_or_default(),
        out.display(),
        bytes.len(),
        sha.unwrap_or_default()
    );
    if let Some(sig) = signature {
        let json = base64::engine::general_purpose::STANDARD.decode(sig).context("the Export-Signature header")?;
        let mut sig_path = out.clone().into_os_string();
        sig_path.push(".sig");
        std::fs::write(&sig_path, json).with_context(|| format!("writing {}", PathBuf::from(&sig_path).display()))?;
        println!("signature written to {}", PathBuf::from(sig_path).display());
    }
    Ok(())
}
