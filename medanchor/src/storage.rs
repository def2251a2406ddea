//! `medanchor storage`: the object store, for operators.
//!
//! `report` asks a running node's API (an admin's session token in
//! `MEDANCHOR_API_TOKEN`, never an argument) for what its store holds:
//! bytes and objects per tenant and storage class, growth per month, the
//! estimated monthly cost, and the tenants over their threshold.

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use serde_json::Value;

/// `medanchor storage …`.
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Bytes, objects and estimated cost per tenant and storage class, and
    /// growth per month (an admin's session in `MEDANCHOR_API_TOKEN`).
    Report(ReportArgs),
}

/// Options of `storage report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// One tenant only.
    #[arg(long)]
    tenant: Option<String>,
    /// Print the API's JSON as it is.
    #[arg(long)]
    json: bool,
    /// The node's API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
}

/// Runs a `storage` command.
pub fn run(command: StorageCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match command {
        StorageCommand::Report(args) => runtime.block_on(report(args)),
    }
}

async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let token = std::env::var("MEDANCHOR_API_TOKEN").map_err(|_| {
        anyhow!("the storage report is for admins: set MEDANCHOR_API_TOKEN to an admin's session token")
    })?;
    let mut url = reqwest::Url::parse(&format!("{}/v1/admin/storage/report", args.api.trim_end_matches('/')))
        .context("the API's URL")?;
    if let Some(t) = &args.tenant {
        url.query_pairs_mut().append_pair("tenant", t);
    }
    let response = reqwest::Client::new()
        .get(url.clone())
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.with_context(|| format!("GET {url}: not JSON"))?;
    if !status.is_success() {
        bail!("GET {url}: HTTP {}: {}", status.as_u16(), body["detail"].as_str().unwrap_or("(no detail)"));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    println!("store: {}", body["store"].as_str().unwrap_or("?"));
    let tenants = body["tenants"].as_array().cloned().unwrap_or_default();
    if tenants.is_empty() {
        println!("no objects stored");
    }
    let gb = |v: &Value| v.as_u64().unwrap_or(0) as f64 / 1e9;
    for t in &tenants {
        let alert = if t["over_threshold"] == true { "  OVER THRESHOLD" } else { "" };
        println!(
            "tenant {}: {} objects, {:.3} GB ({:.3} GB removed, awaiting purge), ~${:.2}/month{alert}",
            t["tenant"].as_str().unwrap_or("?"),
            t["objects"],
            gb(&t["bytes"]),
            gb(&t["removed_bytes"]),
            t["monthly_cost"].as_f64().unwrap_or(0.0)
        );
        for c in t["classes"].as_array().into_iter().flatten() {
            println!(
                "  {:<14} {:>8} objects {:>12.3} GB  ~${:.2}/month",
                c["class"].as_str().unwrap_or("?"),
                c["objects"],
                gb(&c["bytes"]),
                c["monthly_cost"].as_f64().unwrap_or(0.0)
            );
        }
        for m in t["months"].as_array().into_iter().flatten() {
            println!("  {} +{} objects, +{:.3} GB", m["month"].as_str().unwrap_or("?"), m["objects"], gb(&m["bytes"]));
        }
    }
    println!(
        "unfinished uploads (local spool): {} ({:.3} GB received)",
        body["spooled_uploads"],
        gb(&body["spooled_bytes"])
    );
    Ok(())
}
