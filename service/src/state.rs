//! The service: everything a use case needs, assembled once
//! ([`Service::new`]) by the composition root, and the request's [`Caller`].
//!
//! Every use case acts as its real caller: roles come from the chain
//! (through the indexer) and from configuration at each call, and every
//! access attempt to patient data — allowed or refused — is appended to
//! the audit log ([`Service::audited`]) before its answer is returned.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medanchor_contracts::principal::Principal;
use medanchor_indexer::{AccessReader, ChainReader, ConsentReader, RecordReader};
use medanchor_wallet::keys::StacksKey;
use medanchor_wallet::RpcClient;

use crate::audit::{AuditEntry, AuditLog};
use crate::auth::SessionKey;
use crate::blob::BlobStore;
use crate::db::ApiDb;
use crate::envelope::Keyring;
use crate::error::{Error, Result};

/// The indexer's read traits, as one object.
pub trait ChainView: AccessReader + ChainReader + ConsentReader + RecordReader + Send + Sync {}
impl<T: AccessReader + ChainReader + ConsentReader + RecordReader + Send + Sync> ChainView for T {}

/// How the API runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// This service's tenant: its object-key prefix, bound into every
    /// ciphertext and wrapped key (one node serves one [`Service`] per
    /// tenant, each over its own database, keys and audit log).
    pub tenant: String,
    /// Who may use this tenant (principals), from configuration; `None`:
    /// anyone the chain knows (a node with one tenant). Admins and
    /// auditors are members.
    pub members: Option<Vec<String>>,
    /// The storage class new attachments are written in (S3's
    /// `x-amz-storage-class`; recorded in their metadata).
    pub storage_class: String,
    /// Named in sign-in challenges.
    pub domain: String,
    /// Largest record payload, in bytes.
    pub max_record_bytes: usize,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// Challenge lifetime.
    pub challenge_ttl: Duration,
    /// Principals with the auditor role.
    pub auditors: Vec<String>,
    /// Principals with the admin role.
    pub admins: Vec<String>,
    /// The deployer of the contracts.
    pub contracts: String,
    /// The API's public base URL: QR links point here and name it as
    /// their issuer.
    pub public_url: String,
    /// The brute-force policy for access codes.
    pub share_policy: crate::share::Policy,
    /// Redemption rate limits.
    pub share_limits: crate::share::limits::RateLimits,
    /// Providers' specialties (principal → names): who sees a specialty's
    /// templates.
    pub specialties: HashMap<String, Vec<String>>,
    /// Where attachments are stored (default: `objects/` in the data
    /// directory).
    pub attachments: Option<medanchor_storage::backend::BackendConfig>,
    /// Largest attachment, in bytes.
    pub max_attachment_bytes: usize,
    /// How long a removed attachment is kept before the purge job deletes
    /// it.
    pub attachment_retention: Duration,
    /// Most file hashes per anchored batch.
    pub batch_max: usize,
    /// USD per GB-month of each storage class (the storage report's
    /// estimate).
    pub storage_prices: std::collections::BTreeMap<String, f64>,
    /// Bytes stored past which a tenant is reported (and logged) as over
    /// its threshold.
    pub storage_alert_bytes: Option<u64>,
    /// The tombstone list of erased records: a file kept apart from the
    /// data directory and from the backups, replayed after a restore so
    /// nothing erased comes back (`None`: no list; the chain's purged
    /// status still is one).
    pub tombstones: Option<std::path::PathBuf>,
    /// SHA-256 of the bearer token a Prometheus scraper presents for
    /// `/metrics` (the token itself is never kept); `None`: loopback
    /// clients only.
    pub metrics_token_sha256: Option<[u8; 32]>,
    /// Let patients' webhooks reach loopback, private and link-local
    /// addresses (a hospital's own network; tests). Off: only public ones.
    pub webhook_allow_private: bool,
    /// The anomaly rules' thresholds.
    pub anomaly: medanchor_ops::anomaly::Rules,
    /// Where patients' notification e-mail is sent from (`None`: no
    /// e-mail; settings are kept, messages wait).
    pub smtp: Option<crate::notify::Smtp>,
    /// The smallest count the dashboard shows per diagnosis category
    /// (smaller ones are left out, so a count cannot single out a
    /// patient).
    pub analytics_min_cell: u64,
}

impl Config {
    /// Defaults for `tenant` and the devnet's contracts.
    pub fn new(tenant: &str, contracts: &str) -> Self {
        Config {
            tenant: tenant.into(),
            members: None,
            storage_class: "STANDARD".into(),
            domain: "medanchor.localhost".into(),
            max_record_bytes: 64 << 20,
            session_ttl: Duration::from_secs(3600),
            challenge_ttl: Duration::from_secs(300),
            auditors: Vec::new(),
            admins: Vec::new(),
            contracts: contracts.into(),
            public_url: "http://127.0.0.1:8080".into(),
            share_policy: Default::default(),
            share_limits: Default::default(),
            specialties: HashMap::new(),
            attachments: None,
            max_attachment_bytes: crate::attachments::DEFAULT_MAX_BYTES,
            attachment_retention: crate::attachments::DEFAULT_RETENTION,
            batch_max: crate::file_anchors::DEFAULT_BATCH_MAX,
            storage_prices: crate::storage_report::default_prices(),
            storage_alert_bytes: None,
            tombstones: None,
            metrics_token_sha256: None,
            webhook_allow_private: false,
            anomaly: Default::default(),
            smtp: None,
            analytics_min_cell: 5,
        }
    }
}

/// Provider keys the node holds for hospital systems (custodial signing),
/// with one lock per key so its nonces go out in order.
#[derive(Default)]
pub struct Custody {
    pub(crate) keys: HashMap<String, (StacksKey, Arc<tokio::sync::Mutex<()>>)>,
}

impl std::fmt::Debug for Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custody").field("principals", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

impl Custody {
    /// Adds a key; returns its principal.
    pub fn insert(&mut self, key: StacksKey) -> String {
        let principal = key.address(medanchor_wallet::keys::TESTNET_SINGLESIG).to_string();
        self.keys.insert(principal.clone(), (key, Arc::default()));
        principal
    }

    /// Whether the node signs for `principal`.
    pub fn holds(&self, principal: &str) -> bool {
        self.keys.contains_key(principal)
    }
}

/// One async lock per record id.
type RecordLocks = HashMap<[u8; 16], Arc<tokio::sync::Mutex<()>>>;

/// Everything a use case needs.
#[derive(Clone)]
pub struct Service {
    pub(crate) config: Arc<Config>,
    pub(crate) db: Arc<ApiDb>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) keyring: Arc<RwLock<Keyring>>,
    pub(crate) session: Arc<SessionKey>,
    /// Signs the audit log's checkpoints: the node's secret itself.
    pub(crate) checkpoint: Arc<ed25519_dalek::SigningKey>,
    pub(crate) challenges: Arc<crate::auth::ChallengeKey>,
    /// Keys the audit log's client-address hashes.
    pub(crate) ip_key: Arc<[u8; 32]>,
    pub(crate) chain: Arc<dyn ChainView>,
    pub(crate) audit: AuditLog,
    pub(crate) node: RpcClient,
    pub(crate) custody: Arc<Custody>,
    /// One lock per record id, so concurrent updates serialize.
    pub(crate) record_locks: Arc<std::sync::Mutex<RecordLocks>>,
    pub(crate) shares: Arc<crate::share::ShareStore>,
    pub(crate) limiter: Arc<crate::share::limits::Limiter>,
    pub(crate) clock: Clock,
    /// The record templates (`medanchor-clinical`): the built-in ones and
    /// those people added (stored in the database, loaded at open).
    pub(crate) templates: Arc<RwLock<medanchor_clinical::Registry>>,
    /// One template writer at a time (check, store, publish).
    pub(crate) template_writer: Arc<tokio::sync::Mutex<()>>,
    /// The key that commits verified credentials on-chain (the contract
    /// owner's), if this node holds it.
    pub(crate) registrar: Option<Arc<crate::credentials::Registrar>>,
    /// The search index's keys (derived from the node's secret).
    pub(crate) search: Arc<crate::search::SearchKeys>,
    /// One index writer per patient at a time.
    pub(crate) index_stripes: Arc<crate::search::PatientStripes>,
    /// The attachments' object store (set by [`Service::open`]).
    pub(crate) objects: Option<Arc<medanchor_storage::backend::Backend>>,
    /// Keys the MACs of attachment names.
    pub(crate) attachment_names: Arc<[u8; 32]>,
    /// Signs attachment download links.
    pub(crate) link_key: Arc<[u8; 32]>,
    /// Derives patients' webhook secrets (per tenant).
    pub(crate) webhook_key: Arc<[u8; 32]>,
    /// Where unfinished resumable uploads are spooled (set by
    /// [`Service::open`]).
    pub(crate) spool: Option<Arc<medanchor_storage::spool::Spool>>,
    /// One-pass uploads' parts already on their way to S3, by upload (an
    /// optimisation: lost in a restart, the file is sent whole at
    /// completion).
    pub(crate) file_parts: Arc<std::sync::Mutex<HashMap<[u8; 16], medanchor_storage::backend::FileParts>>>,
    /// The node's backup machinery, once the process that runs it sets it
    /// (the default tenant's only: backups are the node's, not a tenant's).
    pub(crate) backups: crate::backups::BackupSlot,
    /// Whether this is the node's first tenant (its admins run the node's
    /// backups), not one opened beside it ([`Service::open_tenant`]).
    pub(crate) primary: bool,
    /// One operator transaction submitted at a time (the audit and file
    /// anchorers may share a key; its nonces must go out in order).
    pub(crate) submit_lock: Arc<tokio::sync::Mutex<()>>,
    /// The export signing key's secret (derived from the node's, per
    /// tenant) and the key, made on first use.
    pub(crate) export_secret: Arc<[u8; 32]>,
    pub(crate) export_key: Arc<std::sync::OnceLock<std::result::Result<medanchor_export::sign::ExportKey, String>>>,
    /// The periodic jobs this tenant's scheduler runs (what
    /// `GET /v1/admin/jobs` lists).
    pub(crate) job_specs: Arc<std::sync::Mutex<Vec<medanchor_ops::schedule::JobSpec>>>,
}

/// Unix milliseconds now: the system clock, or a test's.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("tenant", &self.config.tenant).finish()
    }
}

impl Service {
    /// Assembles the state (the audit writer starts on the current runtime).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        db: Arc<ApiDb>,
        blobs: Arc<dyn BlobStore>,
        keyring: Keyring,
        session: SessionKey,
        chain: Arc<dyn ChainView>,
        node: RpcClient,
        custody: Custody,
    ) -> Service {
        let audit = AuditLog::start_with(db.clone(), config.anomaly.clone());
        // The sharing keys derive from the node's secret, separated from
        // its session and checkpoint signatures by domain.
        // The node's secret signs audit checkpoints directly (the log's
        // long-term identity, which auditors pin); every other use gets a
        // key derived from it under its own label, so a session token can
        // never pass for a checkpoint signature or the other way round.
        let root = session.signing_key().to_bytes();
        let checkpoint = Arc::new(session.signing_key().clone());
        let session = SessionKey::for_node(&root);
        let share_keys = crate::share::link::ShareKeys::derive(&root);
        let shares = Arc::new(crate::share::ShareStore::new(db.clone(), share_keys, config.share_policy));
        let limiter = Arc::new(crate::share::limits::Limiter::new(config.share_limits));
        let challenges = Arc::new(crate::auth::ChallengeKey::derive(&root));
        let ip_key = Arc::new(crate::auth::derive_key(&root, b"medanchor audit ip-hash v1"));
        let search = Arc::new(crate::search::SearchKeys::derive(&root, &config.tenant));
        let attachment_names = Arc::new(crate::auth::derive_key(&root, b"medanchor attachment names v1"));
        // Per tenant: a link one tenant signed never verifies in another.
        let link_key = Arc::new(crate::auth::derive_key(
            &root,
            format!("medanchor attachment links v1\0{}", config.tenant).as_bytes(),
        ));
        let webhook_key = Arc::new(crate::auth::derive_key(
            &root,
            format!("medanchor webhook secrets v1\0{}", config.tenant).as_bytes(),
        ));
        let export_secret = Arc::new(crate::auth::derive_key(
            &root,
            format!("medanchor export signing v1\0{}", config.tenant).as_bytes(),
        ));
        Service {
            config: Arc::new(config),
            db,
            blobs,
            keyring: Arc::new(RwLock::new(keyring)),
            session: Arc::new(session),
            checkpoint,
            challenges,
            ip_key,
            chain,
            audit,
            node,
            custody: Arc::new(custody),
            record_locks: Arc::default(),
            shares,
            limiter,
            clock: Arc::new(now_ms),
            templates: Arc::new(RwLock::new(medanchor_clinical::Registry::builtin())),
            template_writer: Arc::default(),
            registrar: None,
            search,
            index_stripes: Arc::default(),
            objects: None,
            attachment_names,
            link_key,
            webhook_key,
            spool: None,
            file_parts: Arc::default(),
            submit_lock: Arc::default(),
            backups: Arc::default(),
            primary: true,
            export_secret,
            export_key: Arc::default(),
            job_specs: Arc::new(std::sync::Mutex::new(vec![
                crate::scheduler::NOTIFICATIONS,
                crate::scheduler::SHARE_SWEEP,
                crate::scheduler::CREDENTIAL_EXPIRY,
                crate::scheduler::ATTACHMENT_CLEANUP,
                crate::scheduler::CONSENT_REMINDERS,
            ])),
        }
    }

    /// The composition root: the service over a data directory (`db/`,
    /// `blobs/`) and a key directory (the KEKs, and `session.key`: the
    /// node's secret, 0600, created on first open unless `secret` is
    /// given). `up`, the end-to-end tests and the benchmarks all wire the
    /// node through here.
    pub fn open(
        config: Config,
        data_dir: &std::path::Path,
        keys_dir: &std::path::Path,
        secret: Option<[u8; 32]>,
        chain: Arc<dyn ChainView>,
        node: RpcClient,
        custody: Custody,
    ) -> Result<Service> {
        let io = |what: &str, e: &dyn std::fmt::Display| Error::internal(format!("{what}: {e}"));
        let (keyring, db, blobs) = open_stores(data_dir, keys_dir)?;
        let secret = match secret {
            Some(s) => s,
            None => node_secret(&keys_dir.join("session.key")).map_err(|e| io("the node's secret", &e))?,
        };
        let objects_config = config
            .attachments
            .clone()
            .unwrap_or(medanchor_storage::backend::BackendConfig::Local { root: data_dir.join("objects") });
        let objects = medanchor_storage::backend::Backend::open(&objects_config)
            .map_err(|e| io("opening the object store", &e))?;
        let mut service =
            Service::new(config, db, blobs, keyring, SessionKey::from_bytes(&secret), chain, node, custody);
        service.objects = Some(Arc::new(objects));
        service.finish_open(data_dir)
    }

    /// The same state on another clock (tests move time instead of
    /// sleeping; sessions keep the system clock).
    pub fn with_clock(mut self, clock: Clock) -> Service {
        self.clock = clock;
        self
    }

    /// The same state talking to the node at `node` (a node that moved;
    /// tests of one that stopped answering).
    pub fn with_node(mut self, node: RpcClient) -> Service {
        self.node = node;
        self
    }

    /// The same state committing verified credentials with `key` (the
    /// contracts' owner).
    pub fn with_registrar(mut self, key: StacksKey) -> Service {
        self.registrar = Some(Arc::new(crate::credentials::Registrar::new(key)));
        self
    }

    /// Another tenant's service on the same node: its own database, blobs,
    /// KEKs and upload spool in `data_dir` / `keys_dir`, its own audit log
    /// and configuration; the node's secret, the chain, the RPC, the
    /// custodial keys (one nonce lock per key across tenants), the operator
    /// submission lock, the registrar, the clock, the redemption limiter
    /// and the object store (each tenant under its own key prefix) shared
    /// with this one.
    pub fn open_tenant(
        &self,
        config: Config,
        data_dir: &std::path::Path,
        keys_dir: &std::path::Path,
    ) -> Result<Service> {
        if config.tenant == self.config.tenant {
            return Err(Error::internal(format!("tenant {:?} is opened twice", config.tenant)));
        }
        let (keyring, db, blobs) = open_stores(data_dir, keys_dir)?;
        let secret = self.checkpoint.to_bytes();
        let mut service = Service::new(
            config,
            db,
            blobs,
            keyring,
            SessionKey::from_bytes(&secret),
            self.chain.clone(),
            self.node.clone(),
            Custody::default(),
        );
        service.custody = self.custody.clone();
        service.submit_lock = self.submit_lock.clone();
        service.registrar = self.registrar.clone();
        service.clock = self.clock.clone();
        service.limiter = self.limiter.clone();
        service.objects = self.objects.clone();
        service.primary = false;
        service.finish_open(data_dir)
    }

    /// The last steps of every open: the upload spool in `data_dir`, the
    /// stored templates, the search index.
    fn finish_open(mut self, data_dir: &std::path::Path) -> Result<Service> {
        self.spool = Some(Arc::new(
            medanchor_storage::spool::Spool::open(&data_dir.join("uploads"))
                .map_err(|e| Error::internal(format!("opening the upload spool: {e}")))?,
        ));
        self.load_templates()?;
        self.ensure_search_index()?;
        Ok(self)
    }

    /// Whether `p` may use this tenant: listed as a member, an admin or an
    /// auditor (or anyone, when the tenant lists no members).
    pub fn is_member(&self, p: &Principal) -> bool {
        let s = p.to_string();
        match &self.config.members {
            None => true,
            Some(members) => {
                members.contains(&s) || self.config.admins.contains(&s) || self.config.auditors.contains(&s)
            }
        }
    }

    /// Now, on this state's clock (unix ms).
    pub fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    /// The audit log's keyed hash of a client address.
    pub fn ip_hash(&self, ip: std::net::IpAddr) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.ip_key[..]).expect("any key length");
        mac.update(ip.to_string().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Sweeps used sign-in challenges past their expiry (returns how many)
    /// and drops the per-record locks no request holds, so neither grows
    /// with the number of sign-ins or records ever touched.
    pub fn housekeeping(&self) -> Result<usize, crate::db::DbError> {
        self.record_locks.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, lock| Arc::strong_count(lock) > 1);
        // Challenges run on the system clock, as sessions do.
        self.db.sweep_challenges(now_ms() / 1000)
    }

    /// Locks held right now per record (for tests of the pruning).
    pub fn record_lock_count(&self) -> usize {
        self.record_locks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The share store.
    pub fn shares(&self) -> &Arc<crate::share::ShareStore> {
        &self.shares
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// How the node runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The chain, as the indexer has it.
    pub fn chain(&self) -> &dyn ChainView {
        &*self.chain
    }

    /// The ciphertext store.
    pub fn blobs(&self) -> &dyn BlobStore {
        &*self.blobs
    }

    /// The attachments' object store, if this node has one.
    pub fn object_store(&self) -> Option<&medanchor_storage::backend::Backend> {
        self.objects.as_deref()
    }

    /// The node's RPC.
    pub fn node(&self) -> &RpcClient {
        &self.node
    }

    /// The keys this node signs custodial transactions with.
    pub fn custody(&self) -> &Custody {
        &self.custody
    }

    /// Checks session tokens.
    pub fn session(&self) -> &SessionKey {
        &self.session
    }

    /// Issues and checks sign-in challenges.
    pub fn challenges(&self) -> &crate::auth::ChallengeKey {
        &self.challenges
    }

    /// This tenant's database directory.
    pub fn database_dir(&self) -> &std::path::Path {
        self.db.path()
    }

    /// A RocksDB checkpoint of this tenant's database in `into`.
    pub fn checkpoint_database(&self, into: &std::path::Path) -> std::result::Result<(), String> {
        self.db.checkpoint(into).map_err(|e| e.to_string())
    }

    /// Signs the audit log's checkpoints (the log's long-term identity).
    pub fn checkpoint_key(&self) -> &ed25519_dalek::SigningKey {
        &self.checkpoint
    }

    /// The redemption rate limiter.
    pub fn limiter(&self) -> &crate::share::limits::Limiter {
        &self.limiter
    }

    /// The record database.
    pub fn db(&self) -> &ApiDb {
        &self.db
    }

    /// The lock that serializes writes to one record (updates and
    /// lifecycle calls), so a check and its transaction see one state.
    pub(crate) fn record_lock(&self, id: &[u8; 16]) -> Arc<tokio::sync::Mutex<()>> {
        self.record_locks.lock().unwrap_or_else(|p| p.into_inner()).entry(*id).or_default().clone()
    }

    /// The caller's role: `admin` and `auditor` from configuration, else
    /// `provider` or `patient` as the chain has them, else `none`.
    pub fn role_of(&self, p: &Principal) -> Result<&'static str> {
        let s = p.to_string();
        if self.config.admins.contains(&s) {
            return Ok("admin");
        }
        if self.config.auditors.contains(&s) {
            return Ok("auditor");
        }
        if self.chain.provider(p).map_err(Error::internal)?.is_some() {
            return Ok("provider");
        }
        if self.chain.patient(p).map_err(Error::internal)?.is_some() {
            return Ok("patient");
        }
        Ok("none")
    }

    /// The one audit step of a use case: appends `entry` with the outcome
    /// of `result` — `allowed`; `denied` with the contract's error name (or
    /// the problem code) for a refusal of the caller; `error` for a fault
    /// — and returns `result`. Synced before the caller hears the answer.
    pub async fn audited<T>(&self, mut entry: AuditEntry, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            entry.outcome = outcome_of(e).into();
            entry.reason = Some(e.audit_reason());
        }
        self.audit.append(entry).await.map_err(Error::internal)?;
        result
    }

    /// A check on the way: a refusal (or fault) is audited as
    /// [`Service::audited`] does; a success passes through unrecorded, for
    /// the use case to audit once it is done.
    pub async fn audit_refusal<T>(&self, entry: &AuditEntry, result: Result<T>) -> Result<T> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => self.audited(entry.clone(), Err(e)).await,
        }
    }
}

/// The audit outcome of an error: `error` for a fault of ours or of the
/// node, `denied` for a refusal of the caller.
fn outcome_of(e: &Error) -> &'static str {
    match e {
        Error::Internal(_) | Error::Unavailable(_) | Error::Integrity(_) => "error",
        _ => "denied",
    }
}

impl Service {
    /// The record database and the keyring, for maintenance such as KEK
    /// rotation ([`crate::rotate::rewrap_all`]) in tests and tools.
    pub fn keys(&self) -> (&ApiDb, &RwLock<Keyring>) {
        (&self.db, &self.keyring)
    }

    /// What the audit anchor task needs: the node, the contracts' deployer
    /// and the API database.
    pub(crate) fn anchor_parts(&self) -> (&RpcClient, &str, &Arc<ApiDb>) {
        (&self.node, &self.config.contracts, &self.db)
    }
}

/// Unix milliseconds now, on the system clock.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Who is calling, from where: what a front end knows of a request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The session's principal, if the session is valid.
    pub principal: Option<Principal>,
    /// Whether a session token was presented (valid or not).
    pub presented_token: bool,
    /// The request's id (in audit entries and on log lines).
    pub request_id: String,
    /// The client's address (rate limits key on it; the audit log keeps
    /// only its keyed hash).
    pub ip: Option<String>,
    /// The client's user agent, at most [`crate::audit::MAX_FIELD`] bytes.
    pub user_agent: Option<String>,
    /// The keyed hash of the client's address the audit log keeps.
    pub ip_hash: Option<String>,
}

impl Caller {
    /// The caller from a front end's view of a request: the session token
    /// (checked here), the request id, the client's address and user agent.
    pub fn new(
        service: &Service,
        token: Option<&str>,
        request_id: String,
        ip: Option<std::net::IpAddr>,
        user_agent: Option<&str>,
    ) -> Caller {
        let principal =
            token.and_then(|t| service.session.verify(t, now_ms() / 1000).ok()).and_then(|c| c.sub.parse().ok());
        Caller {
            principal,
            presented_token: token.is_some(),
            request_id,
            ip: ip.map(|ip| ip.to_string()),
            ip_hash: ip.map(|ip| service.ip_hash(ip)),
            user_agent: user_agent.map(|ua| {
                // Bounded before it is copied anywhere (audit entries keep it).
                let mut cut = ua.len().min(crate::audit::MAX_FIELD);
                while !ua.is_char_boundary(cut) {
                    cut -= 1;
                }
                ua[..cut].to_string()
            }),
        }
    }

    /// The signed-in principal, or why there is none.
    pub fn require(&self) -> Result<&Principal> {
        match &self.principal {
            Some(p) => Ok(p),
            None if self.presented_token => {
                Err(Error::Unauthorized("the session token is invalid or expired; sign in again".into()))
            }
            None => Err(Error::Unauthorized("sign in first: Authorization: Bearer <token>".into())),
        }
    }

    /// A fresh audit entry for `action` by this caller in `role`.
    pub fn entry(&self, role: &str, action: &str) -> AuditEntry {
        AuditEntry {
            time_ms: now_ms(),
            actor: self.principal.as_ref().map_or("anonymous".into(), |p| p.to_string()),
            role: role.into(),
            action: action.into(),
            patient: None,
            record_id: None,
            version: None,
            method: None,
            share_id: None,
            outcome: "allowed".into(),
            reason: None,
            client_ip: None,
            user_agent: self.user_agent.clone(),
            ip_hash: self.ip_hash.clone(),
            request_id: self.request_id.clone(),
            detail: None,
            diagnoses: Vec::new(),
        }
    }
}

/// A service's own stores: the KEKs in `keys_dir`, the database and the
/// ciphertext blobs in `data_dir` (both directories created).
fn open_stores(
    data_dir: &std::path::Path,
    keys_dir: &std::path::Path,
) -> Result<(Keyring, Arc<ApiDb>, Arc<dyn BlobStore>)> {
    let io = |what: &str, e: &dyn std::fmt::Display| Error::internal(format!("{what}: {e}"));
    std::fs::create_dir_all(data_dir).map_err(|e| io("creating the data directory", &e))?;
    std::fs::create_dir_all(keys_dir).map_err(|e| io("creating the key directory", &e))?;
    let keyring = Keyring::open(keys_dir).map_err(|e| io("opening the keyring", &e))?;
    let db = Arc::new(ApiDb::open(&data_dir.join("db")).map_err(|e| io("opening the database", &e))?);
    let blobs: Arc<dyn BlobStore> =
        Arc::new(crate::blob::LocalDir::open(&data_dir.join("blobs")).map_err(|e| io("opening the blob store", &e))?);
    Ok((keyring, db, blobs))
}

/// The node's 32-byte secret in `path` (hex), created (0600, synced) on
/// first use.
fn node_secret(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use rand::RngCore;
    if path.exists() {
        let text = std::fs::read_to_string(path)?;
        return hex::decode(text.trim()).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not 32 bytes of hex", path.display()))
        });
    }
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    std::io::Write::write_all(&mut f, hex::encode(secret).as_bytes())?;
    f.sync_all()?;
    Ok(secret)
}
