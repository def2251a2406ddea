//! `medanchor wallet …`: keys, patient and provider transactions, consent
//! checks, against any Stacks node (the devnet by default, testnet with
//! `--node`). The library is `medanchor_wallet`; this module only
//! parses arguments, asks for the passphrase and prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use medanchor_contracts::types::DataType;
use medanchor_contracts::{Principal, Txid};
use medanchor_wallet::actions::{
    new_patient_id, new_record_id, parse_access_level, parse_data_type, parse_hash32, parse_principal, parse_record_id,
    parse_record_type, sha256_file,
};
use medanchor_wallet::keys::StacksKey;
use medanchor_wallet::{
    generate_mnemonic, import_key, testnet_address, ContractCall, GrantDuration, KdfParams, KeyFile, KeySource, Reader,
    RpcClient, TxOutcome, Wallet, Zeroizing,
};
use serde_json::json;

/// The wallet's subcommands.
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Creates a key from a fresh 24-word mnemonic; prints the address and,
    /// once, the mnemonic.
    New {
        #[command(flatten)]
        key: KeyArgs,
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Imports a key from a mnemonic, a hex secret key or a devnet account.
    Import {
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        source: ImportSource,
        /// Account index on m/44'/5757'/0'/0/INDEX (with --mnemonic-env).
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints the key file's address (no passphrase needed).
    Address {
        #[command(flatten)]
        key: KeyArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Signs in to a medanchor API with the key and prints the session
    /// token, for `curl -H "Authorization: Bearer …"` or
    /// `MEDANCHOR_API_TOKEN` (a secret until it expires: keep it out of
    /// shell history and logs).
    Login {
        #[command(flatten)]
        key: KeyArgs,
        /// The API to sign in to.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
        /// Print JSON (token, principal).
        #[arg(long)]
        json: bool,
    },
    /// Prints the balance and nonce of the key file's address.
    Balance {
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Registers the key's address as a patient.
    Register {
        #[command(flatten)]
        tx: TxArgs,
        /// The opaque 32-byte patient id, hex (default: random, printed).
        #[arg(long)]
        patient_id: Option<String>,
        /// An emergency contact principal.
        #[arg(long)]
        emergency_contact: Option<String>,
        /// The primary physician's principal.
        #[arg(long)]
        primary_physician: Option<String>,
    },
    /// Grants a provider consent to one data type (or `all` standard types).
    Grant {
        #[command(flatten)]
        tx: TxArgs,
        /// The provider's principal.
        #[arg(long)]
        provider: String,
        /// Data type: basic-info, medical-history, lab-results, treatment-plans,
        /// mental-health, genetic, financial, emergency-contacts, or all.
        #[arg(long = "type")]
        data_type: String,
        /// How long: 48h, 30d, 12b (burn blocks), or none (until revoked).
        #[arg(long = "for")]
        duration: String,
    },
    /// Revokes a provider's consent to a data type.
    Revoke {
        #[command(flatten)]
        tx: TxArgs,
        /// The provider's principal.
        #[arg(long)]
        provider: String,
        /// The data type (as granted).
        #[arg(long = "type")]
        data_type: String,
    },
    /// Emergency override (as a credentialed responder) and its end.
    Emergency {
        #[command(subcommand)]
        command: EmergencyCommand,
    },
    /// Provider access levels (record-management).
    Access {
        #[command(subcommand)]
        command: AccessCommand,
    },
    /// Record anchors (as a provider).
    Record {
        #[command(subcommand)]
        command: RecordCommand,
    },
    /// Asks check-consent whether PROVIDER may read a data type of PATIENT
    /// now; exits 1 when not.
    Check {
        #[command(flatten)]
        node: NodeArgs,
        /// The patient (default: the key file's address).
        #[arg(long)]
        patient: Option<String>,
        /// Which principal would read.
        #[arg(long)]
        provider: String,
        /// A concrete data type (not `all`).
        #[arg(long = "type")]
        data_type: String,
        /// Key file whose address is the default patient.
        #[arg(long, default_value = DEFAULT_KEY_FILE)]
        key_file: PathBuf,
    },
    /// Lists a patient's consents for one provider, per data type.
    Consents {
        #[command(flatten)]
        node: NodeArgs,
        /// The patient (default: the key file's address).
        #[arg(long)]
        patient: Option<String>,
        /// The provider.
        #[arg(long)]
        provider: String,
        /// Key file whose address is the default patient.
        #[arg(long, default_value = DEFAULT_KEY_FILE)]
        key_file: PathBuf,
    },
}

/// `wallet emergency …`.
#[derive(Debug, Subcommand)]
pub enum EmergencyCommand {
    /// Starts an emergency override on a patient (responders only).
    Start {
        #[command(flatten)]
        tx: TxArgs,
        /// The patient.
        #[arg(long)]
        patient: String,
        /// The reason code, 1 to 255.
        #[arg(long)]
        reason: u8,
    },
    /// Ends an override (the patient, the provider or the owner).
    End {
        #[command(flatten)]
        tx: TxArgs,
        /// The patient (default: the key's own address).
        #[arg(long)]
        patient: Option<String>,
        /// The provider holding the override (default: the key's own address).
        #[arg(long)]
        provider: Option<String>,
    },
}

/// `wallet access …`.
#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Gives a registered provider an access level to your records.
    Grant {
        #[command(flatten)]
        tx: TxArgs,
        /// The provider.
        #[arg(long)]
        provider: String,
        /// read, write or admin.
        #[arg(long)]
        level: String,
        /// How long: 48h, 30d, 12b (burn blocks), or none (until revoked).
        #[arg(long = "for", default_value = "none")]
        duration: String,
    },
    /// Withdraws a provider's access level.
    Revoke {
        #[command(flatten)]
        tx: TxArgs,
        /// The provider.
        #[arg(long)]
        provider: String,
    },
}

/// `wallet record …`.
#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Anchors a new record (SHA-256 of its ciphertext).
    Create {
        #[command(flatten)]
        tx: TxArgs,
        /// The patient.
        #[arg(long)]
        patient: String,
        /// Record type: lab-results, imaging, vitals, diagnosis, …
        #[arg(long = "type")]
        record_type: String,
        #[command(flatten)]
        hash: HashArgs,
        /// The 16-byte record id, hex (default: random, printed).
        #[arg(long)]
        id: Option<String>,
        /// Id of the encryption key, 32 bytes hex.
        #[arg(long)]
        key_id: Option<String>,
        /// Confidentiality 0 to 3.
        #[arg(long, default_value_t = 0)]
        confidentiality: u8,
    },
    /// Anchors a new version of a record.
    Update {
        #[command(flatten)]
        tx: TxArgs,
        /// The record id, hex.
        #[arg(long)]
        id: String,
        /// The version you last read (optimistic concurrency).
        #[arg(long)]
        expected_version: u64,
        #[command(flatten)]
        hash: HashArgs,
        /// Id of the encryption key, 32 bytes hex.
        #[arg(long)]
        key_id: Option<String>,
    },
}

const DEFAULT_KEY_FILE: &str = ".medanchor/wallet.json";

/// Where the key lives and how to unlock it.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The encrypted key file.
    #[arg(long, default_value = DEFAULT_KEY_FILE)]
    key_file: PathBuf,
    /// Environment variable holding the passphrase (otherwise you are
    /// asked on the terminal; never pass it as an argument).
    #[arg(long, default_value = "MEDANCHOR_PASSPHRASE")]
    passphrase_env: String,
}

/// Where a key to import comes from (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ImportSource {
    /// Environment variable holding a BIP-39 mnemonic.
    #[arg(long)]
    mnemonic_env: Option<String>,
    /// Environment variable holding a hex secret key.
    #[arg(long)]
    hex_env: Option<String>,
    /// A Devnet.toml account (deployer, wallet_1, …; public test keys).
    #[arg(long)]
    devnet_account: Option<String>,
}

/// Which node.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's RPC (stacks-node RPC plus the Hiro /extended routes).
    #[arg(long, default_value = "http://127.0.0.1:20443")]
    node: String,
    /// The address that deployed patient-consent and record-management.
    #[arg(long, default_value = medanchor_contracts::DEPLOYER_ADDRESS)]
    contracts: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Options of every transaction.
#[derive(Debug, Args)]
pub struct TxArgs {
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    node: NodeArgs,
    /// Print the txid and return without waiting for the block.
    #[arg(long)]
    no_wait: bool,
    /// Fee in micro-STX (default: length × the node's fee rate).
    #[arg(long)]
    fee: Option<u64>,
    /// Seconds to wait for the transaction to be mined.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// The anchored hash: of a file's bytes, or given.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct HashArgs {
    /// The (encrypted) file whose SHA-256 is anchored.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The SHA-256 as hex.
    #[arg(long)]
    hash: Option<String>,
}

impl HashArgs {
    fn hash(&self) -> anyhow::Result<[u8; 32]> {
        match (&self.file, &self.hash) {
            (Some(path), _) => Ok(sha256_file(path)?),
            (None, Some(h)) => Ok(parse_hash32(h, "hash")?),
            (None, None) => bail!("give --file or --hash"),
        }
    }
}

/// Runs a wallet subcommand.
pub fn run(command: WalletCommand) -> anyhow::Result<()> {
    match command {
        WalletCommand::New { key, force, json } => new(&key, force, json),
        WalletCommand::Import { key, source, index, force, json } => import(&key, &source, index, force, json),
        WalletCommand::Address { key, json } => {
            let file = KeyFile::read(&key.key_file)?;
            if json {
                println!("{}", json!({ "address": file.address, "key_file": key.key_file }));
            } else {
                println!("{}", file.address);
            }
            Ok(())
        }
        WalletCommand::Balance { key, node } => balance(&key, &node),
        WalletCommand::Login { key, api, json } => {
            let signer = unlock(&key)?;
            let http = reqwest::Client::new();
            let token = runtime()?
                .block_on(medanchor_wallet::sign_in(&http, api.trim_end_matches('/'), &signer))
                .with_context(|| format!("signing in to {api}"))?;
            if json {
                println!("{}", json!({ "token": token, "principal": testnet_address(&signer) }));
            } else {
                println!("{token}");
            }
            Ok(())
        }
        WalletCommand::Register { tx, patient_id, emergency_contact, primary_physician } => {
            let (id, generated) = match patient_id {
                Some(h) => (parse_hash32(&h, "patient id")?, false),
                None => (new_patient_id(), true),
            };
            let contact = emergency_contact.as_deref().map(parse_principal).transpose()?;
            let physician = primary_physician.as_deref().map(parse_principal).transpose()?;
            let call = ContractCall::register_patient(id, contact.as_ref(), physician.as_ref());
            let extra = generated.then(|| ("patient_id", hex_id(&id)));
            transact(&tx, &call, extra)
        }
        WalletCommand::Grant { tx, provider, data_type, duration } => {
            let call = ContractCall::grant_consent(
                &parse_principal(&provider)?,
                parse_data_type(&data_type)?,
                duration.parse::<GrantDuration>()?,
            );
            transact(&tx, &call, None)
        }
        WalletCommand::Revoke { tx, provider, data_type } => {
            let call = ContractCall::revoke_consent(&parse_principal(&provider)?, parse_data_type(&data_type)?);
            transact(&tx, &call, None)
        }
        WalletCommand::Emergency { command: EmergencyCommand::Start { tx, patient, reason } } => {
            let call = ContractCall::emergency_override(&parse_principal(&patient)?, reason)?;
            transact(&tx, &call, None)
        }
        WalletCommand::Emergency { command: EmergencyCommand::End { tx, patient, provider } } => {
            let own = KeyFile::read(&tx.key.key_file)?.address;
            let patient = parse_principal(patient.as_deref().unwrap_or(&own))?;
            let provider = parse_principal(provider.as_deref().unwrap_or(&own))?;
            if patient == provider {
                bail!("give --patient or --provider: the override is between two different principals");
            }
            transact(&tx, &ContractCall::end_emergency_override(&patient, &provider), None)
        }
        WalletCommand::Access { command: AccessCommand::Grant { tx, provider, level, duration } } => {
            let call = ContractCall::grant_provider_access(
                &parse_principal(&provider)?,
                parse_access_level(&level)?,
                duration.parse::<GrantDuration>()?,
            )?;
            transact(&tx, &call, None)
        }
        WalletCommand::Access { command: AccessCommand::Revoke { tx, provider } } => {
            transact(&tx, &ContractCall::revoke_provider_access(&parse_principal(&provider)?), None)
        }
        WalletCommand::Record {
            command: RecordCommand::Create { tx, patient, record_type, hash, id, key_id, confidentiality },
        } => {
            let id = match id {
                Some(h) => parse_record_id(&h)?,
                None => new_record_id(),
            };
            let key_id = key_id.as_deref().map(|k| parse_hash32(k, "key id")).transpose()?;
            let call = ContractCall::create_record(
                id,
                &parse_principal(&patient)?,
                parse_record_type(&record_type)?,
                hash.hash()?,
                key_id,
                confidentiality,
            )?;
            transact(&tx, &call, Some(("record_id", hex_id(&id))))
        }
        WalletCommand::Record { command: RecordCommand::Update { tx, id, expected_version, hash, key_id } } => {
            let record_id = parse_record_id(&id)?;
            let key_id = key_id.as_deref().map(|k| parse_hash32(k, "key id")).transpose()?;
            let call = ContractCall::update_record(record_id, expected_version, hash.hash()?, key_id);
            transact(&tx, &call, Some(("record_id", hex_id(&record_id))))
        }
        WalletCommand::Check { node, patient, provider, data_type, key_file } => {
            check(&node, patient, &provider, &data_type, &key_file)
        }
        WalletCommand::Consents { node, patient, provider, key_file } => consents(&node, patient, &provider, &key_file),
    }
}

fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().fold(String::from("0x"), |mut s, b| {
        s.push_str(&format!("{b:02x}"));
        s
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

/// The passphrase from the environment variable, or the terminal.
fn passphrase(args: &KeyArgs, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var(&args.passphrase_env) {
        if !p.is_empty() {
            return Ok(Zeroizing::new(p));
        }
    }
    let missing = || {
        anyhow!(
            "no passphrase: set {} (or name another variable with --passphrase-env), or run in a terminal",
            args.passphrase_env
        )
    };
    let first = Zeroizing::new(rpassword::prompt_password("Key file passphrase: ").map_err(|_| missing())?);
    if confirm {
        let second = Zeroizing::new(rpassword::prompt_password("Repeat the passphrase: ").map_err(|_| missing())?);
        if *first != *second {
            bail!("the passphrases differ");
        }
    }
    Ok(first)
}

pub(crate) fn unlock(args: &KeyArgs) -> anyhow::Result<StacksKey> {
    let file = KeyFile::read(&args.key_file)?;
    let pass = passphrase(args, false)?;
    file.decrypt(&pass).with_context(|| format!("unlocking {}", args.key_file.display()))
}

fn save(args: &KeyArgs, key: &StacksKey, force: bool) -> anyhow::Result<String> {
    let address = testnet_address(key);
    if !force && args.key_file.exists() {
        bail!("{} already exists (use --force to replace it)", args.key_file.display());
    }
    let pass = passphrase(args, true)?;
    KeyFile::encrypt(key, &address, &pass, KdfParams::default())?.write(&args.key_file, force)?;
    Ok(address)
}

fn new(args: &KeyArgs, force: bool, json: bool) -> anyhow::Result<()> {
    let mnemonic = generate_mnemonic();
    let key = import_key(KeySource::Mnemonic { phrase: &mnemonic, index: 0 })?;
    let address = save(args, &key, force)?;
    if json {
        println!("{}", json!({ "address": address, "key_file": args.key_file, "mnemonic": mnemonic.as_str() }));
    } else {
        println!("address   {address}");
        println!("key file  {}", args.key_file.display());
        println!(
            "\nYour recovery phrase (shown once; write it down and keep it offline):\n\n  {}\n",
            mnemonic.as_str()
        );
    }
    Ok(())
}

fn secret_from_env(var: &str) -> anyhow::Result<Zeroizing<String>> {
    let value = Zeroizing::new(std::env::var(var).map_err(|_| anyhow!("environment variable {var} is not set"))?);
    if value.trim().is_empty() {
        bail!("environment variable {var} is empty");
    }
    Ok(value)
}

fn import(args: &KeyArgs, source: &ImportSource, index: u32, force: bool, json: bool) -> anyhow::Result<()> {
    let key = match (&source.mnemonic_env, &source.hex_env, &source.devnet_account) {
        (Some(var), _, _) => {
            let phrase = secret_from_env(var)?;
            import_key(KeySource::Mnemonic { phrase: &phrase, index })?
        }
        (None, Some(var), _) => import_key(KeySource::Hex(&secret_from_env(var)?))?,
        (None, None, Some(name)) => import_key(KeySource::DevnetAccount(name))?,
        (None, None, None) => bail!("give --mnemonic-env, --hex-env or --devnet-account"),
    };
    let address = save(args, &key, force)?;
    if json {
        println!("{}", json!({ "address": address, "key_file": args.key_file }));
    } else {
        println!("address   {address}");
        println!("key file  {}", args.key_file.display());
    }
    Ok(())
}

fn balance(key: &KeyArgs, node: &NodeArgs) -> anyhow::Result<()> {
    let address = KeyFile::read(&key.key_file)?.address;
    let client = RpcClient::new(&node.node)?;
    let account = runtime()?.block_on(client.account(&address))?;
    if node.json {
        println!("{}", json!({ "address": address, "balance": account.balance.to_string(), "nonce": account.nonce }));
    } else {
        println!("address   {address}");
        println!("balance   {}.{:06} STX", account.balance / 1_000_000, account.balance % 1_000_000);
        println!("nonce     {}", account.nonce);
    }
    Ok(())
}

/// Signs, broadcasts and (unless --no-wait) waits; prints txid, status,
/// block height and the decoded result. An aborted transaction is an
/// error naming the contract error.
fn transact(args: &TxArgs, call: &ContractCall, extra: Option<(&str, String)>) -> anyhow::Result<()> {
    let key = unlock(&args.key)?;
    let client = RpcClient::new(&args.node.node)?;
    let rt = runtime()?;
    rt.block_on(async {
        let wallet = Wallet::connect(key, client, &args.node.contracts).await?;
        let sent = wallet
            .submit(call, args.fee)
            .await
            .with_context(|| format!("{} from {}", call.function, wallet.address()))?;
        let outcome =
            if args.no_wait { None } else { Some(wallet.wait(&sent.txid, Duration::from_secs(args.timeout)).await?) };
        report(call, &sent.txid, sent.nonce, sent.fee, outcome.as_ref(), extra, args.node.json)?;
        match outcome {
            Some(o) if !o.is_success() => Err(failure(call, &o)),
            _ => Ok(()),
        }
    })
}

fn failure(call: &ContractCall, o: &TxOutcome) -> anyhow::Error {
    match o.contract_error() {
        Some(e) => anyhow!("{} aborted: {} (u{}): {}", call.function, e.constant(), e.code(), e.message()),
        None => anyhow!(
            "{} failed: {}{}",
            call.function,
            o.status,
            o.result_repr.as_deref().map(|r| format!(" {r}")).unwrap_or_default()
        ),
    }
}

fn report(
    call: &ContractCall,
    txid: &Txid,
    nonce: u64,
    fee: u64,
    outcome: Option<&TxOutcome>,
    extra: Option<(&str, String)>,
    json: bool,
) -> anyhow::Result<()> {
    let error = outcome.and_then(TxOutcome::contract_error);
    let result = outcome.and_then(|o| o.result_repr.clone().or_else(|| o.result.as_ref().map(|r| format!("{r:?}"))));
    if json {
        let mut out = json!({
            "function": call.function,
            "txid": txid,
            "nonce": nonce,
            "fee": fee,
            "status": outcome.map_or("submitted", |o| o.status.as_str()),
            "block_height": outcome.and_then(|o| o.block_height),
            "burn_block_height": outcome.and_then(|o| o.burn_block_height),
            "result": result,
            "error": error.map(|e| e.constant()),
            "error_code": error.map(|e| e.code()),
        });
        if let Some((k, v)) = extra {
            out[k] = json!(v);
        }
        println!("{out}");
        return Ok(());
    }
    println!("function  {}.{}", call.contract, call.function);
    if let Some((k, v)) = &extra {
        println!("{:<9} {v}", k.replace('_', " "));
    }
    println!("txid      {txid}");
    println!("nonce     {nonce}, fee {fee} µSTX");
    match outcome {
        None => println!("status    submitted (not waiting)"),
        Some(o) => {
            println!("status    {}", o.status);
            if let Some(h) = o.block_height {
                match o.burn_block_height {
                    Some(b) => println!("block     {h} (burn height {b})"),
                    None => println!("block     {h}"),
                }
            }
            if let Some(r) = &result {
                println!("result    {r}");
            }
            if let Some(e) = error {
                println!("error     {} (u{}): {}", e.constant(), e.code(), e.message());
            }
        }
    }
    Ok(())
}

fn default_patient(patient: Option<String>, key_file: &Path) -> anyhow::Result<Principal> {
    let text = match patient {
        Some(p) => p,
        None => KeyFile::read(key_file).context("no --patient given, and the key file names none")?.address,
    };
    Ok(parse_principal(&text)?)
}

fn check(
    node: &NodeArgs,
    patient: Option<String>,
    provider: &str,
    data_type: &str,
    key_file: &Path,
) -> anyhow::Result<()> {
    let patient = default_patient(patient, key_file)?;
    let provider = parse_principal(provider)?;
    let data_type = parse_data_type(data_type)?;
    let reader = Reader::new(RpcClient::new(&node.node)?, &node.contracts)?;
    let answer = runtime()?.block_on(reader.check_consent(&patient, &provider, data_type))?;
    if node.json {
        let body = match answer {
            Ok(method) => json!({ "allowed": true, "method": method.name() }),
            Err(e) => {
                json!({ "allowed": false, "error": e.constant(), "error_code": e.code(), "message": e.message() })
            }
        };
        println!("{body}");
    } else {
        match answer {
            Ok(method) => println!("allowed   {provider} may read {data_type} of {patient} ({})", method.name()),
            Err(e) => println!("denied    {} (u{}): {}", e.constant(), e.code(), e.message()),
        }
    }
    match answer {
        Ok(_) => Ok(()),
        Err(e) => Err(anyhow!("check-consent: {}", e.constant())),
    }
}

fn consents(node: &NodeArgs, patient: Option<String>, provider: &str, key_file: &Path) -> anyhow::Result<()> {
    let patient = default_patient(patient, key_file)?;
    let provider = parse_principal(provider)?;
    let reader = Reader::new(RpcClient::new(&node.node)?, &node.contracts)?;
    let rows = runtime()?.block_on(async {
        let mut rows = Vec::new();
        for dt in DataType::ALL.iter().copied() {
            let entry = reader.get_consent(&patient, &provider, dt).await?;
            let check = if dt == DataType::AllStandard {
                None
            } else {
                Some(reader.check_consent(&patient, &provider, dt).await?)
            };
            rows.push((dt, entry, check));
        }
        anyhow::Ok(rows)
    })?;
    if node.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(dt, entry, check)| {
                json!({
                    "data_type": dt.name(),
                    "granted_at": entry.as_ref().map(|e| e.granted_at.to_string()),
                    "expires_at": entry.as_ref().and_then(|e| e.expires_at).map(|h| h.to_string()),
                    "revoked_at": entry.as_ref().and_then(|e| e.revoked_at).map(|h| h.to_string()),
                    "access": check.map(|c| match c {
                        Ok(m) => m.name().to_string(),
                        Err(e) => e.constant().to_string(),
                    }),
                })
            })
            .collect();
        println!("{}", json!({ "patient": patient.to_string(), "provider": provider.to_string(), "consents": out }));
        return Ok(());
    }
    println!("patient {patient}, provider {provider}");
    println!("{:<19} {:<44} access now", "data type", "entry (burn heights)");
    for (dt, entry, check) in rows {
        let entry = match entry {
            None => "-".to_string(),
            Some(e) => {
                let mut s = format!("granted {}", e.granted_at);
                match e.expires_at {
                    Some(x) => s.push_str(&format!(", expires {x}")),
                    None => s.push_str(", until revoked"),
                }
                if let Some(r) = e.revoked_at {
                    s.push_str(&format!(", revoked {r}"));
                }
                s
            }
        };
        let access = match check {
            None => "(broad grant; checked per type)".to_string(),
            Some(Ok(m)) => format!("allowed ({})", m.name()),
            Some(Err(e)) => e.constant().to_string(),
        };
        println!("{:<19} {entry:<44} {access}", dt.name());
    }
    Ok(())
}
