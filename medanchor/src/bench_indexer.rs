//! `medanchor bench indexer`: event ingest through the HTTP observer
//! endpoint versus the same writes straight into RocksDB, and query
//! latency over a large index.

/// Options of `medanchor bench indexer`.
#[derive(Debug, Clone, clap::Args)]
pub struct IndexerBenchArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark and prints its report.
pub fn run(_args: IndexerBenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
