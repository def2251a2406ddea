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

/// A one-pass upload's stream file: chunks written across writers
/// (restarts) make the final stream, byte for byte.
#[test]
fn a_stream_written_across_writers_opens_as_the_whole_file() {
    use medanchor_storage::stream::{self, CHUNK};
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("spool");
    let binding = b"tenant\0record\0attachment\0file";
    let file = pattern(3 * CHUNK + 1234, 5);
    spool.create_stream(&UP, &KEY, binding).expect("create");
    let header = std::fs::read(spool.stream_path(&UP)).expect("read");
    for (i, chunk) in file.chunks(CHUNK).enumerate() {
        let mut w = spool.stream_writer(&UP, &KEY, binding, i as u32).expect("writer");
        w.push(chunk, i == 3).expect("push");
        assert_eq!(w.sync().expect("sync"), i as u32 + 1);
    }
    let sealed = std::fs::read(spool.stream_path(&UP)).expect("read");
    assert_eq!(sealed[..stream::HEADER], header[..], "no reseal: every chunk was committed");
    assert_eq!(sealed.len() as u64, stream::sealed_len(file.len() as u64));
    assert_eq!(&*stream::open(&KEY, binding, &sealed).expect("opens"), &file[..]);
    assert!(stream::open(&KEY, b"another binding", &sealed).is_err());
    assert_eq!(spool.list().expect("list"), vec![UP]);
    spool.remove(&UP).expect("remove");
    assert!(spool.list().expect("list").is_empty());
}

/// Chunks written but never committed (a refused piece, a crash after the
/// write) are cut, and the committed ones resealed under a fresh nonce
/// prefix before anything else is sealed at those positions: with the old
/// prefix, other bytes at the same chunk position would reuse a nonce.
#[test]
fn uncommitted_chunks_force_a_fresh_prefix_and_nothing_is_lost() {
    use medanchor_storage::stream::{self, CHUNK, HEADER};
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("spool");
    let binding = b"b";
    let file = pattern(4 * CHUNK + 10, 6);
    spool.create_stream(&UP, &KEY, binding).expect("create");
    let mut w = spool.stream_writer(&UP, &KEY, binding, 0).expect("writer");
    w.push(&file[..CHUNK], false).expect("push");
    w.push(&file[CHUNK..2 * CHUNK], false).expect("push");
    let committed = w.sync().expect("sync");
    // Then a piece that is refused after two of its chunks were written.
    w.push(&pattern(CHUNK, 99), false).expect("push");
    w.push(&pattern(CHUNK, 98), false).expect("push");
    w.sync().expect("sync");
    drop(w);
    let before = std::fs::read(spool.stream_path(&UP)).expect("read");
    let mut w = spool.stream_writer(&UP, &KEY, binding, committed).expect("writer");
    let after = std::fs::read(spool.stream_path(&UP)).expect("read");
    assert_eq!(after.len() as u64, stream::chunk_at(2), "cut back to the committed chunks");
    assert_ne!(after[..HEADER], before[..HEADER], "a fresh nonce prefix");
    assert_ne!(after[HEADER..], before[HEADER..stream::chunk_at(2) as usize], "the committed chunks resealed");
    w.push(&file[2 * CHUNK..3 * CHUNK], false).expect("push");
    w.push(&file[3 * CHUNK..4 * CHUNK], false).expect("push");
    w.push(&file[4 * CHUNK..], true).expect("push");
    w.sync().expect("sync");
    drop(w);
    let sealed = std::fs::read(spool.stream_path(&UP)).expect("read");
    assert_eq!(&*stream::open(&KEY, binding, &sealed).expect("opens"), &file[..], "nothing committed was lost");
    // A committed count the file does not reach.
    assert!(matches!(spool.stream_writer(&UP, &KEY, binding, 9), Err(SpoolError::Damaged(_))));
}
