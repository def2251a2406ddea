//! The `medanchor` command.

mod bench;
mod bench_indexer;
mod wallet;

use std::process::ExitCode;

// The Clarity VM allocates and frees small objects at a furious rate
// (every value, every cost evaluation); mimalloc handles that pattern far
// better than glibc's allocator (see `medanchor bench devnet`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use medanchor_devnet::costs::cost_report;
use medanchor_devnet::vm::Cost;

/// medanchor: patient-controlled medical data anchored on Stacks.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Starts the whole system on its embedded defaults (today: the devnet).
    Up(DevnetArgs),
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
    /// Benchmarks, each printing its ratio against the named baseline.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Signed grant-consent transactions over HTTP to a devnet node versus
    /// the same calls through Clarinet's simnet.
    Devnet(bench::DevnetBenchArgs),
    /// Event ingest over HTTP versus raw RocksDB writes, and query latency
    /// over a large index.
    Indexer(bench_indexer::IndexerBenchArgs),
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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Contracts { command: ContractsCommand::Costs { json } } => costs(json),
        Command::Up(args) => devnet(args, true),
        Command::Devnet(args) => devnet(args, false),
        Command::Wallet { command } => wallet::run(command),
        Command::Bench { command: BenchCommand::Devnet(args) } => bench::run(args),
        Command::Bench { command: BenchCommand::Indexer(args) } => bench_indexer::run(args),
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

fn devnet(args: DevnetArgs, banner: bool) -> anyhow::Result<()> {
    use medanchor_devnet::genesis;
    use medanchor_devnet::node::{Node, NodeConfig};

    let accounts = match &args.devnet_toml {
        Some(path) => genesis::load_accounts(path)?,
        None => genesis::parse_accounts(genesis::DEFAULT_DEVNET_TOML, "embedded Devnet.toml")?,
    };
    let mut config = NodeConfig::new(args.data_dir.clone(), accounts.clone());
    config.block_interval = (args.block_time_ms > 0).then(|| std::time::Duration::from_millis(args.block_time_ms));
    config.burn_blocks_per_block = args.burn_blocks_per_block;
    config.observers = args.observers.clone();
    let node = Node::open(config).with_context(|| format!("opening the chain in {}", args.data_dir.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
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
        let deployer = medanchor_contracts::DEPLOYER_ADDRESS;
        println!("  contracts: {deployer}.patient-consent, {deployer}.record-management");
        for o in &args.observers {
            println!("  event observer: http://{o}");
        }
        if banner {
            println!("\nDevnet accounts (public test keys from Devnet.toml; never for real funds):");
            for a in &accounts {
                let address = a.key.address(medanchor_devnet::keys::TESTNET_SINGLESIG);
                println!("  {:<9} {address}  {} STX", a.name, a.balance / 1_000_000);
            }
            println!("\nNot built yet: the indexer and the API. Ctrl-C stops the node.");
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            println!("shutting down");
        };
        node.run(listener, shutdown).await.map_err(anyhow::Error::from)
    })
}
