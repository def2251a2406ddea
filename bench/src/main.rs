//! `medanchor-bench`: the benchmarks, apart from the shipped `medanchor`
//! binary so their harnesses never weigh on its dependencies. Each prints
//! its result next to a baseline measured in the same run, and the ratio.

mod api;
mod attachments;
mod backup;
mod devnet;
mod export;
mod indexer;
mod latency;
mod oversight;
mod portal;
mod profile;
mod search;
mod share;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// As in `medanchor`: the Clarity VM's allocation pattern wants mimalloc,
// and the benchmarks must run the allocator the node runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// medanchor's benchmarks.
#[derive(Debug, Parser)]
#[command(name = "medanchor-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Signed grant-consent transactions over HTTP to a devnet node versus
    /// the same calls through Clarinet's simnet.
    Devnet(devnet::DevnetBenchArgs),
    /// Event ingest over HTTP versus raw RocksDB writes, and query latency
    /// over a large index.
    Indexer(indexer::IndexerBenchArgs),
    /// Consent-checked decrypted record reads over HTTP versus raw
    /// AES-256-GCM and SHA-256, and a large upload.
    Api(api::ApiBenchArgs),
    /// Access-code generation and redemption latency with 100,000 active
    /// codes, against a bare synced RocksDB write.
    Share(share::ShareBenchArgs),
    /// Patient health profile reads by a provider (the one rule per
    /// section), against a bare synced RocksDB write.
    Profile(profile::ProfileBenchArgs),
    /// Blind-index search over a million records, against a raw RocksDB
    /// prefix scan of the same ranges.
    Search(search::SearchBenchArgs),
    /// A 50 MB file through tus and back, on local disk and SeaweedFS,
    /// against raw crypto + synced write and the raw object store; and
    /// 10,000 file hashes anchored in one transaction.
    Attachments(attachments::AttachmentsBenchArgs),
    /// A backup and a verified restore of a 2 GB data set, against raw
    /// zstd + AES-256-GCM + synced write of the same bytes.
    Backup(backup::BackupBenchArgs),
    /// A patient's export of 1,000 records as a signed PDF and as a FHIR
    /// Bundle, against decrypting the same records.
    Export(export::ExportBenchArgs),
    /// The analytics dashboard at a million audit entries, against reading
    /// its counters' keys raw; the notification outbox's delivery rate,
    /// against raw POSTs.
    Oversight(oversight::OversightBenchArgs),
    /// Each portal page's cold first render in headless Chromium, against
    /// the same HTML as a static file; and the bytes each page transfers.
    Portal(portal::PortalBenchArgs),
}

fn main() -> ExitCode {
    // Synthetic workloads raise anomaly flags, each a warning on the log;
    // the benches' own output is what matters.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,medanchor_service::audit=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Devnet(args) => devnet::run(args),
        Command::Indexer(args) => indexer::run(args),
        Command::Api(args) => api::run(args),
        Command::Share(args) => share::run(args),
        Command::Profile(args) => profile::run(args),
        Command::Search(args) => search::run(args),
        Command::Attachments(args) => attachments::run(args),
        Command::Backup(args) => backup::run(args),
        Command::Export(args) => export::run(args),
        Command::Oversight(args) => oversight::run(args),
        Command::Portal(args) => portal::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
