//! The `medanchor` command.

mod api;
mod backup;
mod client;
mod config;
mod demo;
mod export;
mod indexer;
mod keys;
mod progress;
mod share;
mod storage;
mod tenants;
mod verify;
mod wallet;

use std::process::ExitCode;

// The Clarity VM allocates and frees small objects at a furious rate
// (every value, every cost evaluation); mimalloc handles that pattern far
// better than glibc's allocator (see `medanchor-bench devnet`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use medanchor_contracts::BlockHash;
use medanchor_devnet::costs::cost_report;
use medanchor_devnet::vm::Cost;

/// medanchor: patient-controlled medical data anchored on Stacks.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The configuration file (`up`'s options in snake case, and
    /// `[anomaly]`); default `$MEDANCHOR_CONFIG`, else `./medanchor.toml`
    /// when it exists. `MEDANCHOR_<OPTION>` variables override it; the
    /// command line overrides both.
    #[arg(long, global = true)]
    config: Option<std::path::PathBuf>,
    /// Log lines as text, or as JSON objects (one per line, with the
    /// request's span — its `request_id` — on every line of a request).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Starts the whole system on its embedded defaults: the devnet and the
    /// indexer subscribed to it.
    Up(Box<UpArgs>),
    /// Runs the embedded Stacks devnet alone.
    Devnet(DevnetArgs),
    /// Contract tools.
    Contracts {
        #[command(subcommand)]
        command: ContractsCommand,
    },
    /// The wallet: keys, patient and provider transactions, consent checks.
    Wallet {
        #[command(subcommand)]
        command: wallet::WalletCommand,
    },
    /// Verifies records and the audit log against the chain, without
    /// trusting the API (exit 0 only when everything checks).
    Verify {
        #[command(subcommand)]
        command: verify::VerifyCommand,
    },
    /// Sharing at the clinic desk: 6-digit access codes and signed QR
    /// links (patients make and revoke; providers redeem; anyone verifies a
    /// scanned QR offline).
    Share {
        #[command(subcommand)]
        command: share::ShareCommand,
    },
    /// The object store: what it holds per tenant and class, its growth
    /// and estimated cost (an admin's session).
    Storage {
        #[command(subcommand)]
        command: storage::StorageCommand,
    },
    /// Key maintenance: rotate the key-encryption key (API stopped).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Backups of a stopped node's data: create, list, verify, restore,
    /// prune.
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// The indexer alone, behind any stacks-node (`replay` rebuilds it).
    #[command(args_conflicts_with_subcommands = true)]
    Indexer {
        #[command(subcommand)]
        command: Option<IndexerCommand>,
        #[command(flatten)]
        args: indexer::IndexerArgs,
    },
    /// The whole story against a running `medanchor up`: consent, a record
    /// written and read, revocation, the access log, verification.
    Demo(demo::DemoArgs),
    /// The configuration: `check` reads `medanchor.toml` and the
    /// environment as `up` would and shows every setting and its source
    /// (secrets hidden); unknown keys are errors.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Exports a patient's data as the API gives it to you (a session
    /// token in `MEDANCHOR_API_TOKEN`): PDF, JSON, CSV or FHIR R4, with
    /// its signature; check it with `verify export`.
    Export(export::ExportArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Checks the configuration file and prints the settings `up` would
    /// start with, and where each comes from.
    Check,
}

#[derive(Debug, Subcommand)]
enum IndexerCommand {
    /// Rebuilds the index from a Hiro event-log TSV or a stopped devnet's
    /// stored blocks.
    Replay(indexer::ReplayArgs),
}

/// Options of `medanchor up`.
#[derive(Debug, clap::Args)]
struct UpArgs {
    #[command(flatten)]
    devnet: DevnetArgs,
    /// The indexer's event-observer address, where the devnet posts its
    /// blocks: trusted input, loopback or a private network only (unless
    /// `--indexer-observer-allow-public`). `--indexer-bind` is an alias.
    #[arg(long, alias = "indexer-bind", default_value = "127.0.0.1:3700")]
    indexer_observer_bind: std::net::SocketAddr,
    /// The indexer's read-only query address (`/v1/…`).
    #[arg(long, default_value = "127.0.0.1:3999")]
    indexer_query_bind: std::net::SocketAddr,
    /// Let the indexer's observer listen on an address that is neither
    /// loopback nor private (whoever reaches it can write the index).
    #[arg(long)]
    indexer_observer_allow_public: bool,
    /// Where the index lives.
    #[arg(long, default_value = ".medanchor/indexer")]
    indexer_data_dir: std::path::PathBuf,
    /// The API's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    api_bind: std::net::SocketAddr,
    /// Where the API keeps record metadata, the audit log and ciphertext.
    #[arg(long, default_value = ".medanchor/api")]
    api_data_dir: std::path::PathBuf,
    /// Key-encryption keys and the node's signing key (kept apart from the
    /// data they protect).
    #[arg(long, default_value = ".medanchor/keys")]
    keys_dir: std::path::PathBuf,
    /// Devnet accounts whose keys the API holds to sign for them
    /// (custodial providers, for hospital systems).
    #[arg(long = "custodial", default_values_t = ["wallet_2".to_string(), "wallet_3".to_string()])]
    custodial: Vec<String>,
    #[command(flatten)]
    storage: api::StorageArgs,
    /// The tenants the API serves besides `default` (and `default`'s own
    /// members and limits), from a TOML file (see ARCHITECTURE.md); a
    /// request names its tenant in `X-Tenant-ID` once there are several.
    #[arg(long)]
    tenants: Option<std::path::PathBuf>,
    #[command(flatten)]
    backup: backup::ScheduleArgs,
}

/// The indexer part of `medanchor up`.
struct IndexerUp {
    observer_bind: std::net::SocketAddr,
    query_bind: std::net::SocketAddr,
    data_dir: std::path::PathBuf,
}

/// The API part of `medanchor up`.
struct ApiArgs {
    bind: std::net::SocketAddr,
    data_dir: std::path::PathBuf,
    keys_dir: std::path::PathBuf,
    custodial: Vec<String>,
    storage: api::StorageArgs,
    backup: backup::ScheduleArgs,
    tenants: tenants::TenantsFile,
}

#[derive(Debug, Subcommand)]
enum ContractsCommand {
    /// Prints the runtime/read/write cost of each public function and how
    /// many calls fit in one mainnet block.
    Costs {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Options of the devnet node.
#[derive(Debug, clap::Args)]
struct DevnetArgs {
    /// Where chain data lives.
    #[arg(long, default_value = ".medanchor/devnet")]
    data_dir: std::path::PathBuf,
    /// The RPC address (loopback by default).
    #[arg(long, default_value = "127.0.0.1:20443")]
    rpc_bind: std::net::SocketAddr,
    /// Milliseconds between blocks; 0 mines only on demand (POST /devnet/mine).
    #[arg(long, default_value_t = 1000)]
    block_time_ms: u64,
    /// Burn blocks each Stacks block advances.
    #[arg(long, default_value_t = 1)]
    burn_blocks_per_block: u32,
    /// An event observer `host:port` (repeatable), as stacks-node's `[[events_observer]]`.
    #[arg(long = "observer")]
    observers: Vec<String>,
    /// Clarinet-format Devnet.toml with the genesis accounts (default: the embedded one).
    #[arg(long)]
    devnet_toml: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    // The file and the environment fill in what the command line leaves
    // out; an unreadable file or an unknown key stops here.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let resolved = config::File::locate(&raw)
        .map(|p| config::File::load(&p))
        .transpose()
        .map(Option::unwrap_or_default)
        .and_then(|file| config::resolve(raw, &file).map(|(args, _)| (args, file)));
    let (args, file) = match resolved {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(args);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        // The current span (a request's, with its `request_id`) and its
        // parents on every line.
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(true).init(),
    }
    match run(cli, file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, file: config::File) -> anyhow::Result<()> {
    match cli.command {
        Command::Config { command: ConfigCommand::Check } => config::check(&file),
        Command::Contracts { command: ContractsCommand::Costs { json } } => costs(json),
        Command::Up(args) => {
            let mut args = *args;
            args.storage.anomaly = file.anomaly;
            indexer::check_binds(
                args.indexer_observer_bind,
                args.indexer_query_bind,
                args.indexer_observer_allow_public,
                "--indexer-observer-allow-public",
            )?;
            let index = IndexerUp {
                observer_bind: args.indexer_observer_bind,
                query_bind: args.indexer_query_bind,
                data_dir: args.indexer_data_dir,
            };
            let api = ApiArgs {
                bind: args.api_bind,
                data_dir: args.api_data_dir,
                keys_dir: args.keys_dir,
                custodial: args.custodial,
                storage: args.storage,
                backup: args.backup,
                tenants: match &args.tenants {
                    Some(path) => tenants::TenantsFile::load(path)?,
                    None => tenants::TenantsFile::default(),
                },
            };
            devnet(args.devnet, Some((index, api)))
        }
        Command::Devnet(args) => devnet(args, None),
        Command::Indexer { command: None, args } => indexer::run(args),
        Command::Indexer { command: Some(IndexerCommand::Replay(args)), .. } => indexer::replay(args),
        Command::Wallet { command } => wallet::run(command),
        Command::Keys { command } => keys::run(command),
        Command::Backup { command } => backup::run(command),
        Command::Storage { command } => storage::run(command),
        Command::Verify { command } => verify::run(command),
        Command::Share { command } => share::run(command),
        Command::Demo(args) => demo::run(args),
        Command::Export(args) => export::run(args),
    }
}

fn costs(json: bool) -> anyhow::Result<()> {
    let lines = cost_report().context("running the cost scenario")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(());
    }
    let limit = Cost::MAINNET_BLOCK_LIMIT;
    println!(
        "Mainnet block budget: runtime {}, read_count {}, read_length {}, write_count {}, write_length {}\n",
        limit.runtime, limit.read_count, limit.read_length, limit.write_count, limit.write_length
    );
    println!(
        "{:<18} {:<27} {:>9} {:>6} {:>8} {:>6} {:>7} {:>10}  limited by",
        "contract", "function", "runtime", "reads", "read_len", "writes", "wr_len", "per block"
    );
    for l in &lines {
        println!(
            "{:<18} {:<27} {:>9} {:>6} {:>8} {:>6} {:>7} {:>10}  {}",
            l.contract,
            l.function,
            l.cost.runtime,
            l.cost.read_count,
            l.cost.read_length,
            l.cost.write_count,
            l.cost.write_length,
            l.per_block,
            l.limited_by
        );
    }
    Ok(())
}

/// Runs the devnet; with `indexer` also the indexer, subscribed to the
/// devnet as an event observer, and the API (`medanchor up`).
fn devnet(args: DevnetArgs, indexer: Option<(IndexerUp, ApiArgs)>) -> anyhow::Result<()> {
    use medanchor_devnet::node::{Node, NodeConfig};
    use medanchor_wallet::accounts::{load_accounts, parse_accounts, DEFAULT_DEVNET_TOML};

    let accounts = match &args.devnet_toml {
        Some(path) => load_accounts(path)?,
        None => parse_accounts(DEFAULT_DEVNET_TOML, "embedded Devnet.toml")?,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let deployer = medanchor_contracts::DEPLOYER_ADDRESS;
        let mut config = NodeConfig::new(args.data_dir.clone(), accounts.clone());
        config.block_interval = (args.block_time_ms > 0).then(|| std::time::Duration::from_millis(args.block_time_ms));
        config.burn_blocks_per_block = args.burn_blocks_per_block;
        config.observers = args.observers.clone();
        let (indexer, api) = match indexer {
            None => (None, None),
            Some((up, api)) => {
                let (observer, query) = indexer::bind(up.observer_bind, up.query_bind).await?;
                config.observers.push(observer.local_addr()?.to_string());
                (Some((observer, query, up.data_dir)), Some(api))
            }
        };
        let node = Node::open(config).with_context(|| format!("opening the chain in {}", args.data_dir.display()))?;
        let indexer = match indexer {
            None => None,
            Some((observer, query, dir)) => Some((catch_up(&node, &dir, deployer)?, observer, query, dir)),
        };
        let listener = tokio::net::TcpListener::bind(args.rpc_bind)
            .await
            .with_context(|| format!("binding the RPC address {}", args.rpc_bind))?;
        let addr = listener.local_addr()?;
        {
            let state = node.lock();
            let tip = state.chain.tip();
            println!("medanchor devnet: Stacks RPC on http://{addr} (chain id 0x80000000, testnet addresses)");
            println!(
                "  tip height {}, burn height {}, data in {}",
                tip.height,
                tip.burn_block_height,
                args.data_dir.display()
            );
        }
        println!("  contracts: {deployer}.patient-consent, {deployer}.record-management");
        for o in &args.observers {
            println!("  event observer: http://{o}");
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let mut api_task = None;
        let indexer_task = match indexer {
            None => None,
            Some((index, observer, query, dir)) => {
                let (at, query_at) = (observer.local_addr()?, query.local_addr()?);
                println!(
                    "medanchor indexer: queries on http://{query_at} (e.g. http://{query_at}/v1/status), \
                     the devnet's events on http://{at}, data in {}",
                    dir.display()
                );
                if let Some(api) = &api {
                    let api_listener = tokio::net::TcpListener::bind(api.bind)
                        .await
                        .with_context(|| format!("binding the API address {}", api.bind))?;
                    let api_at = api_listener.local_addr()?;
                    let custodial: Vec<_> =
                        accounts.iter().filter(|a| api.custodial.contains(&a.name)).cloned().collect();
                    let (task, tenants, anchoring) = api::start(
                        &index,
                        &format!("http://{addr}"),
                        api_listener,
                        &api.data_dir,
                        &api.keys_dir,
                        &custodial,
                        &accounts,
                        &api.storage,
                        &api.tenants,
                        stopped(),
                    )?;
                    api_task = Some(task);
                    let sources = [("devnet", &args.data_dir), ("indexer", &dir), ("api", &api.data_dir)]
                        .map(|(name, dir)| medanchor_backup::Source { name: name.into(), dir: dir.clone() })
                        .to_vec();
                    let running = backup::Running {
                        sources,
                        keys_dir: api.keys_dir.clone(),
                        node: node.clone(),
                        index: index.clone(),
                        tenants: tenants.clone(),
                    };
                    let backups = std::sync::Arc::new(backup::NodeBackups::new(running, api.backup.clone()));
                    tenants[0].set_backups(backups.clone());
                    // One scheduler per tenant for its periodic jobs; the
                    // node's backups are the first tenant's. The holder
                    // names this process in the jobs' leases.
                    let started = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    let holder = format!("pid {} started {started}", std::process::id());
                    for (i, tenant) in tenants.iter().enumerate() {
                        let mut scheduler = tenant.scheduler(&holder);
                        for (spec, run) in anchoring.iter().flat_map(|a| a.jobs(tenant, i == 0)) {
                            scheduler.add(spec, run);
                        }
                        if i == 0 {
                            if let Some((spec, run)) = backup::backup_job(backups.clone(), tenant.clone()) {
                                scheduler.add(spec, run);
                                println!(
                                    "  backups: every {} s to {} (verified; kept {} days); GET /v1/admin/backups",
                                    api.backup.backup_every_secs,
                                    api.backup.backup_to.display(),
                                    api.backup.backup_retain_days
                                );
                            }
                        }
                        tenant.set_jobs(scheduler.specs());
                        // Four ticks a second: a job due every second runs
                        // every second, not every other.
                        scheduler.spawn(std::time::Duration::from_millis(250));
                    }
                    let audit_log = accounts
                        .iter()
                        .find(|a| a.name == "faucet")
                        .map(|a| medanchor_wallet::testnet_address(&a.key).to_string());
                    backup::spawn_reconciliation(&api.data_dir, tenants, format!("http://{addr}"), audit_log);
                    println!("medanchor portal: http://{api_at}/ (sign in with a Stacks wallet or the devnet's development wallet)");
                    println!(
                        "medanchor api: http://{api_at} (sign in at POST /v1/auth/challenge; /readyz, /metrics), data in {}, keys in {}",
                        api.data_dir.display(),
                        api.keys_dir.display()
                    );
                    println!(
                        "  custodial provider keys: {}; admin: deployer; auditor: faucet",
                        api.custodial.join(", ")
                    );
                    println!(
                        "  sharing: POST /v1/share/codes (or `medanchor share create --devnet-account wallet_1 \
                         --types lab-results --qr --png qr.png`); QR issuer key at GET /v1/share/issuer"
                    );
                }
                let rpc = Some(format!("http://{addr}"));
                Some(tokio::spawn(medanchor_indexer::server::serve(index, rpc, observer, query, stopped())))
            }
        };
        if indexer_task.is_some() {
            println!("\nDevnet accounts (public test keys from Devnet.toml; never for real funds):");
            for a in &accounts {
                let address = a.key.address(medanchor_wallet::keys::TESTNET_SINGLESIG);
                println!("  {:<9} {address}  {} STX", a.name, a.balance / 1_000_000);
            }
            println!("\nCtrl-C stops everything.");
        }
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            println!("shutting down");
            let _ = stop_tx.send(true);
        });
        let result = node.run(listener, stopped()).await.map_err(anyhow::Error::from);
        if let Some(task) = indexer_task {
            task.await.context("indexer task")?.context("indexer server")?;
        }
        if let Some(task) = api_task {
            task.await.context("api task")?.context("api server")?;
        }
        result
    })
}

/// Opens the index in `dir` and brings it up to the devnet before the node
/// starts delivering. An empty index is built from the stored blocks (the
/// node's delivery cursor may already be past them) and one behind the
/// devnet catches up from them. An index that is not the devnet's — its
/// tip is not the devnet's block at that height (built from another chain,
/// or left on a forged block), or written by a newer build (older ones
/// migrate forward on open) — is moved aside, with a warning, and rebuilt
/// from the stored blocks: `up` always starts, and nothing is deleted.
fn catch_up(
    node: &medanchor_devnet::node::Node,
    dir: &std::path::Path,
    deployer: &str,
) -> anyhow::Result<medanchor_indexer::Indexer> {
    use medanchor_indexer::ChainReader;
    let state = node.lock();
    let reason = match indexer::open(dir, deployer, 10_000) {
        Ok(index) => {
            let status = medanchor_indexer::query::IndexReader::new(index.db().clone()).status()?;
            let reason = match (status.tip_height, status.tip_index_block_hash) {
                (None, _) => {
                    let applied = indexer::replay_devnet(&index, &state.chain, 0, &|_, _| {})?;
                    tracing::info!(blocks = applied, "index built from the devnet's stored blocks");
                    return Ok(index);
                }
                (Some(height), Some(hash)) => {
                    let ours = state.chain.block(height)?.map(|b| BlockHash(b.header.index_block_hash));
                    if ours == Some(hash) {
                        if height < state.chain.tip().height {
                            let applied = indexer::replay_devnet(&index, &state.chain, height + 1, &|_, _| {})?;
                            tracing::info!(blocks = applied, "index caught up from the devnet's stored blocks");
                        }
                        return Ok(index);
                    }
                    format!("its block {height} ({hash}) is not this devnet's")
                }
                (Some(height), None) => format!("its tip at height {height} has no hash"),
            };
            // Closes the database before it is moved.
            drop(index);
            reason
        }
        Err(e) => match e.downcast_ref::<medanchor_indexer::Error>() {
            Some(schema @ medanchor_indexer::Error::Schema { .. }) => schema.to_string(),
            _ => return Err(e),
        },
    };
    let aside = aside_path(dir);
    std::fs::rename(dir, &aside).with_context(|| format!("moving {} aside to {}", dir.display(), aside.display()))?;
    tracing::warn!(
        index = %dir.display(),
        moved_to = %aside.display(),
        "the index is not this devnet's ({reason}): built from another chain, left on a block the devnet does not \
         have, or by a newer build. Moved aside and rebuilt from the devnet's stored blocks"
    );
    let index = indexer::open(dir, deployer, 10_000)?;
    let applied = indexer::replay_devnet(&index, &state.chain, 0, &|_, _| {})?;
    tracing::info!(blocks = applied, "index rebuilt from the devnet's stored blocks");
    Ok(index)
}

/// `{dir}.aside-{UTC time}`, not yet used.
fn aside_path(dir: &std::path::Path) -> std::path::PathBuf {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let stamp = client::utc(ms).replace(" UTC", "Z").replace(['-', ':'], "").replace(' ', "T");
    let name = dir.file_name().map_or_else(|| "indexer".into(), |n| n.to_string_lossy().into_owned());
    let base = dir.with_file_name(format!("{name}.aside-{stamp}"));
    let mut candidate = base.clone();
    let mut n = 1;
    while candidate.exists() {
        n += 1;
        candidate = std::path::PathBuf::from(format!("{}-{n}", base.display()));
    }
    candidate
}
