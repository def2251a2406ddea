//! STREAM over AES-256-GCM: every size round-trips however the bytes are
//! fed; truncation at any chunk boundary, reordered or changed chunks,
//! trailing bytes, another binding or key, and a changed header are all
//! refused.

use medanchor_storage::stream::{open, seal, sealed_len, Opener, Sealer, StreamError, CHUNK, HEADER, TAG};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KEY: [u8; 32] = [7; 32];
const BINDING: &[u8] = b"tenant-a\0record\0file\0v1";

fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen()).collect()
}

#[test]
fn every_size_round_trips_however_it_is_fed() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17, 200_000] {
        let plain = data(n, n as u64);
        let sealed = seal(&KEY, BINDING, &plain).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sealed.len() as u64, sealed_len(n as u64), "size {n}");
        assert_eq!(&*open(&KEY, BINDING, &sealed).unwrap_or_else(|e| panic!("{n}: {e}")), &plain[..]);
        // Fed in random pieces, both ways.
        let mut s = Sealer::new(&KEY, BINDING);
        let mut streamed = s.header().to_vec();
        let mut at = 0;
        while at < n {
            let take = rng.gen_range(1..=(n - at).min(3 * CHUNK));
            streamed.extend(s.update(&plain[at..at + take]).unwrap_or_else(|e| panic!("{e}")));
            at += take;
        }
        streamed.extend(s.finish().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(streamed.len(), sealed.len(), "size {n}");
        let mut o = Opener::new(&KEY, BINDING);
        let mut opened = Vec::new();
        let mut at = 0;
        while at < streamed.len() {
            let take = rng.gen_range(1..=(streamed.len() - at).min(2 * CHUNK));
            opened.extend_from_slice(&o.update(&streamed[at..at + take]).unwrap_or_else(|e| panic!("{e}")));
            at += take;
        }
        opened.extend_from_slice(&o.finish().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(opened, plain, "size {n}");
    }
    // Two seals of the same bytes differ (a fresh nonce prefix each).
    assert_ne!(seal(&KEY, BINDING, b"x").ok(), seal(&KEY, BINDING, b"x").ok());
}

#[test]
fn truncation_at_every_chunk_boundary_is_refused() {
    let plain = data(4 * CHUNK + 100, 2);
    let sealed = seal(&KEY, BINDING, &plain).unwrap_or_else(|e| panic!("{e}"));
    for chunks in 0..=4 {
        let cut = HEADER + chunks * (CHUNK + TAG);
        assert_eq!(
            open(&KEY, BINDING, &sealed[..cut]).err(),
            Some(StreamError::Truncated),
            "cut after {chunks} chunks"
        );
    }
    // Cut inside a chunk, or inside the header.
    assert!(open(&KEY, BINDING, &sealed[..sealed.len() - 1]).is_err());
    assert_eq!(open(&KEY, BINDING, &sealed[..HEADER - 1]).err(), Some(StreamError::Truncated));
    // A stream whose last chunk is full, cut before it: still refused.
    let exact = seal(&KEY, BINDING, &data(2 * CHUNK, 3)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(open(&KEY, BINDING, &exact[..HEADER + CHUNK + TAG]).err(), Some(StreamError::Truncated));
}

#[test]
fn reordered_changed_trailing_or_misbound_streams_are_refused() {
    let plain = data(3 * CHUNK + 5, 4);
    let sealed = seal(&KEY, BINDING, &plain).unwrap_or_else(|e| panic!("{e}"));
    let chunk = |i: usize| HEADER + i * (CHUNK + TAG)..HEADER + (i + 1) * (CHUNK + TAG);
    // Chunks 0 and 1 swapped.
    let mut swapped = sealed.clone();
    let (a, b) = (sealed[chunk(0)].to_vec(), sealed[chunk(1)].to_vec());
    swapped[chunk(0)].copy_from_slice(&b);
    swapped[chunk(1)].copy_from_slice(&a);
    assert_eq!(open(&KEY, BINDING, &swapped).err(), Some(StreamError::Tampered(0)));
    // One bit flipped anywhere: header, a chunk, a tag, the last chunk.
    for at in [0, 9, 13, HEADER, HEADER + CHUNK + 3, HEADER + CHUNK + TAG - 1, sealed.len() - 1] {
        let mut t = sealed.clone();
        t[at] ^= 1;
        assert!(open(&KEY, BINDING, &t).is_err(), "flip at {at}");
    }
    // Bytes after the last chunk.
    let mut trailing = sealed.clone();
    trailing.extend_from_slice(&[0; 10]);
    assert!(open(&KEY, BINDING, &trailing).is_err());
    let mut long = seal(&KEY, BINDING, b"short").unwrap_or_else(|e| panic!("{e}"));
    long.extend_from_slice(&vec![0; CHUNK + TAG]);
    assert!(open(&KEY, BINDING, &long).is_err());
    // Another binding, another key, another format.
    assert_eq!(open(&KEY, b"tenant-b\0record\0file\0v1", &sealed).err(), Some(StreamError::Tampered(0)));
    assert_eq!(open(&[8; 32], BINDING, &sealed).err(), Some(StreamError::Tampered(0)));
    let mut other = sealed.clone();
    other[..8].copy_from_slice(b"NOTASTRM");
    assert_eq!(open(&KEY, BINDING, &other).err(), Some(StreamError::Header));
}
