//! `medanchor keys`: key-encryption-key maintenance on a stopped API.
//!
//! `rotate` adds a KEK version and rewraps every stored data key under it
//! ([`medanchor_api::rotate::rewrap_all`]): payloads are never decrypted,
//! blobs and their on-chain anchors never change. Nothing here prints key
//! material — only versions and counts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use medanchor_api::db::{ApiDb, DbError};
use medanchor_api::envelope::Keyring;
use medanchor_api::rotate::rewrap_all;

/// `medanchor keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Creates a new KEK version and rewraps every record version's data
    /// key under it, without decrypting payloads. Run it while
    /// `medanchor up` is stopped.
    Rotate(RotateArgs),
}

/// Options of `medanchor keys rotate`.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// The KEK directory (as `medanchor up --keys-dir`).
    #[arg(long, default_value = ".medanchor/keys")]
    keys_dir: PathBuf,
    /// The API's data directory (as `medanchor up --api-data-dir`).
    #[arg(long, default_value = ".medanchor/api")]
    api_data_dir: PathBuf,
    /// The tenant whose keys to rotate (`default`, or one of `up
    /// --tenants`: its KEKs and data under `tenants/{id}/` of both
    /// directories).
    #[arg(long, default_value = "default")]
    tenant: String,
}

/// Runs a `keys` subcommand.
pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate(args) => rotate(&args),
    }
}

fn has_kek(dir: &Path) -> bool {
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with("kek-") && name.ends_with(".key")
    })
}

fn rotate(args: &RotateArgs) -> anyhow::Result<()> {
    let (api_data_dir, keys_dir) = crate::tenants::dirs(&args.api_data_dir, &args.keys_dir, &args.tenant);
    let args = RotateArgs { keys_dir, api_data_dir, tenant: args.tenant.clone() };
    let args = &args;
    // Refuse paths that hold nothing yet: opening them would quietly
    // create an empty database or a first KEK, and a typo would then
    // "succeed" without touching the real data.
    let db_path = args.api_data_dir.join("db");
    anyhow::ensure!(
        db_path.is_dir(),
        "no API database in {} (run `medanchor up` once, or pass --api-data-dir)",
        args.api_data_dir.display()
    );
    anyhow::ensure!(
        has_kek(&args.keys_dir),
        "no key-encryption keys (kek-<n>.key) in {} (pass --keys-dir)",
        args.keys_dir.display()
    );
    // The database first: if the API holds its lock, stop before a KEK
    // version is created that the running API would not know about.
    let db = ApiDb::open(&db_path).map_err(|e| match e {
        DbError::Storage(detail) if detail.to_ascii_lowercase().contains("lock") => anyhow::anyhow!(
            "the API database in {} is in use by another process: stop medanchor up first ({detail})",
            db_path.display()
        ),
        other => anyhow::anyhow!("opening {}: {other}", db_path.display()),
    })?;
    let mut keyring = Keyring::open(&args.keys_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let version = keyring.rotate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let rewrapped = rewrap_all(&db, &keyring, &args.tenant).map_err(anyhow::Error::new).with_context(|| {
        // Safe to rerun: KEK version `version` is kept, every record still
        // opens under the KEK its metadata names, and finished ones are
        // skipped.
        format!(
            "rewrapping data keys under KEK version {version} (tenant {:?}); fix the cause and run again",
            args.tenant
        )
    })?;
    let held: Vec<String> = keyring.versions().iter().map(u32::to_string).collect();
    println!("KEK version {version} created in {}", args.keys_dir.display());
    println!("record versions rewrapped: {rewrapped}");
    println!("KEK versions held: {} ({})", held.len(), held.join(", "));
    Ok(())
}
