//! `medanchor verify`: checks a record's ciphertext and the audit log
//! against the chain, trusting the API for nothing.
//!
//! The chain is read with read-only calls to a node the verifier chooses
//! (`get-anchor`, `get-record-version`, `get-record-info`,
//! `get-audit-head`); hashes and Merkle proofs are computed here. The API
//! is only a source of bytes (ciphertext, audit entries, proofs, its signed
//! checkpoint), each of which is checked against the chain before it is
//! believed.
//!
//! Every run prints what it checked and ends with one verdict line:
//! `VERIFIED: …` (exit 0), or `MISMATCH: …`, `NOT ANCHORED: …`,
//! `FAILED: …` (exit non-zero). An error reaching the node or the API is a
//! non-zero exit too: nothing unverified is ever reported as verified.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use medanchor_api::anchoring;
use medanchor_api::merkle;
use medanchor_contracts::{ClarityValue, ContractName};
use medanchor_wallet::RpcClient;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `medanchor verify …`.
#[derive(Debug, Subcommand)]
pub enum VerifyCommand {
    /// A local ciphertext file (the stored blob) against a record's
    /// on-chain anchor.
    File(FileArgs),
    /// A record's ciphertext, fetched from the API, against the chain.
    Record(RecordArgs),
    /// An audit-log entry against the log's on-chain checkpoint, and the
    /// API's signed checkpoint against the chain's.
    Audit(AuditArgs),
    /// An export (PDF, JSON, CSV zip, FHIR): its signature against the
    /// node's export key, and its SHA-256 against the batch the chain
    /// holds.
    Export(ExportArgs),
}

/// Options of `verify export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The export file.
    path: PathBuf,
    /// Its detached signature (JSON, from the `Export-Signature` header or
    /// the export's verification record; default: `PATH.sig`). A PDF is
    /// signed inside.
    #[arg(long)]
    signature: Option<PathBuf>,
    /// The node's export certificate (PEM, `certificate_pem` of
    /// `/v1/exports/key`) as you pinned it; default: the one the API
    /// publishes, trusted on first use.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The export's id; default: read from the file.
    #[arg(long)]
    id: Option<String>,
    /// The API that made it (its verification record and proof).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    #[command(flatten)]
    chain: ChainArgs,
}

/// Where the chain is read.
#[derive(Debug, clap::Args)]
pub struct ChainArgs {
    /// A Stacks node's RPC you trust (read-only calls only; never the API).
    #[arg(long, default_value = "http://127.0.0.1:20443")]
    node: String,
    /// The address that deployed the contracts.
    #[arg(long, default_value = medanchor_contracts::DEPLOYER_ADDRESS)]
    contracts: String,
}

/// Options of `verify file`.
#[derive(Debug, clap::Args)]
pub struct FileArgs {
    /// The ciphertext file (a record's stored blob, or an attachment's
    /// stored object).
    path: PathBuf,
    /// The record id (32 hex digits).
    #[arg(long)]
    record: String,
    /// The version to check (default: the one the chain anchors this hash
    /// as; for an attachment, its latest).
    #[arg(long)]
    version: Option<u64>,
    /// The file is this attachment of the record: its hash is checked
    /// through its batch's inclusion proof (fetched from `--api` with
    /// `MEDANCHOR_API_TOKEN`, checked here) against the batch root the
    /// chain holds (`get-batch`).
    #[arg(long)]
    attachment: Option<String>,
    /// The API that serves the attachment's proof.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    #[command(flatten)]
    chain: ChainArgs,
}

/// Options of `verify record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The record id (32 hex digits).
    id: String,
    /// The version to check (default: the API's latest).
    #[arg(long)]
    version: Option<u64>,
    /// The API that stores the ciphertext.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    #[command(flatten)]
    chain: ChainArgs,
    /// The session token the API releases the ciphertext to (an auditor's,
    /// the patient's or a reader's): `MEDANCHOR_API_TOKEN`, never an
    /// argument.
    #[arg(skip)]
    token: Option<String>,
}

/// Options of `verify audit`. A session token for reading the entry comes
/// from `MEDANCHOR_API_TOKEN` (patients see entries about their data,
/// auditors all), unless `--entry-file` holds the entry.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The entry's index in the log.
    #[arg(long)]
    index: u64,
    /// The entry's exact bytes (its `leaf`), instead of fetching it.
    #[arg(long)]
    entry_file: Option<PathBuf>,
    /// The API that keeps the log.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// The log's on-chain principal (default: the one the API names).
    #[arg(long)]
    log: Option<String>,
    /// The API's checkpoint key, Ed25519 public key in hex (default: the
    /// one the API publishes, trusted on first use).
    #[arg(long)]
    checkpoint_key: Option<String>,
    #[command(flatten)]
    chain: ChainArgs,
}

/// Runs a `verify` command.
pub fn run(command: VerifyCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let verdict = match command {
            VerifyCommand::File(args) => file(args).await?,
            VerifyCommand::Record(args) => record(args).await?,
            VerifyCommand::Audit(args) => audit(args).await?,
            VerifyCommand::Export(args) => export(args).await?,
        };
        match verdict {
            Ok(line) => {
                println!("VERIFIED: {line}");
                Ok(())
            }
            Err(line) => {
                println!("{line}");
                Err(anyhow!("verification failed: {line}"))
            }
        }
    })
}

/// `Ok(what was verified)` or `Err(the verdict line of a failure)`.
pub(crate) type Verdict = Result<String, String>;

fn hex32(b: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(b))
}

fn parse_record_id(s: &str) -> anyhow::Result<[u8; 16]> {
    hex::decode(s.trim().trim_start_matches("0x"))
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("record id {s:?} is not 16 bytes of hex"))
}

/// The record-management contract, read through a node.
struct Chain {
    node: RpcClient,
    contracts: String,
}

/// A record version as `get-record-version` returns it.
struct OnChainVersion {
    data_hash: [u8; 32],
    author: String,
    at: u128,
}

impl Chain {
    fn new(args: &ChainArgs) -> anyhow::Result<Chain> {
        Ok(Chain { node: RpcClient::new(&args.node)?, contracts: args.contracts.trim().to_string() })
    }

    async fn read(&self, function: &str, args: &[ClarityValue]) -> anyhow::Result<ClarityValue> {
        let contract = ContractName::RecordManagement.name();
        self.node
            .call_read_only(&self.contracts, contract, function, &self.contracts, args)
            .await
            .with_context(|| format!("reading {contract}.{function} from {}", self.node.base()))
    }

    async fn anchor(&self, hash: &[u8; 32]) -> anyhow::Result<Option<([u8; 16], u64)>> {
        let v = self.read("get-anchor", &[ClarityValue::Buffer(hash.to_vec())]).await?;
        let Some(t) = some_tuple(&v, "get-anchor")? else { return Ok(None) };
        let id = buffer(t, "record-id", "get-anchor")?;
        Ok(Some((id, uint(t, "version", "get-anchor")? as u64)))
    }

    async fn version(&self, id: &[u8; 16], version: u64) -> anyhow::Result<Option<OnChainVersion>> {
        let args = [ClarityValue::Buffer(id.to_vec()), ClarityValue::UInt(version.into())];
        let v = self.read("get-record-version", &args).await?;
        let Some(t) = some_tuple(&v, "get-record-version")? else { return Ok(None) };
        let author = match t.get("author") {
            Some(ClarityValue::Principal(p)) => p.to_string(),
            _ => bail!("get-record-version returned no author: {v:?}"),
        };
        Ok(Some(OnChainVersion {
            data_hash: buffer(t, "data-hash", "get-record-version")?,
            author,
            at: uint(t, "at", "get-record-version")?,
        }))
    }

    /// The current version and its hash (`get-record-info`).
    async fn current(&self, id: &[u8; 16]) -> anyhow::Result<Option<(u64, [u8; 32])>> {
        let v = self.read("get-record-info", &[ClarityValue::Buffer(id.to_vec())]).await?;
        let Some(t) = some_tuple(&v, "get-record-info")? else { return Ok(None) };
        Ok(Some((uint(t, "version", "get-record-info")? as u64, buffer(t, "data-hash", "get-record-info")?)))
    }
}

fn some_tuple<'a>(v: &'a ClarityValue, function: &str) -> anyhow::Result<Option<&'a BTreeMap<String, ClarityValue>>> {
    match v {
        ClarityValue::Optional(None) => Ok(None),
        ClarityValue::Optional(Some(inner)) => match &**inner {
            ClarityValue::Tuple(t) => Ok(Some(t)),
            other => bail!("{function} returned {other:?}, not a tuple"),
        },
        other => bail!("{function} returned {other:?}, not an optional"),
    }
}

fn uint(t: &BTreeMap<String, ClarityValue>, name: &str, function: &str) -> anyhow::Result<u128> {
    match t.get(name) {
        Some(ClarityValue::UInt(n)) => Ok(*n),
        other => bail!("{function}: field {name} is {other:?}, not a uint"),
    }
}

fn buffer<const N: usize>(t: &BTreeMap<String, ClarityValue>, name: &str, function: &str) -> anyhow::Result<[u8; N]> {
    match t.get(name) {
        Some(ClarityValue::Buffer(b)) => {
            b.as_slice().try_into().map_err(|_| anyhow!("{function}: field {name} is {} bytes, not {N}", b.len()))
        }
        other => bail!("{function}: field {name} is {other:?}, not a buffer"),
    }
}

/// Is `hash` what the chain anchors for record `id` (at `version`, or at
/// the version `get-anchor` names)?
async fn check_hash(chain: &Chain, id: &[u8; 16], version: Option<u64>, hash: &[u8; 32]) -> anyhow::Result<Verdict> {
    let rid = format!("0x{}", hex::encode(id));
    println!("chain:    {}.{} via {}", chain.contracts, ContractName::RecordManagement.name(), chain.node.base());
    let anchor = chain.anchor(hash).await?;
    match anchor {
        Some((a, v)) => println!("anchor:   get-anchor({}) = record 0x{} version {v}", hex32(hash), hex::encode(a)),
        None => println!("anchor:   get-anchor({}) = none", hex32(hash)),
    }
    let current = chain.current(id).await?;
    let version = match (version, anchor) {
        (Some(v), _) => v,
        (None, Some((a, v))) if a == *id => v,
        (None, Some((a, v))) => {
            return Ok(Err(format!(
                "MISMATCH: {} is anchored by record 0x{} version {v}, not by record {rid}",
                hex32(hash),
                hex::encode(a)
            )))
        }
        (None, None) => {
            return Ok(Err(match current {
                None => {
                    format!("NOT ANCHORED: no record anchors {} and record {rid} does not exist on-chain", hex32(hash))
                }
                Some((cv, ch)) => format!(
                    "MISMATCH: no record version anchors {}; record {rid}'s current version {cv} anchors {}",
                    hex32(hash),
                    hex32(&ch)
                ),
            }))
        }
    };
    let Some(onchain) = chain.version(id, version).await? else {
        return Ok(Err(format!("NOT ANCHORED: record {rid} has no version {version} on-chain")));
    };
    println!(
        "record:   get-record-version({rid}, u{version}) = data-hash {}, author {}, burn height {}",
        hex32(&onchain.data_hash),
        onchain.author,
        onchain.at
    );
    if onchain.data_hash != *hash {
        return Ok(Err(format!(
            "MISMATCH: record {rid} version {version} anchors {}, but the data hashes to {}",
            hex32(&onchain.data_hash),
            hex32(hash)
        )));
    }
    let mut line = format!(
        "the data (SHA-256 {}) is record {rid} version {version}, anchored by {} at burn height {}",
        hex32(hash),
        onchain.author,
        onchain.at
    );
    if let Some((a, v)) = anchor.filter(|(a, v)| a == id && *v != version) {
        line.push_str(&format!(" (first anchored by record 0x{} as version {v})", hex::encode(a)));
    }
    match current {
        Some((cv, _)) if cv != version => line.push_str(&format!("; the record's current version is {cv}")),
        _ => {}
    }
    Ok(Ok(line))
}

async fn file(args: FileArgs) -> anyhow::Result<Verdict> {
    let id = parse_record_id(&args.record)?;
    let chain = Chain::new(&args.chain)?;
    let hash = medanchor_wallet::actions::sha256_file(&args.path)?;
    println!("file:     {} (SHA-256 {})", args.path.display(), hex32(&hash));
    match &args.attachment {
        Some(attachment) => check_attachment(&chain, &args, &id, attachment, &hash).await,
        None => check_hash(&chain, &id, args.version, &hash).await,
    }
}

/// Is `hash` a leaf of a batch whose root the chain holds, by the proof
/// the API supplies (which is only believed once it leads to that root)?
async fn check_attachment(
    chain: &Chain,
    args: &FileArgs,
    id: &[u8; 16],
    attachment: &str,
    hash: &[u8; 32],
) -> anyhow::Result<Verdict> {
    let attachment = attachment.trim().to_ascii_lowercase();
    if attachment.len() != 32 || !attachment.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("attachment id {attachment:?} is not 32 hex digits");
    }
    let token = std::env::var("MEDANCHOR_API_TOKEN").map_err(|_| {
        anyhow!("the API serves an attachment's proof to a reader of the record: set MEDANCHOR_API_TOKEN")
    })?;
    let api = api_base(&args.api);
    let mut url = format!("{api}/v1/records/{}/attachments/{attachment}/anchor", hex::encode(id));
    if let Some(v) = args.version {
        url.push_str(&format!("?version={v}"));
    }
    let v = get_json(&http()?, &url, Some(&token)).await?;
    let what = format!("attachment {attachment} of record 0x{}", hex::encode(id));
    in_batch(chain, &url, &v, hash, &what).await
}

/// Is `hash` leaf `leaf_index` of the batch the proof `v` (fetched from
/// `url`: its `status`, `root`, `leaf_index`, `tree_size`, `path`) names,
/// and does the chain hold that batch (`get-batch`) with that many leaves?
/// The proof is the API's word until both check.
async fn in_batch(chain: &Chain, url: &str, v: &Value, hash: &[u8; 32], what: &str) -> anyhow::Result<Verdict> {
    let status = v["status"].as_str().or_else(|| v["anchor_status"].as_str()).unwrap_or_default();
    println!("proof:    from {url}: {status} (the API's word; checked below)");
    if status == "queued" {
        return Ok(Err("NOT ANCHORED: the file's hash waits for the next batch; try again in a few seconds".into()));
    }
    let root: [u8; 32] = v["root"]
        .as_str()
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("{url}: no root in {v}"))?;
    let (index, size) = match (v["leaf_index"].as_u64(), v["tree_size"].as_u64()) {
        (Some(i), Some(n)) => (i, n),
        _ => bail!("{url}: no leaf index or tree size in {v}"),
    };
    let path: Vec<merkle::Hash> = v["path"]
        .as_array()
        .ok_or_else(|| anyhow!("{url}: no path in {v}"))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| hex::decode(s).ok())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| anyhow!("{url}: {h} is not a 32-byte hash"))
        })
        .collect::<anyhow::Result<_>>()?;
    let leaf = merkle::leaf_hash(hash);
    if let Err(e) = merkle::verify_inclusion(&leaf, index, size, &path, &root) {
        return Ok(Err(format!(
            "MISMATCH: this file's hash is not leaf {index} of the batch with root {} ({e}): \
             the file is not {what}, or the proof is false",
            hex32(&root)
        )));
    }
    println!("included: leaf {index} of {size}, root {} (computed here)", hex32(&root));
    let on_chain = chain.read("get-batch", &[ClarityValue::Buffer(root.to_vec())]).await?;
    let Some(t) = some_tuple(&on_chain, "get-batch")? else {
        return Ok(Err(format!("NOT ANCHORED: get-batch({}) = none: the batch is not on-chain (yet)", hex32(&root))));
    };
    let leaf_count = uint(t, "leaf-count", "get-batch")?;
    let at = uint(t, "at", "get-batch")?;
    let submitter = match t.get("submitter") {
        Some(ClarityValue::Principal(p)) => p.to_string(),
        other => bail!("get-batch: submitter is {other:?}"),
    };
    println!("chain:    get-batch({}) = {leaf_count} leaves, by {submitter}, burn height {at}", hex32(&root));
    if leaf_count != u128::from(size) {
        return Ok(Err(format!(
            "MISMATCH: the chain's batch has {leaf_count} leaves, the proof claims {size}: a proof for another tree"
        )));
    }
    Ok(Ok(format!(
        "file {} is {what}: leaf {index} of {size} in the batch {} anchored at burn height {at} by {submitter}",
        hex32(hash),
        hex32(&root)
    )))
}

/// The export id a file names: a PDF in its signature's reason, a JSON
/// export in `id`, a FHIR Bundle in its identifier, a CSV zip in
/// `patient.csv`.
fn export_id_of(bytes: &[u8]) -> Option<String> {
    let hex32 = |s: &str| (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase());
    if bytes.starts_with(b"%PDF") {
        let marker = b"medanchor export ";
        let at = bytes.windows(marker.len()).rposition(|w| w == marker)? + marker.len();
        return hex32(std::str::from_utf8(bytes.get(at..at + 32)?).ok()?);
    }
    if bytes.starts_with(b"PK") {
        let files = medanchor_export::tabular::read_csv_zip(bytes).ok()?;
        return hex32(files.get("patient.csv")?.column("export_id").first()?);
    }
    let v: Value = serde_json::from_slice(bytes).ok()?;
    if v["resourceType"] == "Bundle" {
        let id = v["identifier"]["value"].as_str()?;
        return hex32(&id.trim_start_matches("urn:uuid:").replace('-', ""));
    }
    hex32(v["id"].as_str()?)
}

async fn export(args: ExportArgs) -> anyhow::Result<Verdict> {
    use medanchor_export::sign;
    let bytes = std::fs::read(&args.path).with_context(|| format!("reading {}", args.path.display()))?;
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    println!("file:     {} (SHA-256 {})", args.path.display(), hex32(&sha));
    let api = api_base(&args.api);
    let client = http()?;
    let certificate = match &args.key {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => {
            let v = get_json(&client, &format!("{api}/v1/exports/key"), None).await?;
            println!("key:      {} from {api}/v1/exports/key (trusted on first use: pin it with --key)", v["key_id"]);
            v["certificate_pem"]
                .as_str()
                .ok_or_else(|| anyhow!("{api}/v1/exports/key: no certificate_pem"))?
                .to_string()
        }
    };
    if bytes.starts_with(b"%PDF") {
        match medanchor_export::pdf::verify(&bytes, &certificate) {
            Ok(()) => println!("signed:   the PDF's PAdES signature covers the whole file and is the node's key's"),
            Err(e) => {
                return Ok(Err(format!("MISMATCH: the PDF's signature does not verify with the node's key: {e}")))
            }
        }
    } else {
        let pem = sign::public_key_pem_of(&certificate).context("the export certificate")?;
        let sig_path = args.signature.clone().unwrap_or_else(|| {
            let mut p = args.path.clone().into_os_string();
            p.push(".sig");
            PathBuf::from(p)
        });
        let sig: sign::DetachedSignature = serde_json::from_slice(
            &std::fs::read(&sig_path).with_context(|| format!("reading the signature {}", sig_path.display()))?,
        )
        .with_context(|| format!("{} is not a detached signature", sig_path.display()))?;
        match sign::verify_detached(&pem, &bytes, &sig) {
            Ok(()) => println!("signed:   {} verifies with the node's key (ES256)", sig_path.display()),
            Err(e) => return Ok(Err(format!("MISMATCH: the signature does not verify with the node's key: {e}"))),
        }
    }
    let id = match &args.id {
        Some(id) => id.trim().to_ascii_lowercase(),
        None => export_id_of(&bytes).ok_or_else(|| anyhow!("the file names no export id: pass --id"))?,
    };
    let url = format!("{api}/v1/exports/{id}");
    let v = get_json(&client, &url, None).await?;
    if v["sha256"].as_str() != Some(hex::encode(sha).as_str()) {
        return Ok(Err(format!(
            "MISMATCH: the node recorded export {id} with SHA-256 {}, this file is {}: it is not that export as served",
            v["sha256"],
            hex32(&sha)
        )));
    }
    println!("recorded: export {id} ({}) with this SHA-256", v["format"]);
    let chain = Chain::new(&args.chain)?;
    in_batch(&chain, &url, &v, &sha, &format!("export {id}")).await
}

fn http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("medanchor-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}

fn api_base(s: &str) -> String {
    s.trim().trim_end_matches('/').to_string()
}

/// An excerpt of an error body.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(300).collect()
}

/// `verify record` arguments for `id` against `api` and `node` (the
/// devnet's deployer), for `medanchor demo`.
pub(crate) fn record_args(id: &str, api: &str, node: &str, token: &str) -> RecordArgs {
    RecordArgs {
        id: id.into(),
        version: None,
        api: api.into(),
        chain: ChainArgs { node: node.into(), contracts: medanchor_contracts::DEPLOYER_ADDRESS.into() },
        token: Some(token.into()),
    }
}

/// Checks ciphertext bytes already in hand against the chain, as `verify
/// file` does: `Ok(..)` only when the chain anchors this exact hash for
/// record `id`.
pub(crate) async fn check_bytes(node: &str, id: &[u8; 16], bytes: &[u8]) -> anyhow::Result<Verdict> {
    let chain = Chain::new(&ChainArgs { node: node.into(), contracts: medanchor_contracts::DEPLOYER_ADDRESS.into() })?;
    let hash: [u8; 32] = Sha256::digest(bytes).into();
    check_hash(&chain, id, None, &hash).await
}

pub(crate) async fn record(args: RecordArgs) -> anyhow::Result<Verdict> {
    let id = parse_record_id(&args.id)?;
    let chain = Chain::new(&args.chain)?;
    let api = api_base(&args.api);
    let mut url = format!("{api}/v1/verify/record/{}/blob", hex::encode(id));
    if let Some(v) = args.version {
        url.push_str(&format!("?version={v}"));
    }
    let token = args.token.clone().or_else(|| std::env::var("MEDANCHOR_API_TOKEN").ok()).ok_or_else(|| {
        anyhow::anyhow!(
            "the API releases a record's ciphertext only to a session (an auditor's, the patient's or a reader's): \
             set MEDANCHOR_API_TOKEN (`medanchor wallet login` prints one), or check a local copy with `verify file`"
        )
    })?;
    let response = http()?.get(&url).bearer_auth(token).send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let claimed = |name: &str| response.headers().get(name).and_then(|h| h.to_str().ok()).map(str::to_string);
    let (claimed_version, claimed_hash) = (claimed("x-record-version"), claimed("x-data-hash"));
    let body = response.bytes().await.with_context(|| format!("reading {url}"))?;
    if !status.is_success() {
        return Ok(Err(format!(
            "FAILED: the API did not serve the ciphertext of record 0x{} (HTTP {}: {}); \
             it may be missing or altered in storage (its own view: GET {api}/v1/verify/record/{})",
            hex::encode(id),
            status.as_u16(),
            excerpt(&body),
            hex::encode(id)
        )));
    }
    let hash: [u8; 32] = Sha256::digest(&body).into();
    println!("fetched:  {} bytes from {url} (SHA-256 {}, computed here)", body.len(), hex32(&hash));
    println!(
        "claimed:  version {}, hash {} (the API's word; not used)",
        claimed_version.as_deref().unwrap_or("?"),
        claimed_hash.as_deref().unwrap_or("?")
    );
    check_hash(&chain, &id, args.version, &hash).await
}

async fn get_json(client: &reqwest::Client, url: &str, token: Option<&str>) -> anyhow::Result<Value> {
    let mut request = client.get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response.bytes().await.with_context(|| format!("reading {url}"))?;
    if !status.is_success() {
        bail!("GET {url}: HTTP {}: {}", status.as_u16(), excerpt(&body));
    }
    serde_json::from_slice(&body).with_context(|| format!("GET {url}: not JSON"))
}

fn hashes(v: &Value, url: &str) -> anyhow::Result<Vec<merkle::Hash>> {
    v["proof"]
        .as_array()
        .ok_or_else(|| anyhow!("{url}: no proof in {v}"))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| hex::decode(s).ok())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| anyhow!("{url}: {h} is not a 32-byte hash"))
        })
        .collect()
}

async fn audit(args: AuditArgs) -> anyhow::Result<Verdict> {
    let api = api_base(&args.api);
    let client = http()?;
    let chain = Chain::new(&args.chain)?;
    let info = get_json(&client, &format!("{api}/v1/audit/anchor"), None).await?;
    let (log, source) = match (&args.log, info["log"].as_str()) {
        (Some(l), _) => (l.trim().to_string(), "--log"),
        (None, Some(l)) => (l.to_string(), "named by the API"),
        (None, None) => bail!("the API names no on-chain log (its anchoring is off); pass --log <principal>"),
    };
    println!("log:        {log} ({source})");

    // 1. The chain's checkpoint: the only root trusted.
    let Some(head) = anchoring::read_audit_head(&chain.node, &chain.contracts, &log).await? else {
        return Ok(Err(format!(
            "NOT ANCHORED: {log} has no audit checkpoint on-chain ({}.{} via {})",
            chain.contracts,
            ContractName::RecordManagement.name(),
            chain.node.base()
        )));
    };
    let root = head.root_bytes().ok_or_else(|| anyhow!("get-audit-head: root {} is not 32 bytes", head.root))?;
    println!(
        "on-chain:   get-audit-head = size {}, root {}, burn height {} (via {})",
        head.tree_size,
        hex32(&root),
        head.at,
        chain.node.base()
    );
    if args.index >= head.tree_size {
        return Ok(Err(format!(
            "FAILED: entry {} is not covered by the on-chain checkpoint yet (size {}); retry after the next anchor",
            args.index, head.tree_size
        )));
    }

    // 2. The entry, hashed here.
    let leaf: Vec<u8> = match &args.entry_file {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => {
            let token = std::env::var("MEDANCHOR_API_TOKEN").map_err(|_| {
                anyhow!(
                    "reading entry {} needs a session token in MEDANCHOR_API_TOKEN (or pass --entry-file)",
                    args.index
                )
            })?;
            let url = format!("{api}/v1/audit/entries?from={}&limit=1", args.index);
            let v = get_json(&client, &url, Some(&token)).await?;
            let entry = v["entries"]
                .as_array()
                .and_then(|es| es.iter().find(|e| e["index"].as_u64() == Some(args.index)))
                .ok_or_else(|| {
                    anyhow!(
                        "entry {} is not visible with this token (patients see entries about their own data)",
                        args.index
                    )
                })?;
            entry["leaf"].as_str().ok_or_else(|| anyhow!("{url}: entry without leaf"))?.as_bytes().to_vec()
        }
    };
    let leaf_hash = merkle::leaf_hash(&leaf);
    println!("entry:      #{} leaf hash {}", args.index, hex32(&leaf_hash));

    // 3. Inclusion at exactly the on-chain size, against the on-chain root.
    let url = format!("{api}/v1/audit/proof/inclusion?index={}&size={}", args.index, head.tree_size);
    let proof = match get_json(&client, &url, None).await {
        Ok(v) => hashes(&v, &url)?,
        Err(e) => {
            return Ok(Err(format!(
                "FAILED: the API gives no inclusion proof at the on-chain size {} ({e:#}); \
                 a log shorter than its on-chain checkpoint was truncated",
                head.tree_size
            )))
        }
    };
    if let Err(e) = merkle::verify_inclusion(&leaf_hash, args.index, head.tree_size, &proof, &root) {
        return Ok(Err(format!(
            "FAILED: entry {} is not in the log anchored on-chain at size {} (root {}): {e}; \
             the entry was altered, or the API's proof is wrong",
            args.index,
            head.tree_size,
            hex32(&root)
        )));
    }
    println!("inclusion:  entry {} is in the on-chain tree of size {} ✓", args.index, head.tree_size);

    // 4. The API's signed checkpoint must extend the chain's.
    let key_hex = match (&args.checkpoint_key, info["checkpoint"]["public_key"].as_str()) {
        (Some(k), _) => k.clone(),
        (None, Some(k)) => {
            println!("checkpoint key: {k} (published by the API, trusted on first use; pin it with --checkpoint-key)");
            k.to_string()
        }
        (None, None) => bail!("the API publishes no checkpoint key; pass --checkpoint-key"),
    };
    let key_bytes: [u8; 32] = hex::decode(key_hex.trim().trim_start_matches("0x"))
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("checkpoint key {key_hex:?} is not 32 bytes of hex"))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes).context("checkpoint key")?;
    let key_name = info["checkpoint"]["key_name"].as_str().ok_or_else(|| anyhow!("the API names no checkpoint key"))?;
    let url = format!("{api}/v1/audit/checkpoint");
    let response = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(response.status().is_success(), "GET {url}: HTTP {}", response.status().as_u16());
    let note = response.text().await.with_context(|| format!("reading {url}"))?;
    let cp = match merkle::verify_note(&note, key_name, &key) {
        Ok(cp) => cp,
        Err(e) => return Ok(Err(format!("FAILED: the API's checkpoint does not verify: {e}"))),
    };
    if let Some(origin) = info["checkpoint"]["origin"].as_str() {
        if cp.origin != origin {
            return Ok(Err(format!("FAILED: the checkpoint is for log {:?}, not {origin:?}", cp.origin)));
        }
    }
    println!("checkpoint: signed by {key_name}: size {}, root {}", cp.size, hex32(&cp.root));
    if cp.size < head.tree_size {
        return Ok(Err(format!(
            "FAILED: the API's signed checkpoint (size {}) is smaller than the on-chain checkpoint (size {}): \
             the log was truncated",
            cp.size, head.tree_size
        )));
    }
    let url = format!("{api}/v1/audit/proof/consistency?from={}&to={}", head.tree_size, cp.size);
    let proof = match get_json(&client, &url, None).await {
        Ok(v) => hashes(&v, &url)?,
        Err(e) => return Ok(Err(format!("FAILED: the API gives no consistency proof ({e:#})"))),
    };
    if let Err(e) = merkle::verify_consistency(head.tree_size, cp.size, &root, &cp.root, &proof) {
        return Ok(Err(format!(
            "FAILED: the API's signed checkpoint (size {}) does not extend the on-chain checkpoint (size {}): {e}",
            cp.size, head.tree_size
        )));
    }
    println!(
        "consistency: the signed checkpoint (size {}) extends the on-chain one (size {}) ✓",
        cp.size, head.tree_size
    );
    Ok(Ok(format!(
        "audit entry {} is in log {log} as anchored on-chain at size {} (burn height {}), \
         and the API's signed checkpoint at size {} extends it",
        args.index, head.tree_size, head.at, cp.size
    )))
}
