//! Real stacks-node payloads (tests/fixtures/stacks-node, see its README):
//! every one parses and ingests, and the recorded sequences replay to the
//! chain the README describes.

use std::path::PathBuf;

use medanchor_contracts::Txid;
use medanchor_indexer::replay::{replay_tsv, ReplayStats};
use medanchor_indexer::schema::Cf;
use medanchor_indexer::{ChainReader, IndexerConfig, Outcome};
use serde_json::Value;

use crate::support::{assert_same, config, fixture_dir, parse_hash, Server, TestIndex};

/// Fixture files whose name starts with `prefix`, sorted.
fn fixtures(prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures named {prefix}*");
    files
}

fn name(path: &std::path::Path) -> String {
    path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string()
}

/// Contracts whose prints appear in the fixtures, configured as if they
/// were ours so their prints reach the event decoders (which skip them:
/// they are not medanchor events).
fn foreign_config() -> IndexerConfig {
    IndexerConfig {
        consent_contract: "ST000000000000000000002AMW42H.pox-4".into(),
        records_contract: "SP000000000000000000002Q6VF78.bns".into(),
        undo_depth: 10_000,
        max_orphans: 1_000,
    }
}

/// The committed `print` events of the configured contracts in a payload.
fn configured_prints(block: &Value, config: &IndexerConfig) -> usize {
    let ours = [config.consent_contract.as_str(), config.records_contract.as_str()];
    block["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "contract_event" && e["committed"] != false)
        .filter(|e| e["contract_event"]["topic"] == "print")
        .filter(|e| e["contract_event"]["contract_identifier"].as_str().is_some_and(|c| ours.contains(&c)))
        .count()
}

#[test]
fn every_new_block_fixture_ingests_into_a_fresh_index() {
    let config = foreign_config();
    let mut prints_seen = 0;
    for path in fixtures("new_block_") {
        let file = name(&path);
        let body = std::fs::read(&path).expect("read fixture");
        let block: Value = serde_json::from_slice(&body).expect("fixture is JSON");
        let height = block["block_height"].as_u64().expect("block_height");
        let index = TestIndex::new(config.clone());
        let outcome = index.indexer.ingest_json(&body).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(outcome, Outcome::Applied { height, reorg_depth: 0, connected: 0 }, "{file}");

        let status = index.reader.status().expect("status");
        assert_eq!(status.tip_height, Some(height), "{file}");
        assert_eq!(
            status.tip_index_block_hash.map(|h| h.to_string()).as_deref(),
            block["index_block_hash"].as_str(),
            "{file}"
        );
        assert_eq!(status.tip_burn_block_height, block["burn_block_height"].as_u64(), "{file}");

        let txs = block["transactions"].as_array().expect("transactions");
        for tx in txs {
            let txid = tx["txid"].as_str().expect("txid");
            let view = index.reader.transaction(&Txid(parse_hash(txid))).expect("read").unwrap_or_else(|| {
                panic!("{file}: transaction {txid} is not indexed");
            });
            assert_eq!(
                view.index_block_hash.to_string(),
                block["index_block_hash"].as_str().expect("hash"),
                "{file} {txid}"
            );
            assert_eq!(view.block_height, height, "{file} {txid}");
            assert_eq!(Some(u64::from(view.tx_index)), tx["tx_index"].as_u64(), "{file} {txid}");
            assert_eq!(view.status, tx["status"].as_str().expect("status"), "{file} {txid}");
            assert_eq!(view.raw_result, tx["raw_result"].as_str().expect("raw_result").to_lowercase(), "{file} {txid}");
        }
        assert_eq!(index.indexer.db().dump(Cf::Txs).expect("dump").len(), txs.len(), "{file}: one row per tx");

        // Prints of the configured contracts are kept in `events`; as they
        // are not medanchor events, no other state comes of them.
        let prints = configured_prints(&block, &config);
        prints_seen += prints;
        assert_eq!(index.indexer.db().dump(Cf::Events).expect("dump").len(), prints, "{file}: events kept");
        for (cf, rows) in index.derived() {
            if !matches!(cf, Cf::Canonical | Cf::Txs | Cf::Events) {
                assert!(rows.is_empty(), "{file}: foreign prints wrote {}", cf.name());
            }
        }

        // Delivered again: nothing changes.
        let before = index.everything();
        assert_eq!(index.indexer.ingest_json(&body).expect("again"), Outcome::Duplicate, "{file}");
        assert_same(&format!("{file}: after a duplicate"), &index.everything(), &before);
    }
    assert!(prints_seen > 0, "at least one fixture's prints reach the decoders");
}

#[test]
fn every_new_burn_block_fixture_ingests() {
    for path in fixtures("new_burn_block_") {
        let file = name(&path);
        let body = std::fs::read(&path).expect("read fixture");
        let burn: Value = serde_json::from_slice(&body).expect("JSON");
        let index = TestIndex::new(config(10_000));
        index.indexer.ingest_burn_block(&body).unwrap_or_else(|e| panic!("{file}: {e}"));
        let status = index.reader.status().expect("status");
        assert_eq!(status.last_burn_block_height, burn["burn_block_height"].as_u64(), "{file}");
        assert_eq!(status.tip_height, None, "{file}: a burn block is not a Stacks block");
    }
}

#[tokio::test]
async fn the_server_accepts_every_fixture_payload() {
    let index = TestIndex::new(config(10_000));
    let server = Server::start(index.indexer.clone()).await;
    let routes = [
        ("new_mempool_tx_", "/new_mempool_tx"),
        ("drop_mempool_tx_", "/drop_mempool_tx"),
        ("new_microblocks_", "/new_microblocks"),
        ("new_burn_block_", "/new_burn_block"),
    ];
    for (prefix, route) in routes {
        for path in fixtures(prefix) {
            let (status, body) = server.post(route, std::fs::read(&path).expect("read")).await;
            assert_eq!(status, 200, "{} to {route}: {body}", name(&path));
        }
    }
    // One block over HTTP: 200 with the outcome, then a duplicate.
    let path = fixture_dir().join("new_block_mainnet_genesis_boot_contracts.json");
    let body = std::fs::read(path).expect("read");
    let (status, json) = server.post("/new_block", body.clone()).await;
    assert_eq!(
        (status, json),
        (200, serde_json::json!({"result": "applied", "height": 0, "reorg_depth": 0, "connected": 0}))
    );
    let (status, json) = server.post("/new_block", body).await;
    assert_eq!((status, json), (200, serde_json::json!({"result": "duplicate"})));
}

struct Sequence {
    file: &'static str,
    stats: ReplayStats,
    /// Height and index block hash of the tip after the replay.
    tip: (u64, &'static str),
    last_burn: Option<u64>,
}

fn sequences() -> Vec<Sequence> {
    vec![
        Sequence {
            file: "seq_mainnet_genesis_burn_blocks.tsv",
            stats: ReplayStats { lines: 10, blocks_applied: 3, burn_blocks: 7, ..Default::default() },
            tip: (2, "0x48edeb155557b9f301eea81343df18110ce642d093c4d689223492a57b9f3f0d"),
            last_burn: Some(666057),
        },
        Sequence {
            file: "seq_mainnet_microblock_fork_height2.tsv",
            stats: ReplayStats { lines: 6, blocks_applied: 5, ignored: 1, reorgs: 1, ..Default::default() },
            tip: (4, "0x68152e9344939b515e1c10c35eb6d96b14caf79bac02d81173da0d8c4a5369c1"),
            last_burn: None,
        },
        Sequence {
            // Genesis is announced under the boot sentinel hash (0x55c9…),
            // but block 1 names the network's real genesis (0x385e…) as its
            // parent: the chain must still connect, heights 0 to 12.
            file: "seq_regtest_nakamoto_2025_fuzzed_transactions.tsv",
            stats: ReplayStats { lines: 29, blocks_applied: 13, burn_blocks: 4, ignored: 12, ..Default::default() },
            tip: (12, "0x3a027883a1952955c5836fa0048383bf7a6492519d1dc9c28eb54e4e4c109a35"),
            last_burn: Some(244),
        },
    ]
}

/// Every `/new_block` payload of a TSV, in order.
fn tsv_blocks(file: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture_dir().join(file))
        .expect("read TSV")
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.splitn(4, '\t').collect();
            (cols.get(2) == Some(&"/new_block")).then(|| serde_json::from_str(cols[3]).expect("JSON payload"))
        })
        .collect()
}

#[test]
fn every_sequence_replays_to_the_chain_the_readme_describes() {
    for s in sequences() {
        let index = TestIndex::new(config(10_000));
        let path = fixture_dir().join(s.file);
        let stats = replay_tsv(&index.indexer, &path).unwrap_or_else(|e| panic!("{}: {e}", s.file));
        assert_eq!(stats, s.stats, "{}", s.file);
        let status = index.reader.status().expect("status");
        assert_eq!(
            (status.tip_height, status.tip_index_block_hash.map(|h| h.to_string()).as_deref()),
            (Some(s.tip.0), Some(s.tip.1)),
            "{}",
            s.file
        );
        assert_eq!(status.last_burn_block_height, s.last_burn, "{}", s.file);
        assert_eq!(status.buffered_blocks, 0, "{}", s.file);

        // Every transaction of the canonical chain is indexed (the fork
        // sequence's losing block is checked below).
        for block in tsv_blocks(s.file) {
            if block["index_block_hash"] == "0xd4e86b872a4799fe275f4a759257400cadc60b3e6b9382bd1ff2a1c7473aff7a" {
                continue;
            }
            for tx in block["transactions"].as_array().expect("transactions") {
                let txid = tx["txid"].as_str().expect("txid");
                assert!(
                    index.reader.transaction(&Txid(parse_hash(txid))).expect("read").is_some(),
                    "{}: {txid}",
                    s.file
                );
            }
        }

        // At least once delivery: the whole stream again changes nothing.
        let before = index.everything();
        let again = replay_tsv(&index.indexer, &path).expect("replay again");
        assert_eq!(again.blocks_applied, 0, "{}", s.file);
        assert_eq!(again.duplicates, s.stats.blocks_applied, "{}", s.file);
        let after = index.everything();
        // Only the burn marker may be rewritten (with the same value).
        assert_same(&format!("{}: replayed twice", s.file), &after, &before);
    }
}

/// `mainnet-reorg-scenario2`: two blocks at height 2 on the same parent;
/// the next block builds on the second (index hash 0x9f79…, block hash
/// 0x8f77bd15…), which must end canonical.
#[test]
fn the_fork_sequence_ends_on_the_winning_sibling() {
    const WINNER: &str = "0x9f79f0a8ec99fea9e49e7324c1802c2282ed5c435c1752503f3e8678804f4f68";
    const TIP: &str = "0x68152e9344939b515e1c10c35eb6d96b14caf79bac02d81173da0d8c4a5369c1";
    let index = TestIndex::new(config(10_000));
    replay_tsv(&index.indexer, &fixture_dir().join("seq_mainnet_microblock_fork_height2.tsv")).expect("replay");
    let tx = |txid: &str| index.reader.transaction(&Txid(parse_hash(txid))).expect("read");

    // The winner's coinbase is canonical at height 2.
    let coinbase = tx("0xe73989b0d2f14749797ca8ae83fc3bfe407284edd7925929fb68ccf9cbb24048").expect("winner's coinbase");
    assert_eq!((coinbase.index_block_hash.to_string().as_str(), coinbase.block_height), (WINNER, 2));
    // The microblock transactions both siblings confirmed point at the winner.
    for txid in [
        "0x509364abf2e47790a4abf2bff19d50e00001d9c24dda0f6f5b5154fc4bc29a8b",
        "0x87916a01f0c31d246649eb2631a57b135cc94d26cd802f3b6a24723f2f21c74a",
        "0x2bc007d03f26f8e46bec5e1e1310cf780f22d60a54bec175a8b067ad8bad0875",
        "0x42c1da080f6829d15577ca9e7eb30133b4aebec0d42bef426fba3c43f1146d08",
        "0x4984fa16418c6868a0f1cec97894cdeb7c6b2e8b393f2fe08923dd98f051cd80",
    ] {
        assert_eq!(tx(txid).expect("confirmed by the winner").index_block_hash.to_string(), WINNER, "{txid}");
    }
    // The loser's only transaction of its own, its coinbase, was mined
    // again at height 4: it is found there, not in the losing block.
    let remined = tx("0x5ce46d2b37dceab3ff5cfc86cc08d75ff7052df44b32136326dc11ed765e3e1c").expect("re-mined coinbase");
    assert_eq!((remined.index_block_hash.to_string().as_str(), remined.block_height), (TIP, 4));

    // Derived state equals a fresh index fed only the canonical blocks.
    let fresh = TestIndex::new(config(10_000));
    for block in tsv_blocks("seq_mainnet_microblock_fork_height2.tsv") {
        if block["index_block_hash"] != "0xd4e86b872a4799fe275f4a759257400cadc60b3e6b9382bd1ff2a1c7473aff7a" {
            fresh.indexer.ingest_json(block.to_string().as_bytes()).expect("fresh ingest");
        }
    }
    assert_same("fork sequence vs its canonical chain", &index.derived(), &fresh.derived());
}
