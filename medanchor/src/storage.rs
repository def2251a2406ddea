//! `medanchor storage`: the object store, for operators.
//!
//! `report` asks a running node's API (an admin's session token in
//! `MEDANCHOR_API_TOKEN`, never an argument) for what its store holds:
//! bytes and objects per tenant and storage class, growth per month, the
//! estimated monthly cost, and the tenants over their threshold.
//!
//! `apply-lifecycle` writes the bucket's lifecycle configuration — per
//! tenant prefix, a transition to an archive class and the abort of
//! incomplete multipart uploads (`--tenants`, defaults 90 days to
//! `GLACIER`, 7 days) — and reads it back, failing unless the bucket holds
//! exactly those rules.

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use serde_json::Value;

/// `medanchor storage …`.
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Bytes, objects and estimated cost per tenant and storage class, and
    /// growth per month (an admin's session in `MEDANCHOR_API_TOKEN`).
    Report(ReportArgs),
    /// Applies the per-tenant lifecycle rules to the S3 bucket and reads
    /// them back (credentials from `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY`).
    ApplyLifecycle(LifecycleArgs),
}

/// Options of `storage apply-lifecycle`.
#[derive(Debug, clap::Args)]
pub struct LifecycleArgs {
    /// The bucket (as `medanchor up --s3-bucket`).
    #[arg(long)]
    s3_bucket: String,
    /// The S3-compatible server; without it, AWS itself.
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// The bucket's region.
    #[arg(long, default_value = "us-east-1")]
    s3_region: String,
    /// The tenants file (as `medanchor up --tenants`): each tenant's
    /// lifecycle; without it, `default`'s defaults only.
    #[arg(long)]
    tenants: Option<std::path::PathBuf>,
}

/// Options of `storage report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The tenant (required when the node serves several; an admin of
    /// that tenant's session).
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
        StorageCommand::ApplyLifecycle(args) => runtime.block_on(apply_lifecycle(args)),
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
    let mut request = reqwest::Client::new().get(url.clone()).bearer_auth(token);
    if let Some(t) = &args.tenant {
        // A node serving several tenants answers each one's report apart.
        request = request.header("x-tenant-id", t);
    }
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
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

async fn apply_lifecycle(args: LifecycleArgs) -> anyhow::Result<()> {
    use medanchor_storage::lifecycle::{get_lifecycle, put_lifecycle, Rule, S3Target};
    let tenants = match &args.tenants {
        Some(path) => crate::tenants::TenantsFile::load(path)?,
        None => crate::tenants::TenantsFile::default(),
    };
    let mut rules = Vec::new();
    for (id, l) in tenants.lifecycles() {
        let tenant = id.parse().map_err(|e| anyhow!("tenant {id:?}: {e}"))?;
        rules.push(Rule::for_tenant(&tenant, l.archive_after_days, &l.archive_class, l.abort_multipart_after_days));
    }
    let target = S3Target::from_env(args.s3_endpoint.clone(), &args.s3_bucket, &args.s3_region)?;
    put_lifecycle(&target, &rules).await.with_context(|| format!("applying the lifecycle to {}", args.s3_bucket))?;
    let mut held =
        get_lifecycle(&target).await.with_context(|| format!("reading {}'s lifecycle back", args.s3_bucket))?;
    held.sort_by(|a, b| a.id.cmp(&b.id));
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    if held != rules {
        bail!("bucket {} holds other lifecycle rules than were applied: {held:?}", args.s3_bucket);
    }
    println!("bucket {}: lifecycle applied and read back ({} rules)", args.s3_bucket, held.len());
    for r in &held {
        println!(
            "  {:<24} prefix {:<16} → {} after {} days; incomplete uploads aborted after {} days",
            r.id, r.prefix, r.archive_class, r.archive_after_days, r.abort_multipart_after_days
        );
    }
    Ok(())
}
