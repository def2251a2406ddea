//! `medanchor indexer …`: the indexer alone (behind any stacks-node), and
//! its replays (a Hiro event-log TSV, or the devnet's stored blocks).

use std::path::{Path, PathBuf};

use anyhow::Context;
use medanchor_indexer::{replay, Indexer, IndexerConfig, Outcome};

/// Options of the indexer service.
#[derive(Debug, Clone, clap::Args)]
pub struct IndexerArgs {
    /// Where the index lives.
    #[arg(long, default_value = ".medanchor/indexer")]
    pub data_dir: PathBuf,
    /// The event-observer address stacks-node POSTs to (Hiro's event port).
    /// Trusted input, without authentication: loopback or a private
    /// network only, unless `--observer-allow-public`.
    #[arg(long, default_value = "127.0.0.1:3700")]
    pub observer_bind: std::net::SocketAddr,
    /// The read-only query address (`/v1/…`).
    #[arg(long, default_value = "127.0.0.1:3999")]
    pub query_bind: std::net::SocketAddr,
    /// Let the observer listen on an address that is neither loopback nor
    /// private. Whoever can reach it can write the index: put something
    /// in front of it that only lets the node through.
    #[arg(long)]
    pub observer_allow_public: bool,
    /// The node's RPC, for `/v1/status` to report the lag (optional).
    #[arg(long)]
    pub node_rpc: Option<String>,
    /// The address that deployed patient-consent and record-management
    /// (default: the devnet's deployer).
    #[arg(long, default_value = medanchor_contracts::DEPLOYER_ADDRESS)]
    pub deployer: String,
    /// Blocks of undo kept: the deepest re-org the index can follow.
    #[arg(long, default_value_t = 10_000)]
    pub undo_depth: u64,
}

/// `medanchor indexer replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// A Hiro event-log TSV (`id, timestamp, path, json`).
    #[arg(long, conflicts_with = "devnet_data", required_unless_present = "devnet_data")]
    pub tsv: Option<PathBuf>,
    /// A stopped devnet's data directory: replay its stored blocks.
    #[arg(long)]
    pub devnet_data: Option<PathBuf>,
    /// Where the index lives (created if absent).
    #[arg(long, default_value = ".medanchor/indexer")]
    pub data_dir: PathBuf,
    /// The deployer of the contracts.
    #[arg(long, default_value = medanchor_contracts::DEPLOYER_ADDRESS)]
    pub deployer: String,
}

/// Opens the index for these options.
pub fn open(data_dir: &Path, deployer: &str, undo_depth: u64) -> anyhow::Result<Indexer> {
    deployer
        .parse::<medanchor_contracts::Principal>()
        .map_err(|e| anyhow::anyhow!("--deployer {deployer:?} is not a Stacks address: {e}"))?;
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let mut config = IndexerConfig::for_deployer(deployer);
    config.undo_depth = undo_depth;
    Indexer::open(data_dir, config).with_context(|| format!("opening the index in {}", data_dir.display()))
}

/// Refuses an observer address anyone could reach (see
/// [`medanchor_indexer::server::observer_bind_allowed`]) unless
/// `allow_public`, and an observer address equal to the query address.
/// `flag` names the override in the error.
pub fn check_binds(
    observer: std::net::SocketAddr,
    query: std::net::SocketAddr,
    allow_public: bool,
    flag: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        allow_public || medanchor_indexer::server::observer_bind_allowed(observer.ip()),
        "the observer address {observer} is neither loopback nor private: whoever can reach it can write the index \
         (a forged block is applied like the node's). Bind it to loopback or a private network the node shares, \
         or pass {flag} if something in front of it lets only the node through"
    );
    anyhow::ensure!(
        observer != query || observer.port() == 0,
        "the observer and query addresses are both {observer}: they must differ (the observer is trusted input, \
         the queries are public)"
    );
    Ok(())
}

/// Binds the observer and query listeners.
pub async fn bind(
    observer: std::net::SocketAddr,
    query: std::net::SocketAddr,
) -> anyhow::Result<(tokio::net::TcpListener, tokio::net::TcpListener)> {
    let observer_listener = tokio::net::TcpListener::bind(observer)
        .await
        .with_context(|| format!("binding the indexer's observer address {observer}"))?;
    let query_listener = tokio::net::TcpListener::bind(query)
        .await
        .with_context(|| format!("binding the indexer's query address {query}"))?;
    Ok((observer_listener, query_listener))
}

/// Runs the indexer alone until Ctrl-C.
pub fn run(args: IndexerArgs) -> anyhow::Result<()> {
    check_binds(args.observer_bind, args.query_bind, args.observer_allow_public, "--observer-allow-public")?;
    let indexer = open(&args.data_dir, &args.deployer, args.undo_depth)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let (observer, query) = bind(args.observer_bind, args.query_bind).await?;
        let (at, query_at) = (observer.local_addr()?, query.local_addr()?);
        println!("medanchor indexer: observer on http://{at} (point stacks-node's [[events_observer]] here)");
        println!("  queries: http://{query_at}/v1/status, data in {}", args.data_dir.display());
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            println!("shutting down");
        };
        medanchor_indexer::server::serve(indexer, args.node_rpc, observer, query, shutdown)
            .await
            .context("indexer server")
    })
}

/// Replays a TSV or a devnet's blocks into the index.
pub fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let indexer = open(&args.data_dir, &args.deployer, 10_000)?;
    if let Some(tsv) = &args.tsv {
        let spinner = crate::progress::ProgressBar::spinner("replaying the event log");
        let stats = replay::replay_tsv(&indexer, tsv);
        spinner.finish();
        println!("{}", serde_json::to_string_pretty(&stats?)?);
        return Ok(());
    }
    let dir = args.devnet_data.as_deref().context("--tsv or --devnet-data is required")?;
    let accounts = medanchor_wallet::accounts::parse_accounts(
        medanchor_wallet::accounts::DEFAULT_DEVNET_TOML,
        "embedded Devnet.toml",
    )?;
    let config = medanchor_devnet::genesis::chain_config(&accounts, 0)?;
    let chain_dir = dir.join("chain");
    anyhow::ensure!(chain_dir.exists(), "{} holds no devnet chain", dir.display());
    let chain = medanchor_devnet::chain::Chain::open(&chain_dir, config)
        .with_context(|| format!("opening {} (stop the devnet first)", chain_dir.display()))?;
    let bar = crate::progress::ProgressBar::items("replaying", "blocks");
    let applied = replay_devnet(&indexer, &chain, 0, &|done, total| bar.show(done, total));
    bar.finish();
    println!("replayed {} devnet blocks into {}", applied?, args.data_dir.display());
    Ok(())
}

/// Feeds the devnet's stored blocks from `from` to its tip into `indexer`,
/// as the node's `/new_block` payloads, telling `progress` (blocks done,
/// of how many). Returns how many were applied.
pub fn replay_devnet(
    indexer: &Indexer,
    chain: &medanchor_devnet::chain::Chain,
    from: u64,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<usize> {
    let mut applied = 0;
    let mut parent = if from == 0 { None } else { chain.block(from - 1)?.map(|b| b.header) };
    let tip = chain.tip().height;
    for height in from..=tip {
        progress(height - from, tip + 1 - from);
        let block = chain.block(height)?.with_context(|| format!("devnet block {height} is missing"))?;
        for (path, body) in medanchor_devnet::observer::block_payloads(&block, parent.as_ref()) {
            let body = serde_json::to_vec(&body)?;
            match path.as_str() {
                "/new_block" => {
                    if let Outcome::Applied { .. } = indexer.ingest_json(&body)? {
                        applied += 1;
                    }
                }
                "/new_burn_block" => indexer.ingest_burn_block(&body)?,
                _ => {}
            }
        }
        parent = Some(block.header);
    }
    Ok(applied)
}
