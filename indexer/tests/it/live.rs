//! Against the live devnet: a random workload of consent and record
//! transactions (many of them failing on purpose), mined on a real node
//! that delivers its blocks to the indexer over HTTP. Afterwards the index
//! must (1) give the same answers as the contracts' read-only functions at
//! the tip and (2) equal, byte for byte, an index rebuilt from the devnet's
//! stored blocks.

use std::collections::BTreeMap;
use std::time::Duration;

use clarity_repl::clarity::codec::StacksMessageCodec;
use clarity_repl::clarity::vm::types::{PrincipalData, QualifiedContractIdentifier};
use medanchor_contracts::principal::{Principal, StandardPrincipal};
use medanchor_contracts::{ClarityValue, ContractName, DataHash, RecordId, DEPLOYER_ADDRESS};
use medanchor_devnet::node::{Node, NodeConfig};
use medanchor_indexer::query::{IndexReader, PageRequest};
use medanchor_indexer::schema::Cf;
use medanchor_indexer::{ChainReader, ConsentReader, Indexer, IndexerConfig, RecordReader};
use medanchor_wallet::accounts::{parse_accounts, DevnetAccount, DEFAULT_DEVNET_TOML};
use medanchor_wallet::actions::ContractCall;
use medanchor_wallet::keys::{StacksKey, TESTNET_SINGLESIG};
use medanchor_wallet::txbuild::{serialize, sign, TxOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ACTORS: usize = 6;

struct World {
    node: Node,
    keys: Vec<StacksKey>,
    /// Index 0 is the contracts' owner (the deployer).
    principals: Vec<Principal>,
    nonces: Vec<u64>,
    deployer: StandardPrincipal,
    record_ids: Vec<[u8; 16]>,
    hashes: Vec<[u8; 32]>,
}

fn principal_of(key: &StacksKey) -> Principal {
    key.address(TESTNET_SINGLESIG).to_string().parse().expect("an address")
}

impl World {
    /// Signs `call` as account `who` and submits it; a refused transaction
    /// (e.g. a type error the mempool catches) is fine and uses no nonce.
    fn send(&mut self, who: usize, call: ContractCall) {
        let payload = call.payload(&self.deployer).expect("payload");
        let tx = sign(&self.keys[who], payload, &TxOptions::new(self.nonces[who], 5_000)).expect("sign");
        if self.node.submit(&serialize(&tx)).is_ok() {
            self.nonces[who] += 1;
        }
    }

    fn call(function: &'static str, contract: ContractName, args: Vec<ClarityValue>) -> ContractCall {
        ContractCall { contract, function, args }
    }

    fn p(&self, i: usize) -> ClarityValue {
        ClarityValue::Principal(self.principals[i].clone())
    }

    fn random_op(&mut self, rng: &mut ChaCha8Rng) {
        use ClarityValue as V;
        let who = rng.gen_range(1..=ACTORS);
        let other = rng.gen_range(0..=ACTORS);
        let dt = V::UInt(rng.gen_range(0..=9));
        let duration = match rng.gen_range(0..4) {
            0 => V::none(),
            1 => V::some(V::UInt(0)),
            _ => V::some(V::UInt(rng.gen_range(1..40))),
        };
        let pc = ContractName::PatientConsent;
        let rm = ContractName::RecordManagement;
        let record = self.record_ids[rng.gen_range(0..self.record_ids.len())];
        let hash = self.hashes[rng.gen_range(0..self.hashes.len())];
        match rng.gen_range(0..100) {
            0..=9 => {
                let id = V::Buffer(vec![rng.gen_range(0..8u8); 32]);
                let physician = if rng.gen_bool(0.5) { V::some(self.p(other)) } else { V::none() };
                self.send(who, Self::call("register-patient", pc, vec![id, V::none(), physician]));
            }
            10..=34 => self.send(who, Self::call("grant-consent", pc, vec![self.p(other), dt, duration])),
            35..=38 => self.send(who, Self::call("revoke-consent", pc, vec![self.p(other), dt])),
            // A set-up patient withdrawing a set-up grant (see the test).
            39..=42 => {
                let (patient, provider) = (rng.gen_range(1..=3), rng.gen_range(4..=ACTORS));
                let dt = V::UInt(if rng.gen_bool(0.5) { 0 } else { rng.gen_range(1..=8) });
                self.send(patient, Self::call("revoke-consent", pc, vec![self.p(provider), dt]));
            }
            43..=46 => {
                let args = vec![V::none(), V::none(), V::Bool(rng.gen_bool(0.5)), V::Bool(rng.gen_bool(0.5))];
                self.send(who, Self::call("update-patient-preferences", pc, args));
            }
            47..=53 => {
                let reason = V::UInt(rng.gen_range(0..3));
                self.send(who, Self::call("emergency-override", pc, vec![self.p(other), reason]));
            }
            54..=56 => {
                let (patient, provider) = (self.p(other), self.p(rng.gen_range(1..=ACTORS)));
                self.send(who, Self::call("end-emergency-override", pc, vec![patient, provider]));
            }
            57..=58 => {
                let args = vec![self.p(rng.gen_range(1..=ACTORS)), V::Bool(rng.gen_bool(0.7))];
                self.send(0, Self::call("set-emergency-responder", pc, args));
            }
            59 => {
                let args = vec![self.p(rng.gen_range(1..=ACTORS)), V::Bool(rng.gen_bool(0.3))];
                let sender = if rng.gen_bool(0.5) { 0 } else { who };
                self.send(sender, Self::call("set-deceased", pc, args));
            }
            60 => {
                let f = if rng.gen_bool(0.5) { "pause" } else { "unpause" };
                self.send(0, Self::call(f, pc, vec![]));
            }
            61..=64 => {
                let args = vec![self.p(rng.gen_range(1..=ACTORS)), V::Buffer(vec![9; 32])];
                self.send(0, Self::call("register-provider", rm, args));
            }
            65..=66 => {
                let args = vec![self.p(rng.gen_range(1..=ACTORS)), V::Bool(rng.gen_bool(0.8))];
                self.send(0, Self::call("set-provider-active", rm, args));
            }
            67..=73 => {
                let args = vec![self.p(other), V::UInt(rng.gen_range(0..=3)), duration];
                self.send(who, Self::call("grant-provider-access", rm, args));
            }
            74..=75 => self.send(who, Self::call("revoke-provider-access", rm, vec![self.p(other)])),
            76..=87 => {
                // Mostly a credentialed provider writing for a set-up
                // patient, so that records do get created.
                let (who, other) =
                    if rng.gen_bool(0.8) { (rng.gen_range(4..=ACTORS), rng.gen_range(1..=3)) } else { (who, other) };
                let key = if rng.gen_bool(0.5) { V::some(V::Buffer(vec![3; 32])) } else { V::none() };
                let args = vec![
                    V::Buffer(record.to_vec()),
                    self.p(other),
                    V::UInt(rng.gen_range(0..=14)),
                    V::Buffer(hash.to_vec()),
                    key,
                    V::UInt(rng.gen_range(0..=3)),
                ];
                self.send(who, Self::call("create-record", rm, args));
            }
            88..=93 => {
                let who = if rng.gen_bool(0.8) { rng.gen_range(4..=ACTORS) } else { who };
                let args = vec![
                    V::Buffer(record.to_vec()),
                    V::UInt(rng.gen_range(1..=3)),
                    V::Buffer(hash.to_vec()),
                    V::none(),
                ];
                self.send(who, Self::call("update-record", rm, args));
            }
            94..=95 => {
                let f = ["finalize-record", "unlock-record", "archive-record", "get-record"][rng.gen_range(0..4)];
                self.send(who, Self::call(f, rm, vec![V::Buffer(record.to_vec())]));
            }
            96 => {
                let args = vec![V::Buffer(record.to_vec()), V::UInt(rng.gen_range(1..=3)), V::UInt(1)];
                self.send(who, Self::call("rollback-record", rm, args));
            }
            97 => {
                let args = vec![V::Buffer(hash.to_vec()), V::UInt(rng.gen_range(0..5))];
                self.send(who, Self::call("anchor-batch", rm, args));
            }
            _ => self.send(who, Self::call("get-record", rm, vec![V::Buffer(record.to_vec())])),
        }
    }
}

/// A read-only call at the tip, as our value type.
fn read_only(node: &Node, contract: ContractName, function: &str, args: &[ClarityValue]) -> ClarityValue {
    let args: Vec<_> = args
        .iter()
        .map(|a| clarity_repl::clarity::vm::Value::consensus_deserialize(&mut &a.serialize()[..]).expect("our codec"))
        .collect();
    let id = QualifiedContractIdentifier::parse(&format!("{DEPLOYER_ADDRESS}.{}", contract.name())).expect("id");
    let sender = PrincipalData::parse(DEPLOYER_ADDRESS).expect("sender");
    let value = node
        .lock()
        .chain
        .call_read_only(&sender, &id, function, &args)
        .expect("storage")
        .unwrap_or_else(|e| panic!("{function}: {e}"));
    let mut bytes = Vec::new();
    value.consensus_serialize(&mut bytes).expect("serialize");
    ClarityValue::deserialize(&bytes).expect("our codec")
}

fn field<'a>(v: &'a ClarityValue, name: &str) -> &'a ClarityValue {
    match v {
        ClarityValue::Optional(Some(inner)) => field(inner, name),
        ClarityValue::Tuple(map) => map.get(name).unwrap_or_else(|| panic!("no field {name} in {v:?}")),
        other => panic!("not a tuple: {other:?}"),
    }
}

fn uint(v: &ClarityValue) -> u64 {
    match v {
        ClarityValue::UInt(u) => *u as u64,
        other => panic!("not a uint: {other:?}"),
    }
}

fn opt_uint(v: &ClarityValue) -> Option<u64> {
    match v {
        ClarityValue::Optional(None) => None,
        ClarityValue::Optional(Some(inner)) => Some(uint(inner)),
        other => panic!("not an optional: {other:?}"),
    }
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// Every derived column family's keys and values, by family name.
type Dump = BTreeMap<&'static str, Vec<(Vec<u8>, Vec<u8>)>>;

fn derived(index: &Indexer) -> Dump {
    Cf::ALL.iter().filter(|cf| cf.is_derived()).map(|cf| (cf.name(), index.db().dump(*cf).expect("dump"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_matches_the_contracts_and_a_rebuild_after_a_random_workload() {
    let mut seen: BTreeMap<Result<u8, u32>, usize> = BTreeMap::new();
    for seed in 1..=3 {
        for (outcome, n) in workload(seed).await {
            *seen.entry(outcome).or_default() += n;
        }
    }
    // Every branch of check-consent was compared at least once: self,
    // consent, emergency; unknown patient, invalid type, none, expired,
    // revoked.
    assert!(seen.get(&Ok(100)).is_some_and(|n| *n > 0), "the workloads created no record");
    for outcome in [Ok(0), Ok(1), Ok(2), Err(101), Err(104), Err(107), Err(108), Err(109)] {
        assert!(seen.contains_key(&outcome), "the workloads never produced {outcome:?}: {seen:?}");
    }
}

/// One random workload and the comparisons; returns the check-consent
/// outcomes compared, and under `Ok(100)` the number of records compared.
async fn workload(seed: u64) -> BTreeMap<Result<u8, u32>, usize> {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = Indexer::open(&dir.path().join("index"), IndexerConfig::for_deployer(DEPLOYER_ADDRESS)).expect("index");
    let observer = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let observer_addr = observer.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let server = tokio::spawn(medanchor_indexer::server::serve_observer(index.clone(), observer, stopped()));

    let mut accounts = parse_accounts(DEFAULT_DEVNET_TOML, "Devnet.toml").expect("accounts");
    let deployer_key = accounts.iter().find(|a| a.name == "deployer").expect("deployer").key.clone();
    let mut keys = vec![deployer_key];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..ACTORS {
        let key = StacksKey::from_hex(&hex::encode(rng.gen::<[u8; 32]>())).expect("key");
        accounts.push(DevnetAccount { name: format!("actor_{i}"), key: key.clone(), balance: 10_000_000_000 });
        keys.push(key);
    }
    let mut config = NodeConfig::new(dir.path().join("devnet"), accounts);
    config.block_interval = None;
    config.observers = vec![observer_addr.to_string()];
    let node = Node::open(config).expect("node");
    let rpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let node_task = tokio::spawn(node.clone().run(rpc, stopped()));

    let principals: Vec<Principal> = keys.iter().map(principal_of).collect();
    // The deployer already used nonces deploying the contracts.
    let nonces = keys
        .iter()
        .map(|k| {
            let p = PrincipalData::from(k.address(TESTNET_SINGLESIG));
            node.lock().chain.account(&p).expect("account").1
        })
        .collect();
    let mut world = World {
        node: node.clone(),
        nonces,
        keys,
        principals,
        deployer: DEPLOYER_ADDRESS.parse().expect("deployer"),
        record_ids: (0..6u8).map(|i| [i; 16]).collect(),
        hashes: (0..10u8).map(|i| [0xa0 + i; 32]).collect(),
    };
    // Set-up: patients 1-3, providers 4-6 registered, credentialed and
    // given broad consent and WRITE/ADMIN access; the random rounds then
    // change, break and restore all of it.
    {
        use ClarityValue as V;
        let (pc, rm) = (ContractName::PatientConsent, ContractName::RecordManagement);
        for provider in 4..=ACTORS {
            let args = vec![world.p(provider), V::Buffer(vec![provider as u8; 32])];
            world.send(0, World::call("register-provider", rm, args));
            world.send(0, World::call("set-emergency-responder", pc, vec![world.p(provider), V::Bool(true)]));
        }
        for patient in 1..=3 {
            let args = vec![V::Buffer(vec![0x50 + patient as u8; 32]), V::none(), V::none()];
            world.send(patient, World::call("register-patient", pc, args));
            for provider in 4..=ACTORS {
                let args = vec![world.p(provider), V::UInt(0), V::none()];
                world.send(patient, World::call("grant-consent", pc, args));
                let args = vec![world.p(provider), V::UInt(1 + (provider % 2) as u128), V::none()];
                world.send(patient, World::call("grant-provider-access", rm, args));
            }
        }
        node.mine_blocks(1, 0).await.expect("mine");
    }
    for round in 0..30 {
        for _ in 0..12 {
            world.random_op(&mut rng);
        }
        let burn = if round % 3 == 0 { rng.gen_range(0..25) } else { 0 };
        node.mine_blocks(1, burn).await.expect("mine");
    }
    // A final block with nothing pending, so every nonce chain is mined.
    node.mine_blocks(2, 0).await.expect("mine");

    // Wait for the index to reach the node's tip.
    let reader = IndexReader::new(index.db().clone());
    let tip = node.lock().chain.tip().height;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while reader.status().expect("status").tip_height != Some(tip) {
        assert!(std::time::Instant::now() < deadline, "index stuck at {:?}, node at {tip}", reader.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 1. The contracts' read-only answers.
    let pc = ContractName::PatientConsent;
    let rm = ContractName::RecordManagement;
    let mut compared = 0;
    let mut outcomes: BTreeMap<Result<u8, u32>, usize> = BTreeMap::new();
    for patient in &world.principals {
        let pv = ClarityValue::Principal(patient.clone());
        let chain_patient = read_only(&node, pc, "get-patient", std::slice::from_ref(&pv));
        let ours = reader.patient(patient).expect("patient");
        match (&chain_patient, &ours) {
            (ClarityValue::Optional(None), None) => {}
            (ClarityValue::Optional(Some(_)), Some(p)) => {
                assert_eq!(uint(field(&chain_patient, "history-len")), p.history_len, "{patient}");
                assert_eq!(field(&chain_patient, "deceased"), &ClarityValue::Bool(p.deceased));
                assert_eq!(uint(field(&chain_patient, "updated-at")), p.updated_at);
            }
            other => panic!("patient {patient}: chain and index disagree: {other:?}"),
        }
        let history =
            reader.consent_history(patient, &PageRequest { cursor: None, limit: Some(500) }).expect("history");
        assert_eq!(history.items.len() as u64, ours.as_ref().map_or(0, |p| p.history_len));
        for entry in &history.items {
            let chain_entry =
                read_only(&node, pc, "get-history-entry", &[pv.clone(), ClarityValue::UInt(u128::from(entry.seq))]);
            assert_eq!(uint(field(&chain_entry, "at")), entry.at, "{patient} seq {}", entry.seq);
            assert_eq!(opt_uint(field(&chain_entry, "expires-at")), entry.expires_at);
            assert_eq!(field(&chain_entry, "actor"), &ClarityValue::Principal(entry.actor.parse().expect("actor")));
        }
        for accessor in &world.principals {
            let av = ClarityValue::Principal(accessor.clone());
            for dt in 0..=9u8 {
                let chain =
                    read_only(&node, pc, "check-consent", &[pv.clone(), av.clone(), ClarityValue::UInt(dt.into())]);
                let chain = match chain {
                    ClarityValue::Response(Ok(v)) => Ok(uint(&v) as u8),
                    ClarityValue::Response(Err(v)) => Err(uint(&v) as u32),
                    other => panic!("check-consent returned {other:?}"),
                };
                let ours = reader.check_consent(patient, accessor, dt).expect("check").as_result();
                assert_eq!(ours, chain, "check-consent {patient} {accessor} {dt}");
                compared += 1;
                *outcomes.entry(chain).or_default() += 1;
            }
            let chain_access = read_only(&node, rm, "get-provider-access", &[pv.clone(), av.clone()]);
            let ours = reader.provider_access(patient, accessor).expect("access");
            assert_eq!(matches!(chain_access, ClarityValue::Optional(Some(_))), ours.is_some());
            if let Some(a) = ours {
                assert_eq!(opt_uint(field(&chain_access, "expires-at")), a.expires_at);
                assert_eq!(uint(field(&chain_access, "granted-at")), a.granted_at);
            }
        }
    }
    assert!(compared >= 3 * world.principals.len() * 10, "at least the three set-up patients were compared");
    let mut records = 0;
    for id in &world.record_ids {
        let chain = read_only(&node, rm, "get-record-info", &[ClarityValue::Buffer(id.to_vec())]);
        let ours = reader.record(&RecordId(*id)).expect("record");
        match (&chain, &ours) {
            (ClarityValue::Optional(None), None) => {}
            (ClarityValue::Optional(Some(_)), Some(r)) => {
                records += 1;
                assert_eq!(uint(field(&chain, "version")), r.version);
                assert_eq!(field(&chain, "data-hash"), &ClarityValue::Buffer(r.data_hash.to_vec()));
                assert_eq!(field(&chain, "finalized"), &ClarityValue::Bool(r.finalized));
                assert_eq!(uint(field(&chain, "updated-at")), r.updated_at);
                let versions = reader.versions(&RecordId(*id)).expect("versions");
                assert_eq!(versions.len() as u64, r.version);
                for v in &versions {
                    let cv = read_only(
                        &node,
                        rm,
                        "get-record-version",
                        &[ClarityValue::Buffer(id.to_vec()), ClarityValue::UInt(v.version.into())],
                    );
                    assert_eq!(uint(field(&cv, "at")), v.at, "record {} version {}", hex0x(id), v.version);
                }
            }
            other => panic!("record {}: chain and index disagree: {other:?}", hex0x(id)),
        }
    }
    for hash in &world.hashes {
        let chain = read_only(&node, rm, "get-anchor", &[ClarityValue::Buffer(hash.to_vec())]);
        let ours = reader.anchors(&DataHash(*hash)).expect("anchors");
        match &chain {
            ClarityValue::Optional(None) => assert!(ours.is_empty()),
            _ => {
                assert_eq!(ours.len(), 1, "one anchor per hash, as the contract keeps");
                assert_eq!(uint(field(&chain, "version")), ours[0].version);
            }
        }
    }
    *outcomes.entry(Ok(100)).or_default() += records;

    // 2. Byte-identical to an index rebuilt from the devnet's stored blocks.
    let rebuilt =
        Indexer::open(&dir.path().join("rebuilt"), IndexerConfig::for_deployer(DEPLOYER_ADDRESS)).expect("index");
    {
        let state = node.lock();
        let mut parent = None;
        for height in 0..=state.chain.tip().height {
            let block = state.chain.block(height).expect("read").expect("block");
            for (path, body) in medanchor_devnet::observer::block_payloads(&block, parent.as_ref()) {
                let body = serde_json::to_vec(&body).expect("json");
                match path.as_str() {
                    "/new_block" => {
                        rebuilt.ingest_json(&body).expect("ingest");
                    }
                    _ => rebuilt.ingest_burn_block(&body).expect("burn"),
                }
            }
            parent = Some(block.header);
        }
    }
    assert_eq!(derived(&index), derived(&rebuilt), "live index and rebuild differ");

    let _ = stop_tx.send(true);
    node_task.await.expect("node task").expect("node");
    server.await.expect("server task").expect("server");
    outcomes
}
