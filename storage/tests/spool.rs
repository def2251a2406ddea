//! The upload spool: what was committed reads back; a crash's leftovers
//! are cut; any change, move or foreign segment is refused.

use medanchor_storage::spool::{Position, Spool, SpoolError};

const KEY: [u8; 32] = [9; 32];
const UP: [u8; 16] = [1; 16];

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn committed_segments_read_back_across_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("spool");
    let mut expected = Vec::new();
    let mut at = Position::default();
    // Pieces of every awkward size, each written by a fresh writer (a
    // restart between PATCH requests).
    for (i, n) in [1usize, 0, 1000, 65_536, 3, 4 << 20].into_iter().enumerate() {
        let piece = pattern(n, i as u8);
        let mut w = spool.writer(&UP, &KEY, at).expect("writer");
        w.push(&piece).expect("push");
        at = w.sync().expect("sync");
        expected.extend_from_slice(&piece);
    }
    assert_eq!(at.offset, expected.len() as u64);
    assert_eq!(at.segments, 5, "an empty piece writes nothing");
    assert_eq!(&*spool.read(&UP, &KEY, at).expect("read"), &expected[..]);
    assert_eq!(spool.list().expect("list"), vec![UP]);
    spool.remove(&UP).expect("remove");
    spool.remove(&UP).expect("removing twice is fine");
    assert!(spool.list().expect("list").is_empty());
}

#[test]
fn what_a_crash_left_beyond_the_committed_position_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("spool");
    let mut w = spool.writer(&UP, &KEY, Position::default()).expect("writer");
    w.push(b"acknowledged").expect("push");
    let committed = w.sync().expect("sync");
    // Written and synced but never committed (the node died before the
    // database write), then a different chunk arrives at the same offset.
    w.push(b"lost in the crash").expect("push");
    w.sync().expect("sync");
    drop(w);
    let mut w = spool.writer(&UP, &KEY, committed).expect("writer");
    w.push(b", then more").expect("push");
    let at = w.sync().expect("sync");
    assert_eq!(&*spool.read(&UP, &KEY, at).expect("read"), b"acknowledged, then more");
}

#[test]
fn damage_of_every_kind_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("spool");
    let mut w = spool.writer(&UP, &KEY, Position::default()).expect("writer");
    w.push(b"first").expect("push");
    w.push(b"second").expect("push");
    let at = w.sync().expect("sync");
    drop(w);
    let path = dir.path().join(format!("{}.spool", "01".repeat(16)));
    let good = std::fs::read(&path).expect("read");
    let damaged = |bytes: &[u8], at: Position| {
        std::fs::write(&path, bytes).expect("write");
        matches!(spool.read(&UP, &KEY, at), Err(SpoolError::Damaged(_)))
    };
    let mut flipped = good.clone();
    flipped[20] ^= 1;
    assert!(damaged(&flipped, at), "a changed byte");
    // The two segments swapped: each is whole, but not where it stands.
    let first_len = 4 + u32::from_be_bytes(good[..4].try_into().expect("4")) as usize;
    let swapped = [&good[first_len..], &good[..first_len]].concat();
    assert!(damaged(&swapped, at), "reordered segments");
    assert!(damaged(&good[..first_len], at), "a truncated file");
    assert!(damaged(&good, Position { segments: 1, ..at }), "more bytes than the committed segments");
    std::fs::write(&path, &good).expect("restore");
    assert!(matches!(spool.read(&UP, &[8; 32], at), Err(SpoolError::Damaged(0))), "another key");
    // The same bytes as another upload's spool.
    std::fs::write(dir.path().join(format!("{}.spool", "02".repeat(16))), &good).expect("copy");
    assert!(matches!(spool.read(&[2; 16], &KEY, at), Err(SpoolError::Damaged(0))), "another upload");
    assert_eq!(&*spool.read(&UP, &KEY, at).expect("intact"), b"firstsecond");
    // A committed position the file does not reach.
    let beyond = Position { bytes: at.bytes + 1, ..at };
    assert!(matches!(spool.writer(&UP, &KEY, beyond), Err(SpoolError::Damaged(_))));
}
