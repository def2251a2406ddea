//! The object store on local disk and on a real S3-compatible server
//! (SeaweedFS on loopback, which checks request signatures): the same
//! suite on both. Sealed multipart uploads round-trip and hash what is
//! stored; objects are written once; listing stays within a tenant;
//! ranges read; aborted uploads leave nothing; a wrong secret is refused.

mod support;

use bytes::Bytes;
use medanchor_storage::backend::{Backend, BackendConfig, StorageError, PART};
use medanchor_storage::keys::{ObjectKey, Tenant};
use medanchor_storage::stream::{open, sealed_len};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

const KEY: [u8; 32] = [42; 32];

fn tenant(name: &str) -> Tenant {
    name.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn key(t: &str, record: u8, file: u8) -> ObjectKey {
    ObjectKey::new(tenant(t), 1_796_464_800_000, [record; 16], [file; 16])
}

async fn suite(backend: &Backend) {
    let what = backend.describe().to_string();
    let mut rng = ChaCha8Rng::seed_from_u64(9);

    // A sealed upload of 20 MiB written in uneven pieces: 3 parts, the
    // stored bytes hash to what the upload reports and open to the input.
    let plain: Vec<u8> = (0..20 * 1024 * 1024).map(|_| rng.gen()).collect();
    let k = key("tenant-a", 1, 1);
    let binding = k.to_string().into_bytes();
    let mut up = backend.sealed_upload(&k, &KEY, &binding).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut at = 0;
    while at < plain.len() {
        let n = rng.gen_range(1..3_000_000).min(plain.len() - at);
        up.write(&plain[at..at + n]).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        at += n;
    }
    let stored = up.finish().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(stored.size, sealed_len(plain.len() as u64), "{what}");
    assert_eq!(stored.parts, (stored.size as usize).div_ceil(PART), "{what}");
    let bytes = backend.get(&k).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(bytes.len() as u64, stored.size);
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&bytes)), stored.sha256, "{what}: the hash is of what is stored");
    assert!(*open(&KEY, &binding, &bytes).unwrap_or_else(|e| panic!("{what}: {e}")) == plain[..], "{what}");
    // A range read: the header.
    let head = backend.get_range(&k, 0..8).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(&head[..], b"MASTRM01");
    // Plaintext never reaches the store.
    assert!(!bytes.windows(64).any(|w| w == &plain[1000..1064]), "{what}");

    // A file already sealed (a one-pass upload's stream) stored as it is:
    // linked on disk, multipart from the file on S3. The same key stored
    // again (a completion retried after a crash) is replaced whole.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("stream");
    let sealed_file = medanchor_storage::stream::seal(&KEY, &binding, &plain[..PART + 4321]).expect("seal");
    std::fs::write(&file, &sealed_file).unwrap_or_else(|e| panic!("{e}"));
    let fk = key("tenant-a", 6, 6);
    for _ in 0..2 {
        let stored = backend.put_file(&fk, &file, None, None).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(stored.size, sealed_file.len() as u64, "{what}");
        assert_eq!(stored.sha256, <[u8; 32]>::from(Sha256::digest(&sealed_file)), "{what}");
        let got = backend.get(&fk).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(got[..] == sealed_file[..], "{what}: stored byte for byte");
    }
    // The source may go: the object stays (a link, not the same name).
    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(backend.get(&fk).await.map(|b| b.len()).ok(), Some(sealed_file.len()), "{what}");
    let missing = backend.put_file(&key("tenant-a", 6, 7), &file, None, None).await;
    assert!(matches!(missing, Err(StorageError::Store(_))), "{what}: {missing:?}");
    assert!(matches!(backend.get(&key("tenant-a", 6, 7)).await, Err(StorageError::NotFound(_))), "{what}");
    backend.delete(&fk).await.unwrap_or_else(|e| panic!("{what}: {e}"));

    // Written once: a second put at a key is refused, the first stays.
    let small = key("tenant-a", 2, 1);
    backend.put_new(&small, Bytes::from_static(b"first")).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let again = backend.put_new(&small, Bytes::from_static(b"second")).await;
    assert!(matches!(again, Err(StorageError::Exists(_))), "{what}: {again:?}");
    assert_eq!(&backend.get(&small).await.unwrap_or_else(|e| panic!("{what}: {e}"))[..], b"first");

    // Listing stays within the tenant (a tenant whose name extends
    // another's included).
    backend.put_new(&key("tenant-ab", 3, 1), Bytes::from_static(b"other")).await.unwrap_or_else(|e| panic!("{e}"));
    let listed = backend.list(&tenant("tenant-a")).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let keys: Vec<ObjectKey> = listed.iter().map(|l| l.key.clone()).collect();
    assert_eq!(keys, [k.clone(), small.clone()], "{what}");
    assert_eq!(listed[0].size, stored.size);
    assert_eq!(backend.list(&tenant("tenant-ab")).await.map(|l| l.len()).ok(), Some(1), "{what}");

    // An aborted upload leaves nothing; deleting is idempotent; a missing
    // object is NotFound.
    let gone = key("tenant-a", 4, 1);
    let mut up = backend.sealed_upload(&gone, &KEY, b"x").await.unwrap_or_else(|e| panic!("{what}: {e}"));
    up.write(&plain[..PART + 10]).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    up.abort().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(matches!(backend.get(&gone).await, Err(StorageError::NotFound(_))), "{what}");
    assert_eq!(backend.list(&tenant("tenant-a")).await.map(|l| l.len()).ok(), Some(2), "{what}");
    backend.delete(&small).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    backend.delete(&small).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(matches!(backend.get(&small).await, Err(StorageError::NotFound(_))), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_disk() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let backend =
        Backend::open(&BackendConfig::Local { root: dir.path().join("objects") }).unwrap_or_else(|e| panic!("{e}"));
    suite(&backend).await;
    // One class on disk: a class asked for is not claimed.
    let k = key("tenant-a", 5, 5);
    let mut up =
        backend.sealed_upload_in(&k, &[3; 32], b"bind", Some("STANDARD_IA")).await.unwrap_or_else(|e| panic!("{e}"));
    up.write(b"classed").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(up.finish().await.unwrap_or_else(|e| panic!("{e}")).class, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seaweedfs_over_s3() {
    let server = tokio::task::spawn_blocking(support::Seaweed::start).await.unwrap_or_else(|e| panic!("{e}"));
    let config = |secret: &str| BackendConfig::S3 {
        endpoint: Some(server.endpoint.clone()),
        bucket: support::BUCKET.into(),
        region: "us-east-1".into(),
        credentials: Some((support::ACCESS_KEY.into(), secret.into())),
    };
    let backend = Backend::open(&config(support::SECRET_KEY)).unwrap_or_else(|e| panic!("{e}"));
    assert!(!backend.describe().contains(support::SECRET_KEY));
    suite(&backend).await;
    // The server checks signatures: a wrong secret writes and reads nothing.
    let forged = Backend::open(&config("not-the-secret")).unwrap_or_else(|e| panic!("{e}"));
    let k = key("tenant-a", 9, 9);
    assert!(matches!(forged.put_new(&k, Bytes::from_static(b"x")).await, Err(StorageError::Store(_))));
    assert!(forged.get(&key("tenant-a", 1, 1)).await.is_err());
    assert!(matches!(backend.get(&k).await, Err(StorageError::NotFound(_))));

    // A storage class is written per object on S3 and reported back.
    let k = key("tenant-a", 5, 5);
    let mut up =
        backend.sealed_upload_in(&k, &[3; 32], b"bind", Some("STANDARD_IA")).await.unwrap_or_else(|e| panic!("{e}"));
    up.write(b"classed").await.unwrap_or_else(|e| panic!("{e}"));
    let stored = up.finish().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored.class.as_deref(), Some("STANDARD_IA"));
    assert!(backend.get(&k).await.is_ok());

    // The bucket-lifecycle requests are signed by our own SigV4: the
    // server accepts the signature; with a wrong secret it refuses it.
    use medanchor_storage::lifecycle::{get_lifecycle, S3Target};
    let target = |secret: &str| S3Target {
        endpoint: Some(server.endpoint.clone()),
        bucket: support::BUCKET.into(),
        region: "us-east-1".into(),
        access_key: support::ACCESS_KEY.into(),
        secret_key: secret.into(),
        session_token: None,
    };
    match get_lifecycle(&target(support::SECRET_KEY)).await {
        Ok(_) => {}
        // SeaweedFS may not keep lifecycle documents; what matters here is
        // that it did not refuse the signature.
        Err(e) => {
            let e = e.to_string();
            assert!(!e.contains("403") && !e.contains("Signature") && !e.contains("AccessDenied"), "{e}");
        }
    }
    let refused = get_lifecycle(&target("not-the-secret")).await.expect_err("a forged signature");
    assert!(refused.to_string().contains("403"), "{refused}");
}
