//! Linkage: a block is applied only as the child of a known parent, at the
//! parent's height + 1. A block that breaks this (forged, or sent by a
//! broken node) is refused with a payload error and changes nothing, and
//! the real chain goes on: blocks after it apply, and revocations after it
//! are reflected in `check-consent`. A buffered block that turns out not to
//! link when its parent arrives is dropped, with anything buffered on it;
//! the buffer is bounded.

use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::DataType;
use medanchor_indexer::{ChainReader, ConsentReader, Error, IndexerConfig, Outcome};

use crate::support::{assert_same, config, principal, BlockBuilder, Chain, Server, TestIndex};

fn patient() -> Principal {
    principal("linkage-patient")
}
fn provider() -> Principal {
    principal("linkage-provider")
}
/// A fresh key a forged block grants consent to.
fn intruder() -> Principal {
    principal("linkage-intruder")
}

const LAB: u8 = 3;
/// `ERR-NO-CONSENT` and `ERR-CONSENT-REVOKED`.
const NO_CONSENT: u32 = 107;
const CONSENT_REVOKED: u32 = 109;

/// G registers the provider; A1 registers the patient, who grants the
/// provider lab results; A2 is empty; A3 revokes that grant; A4 and A5 are
/// empty. Besides them, blocks that do not link, each granting the
/// intruder lab results (labels say what is wrong with them).
fn chain() -> Chain {
    let mut chain = Chain::with_genesis("G", |b| b.register_provider(&provider()));
    chain.add("A1", "G", |b| {
        b.register_patient(&patient());
        b.grant(&patient(), &provider(), DataType::LabResults, None);
    });
    chain.add("A2", "A1", |_| {});
    chain.add("A3", "A2", |b| b.revoke(&patient(), &provider(), DataType::LabResults));
    chain.add("A4", "A3", |_| {});
    chain.add("A5", "A4", |_| {});
    let grant = |b: &mut BlockBuilder| b.grant(&patient(), &intruder(), DataType::LabResults, None);
    // On the tip A1 (height 1).
    chain.add_claiming("A1 + 2", "A1", 3, grant);
    chain.add_claiming("A1 + 0", "A1", 1, grant);
    chain.add_claiming("A1 - 1", "A1", 0, grant);
    chain.add_claiming("A1 + 1000", "A1", 1_001, grant);
    chain.add_claiming("A1 + 1000000", "A1", 1_000_001, grant);
    // On G (height 0), which is not the tip: a fork that skips a height.
    chain.add_claiming("G + 2", "G", 2, |_| {});
    chain
}

/// The index after delivering `labels`, each of which must apply.
fn index_at(chain: &Chain, labels: &[&str]) -> TestIndex {
    let index = TestIndex::new(config(10_000));
    for label in labels {
        let outcome = index.ingest(chain.block(label)).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(matches!(outcome, Outcome::Applied { .. }), "{label}: {outcome:?}");
    }
    index
}

/// `check-consent` of the patient's lab results for `who`: `Ok(method)` or
/// `Err(code)`.
fn consent(index: &TestIndex, who: &Principal) -> Result<&'static str, u32> {
    let check = index.reader.check_consent(&patient(), who, LAB).expect("check-consent");
    match (check.allowed, check.method, check.error) {
        (true, Some(method), _) => Ok(method),
        (_, _, Some(e)) => Err(e.code),
        other => panic!("malformed check: {other:?}"),
    }
}

/// (a) and (b): a block whose height is not its parent's + 1 is refused
/// with a payload error and changes nothing; the real chain then applies
/// block by block (the report's wedge: a block at tip + 2 made the real
/// next block fail forever, so a later revocation never reached the index)
/// and ends identical to an index that never saw the forgery.
#[test]
fn a_block_not_at_its_parents_height_plus_one_is_refused_and_the_real_chain_goes_on() {
    let chain = chain();
    for forged in ["A1 + 2", "A1 + 0", "A1 - 1", "A1 + 1000", "A1 + 1000000", "G + 2"] {
        let index = index_at(&chain, &["G", "A1"]);
        let before = index.everything();
        match index.ingest(chain.block(forged)) {
            Err(Error::Payload(message)) => {
                assert!(message.contains("height"), "{forged}: the refusal names the height: {message}")
            }
            other => panic!("{forged}: expected a payload error, got {other:?}"),
        }
        assert_same(&format!("{forged}: state after the refusal"), &index.everything(), &before);
        assert_eq!(consent(&index, &intruder()), Err(NO_CONSENT), "{forged}: the forged grant took effect");
        // Delivered again (a node retries what it was refused): refused again.
        assert!(matches!(index.ingest(chain.block(forged)), Err(Error::Payload(_))), "{forged}: second delivery");

        // The real chain: every block applies on the tip, without a re-org.
        for (label, height) in [("A2", 2), ("A3", 3), ("A4", 4)] {
            let outcome = index.ingest(chain.block(label));
            assert_eq!(
                outcome.as_ref().ok(),
                Some(&Outcome::Applied { height, reorg_depth: 0, connected: 0 }),
                "{forged}: the real block {label} after the forgery: {outcome:?}"
            );
        }
        // The revocation in A3 is what check-consent answers now.
        assert_eq!(consent(&index, &provider()), Err(CONSENT_REVOKED), "{forged}: the revocation is not reflected");
        assert_eq!(consent(&index, &intruder()), Err(NO_CONSENT), "{forged}");
        let clean = index_at(&chain, &["G", "A1", "A2", "A3", "A4"]);
        assert_same(&format!("{forged}: derived state vs a clean index"), &index.derived(), &clean.derived());
        assert_eq!(index.tip(), Some(chain.id("A4")), "{forged}");
    }
}

/// (b): the report's wedge. A block at tip + 2 made the next real block
/// fail (the re-org to it found no canonical block at tip + 1) on every
/// retry, so the index stopped at the forgery: its grant stayed in force
/// and the revocation mined later never reached the index. Whatever
/// happens to the forgery, the real chain must apply and be what
/// `check-consent` answers from.
#[test]
fn after_a_block_at_tip_plus_2_the_index_follows_the_real_chain_and_its_revocation() {
    let chain = chain();
    let index = index_at(&chain, &["G", "A1"]);
    assert_eq!(consent(&index, &provider()), Ok("consent"));
    let _ = index.ingest(chain.block("A1 + 2"));
    for label in ["A2", "A3"] {
        let outcome = index.ingest(chain.block(label));
        assert!(
            matches!(outcome, Ok(Outcome::Applied { .. })),
            "the real block {label} after the forgery: {outcome:?}"
        );
    }
    assert_eq!(index.tip(), Some(chain.id("A3")));
    assert_eq!(consent(&index, &provider()), Err(CONSENT_REVOKED), "the on-chain revocation has no effect");
    assert_eq!(consent(&index, &intruder()), Err(NO_CONSENT), "the forged grant is in force");
}

/// A block naming itself as its parent can never link.
#[test]
fn a_block_that_is_its_own_parent_is_refused() {
    let chain = chain();
    let mut selfish = chain.block("A2").clone();
    selfish.parent = selfish.id;
    let index = index_at(&chain, &["G", "A1"]);
    assert!(matches!(index.ingest(&selfish), Err(Error::Payload(_))), "a self-parented block was not refused");
    assert_eq!(index.reader.status().expect("status").buffered_blocks, 0);
    let outcome = index.ingest(chain.block("A2")).expect("A2");
    assert_eq!(outcome, Outcome::Applied { height: 2, reorg_depth: 0, connected: 0 });
}

/// (c): a buffered block is re-checked when its parent arrives; one that
/// does not link is dropped (with what was buffered on it) and the parent,
/// and the chain after it, apply as if it had never been sent.
#[test]
fn a_buffered_block_that_does_not_link_is_dropped_when_its_parent_arrives() {
    let mut chain = chain();
    // Claims A2 as parent but a height two above it, and a child of it
    // that does link to it (and so can never connect either).
    chain.add_claiming("A2 + 2", "A2", 4, |b| b.grant(&patient(), &intruder(), DataType::LabResults, None));
    chain.add("A2 + 2 child", "A2 + 2", |_| {});
    // A real block buffered beside them, which must still connect.
    let cases: &[(&str, &[&str])] = &[
        ("one bad orphan", &["A2 + 2"]),
        ("a bad orphan and its child", &["A2 + 2", "A2 + 2 child"]),
        ("the child first", &["A2 + 2 child", "A2 + 2"]),
        ("a good orphan beside a bad one", &["A3", "A2 + 2", "A2 + 2 child"]),
    ];
    for (name, buffered) in cases {
        let index = index_at(&chain, &["G", "A1"]);
        for label in *buffered {
            let outcome = index.ingest(chain.block(label));
            assert_eq!(outcome.as_ref().ok(), Some(&Outcome::Buffered), "{name}: {label}: {outcome:?}");
        }
        let good = buffered.contains(&"A3") as usize;
        let outcome = index.ingest(chain.block("A2"));
        assert_eq!(
            outcome.as_ref().ok(),
            Some(&Outcome::Applied { height: 2, reorg_depth: 0, connected: good }),
            "{name}: A2: {outcome:?}"
        );
        assert_eq!(index.reader.status().expect("status").buffered_blocks, 0, "{name}: left in the buffer");
        assert_eq!(index.tip(), Some(chain.id(if good == 1 { "A3" } else { "A2" })), "{name}");
        let rest: &[(&str, u64)] = if good == 1 { &[("A4", 4), ("A5", 5)] } else { &[("A3", 3), ("A4", 4), ("A5", 5)] };
        for (label, height) in rest {
            let outcome = index.ingest(chain.block(label));
            assert_eq!(
                outcome.as_ref().ok(),
                Some(&Outcome::Applied { height: *height, reorg_depth: 0, connected: 0 }),
                "{name}: {label}: {outcome:?}"
            );
        }
        assert_eq!(consent(&index, &provider()), Err(CONSENT_REVOKED), "{name}");
        assert_eq!(consent(&index, &intruder()), Err(NO_CONSENT), "{name}");
        let clean = index_at(&chain, &["G", "A1", "A2", "A3", "A4", "A5"]);
        assert_same(&format!("{name}: derived state vs a clean index"), &index.derived(), &clean.derived());
    }
}

/// The default bound of the orphan buffer.
const MAX_ORPHANS: usize = 1_000;

#[test]
fn the_default_buffer_bound_is_max_orphans() {
    assert_eq!(IndexerConfig::for_deployer(medanchor_contracts::DEPLOYER_ADDRESS).max_orphans, MAX_ORPHANS);
}

/// (d): the orphan buffer holds at most [`MAX_ORPHANS`] blocks; past that,
/// blocks with unknown parents are refused (the node retries later) and
/// the real chain still applies.
#[test]
fn the_orphan_buffer_is_bounded_and_does_not_stop_the_real_chain() {
    let mut chain = chain();
    for i in 0..=MAX_ORPHANS {
        let mut parent = [0u8; 32];
        parent[..8].copy_from_slice(&(i as u64).to_be_bytes());
        parent[31] = 0xee;
        chain.add_unlinked(&format!("orphan {i}"), parent, 3 + (i % 50) as u64);
    }
    let index = index_at(&chain, &["G", "A1"]);
    for i in 0..MAX_ORPHANS {
        let outcome = index.ingest(chain.block(&format!("orphan {i}")));
        assert_eq!(outcome.as_ref().ok(), Some(&Outcome::Buffered), "orphan {i}: {outcome:?}");
    }
    let last = format!("orphan {MAX_ORPHANS}");
    let outcome = index.ingest(chain.block(&last));
    assert!(
        matches!(outcome, Err(Error::BufferFull { kept: MAX_ORPHANS })),
        "orphan {MAX_ORPHANS} was accepted into a full buffer: {outcome:?}"
    );
    assert_eq!(index.reader.status().expect("status").buffered_blocks, MAX_ORPHANS);
    for (label, height) in [("A2", 2), ("A3", 3)] {
        let outcome = index.ingest(chain.block(label));
        assert_eq!(
            outcome.as_ref().ok(),
            Some(&Outcome::Applied { height, reorg_depth: 0, connected: 0 }),
            "{label} with a full buffer: {outcome:?}"
        );
    }
    assert_eq!(consent(&index, &provider()), Err(CONSENT_REVOKED));
}

/// The buffer's other bounds, with a small buffer: a block more than
/// `undo_depth` above the tip is refused outright; when the buffer is full,
/// blocks too far below the tip to connect make room, and otherwise the
/// block is refused with `BufferFull` (HTTP 503: the node retries).
#[test]
fn a_full_buffer_drops_what_can_no_longer_connect_and_refuses_the_rest() {
    let mut chain = chain();
    let orphans = [("low 3", 3), ("low 4", 4), ("mid 9", 9), ("new 8", 8), ("new 20", 20), ("new 21", 21), ("far", 40)];
    for (label, height) in orphans {
        chain.add_unlinked(label, medanchor_indexer::synth::id(&format!("parent of {label}")), height);
    }
    let mut parent = "A5".to_string();
    for h in 6..=15 {
        let label = format!("A{h}");
        chain.add(&label, &parent, |_| {});
        parent = label;
    }
    let index = TestIndex::new(IndexerConfig { max_orphans: 3, ..config(10) });
    let buffered = |index: &TestIndex| index.reader.status().expect("status").buffered_blocks;
    let deliver = |label: &str| index.ingest(chain.block(label));
    for label in ["G", "A1"] {
        deliver(label).expect(label);
    }
    // Tip 1, undo depth 10: height 40 is too far above.
    match deliver("far") {
        Err(Error::Payload(m)) => assert!(m.contains("more than 10 blocks above the tip"), "{m}"),
        other => panic!("far: {other:?}"),
    }
    for label in ["low 3", "low 4", "mid 9"] {
        assert_eq!(deliver(label).expect(label), Outcome::Buffered, "{label}");
    }
    // Full, and nothing is stale at tip 1: refused, and nothing changes.
    let before = index.everything();
    match deliver("new 8") {
        Err(e @ Error::BufferFull { kept: 3 }) => assert_eq!(medanchor_indexer::server::status_of(&e), 503),
        other => panic!("new 8 into a full buffer: {other:?}"),
    }
    assert_same("a refused orphan", &index.everything(), &before);
    // The real chain goes on regardless, to height 15: heights 3 and 4 are
    // now more than 10 below the tip and can never connect.
    for h in 2..=15 {
        let outcome = deliver(&format!("A{h}")).expect("real block");
        assert_eq!(outcome, Outcome::Applied { height: h, reorg_depth: 0, connected: 0 }, "A{h}");
    }
    assert_eq!(buffered(&index), 3);
    assert_eq!(deliver("new 20").expect("new 20"), Outcome::Buffered, "the stale orphans made no room");
    assert_eq!(buffered(&index), 2, "only the stale orphans leave");
    assert_eq!(deliver("new 21").expect("new 21"), Outcome::Buffered);
    // Full again, with nothing stale (9 is within 10 of 15).
    assert!(matches!(deliver("low 3"), Err(Error::BufferFull { kept: 3 })), "the buffer grew past its bound");
    assert_eq!(buffered(&index), 3);
}

/// The node's side of it, over HTTP on the observer port: the forged block
/// is answered 400 and the real one 200, so the node moves on.
#[tokio::test]
async fn over_http_a_forged_block_gets_400_and_the_real_chain_200() {
    let chain = chain();
    let index = TestIndex::new(config(10_000));
    let server = Server::start(index.indexer.clone()).await;
    let steps: &[(&str, u16)] =
        &[("G", 200), ("A1", 200), ("A1 + 2", 400), ("A1 + 2", 400), ("G + 2", 400), ("A2", 200), ("A3", 200)];
    for (label, want) in steps {
        let (status, body) = server.post("/new_block", chain.block(label).to_bytes()).await;
        assert_eq!(status, *want, "POST /new_block {label}: {body}");
    }
    let who = intruder();
    let (_, check) = server.get(&format!("/v1/consent/check?patient={}&provider={who}&data_type=3", patient())).await;
    assert_eq!(check["allowed"], false, "{check}");
    let (_, check) =
        server.get(&format!("/v1/consent/check?patient={}&provider={}&data_type=3", patient(), provider())).await;
    assert_eq!(check["error"]["name"], "ERR-CONSENT-REVOKED", "{check}");
}
