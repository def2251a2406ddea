//! Shared test helpers: a temporary index, deterministic principals, and a
//! [`Chain`] of labelled synthetic blocks whose events stay consistent
//! along each branch (per-patient `seq`, only existing grants revoked, only
//! existing records updated), so forks can carry different histories.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use medanchor_contracts::events::{ConsentEvent, RecordEvent, StatusChange};
use medanchor_contracts::principal::{Principal, StandardPrincipal, VERSION_TESTNET_SINGLESIG};
use medanchor_contracts::types::{AccessLevel, AccessMethod, DataType, RecordType};
use medanchor_contracts::ContractEvent;
use medanchor_indexer::query::IndexReader;
use medanchor_indexer::schema::Cf;
use medanchor_indexer::synth::{self, SynthBlock, SynthTx};
use medanchor_indexer::{ChainReader, Indexer, IndexerConfig, Outcome};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The parent every genesis names (stacks-node's sentinel).
pub const GENESIS_PARENT: [u8; 32] = [0xff; 32];
/// Burn height of every chain's genesis; block `h` is at `BURN_BASE + h`
/// unless a test says otherwise.
pub const BURN_BASE: u64 = 100;
/// Unix time of the genesis.
pub const TIME_BASE: u64 = 1_700_000_000;

/// The fixture directory.
pub fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stacks-node")
}

/// `address.patient-consent` on the devnet.
pub fn consent_contract() -> String {
    IndexerConfig::for_deployer(medanchor_contracts::DEPLOYER_ADDRESS).consent_contract
}

/// `address.record-management` on the devnet.
pub fn records_contract() -> String {
    IndexerConfig::for_deployer(medanchor_contracts::DEPLOYER_ADDRESS).records_contract
}

/// Our contracts on the devnet, with `undo_depth` blocks of undo.
pub fn config(undo_depth: u64) -> IndexerConfig {
    IndexerConfig { undo_depth, ..IndexerConfig::for_deployer(medanchor_contracts::DEPLOYER_ADDRESS) }
}

/// A deterministic testnet account named by `tag`.
pub fn principal(tag: &str) -> Principal {
    let digest = synth::id(&format!("principal-{tag}"));
    let mut hash160 = [0u8; 20];
    hash160.copy_from_slice(&digest[..20]);
    Principal::Standard(StandardPrincipal { version: VERSION_TESTNET_SINGLESIG, hash160 })
}

/// Every key and value of some families, family by family.
pub type Dump = Vec<(Cf, Vec<(Vec<u8>, Vec<u8>)>)>;

/// A fresh index in a temporary directory.
pub struct TestIndex {
    /// The indexer.
    pub indexer: Indexer,
    /// A reader over it.
    pub reader: IndexReader,
    _dir: tempfile::TempDir,
}

impl TestIndex {
    /// An empty index with `config`.
    pub fn new(config: IndexerConfig) -> TestIndex {
        let dir = tempfile::tempdir().expect("temp dir");
        let indexer = Indexer::open(dir.path(), config).expect("open index");
        let reader = IndexReader::new(Arc::clone(indexer.db()));
        TestIndex { indexer, reader, _dir: dir }
    }

    /// Ingests a synthetic block through the JSON path, as the node sends it.
    pub fn ingest(&self, block: &SynthBlock) -> medanchor_indexer::Result<Outcome> {
        self.indexer.ingest_json(&block.to_bytes())
    }

    /// The canonical tip's index block hash.
    pub fn tip(&self) -> Option<[u8; 32]> {
        let status = self.reader.status().expect("status");
        status.tip_index_block_hash.map(<[u8; 32]>::from)
    }

    /// Every key and value of `families`.
    pub fn dump(&self, families: &[Cf]) -> Dump {
        families.iter().map(|cf| (*cf, self.indexer.db().dump(*cf).expect("dump"))).collect()
    }

    /// The derived families (everything a re-org must restore exactly).
    pub fn derived(&self) -> Dump {
        self.dump(&derived_families())
    }

    /// Every family.
    pub fn everything(&self) -> Dump {
        self.dump(Cf::ALL)
    }
}

/// The families written through the undo log.
pub fn derived_families() -> Vec<Cf> {
    Cf::ALL.iter().copied().filter(|cf| cf.is_derived()).collect()
}

/// Asserts two dumps are byte-identical, naming the first difference.
pub fn assert_same(context: &str, got: &Dump, want: &Dump) {
    assert_eq!(got.len(), want.len(), "{context}: different families");
    for ((cf, g), (_, w)) in got.iter().zip(want) {
        if g == w {
            continue;
        }
        let first = g.iter().zip(w.iter()).position(|(a, b)| a != b).unwrap_or(g.len().min(w.len()));
        panic!(
            "{context}: family {} differs ({} vs {} entries); first difference at entry {first}: got {:?}, want {:?}",
            cf.name(),
            g.len(),
            w.len(),
            g.get(first).map(|(k, v)| (hex::encode(k), hex::encode(v))),
            w.get(first).map(|(k, v)| (hex::encode(k), hex::encode(v))),
        );
    }
}

/// Parses `0x` hex of 32 bytes.
pub fn parse_hash(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(s), &mut out).expect("32 bytes of hex");
    out
}

/// A record as a branch knows it.
#[derive(Debug, Clone)]
pub struct RecordState {
    /// Its patient.
    pub patient: Principal,
    /// Current version.
    pub version: u64,
    /// Finalized records take no updates.
    pub finalized: bool,
}

/// What a branch's history has done so far: enough to keep the next
/// block's events consistent with the contracts.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Registered patients and their next history seq.
    pub seq: BTreeMap<Principal, u64>,
    /// Registered providers.
    pub providers: BTreeSet<Principal>,
    /// Credentialed emergency responders.
    pub responders: BTreeSet<Principal>,
    /// Consents granted and not revoked.
    pub grants: BTreeSet<(Principal, Principal, DataType)>,
    /// Overrides started and not ended.
    pub overrides: BTreeSet<(Principal, Principal)>,
    /// Records by id.
    pub records: BTreeMap<[u8; 16], RecordState>,
}

/// Builds one block's transactions on top of its branch's [`Ledger`].
pub struct BlockBuilder {
    label: String,
    burn: u64,
    ledger: Ledger,
    txs: Vec<SynthTx>,
}

fn consent_ev(e: ConsentEvent) -> (String, ContractEvent) {
    (consent_contract(), ContractEvent::PatientConsent(e))
}

fn record_ev(e: RecordEvent) -> (String, ContractEvent) {
    (records_contract(), ContractEvent::RecordManagement(e))
}

impl BlockBuilder {
    fn txid(&self) -> [u8; 32] {
        synth::id(&format!("tx-{}-{}", self.label, self.txs.len()))
    }

    /// A successful transaction printing `events`.
    pub fn tx(&mut self, events: Vec<(String, ContractEvent)>) {
        let txid = self.txid();
        self.txs.push(SynthTx { txid, status: "success", events });
    }

    /// A transaction that failed (`abort_by_response`): no events.
    pub fn failed_tx(&mut self) {
        let txid = self.txid();
        self.txs.push(SynthTx { txid, status: "abort_by_response", events: Vec::new() });
    }

    fn next_seq(&mut self, patient: &Principal) -> u64 {
        let seq = self.ledger.seq.get_mut(patient).expect("patient registered on this branch");
        *seq += 1;
        *seq - 1
    }

    /// `register-patient`.
    pub fn register_patient(&mut self, patient: &Principal) {
        assert!(!self.ledger.seq.contains_key(patient), "{patient} registered twice");
        self.ledger.seq.insert(patient.clone(), 1);
        self.tx(vec![consent_ev(ConsentEvent::PatientRegistered {
            patient: patient.clone(),
            patient_id: synth::id(&format!("patient-id-{patient}")),
            emergency_contact: None,
            primary_physician: None,
            seq: 0,
            at: self.burn,
        })]);
    }

    /// `grant-consent`.
    pub fn grant(&mut self, patient: &Principal, provider: &Principal, data_type: DataType, expires_at: Option<u64>) {
        let seq = self.next_seq(patient);
        self.ledger.grants.insert((patient.clone(), provider.clone(), data_type));
        self.tx(vec![consent_ev(ConsentEvent::ConsentGranted {
            patient: patient.clone(),
            provider: provider.clone(),
            data_type,
            expires_at,
            seq,
            at: self.burn,
        })]);
    }

    /// `revoke-consent`.
    pub fn revoke(&mut self, patient: &Principal, provider: &Principal, data_type: DataType) {
        assert!(
            self.ledger.grants.remove(&(patient.clone(), provider.clone(), data_type)),
            "revoking a consent never granted"
        );
        let seq = self.next_seq(patient);
        self.tx(vec![consent_ev(ConsentEvent::ConsentRevoked {
            patient: patient.clone(),
            provider: provider.clone(),
            data_type,
            seq,
            at: self.burn,
        })]);
    }

    /// `update-preferences`.
    pub fn preferences(&mut self, patient: &Principal, mental_health: bool, genetic: bool) {
        let seq = self.next_seq(patient);
        self.tx(vec![consent_ev(ConsentEvent::PreferencesUpdated {
            patient: patient.clone(),
            emergency_contact: Some(principal("emergency-contact")),
            primary_physician: None,
            emergency_mental_health: mental_health,
            emergency_genetic: genetic,
            seq,
            at: self.burn,
        })]);
    }

    /// `emergency-override` by `provider`.
    pub fn emergency(&mut self, patient: &Principal, provider: &Principal, expires_at: u64) {
        let seq = self.next_seq(patient);
        self.ledger.overrides.insert((patient.clone(), provider.clone()));
        self.tx(vec![consent_ev(ConsentEvent::EmergencyOverrideStarted {
            patient: patient.clone(),
            provider: provider.clone(),
            reason: 7,
            expires_at,
            seq,
            at: self.burn,
        })]);
    }

    /// `end-emergency-override` by the patient.
    pub fn end_emergency(&mut self, patient: &Principal, provider: &Principal) {
        assert!(self.ledger.overrides.remove(&(patient.clone(), provider.clone())), "no override to end");
        let seq = self.next_seq(patient);
        self.tx(vec![consent_ev(ConsentEvent::EmergencyOverrideEnded {
            patient: patient.clone(),
            provider: provider.clone(),
            ended_by: patient.clone(),
            seq,
            at: self.burn,
        })]);
    }

    /// `set-deceased-status` by the patient's physician.
    pub fn deceased(&mut self, patient: &Principal, deceased: bool) {
        let seq = self.next_seq(patient);
        self.tx(vec![consent_ev(ConsentEvent::DeceasedStatusSet {
            patient: patient.clone(),
            deceased,
            set_by: principal("physician"),
            seq,
            at: self.burn,
        })]);
    }

    /// `set-emergency-responder` by the owner.
    pub fn responder(&mut self, provider: &Principal, authorized: bool) {
        if authorized {
            self.ledger.responders.insert(provider.clone());
        } else {
            self.ledger.responders.remove(provider);
        }
        self.tx(vec![consent_ev(ConsentEvent::EmergencyResponderSet {
            provider: provider.clone(),
            authorized,
            at: self.burn,
        })]);
    }

    /// `set-paused` by the owner.
    pub fn paused(&mut self, paused: bool) {
        self.tx(vec![consent_ev(ConsentEvent::PausedSet { paused, at: self.burn })]);
    }

    /// `register-provider` by the owner.
    pub fn register_provider(&mut self, provider: &Principal) {
        self.ledger.providers.insert(provider.clone());
        self.tx(vec![record_ev(RecordEvent::ProviderRegistered {
            provider: provider.clone(),
            credential_hash: synth::id(&format!("credential-{provider}")),
            at: self.burn,
        })]);
    }

    /// `grant-provider-access` by the patient.
    pub fn access(&mut self, patient: &Principal, provider: &Principal, level: AccessLevel, expires_at: Option<u64>) {
        self.tx(vec![record_ev(RecordEvent::ProviderAccessGranted {
            patient: patient.clone(),
            provider: provider.clone(),
            access_level: level,
            expires_at,
            at: self.burn,
        })]);
    }

    /// `set-anchor-operator` by the owner.
    pub fn operator(&mut self, operator: &Principal, authorized: bool) {
        self.tx(vec![record_ev(RecordEvent::AnchorOperatorSet {
            operator: operator.clone(),
            authorized,
            at: self.burn,
        })]);
    }

    /// `set-emergency-timeout` and `set-retention-period` by the owners.
    pub fn timeouts(&mut self, emergency: u64, retention: u64) {
        self.tx(vec![
            consent_ev(ConsentEvent::EmergencyTimeoutSet { blocks: emergency, at: self.burn }),
            record_ev(RecordEvent::RetentionPeriodSet { blocks: retention, at: self.burn }),
        ]);
    }

    /// `anchor-batch` and `anchor-audit-root` by an operator, in one
    /// transaction (two events).
    pub fn anchor_batch(&mut self, operator: &Principal) {
        let root = synth::id(&format!("batch-{}-{}", self.label, self.txs.len()));
        self.tx(vec![
            record_ev(RecordEvent::BatchAnchored { root, leaf_count: 16, submitter: operator.clone(), at: self.burn }),
            record_ev(RecordEvent::AuditRootAnchored {
                log: operator.clone(),
                tree_size: self.burn,
                root,
                at: self.burn,
            }),
        ]);
    }

    /// The data hash of `version` of `record`.
    pub fn data_hash(record: &[u8; 16], version: u64) -> [u8; 32] {
        synth::id(&format!("data-{}-{version}", hex::encode(record)))
    }

    /// `create-record` by `provider`; returns the record id.
    pub fn create_record(&mut self, patient: &Principal, provider: &Principal, record_type: RecordType) -> [u8; 16] {
        let mut record_id = [0u8; 16];
        record_id.copy_from_slice(&synth::id(&format!("record-{}-{}", self.label, self.txs.len()))[..16]);
        self.ledger.records.insert(record_id, RecordState { patient: patient.clone(), version: 1, finalized: false });
        self.tx(vec![record_ev(RecordEvent::RecordCreated {
            record_id,
            patient: patient.clone(),
            record_type,
            data_type: record_type.data_type(),
            data_hash: Self::data_hash(&record_id, 1),
            encryption_key_id: Some(synth::id("key-1")),
            confidentiality: 1,
            created_by: provider.clone(),
            access: AccessMethod::Consent,
            retention_until: self.burn + medanchor_contracts::types::DEFAULT_RETENTION_BLOCKS,
            at: self.burn,
        })]);
        record_id
    }

    /// `update-record` by `provider`: a new version with a new hash.
    pub fn update_record(&mut self, record_id: &[u8; 16], provider: &Principal) {
        let record = self.ledger.records.get_mut(record_id).expect("record exists on this branch");
        assert!(!record.finalized, "updating a finalized record");
        record.version += 1;
        let (patient, version) = (record.patient.clone(), record.version);
        self.tx(vec![record_ev(RecordEvent::RecordUpdated {
            record_id: *record_id,
            patient,
            version,
            data_hash: Self::data_hash(record_id, version),
            encryption_key_id: Some(synth::id("key-1")),
            updated_by: provider.clone(),
            at: self.burn,
        })]);
    }

    /// `access-record` by `accessor` (an audit event; no state).
    pub fn access_record(&mut self, record_id: &[u8; 16], accessor: &Principal) {
        let record = &self.ledger.records[record_id];
        let (patient, version) = (record.patient.clone(), record.version);
        self.tx(vec![record_ev(RecordEvent::RecordAccessed {
            record_id: *record_id,
            patient,
            accessor: accessor.clone(),
            access: AccessMethod::Consent,
            version,
            at: self.burn,
        })]);
    }

    /// `finalize-record` by `provider`.
    pub fn finalize_record(&mut self, record_id: &[u8; 16], provider: &Principal) {
        let record = self.ledger.records.get_mut(record_id).expect("record exists on this branch");
        record.finalized = true;
        let (patient, version) = (record.patient.clone(), record.version);
        self.tx(vec![record_ev(RecordEvent::RecordStatusChanged {
            change: StatusChange::Finalized,
            record_id: *record_id,
            patient,
            version,
            by: provider.clone(),
            at: self.burn,
        })]);
    }

    /// Three to five transactions of a realistic mix, chosen by an RNG
    /// seeded from the block's label (so every run builds the same block):
    /// patients registering, consents granted (some expiring) and revoked,
    /// overrides, provider access, records created, updated, accessed and
    /// finalized, batches anchored, and now and then a failed transaction.
    pub fn realistic_mix(&mut self) {
        let cast = Cast::default();
        let mut rng = ChaCha8Rng::from_seed(synth::id(&format!("mix-{}", self.label)));
        let count = rng.gen_range(3..=5);
        let mut done = 0;
        while done < count {
            if self.random_action(&mut rng, &cast) {
                done += 1;
            }
        }
    }

    /// One random action if it is possible on this branch; false if not.
    fn random_action(&mut self, rng: &mut ChaCha8Rng, cast: &Cast) -> bool {
        let registered: Vec<Principal> = self.ledger.seq.keys().cloned().collect();
        let unregistered: Vec<&Principal> =
            cast.patients.iter().filter(|p| !self.ledger.seq.contains_key(*p)).collect();
        let providers: Vec<Principal> = self.ledger.providers.iter().cloned().collect();
        let open_records: Vec<[u8; 16]> =
            self.ledger.records.iter().filter(|(_, r)| !r.finalized).map(|(id, _)| *id).collect();
        match rng.gen_range(0..11) {
            0 => match unregistered.choose(rng) {
                Some(p) => self.register_patient(&(*p).clone()),
                None => return false,
            },
            1 | 2 => {
                let (Some(p), Some(v)) = (registered.choose(rng), cast.providers.choose(rng)) else { return false };
                let dt = *DataType::ALL.choose(rng).expect("data types");
                let expires = if rng.gen_bool(0.5) { Some(self.burn + rng.gen_range(1..=30)) } else { None };
                self.grant(&p.clone(), &v.clone(), dt, expires);
            }
            3 => {
                let grants: Vec<_> = self.ledger.grants.iter().cloned().collect();
                let Some((p, v, dt)) = grants.choose(rng) else { return false };
                self.revoke(p, v, *dt);
            }
            4 => {
                let responders: Vec<Principal> = self.ledger.responders.iter().cloned().collect();
                let (Some(p), Some(r)) = (registered.choose(rng), responders.choose(rng)) else { return false };
                if self.ledger.overrides.contains(&(p.clone(), r.clone())) {
                    self.end_emergency(p, r);
                } else {
                    self.emergency(p, r, self.burn + 432);
                }
            }
            5 => {
                let Some(p) = registered.choose(rng) else { return false };
                self.preferences(p, rng.gen_bool(0.5), rng.gen_bool(0.5));
            }
            6 => {
                let (Some(p), Some(v)) = (registered.choose(rng), providers.choose(rng)) else { return false };
                let level = *[AccessLevel::Read, AccessLevel::Write, AccessLevel::Admin].choose(rng).expect("levels");
                let expires = if rng.gen_bool(0.5) { Some(self.burn + rng.gen_range(1..=30)) } else { None };
                self.access(p, v, level, expires);
            }
            7 | 8 => {
                let (Some(p), Some(v)) = (registered.choose(rng), providers.choose(rng)) else { return false };
                let rt = *RecordType::ALL.choose(rng).expect("record types");
                self.create_record(p, v, rt);
            }
            9 => {
                let (Some(id), Some(v)) = (open_records.choose(rng), providers.choose(rng)) else { return false };
                match rng.gen_range(0..4) {
                    0 => self.finalize_record(id, v),
                    1 => self.access_record(id, v),
                    _ => self.update_record(id, v),
                }
            }
            10 if rng.gen_bool(0.5) => self.anchor_batch(&cast.operator),
            _ => self.failed_tx(),
        }
        true
    }
}

/// The principals of realistic mixes.
pub struct Cast {
    /// Patients (registered as the branch goes).
    pub patients: Vec<Principal>,
    /// Providers (registered in the genesis of scenario chains).
    pub providers: Vec<Principal>,
    /// The anchor operator.
    pub operator: Principal,
}

impl Default for Cast {
    fn default() -> Self {
        Cast {
            patients: (0..6).map(|i| principal(&format!("patient-{i}"))).collect(),
            providers: (0..4).map(|i| principal(&format!("provider-{i}"))).collect(),
            operator: principal("operator"),
        }
    }
}

/// A tree of labelled synthetic blocks.
#[derive(Default)]
pub struct Chain {
    blocks: BTreeMap<String, (SynthBlock, Ledger)>,
}

impl Chain {
    /// A chain with only a genesis block built by `build`.
    pub fn with_genesis(label: &str, build: impl FnOnce(&mut BlockBuilder)) -> Chain {
        let mut chain = Chain::default();
        chain.insert(label, GENESIS_PARENT, 0, BURN_BASE, Ledger::default(), build);
        chain
    }

    /// A genesis that registers every provider, credentials the first two
    /// as responders, authorizes the operator and sets the timeouts: the
    /// base of scenario chains.
    pub fn scenario_genesis() -> Chain {
        Chain::with_genesis("G", |b| {
            let cast = Cast::default();
            for v in &cast.providers {
                b.register_provider(v);
            }
            b.responder(&cast.providers[0], true);
            b.responder(&cast.providers[1], true);
            b.operator(&cast.operator, true);
            b.timeouts(288, medanchor_contracts::types::DEFAULT_RETENTION_BLOCKS);
        })
    }

    fn insert(
        &mut self,
        label: &str,
        parent: [u8; 32],
        height: u64,
        burn: u64,
        ledger: Ledger,
        build: impl FnOnce(&mut BlockBuilder),
    ) {
        assert!(!self.blocks.contains_key(label), "block {label} defined twice");
        let mut b = BlockBuilder { label: label.to_string(), burn, ledger, txs: Vec::new() };
        build(&mut b);
        let block = SynthBlock {
            height,
            id: synth::id(&format!("block-{label}")),
            parent,
            burn_block_height: burn,
            time: TIME_BASE + 600 * (burn - BURN_BASE),
            txs: b.txs,
        };
        self.blocks.insert(label.to_string(), (block, b.ledger));
    }

    /// Adds `label` on `parent`, one burn block later.
    pub fn add(&mut self, label: &str, parent: &str, build: impl FnOnce(&mut BlockBuilder)) {
        let burn = self.block(parent).burn_block_height + 1;
        self.add_at(label, parent, burn, build);
    }

    /// Adds `label` on `parent` at burn height `burn`.
    pub fn add_at(&mut self, label: &str, parent: &str, burn: u64, build: impl FnOnce(&mut BlockBuilder)) {
        let (p, ledger) = self.blocks.get(parent).unwrap_or_else(|| panic!("no block {parent}"));
        let (parent_id, height, ledger) = (p.id, p.height + 1, ledger.clone());
        self.insert(label, parent_id, height, burn, ledger, build);
    }

    /// Adds `label` on `parent` claiming height `height` whatever the
    /// parent's is: a forged or broken block (one burn block later, the
    /// parent's ledger, so `build` may grant and revoke as on the parent).
    pub fn add_claiming(&mut self, label: &str, parent: &str, height: u64, build: impl FnOnce(&mut BlockBuilder)) {
        let (p, ledger) = self.blocks.get(parent).unwrap_or_else(|| panic!("no block {parent}"));
        let (parent_id, burn, ledger) = (p.id, p.burn_block_height + 1, ledger.clone());
        self.insert(label, parent_id, height, burn, ledger, build);
    }

    /// Adds `label`, without transactions, on a parent id no block of the
    /// chain has, at `height`: an orphan whose parent never arrives.
    pub fn add_unlinked(&mut self, label: &str, parent: [u8; 32], height: u64) {
        self.insert(label, parent, height, BURN_BASE + height, Ledger::default(), |_| {});
    }

    /// Adds a branch: `count` blocks named `{name}{height}`, the first on
    /// `from`, each carrying a realistic mix of events.
    pub fn branch(&mut self, name: &str, from: &str, count: u64) {
        let mut parent = from.to_string();
        for _ in 0..count {
            let label = format!("{name}{}", self.block(&parent).height + 1);
            self.add(&label, &parent, BlockBuilder::realistic_mix);
            parent = label;
        }
    }

    /// Adds `label`: `of` announced again with no transactions (stacks-node
    /// re-announces the genesis this way; fixtures README caveat 6).
    pub fn reannounce(&mut self, label: &str, of: &str) {
        let (block, ledger) = self.blocks[of].clone();
        self.blocks.insert(label.to_string(), (SynthBlock { txs: Vec::new(), ..block }, ledger));
    }

    /// The block labelled `label`.
    pub fn block(&self, label: &str) -> &SynthBlock {
        &self.blocks.get(label).unwrap_or_else(|| panic!("no block {label}")).0
    }

    /// The id of `label`.
    pub fn id(&self, label: &str) -> [u8; 32] {
        self.block(label).id
    }

    /// The label of the block with id `id`.
    pub fn label_of(&self, id: &[u8; 32]) -> Option<&str> {
        self.blocks.iter().find(|(_, (b, _))| &b.id == id).map(|(l, _)| l.as_str())
    }

    /// Labels from the root to `tip`, following parents.
    pub fn path_to(&self, tip: &str) -> Vec<String> {
        let mut path = vec![tip.to_string()];
        let mut current = self.block(tip);
        while current.parent != GENESIS_PARENT {
            let label = self.label_of(&current.parent).expect("parent is in the chain").to_string();
            current = self.block(&label);
            path.push(label);
        }
        path.reverse();
        path
    }

    /// A fresh index fed only the chain ending at `tip`, in order.
    pub fn fresh_index(&self, tip: &str, config: IndexerConfig) -> TestIndex {
        let index = TestIndex::new(config);
        for label in self.path_to(tip) {
            let outcome = index.ingest(self.block(&label)).unwrap_or_else(|e| panic!("fresh ingest of {label}: {e}"));
            assert!(matches!(outcome, Outcome::Applied { reorg_depth: 0, connected: 0, .. }), "{label}: {outcome:?}");
        }
        index
    }
}

/// The indexer's HTTP servers on two loopback ports, for the duration of a
/// test: the observer endpoints and the query routes.
pub struct Server {
    /// The observer endpoints, `http://127.0.0.1:port`.
    pub observer: String,
    /// The query routes, `http://127.0.0.1:port`.
    pub query: String,
    /// A client for them.
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves `server::serve(indexer)` on two `127.0.0.1:0` listeners.
    pub async fn start(indexer: Indexer) -> Server {
        let observer = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let query = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base = |l: &tokio::net::TcpListener| format!("http://{}", l.local_addr().expect("local address"));
        let (observer_base, query_base) = (base(&observer), base(&query));
        let serve = medanchor_indexer::server::serve(indexer, None, observer, query, std::future::pending());
        let task = tokio::spawn(async move { serve.await.expect("serve") });
        Server { observer: observer_base, query: query_base, client: reqwest::Client::new(), task }
    }

    /// POSTs `body` to `path` on the observer port; returns the status and
    /// the body as JSON (`Null` when it is empty or not JSON).
    pub async fn post(&self, path: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
        self.post_to(&self.observer, path, body).await
    }

    /// POSTs `body` to `path` on `base`.
    pub async fn post_to(&self, base: &str, path: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        Self::read(response).await
    }

    /// GETs `path_and_query` on the query port; returns the status and the
    /// JSON body.
    pub async fn get(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        self.get_from(&self.query, path_and_query).await
    }

    /// GETs `path_and_query` on `base`.
    pub async fn get_from(&self, base: &str, path_and_query: &str) -> (u16, serde_json::Value) {
        let response = self.client.get(format!("{base}{path_and_query}")).send().await.expect("GET");
        Self::read(response).await
    }

    async fn read(response: reqwest::Response) -> (u16, serde_json::Value) {
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
