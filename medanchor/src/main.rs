//! The `medanchor` command.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use medanchor_devnet::costs::cost_report;
use medanchor_devnet::vm::{ContractVm, Cost};

/// medanchor: patient-controlled medical data anchored on Stacks.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Starts what exists of the system on its embedded defaults.
    Up,
    /// Contract tools.
    Contracts {
        #[command(subcommand)]
        command: ContractsCommand,
    },
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
        Command::Up => up(),
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

/// Today the system is its contracts: `up` deploys them into the Clarity VM,
/// proves they load, and prints the devnet accounts. The devnet node (RPC,
/// blocks, persistence), the indexer and the API join here as they land.
fn up() -> anyhow::Result<()> {
    let vm = ContractVm::new().context("deploying the contracts into the Clarity VM")?;
    println!("medanchor: contracts deployed into the Clarity VM (Clarity 2, epoch 2.4):");
    for contract in medanchor_contracts::ContractName::ALL {
        println!("  {}.{}", medanchor_contracts::DEPLOYER_ADDRESS, contract.name());
    }
    println!("  burn height: {}", vm.burn_height());
    println!("\nDevnet accounts (public test keys from contracts/settings/Devnet.toml; never for real funds):");
    for (name, address) in [
        ("deployer", "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM"),
        ("wallet_1", "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5"),
        ("wallet_2", "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG"),
        ("wallet_3", "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC"),
        ("faucet", "STNHKEPYEPJ8ET55ZZ0M5A34J0R3N5FM2CMMMAZ6"),
    ] {
        println!("  {name:<9} {address}");
    }
    println!(
        "\nThe devnet node (stacks-node RPC on 127.0.0.1:20443), the indexer and the API are not part of this build yet;\n\
         see README.md for what runs today. Contract costs: `medanchor contracts costs`."
    );
    Ok(())
}
