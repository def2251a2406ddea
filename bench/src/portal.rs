//! `medanchor-bench portal`: each portal page's cold first render in
//! headless Chromium (`tests/js/portal-bench.mjs`, playwright-core driving
//! Debian's chromium) against the same HTML served as a static file in the
//! same run, and the bytes each page transfers. The portal runs over a
//! real devnet, indexer and service, with a consenting provider and
//! records.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use medanchor_wallet::accounts::{parse_accounts, DEFAULT_DEVNET_TOML};

use crate::api::{prepare, start_with};

/// Arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PortalBenchArgs {
    /// Cold loads per page (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark.
pub fn run(args: PortalBenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be positive");
    }
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js");
    if !js.join("node_modules/playwright-core").exists() {
        bail!("tests/js has no node_modules: run ./scripts/test once (or `npm install` in tests/js)");
    }
    let accounts = parse_accounts(DEFAULT_DEVNET_TOML, "Devnet.toml")?;
    let faucet = accounts.iter().find(|a| a.name == "faucet").context("no faucet account")?;
    let auditor = medanchor_wallet::testnet_address(&faucet.key);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let sys = start_with(|c| c.auditors = vec![auditor]).await?;
        let (_, ids) = prepare(&sys, 5).await?;
        let patient = sys.principal("wallet_1")?.to_string();
        let portal = medanchor_portal::router(
            vec![sys.state.clone()],
            medanchor_portal::PortalConfig { dev_accounts: medanchor_portal::DevAccount::from_devnet(&accounts) },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let front = medanchor_api::FrontEnd { router: portal, serves: medanchor_portal::serves };
        tokio::spawn(medanchor_api::serve_with(listener, vec![sys.state.clone()], Some(front), std::future::pending()));
        let record = ids.first().context("no record")?.trim_start_matches("0x").to_string();
        let mut node = Command::new("node");
        node.arg("portal-bench.mjs")
            .current_dir(&js)
            .env("MEDANCHOR_URL", &url)
            .env("RECORD", record)
            .env("PATIENT", patient)
            .env("RUNS", args.runs.to_string());
        if args.json {
            node.env("JSON", "1");
        }
        let status = tokio::task::spawn_blocking(move || node.status()).await??;
        if !status.success() {
            bail!("the browser benchmark failed ({status})");
        }
        Ok(())
    })
}
