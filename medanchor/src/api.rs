//! The API as `medanchor up` runs it: in-process beside the devnet and the
//! indexer, reading the index directly and signing through the node's RPC.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use medanchor_api::anchoring;
use medanchor_api::app::{self, ApiConfig, AppState, Custody};
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_indexer::query::IndexReader;
use medanchor_indexer::Indexer;
use medanchor_wallet::accounts::DevnetAccount;
use medanchor_wallet::keys::StacksKey;
use medanchor_wallet::{ContractCall, RpcClient, Wallet};
use sha2::Digest as _;

use crate::tenants::{TenantsFile, DEFAULT_TENANT};
use medanchor_api::scheduler::{JobFn, JobSpec};

/// How often `up` anchors the audit log's root (when it has grown).
const AUDIT_ANCHOR_EVERY: Duration = Duration::from_secs(3);

/// Where `up` keeps attachments and what it tells admins about them.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Keep attachments in this S3 bucket instead of local disk
    /// (credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`,
    /// never arguments).
    #[arg(long)]
    s3_bucket: Option<String>,
    /// The S3-compatible server (`http://127.0.0.1:8333` for a local
    /// SeaweedFS; path-style requests); without it, AWS itself.
    #[arg(long, requires = "s3_bucket")]
    s3_endpoint: Option<String>,
    /// The bucket's region.
    #[arg(long, default_value = "us-east-1")]
    s3_region: String,
    /// The largest attachment, in MB (10^6 bytes).
    #[arg(long, default_value_t = 50)]
    max_attachment_mb: usize,
    /// Bytes stored past which a tenant is reported (and logged) as over
    /// its threshold.
    #[arg(long)]
    storage_alert_bytes: Option<u64>,
    /// The price of a storage class in USD per GB-month, `CLASS=PRICE`
    /// (repeatable; the storage report's estimate; AWS list prices by
    /// default).
    #[arg(long = "storage-price", value_parser = parse_price)]
    storage_prices: Vec<(String, f64)>,
    /// Where each tenant's tombstone list of erased records is kept
    /// (`{dir}/{tenant}.jsonl`): apart from the data directory and from
    /// the backups, so a restore replays the deletions made after its
    /// backup.
    #[arg(long, default_value = ".medanchor-tombstones")]
    tombstones_dir: std::path::PathBuf,
    /// Let patients' webhooks reach loopback, private and link-local
    /// addresses (a hospital's own network). Off: public addresses only.
    #[arg(long)]
    webhook_allow_private: bool,
    /// The SMTP server for patients' notification e-mail:
    /// `smtp://host:port` (STARTTLS when the server offers it),
    /// `smtps://host:port` (TLS), credentials as `user:password@host`
    /// (set it in `medanchor.toml` or `MEDANCHOR_SMTP_URL`, not on the
    /// command line, where `ps` shows it). Without it, no e-mail is sent.
    #[arg(long)]
    smtp_url: Option<String>,
    /// The notification e-mail's sender.
    #[arg(long, default_value = "medanchor <notifications@medanchor.localhost>")]
    smtp_from: String,
    /// The anomaly rules' thresholds (`[anomaly]` in `medanchor.toml`).
    #[arg(skip)]
    pub anomaly: medanchor_ops::anomaly::Rules,
}

fn parse_price(s: &str) -> Result<(String, f64), String> {
    let (class, price) = s.split_once('=').ok_or("write CLASS=PRICE, e.g. STANDARD=0.023")?;
    let price: f64 = price.trim().parse().map_err(|_| format!("{price:?} is not a number"))?;
    let class = class.trim().to_ascii_uppercase();
    if class.is_empty() || !price.is_finite() || price < 0.0 {
        return Err("a class name and a non-negative price".into());
    }
    Ok((class, price))
}

impl StorageArgs {
    /// A tenant's tombstone list.
    pub fn tombstones_for(&self, tenant: &str) -> std::path::PathBuf {
        self.tombstones_dir.join(format!("{tenant}.jsonl"))
    }

    /// Sets the API's storage configuration.
    pub fn apply(&self, config: &mut ApiConfig) {
        if let Some(bucket) = &self.s3_bucket {
            config.attachments = Some(app::BackendConfig::S3 {
                endpoint: self.s3_endpoint.clone(),
                bucket: bucket.clone(),
                region: self.s3_region.clone(),
                credentials: None,
            });
        }
        config.max_attachment_bytes = self.max_attachment_mb.saturating_mul(1_000_000).max(1);
        config.storage_alert_bytes = self.storage_alert_bytes;
        config.webhook_allow_private = self.webhook_allow_private;
        config.anomaly = self.anomaly.clone();
        config.smtp =
            self.smtp_url.clone().map(|url| medanchor_api::notify::Smtp { url, from: self.smtp_from.clone() });
        for (class, price) in &self.storage_prices {
            config.storage_prices.insert(class.clone(), *price);
        }
    }
}

/// Starts the API on `listener` (with the anchor tracker, and the
/// authorization of the anchoring operator); returns its server task,
/// every tenant's service and the anchoring jobs' key (the caller adds
/// the jobs to its schedulers).
#[allow(clippy::too_many_arguments)]
pub fn start(
    index: &Indexer,
    rpc: &str,
    listener: tokio::net::TcpListener,
    data_dir: &Path,
    keys_dir: &Path,
    custodial: &[DevnetAccount],
    accounts: &[DevnetAccount],
    storage: &StorageArgs,
    tenants: &TenantsFile,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Started> {
    let mut custody = Custody::default();
    for a in custodial {
        custody.insert(a.key.clone());
    }
    let mut config = ApiConfig::new("default", medanchor_contracts::DEPLOYER_ADDRESS);
    // Devnet roles from configuration: the deployer administers, `faucet`
    // (also the audit log's on-chain operator) audits.
    let address = |name: &str| {
        accounts
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.key.address(medanchor_wallet::keys::TESTNET_SINGLESIG).to_string())
    };
    config.admins = address("deployer").into_iter().collect();
    config.auditors = address("faucet").into_iter().collect();
    config.public_url = format!("http://{}", listener.local_addr()?);
    storage.apply(&mut config);
    // What every further tenant starts from (before `default`'s own
    // settings: members, limits and roles are per tenant).
    let base = config.clone();
    if let Some(spec) = tenants.get(DEFAULT_TENANT) {
        spec.apply(&mut config);
    }
    config.tombstones = Some(storage.tombstones_for(&config.tenant));
    // The scraper's token from the environment, never an argument (it
    // would show in `ps`); only its hash is kept.
    config.metrics_token_sha256 = std::env::var(medanchor_api::app::METRICS_TOKEN_VAR)
        .ok()
        .filter(|t| !t.is_empty())
        .map(|t| sha2::Sha256::digest(t.as_bytes()).into());
    let reader = IndexReader::new(index.db().clone());
    let state = AppState::open(config, data_dir, keys_dir, None, Arc::new(reader), RpcClient::new(rpc)?, custody)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // DEVNET ONLY: verified credentials are committed on-chain by the
    // contract owner, which on a fresh devnet is the deployer's public test
    // key. A real deployment gives the node its own owner key (or none: then
    // verification answers 503 and the owner commits with its wallet).
    let state = match accounts.iter().find(|a| a.name == "deployer") {
        Some(deployer) => state.with_registrar(deployer.key.clone()),
        None => state,
    };
    let mut states = vec![state.clone()];
    for spec in tenants.tenants.iter().filter(|t| t.id != DEFAULT_TENANT) {
        let mut config = base.clone();
        spec.apply(&mut config);
        config.tombstones = Some(storage.tombstones_for(&config.tenant));
        let (data, keys) = crate::tenants::dirs(data_dir, keys_dir, &spec.id);
        let tenant = state.open_tenant(config, &data, &keys).map_err(|e| anyhow::anyhow!("tenant {}: {e}", spec.id))?;
        tracing::info!(tenant = %spec.id, data = %data.display(), "tenant opened");
        states.push(tenant);
    }
    for s in &states {
        app::spawn_tracker(s.clone(), Duration::from_millis(500));
    }
    // Deletions made after this data was written (a restore brought it
    // back) are replayed before the API serves: on every start, as it is
    // idempotent and costs a file read when nothing is to be erased.
    for s in &states {
        let replayed =
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(s.replay_tombstones()));
        match replayed.map_err(|e| anyhow::anyhow!("replaying the tombstone list: {e}"))? {
            0 => {}
            n => tracing::warn!(records = n, "erased again records the tombstone list names (restored from a backup)"),
        }
    }
    let anchoring = start_audit_anchoring(rpc, accounts)?;
    // The web portal at `/`, beside the API; on this devnet (whose
    // accounts' keys are public) with the development wallet.
    let portal = medanchor_portal::router(
        states.clone(),
        medanchor_portal::PortalConfig { dev_accounts: medanchor_portal::DevAccount::from_devnet(accounts) },
    );
    let front = medanchor_api::FrontEnd { router: portal, serves: medanchor_portal::serves };
    Ok((tokio::spawn(medanchor_api::serve_with(listener, states.clone(), Some(front), shutdown)), states, anchoring))
}

/// What [`start`] started: the server task, every tenant's service, and
/// the anchoring jobs' key.
pub type Started = (tokio::task::JoinHandle<std::io::Result<()>>, Vec<AppState>, Option<Anchoring>);

/// The operator key the anchoring jobs sign with, and whether it may
/// anchor yet.
pub struct Anchoring {
    /// The operator's key.
    pub operator: medanchor_wallet::keys::StacksKey,
    /// Set once the contract owner has authorized it.
    pub ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Anchoring {
    /// The anchoring jobs of a tenant's scheduler: file batches for every
    /// tenant, the audit log's root for the first (the contract keeps one
    /// audit head per operator).
    pub fn jobs(&self, tenant: &AppState, first: bool) -> Vec<(JobSpec, JobFn)> {
        let mut jobs = vec![medanchor_api::file_anchors::file_anchor_job(
            tenant.clone(),
            self.operator.clone(),
            app::FILE_BATCH_EVERY,
            self.ready.clone(),
        )];
        if first {
            jobs.push(anchoring::audit_anchor_job(
                tenant.clone(),
                self.operator.clone(),
                AUDIT_ANCHOR_EVERY,
                self.ready.clone(),
            ));
        }
        jobs
    }
}

/// Anchors the audit log on-chain with the devnet `faucet` account as the
/// API's operator key (the log's on-chain identity), and attachments'
/// hashes in batches with the same key. `faucet` is a public
/// devnet test key, never for real funds: a real deployment configures its
/// own operator key, authorized once by the contract owner.
///
/// The contract keeps one audit head per operator, so the operator key
/// anchors the `default` tenant's log; every tenant's file hashes are
/// batch-anchored with it (batches are keyed by root, not by operator).
fn start_audit_anchoring(rpc: &str, accounts: &[DevnetAccount]) -> anyhow::Result<Option<Anchoring>> {
    let key = |name: &str| accounts.iter().find(|a| a.name == name).map(|a| a.key.clone());
    let Some(operator) = key("faucet") else {
        tracing::warn!("no devnet `faucet` account: the audit log is not anchored on-chain");
        return Ok(None);
    };
    let owner = key("deployer");
    let node = RpcClient::new(rpc)?;
    let log = medanchor_wallet::testnet_address(&operator);
    tracing::info!(%log, every_s = AUDIT_ANCHOR_EVERY.as_secs(), "audit log anchored on-chain by the devnet faucet");
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ready.clone();
    tokio::spawn(async move {
        match owner {
            Some(owner) => {
                if let Err(e) = authorize_devnet_operator(&node, owner, &log).await {
                    tracing::warn!(error = format!("{e:#}"), "authorizing the audit operator on the devnet");
                }
            }
            None => tracing::warn!("no devnet `deployer` account: cannot authorize the audit operator"),
        }
        // The anchoring jobs (the same key anchors attachments' hashes in
        // batches) start now: authorized, or the chain will say why not.
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    Ok(Some(Anchoring { operator, ready }))
}

/// DEVNET ONLY: makes `operator` an anchor operator with the deployer's
/// public devnet key (the contract owner on a fresh devnet), once, when the
/// chain says it is not one yet. On any other network the owner authorizes
/// operators with its own key; nothing here would (or could) do it.
async fn authorize_devnet_operator(node: &RpcClient, owner: StacksKey, operator: &str) -> anyhow::Result<()> {
    let contracts = medanchor_contracts::DEPLOYER_ADDRESS;
    // The node's RPC starts after the API: wait for it.
    let mut attempts = 0;
    let authorized = loop {
        match anchoring::is_anchor_operator(node, contracts, operator).await {
            Ok(b) => break b,
            Err(e) if attempts >= 120 => return Err(e).context("reading is-anchor-operator"),
            Err(_) => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    if authorized {
        return Ok(());
    }
    let wallet = Wallet::connect(owner, node.clone(), contracts).await?;
    let call = ContractCall {
        contract: ContractName::RecordManagement,
        function: "set-anchor-operator",
        args: vec![ClarityValue::principal(operator)?, ClarityValue::Bool(true)],
    };
    let sent = wallet.submit(&call, None).await?;
    let outcome = wallet.wait(&sent.txid, Duration::from_secs(300)).await?;
    anyhow::ensure!(
        outcome.is_success(),
        "set-anchor-operator failed: {}",
        outcome.contract_error().map_or_else(|| outcome.status.clone(), |e| e.constant().to_string())
    );
    tracing::info!(%operator, txid = %sent.txid, "devnet: audit operator authorized by the deployer");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        storage: StorageArgs,
    }

    #[test]
    fn storage_flags_choose_the_backend_limits_and_prices() {
        let mut config = ApiConfig::new("t", "SP000000000000000000002Q6VF78");
        let cli = Cli::try_parse_from([
            "up",
            "--s3-bucket",
            "records",
            "--s3-endpoint",
            "http://127.0.0.1:8333",
            "--max-attachment-mb",
            "20",
            "--storage-alert-bytes",
            "1000",
            "--storage-price",
            "glacier=0.004",
        ])
        .expect("parse");
        cli.storage.apply(&mut config);
        assert_eq!(
            config.attachments,
            Some(app::BackendConfig::S3 {
                endpoint: Some("http://127.0.0.1:8333".into()),
                bucket: "records".into(),
                region: "us-east-1".into(),
                credentials: None,
            })
        );
        assert_eq!((config.max_attachment_bytes, config.storage_alert_bytes), (20_000_000, Some(1000)));
        assert_eq!(config.storage_prices.get("GLACIER"), Some(&0.004));
        assert_eq!(config.storage_prices.get("STANDARD"), Some(&0.023), "the defaults stay");
        // Local disk by default; an endpoint needs a bucket; prices parse.
        let mut local = ApiConfig::new("t", "SP000000000000000000002Q6VF78");
        Cli::try_parse_from(["up"]).expect("parse").storage.apply(&mut local);
        assert_eq!(local.attachments, None);
        assert!(Cli::try_parse_from(["up", "--s3-endpoint", "http://x"]).is_err());
        for bad in ["STANDARD", "=1", "X=-1", "X=cheap"] {
            assert!(Cli::try_parse_from(["up", "--storage-price", bad]).is_err(), "{bad}");
        }
    }
}
