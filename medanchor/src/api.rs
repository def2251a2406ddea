//! The API as `medanchor up` runs it: in-process beside the devnet and the
//! indexer, reading the index directly and signing through the node's RPC.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use medanchor_api::app::{self, ApiConfig, AppState, Custody};
use medanchor_api::auth::SessionKey;
use medanchor_api::blob::{BlobStore, LocalDir};
use medanchor_api::db::ApiDb;
use medanchor_api::envelope::Keyring;
use medanchor_indexer::query::IndexReader;
use medanchor_indexer::Indexer;
use medanchor_wallet::accounts::DevnetAccount;
use medanchor_wallet::RpcClient;
use rand::RngCore;

/// The node's Ed25519 session/checkpoint key: `keys/session.key` (hex,
/// 0600), created on first start.
fn session_key(keys: &Path) -> anyhow::Result<SessionKey> {
    let path = keys.join("session.key");
    let secret: [u8; 32] = if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("{} is not 32 bytes of hex", path.display()))?
    } else {
        let mut s = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut s);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&path).with_context(|| format!("creating {}", path.display()))?;
        std::io::Write::write_all(&mut f, hex::encode(s).as_bytes())?;
        f.sync_all()?;
        s
    };
    Ok(SessionKey::from_bytes(&secret))
}

/// Starts the API on `listener`; returns its server task and the tracker.
pub fn start(
    index: &Indexer,
    rpc: &str,
    listener: tokio::net::TcpListener,
    data_dir: &Path,
    keys_dir: &Path,
    custodial: &[DevnetAccount],
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let keyring = Keyring::open(keys_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let session = session_key(keys_dir)?;
    let db = Arc::new(ApiDb::open(&data_dir.join("db")).map_err(|e| anyhow::anyhow!("{e}"))?);
    let blobs: Arc<dyn BlobStore> =
        Arc::new(LocalDir::open(&data_dir.join("blobs")).map_err(|e| anyhow::anyhow!("{e}"))?);
    let mut custody = Custody::default();
    for a in custodial {
        custody.insert(a.key.clone());
    }
    let config = ApiConfig::new("default", medanchor_contracts::DEPLOYER_ADDRESS);
    let reader = IndexReader::new(index.db().clone());
    let state = AppState::new(config, db, blobs, keyring, session, Arc::new(reader), RpcClient::new(rpc)?, custody);
    app::spawn_tracker(state.clone(), Duration::from_millis(500));
    let router = app::router(state);
    Ok(tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
    }))
}
