//! `medanchor-bench search`: the blind index at scale. Builds the API
//! database's `search` family for `--records` synthetic records (a
//! patient name, 1–3 diagnosis codes, 0–3 medications, a provider, a
//! patient and a record type each, over five years) with the service's own
//! index writer, then times first pages of 20 through the service's query
//! path — a diagnosis-code query and name-prefix queries, with an accept-all
//! callback and one refusing about half the candidates — next to a raw
//! RocksDB prefix iteration reading 20 keys of the same diagnosis ranges in
//! the same run.

use std::time::Instant;

use anyhow::{bail, Context};
use medanchor_api::db::{ApiDb, Cf};
use medanchor_api::search::{IndexStore, SearchKeys};
use medanchor_clinical::search::{entries, record_sort, search, Doc, Field, Query, Scope, SearchKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::latency::{latency, Latency};

/// The target: a query's p99, in milliseconds.
const TARGET_P99_MS: f64 = 10.0;
/// Results per page (the API's default).
const PAGE: usize = 20;
/// Five years of records.
const SPAN_MS: u64 = 5 * 365 * 86_400_000;

/// Arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchBenchArgs {
    /// Records indexed.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Queries timed per kind.
    #[arg(long, default_value_t = 1_000)]
    pub queries: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One kind of query.
#[derive(Debug, Serialize)]
pub struct QueryReport {
    /// What was asked.
    pub query: &'static str,
    /// Latency of a first page.
    pub latency_ms: Latency,
    /// Mean results per page (the pages were not empty).
    pub mean_results: f64,
    /// p99 ÷ the raw prefix scan's p99.
    pub p99_vs_raw_scan: f64,
    /// Whether the p99 is under the target.
    pub met: bool,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct SearchBenchReport {
    /// Records indexed.
    pub records: usize,
    /// Index keys written.
    pub keys: u64,
    /// Building the index (keys, writes, compaction), seconds.
    pub build_s: f64,
    /// Baseline: a raw RocksDB prefix iteration of 20 keys of a diagnosis
    /// token's range.
    pub raw_scan_ms: Latency,
    /// The queries.
    pub queries: Vec<QueryReport>,
    /// The target p99 (ms).
    pub target_p99_ms: f64,
}

/// Runs the benchmark.
pub fn run(args: SearchBenchArgs) -> anyhow::Result<()> {
    if args.records == 0 || args.queries == 0 {
        bail!("--records and --queries must be positive");
    }
    let report = measure(args.records, args.queries)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "search: blind index over {} records ({} keys, built in {:.1} s), first pages of {PAGE}",
        report.records, report.keys, report.build_s
    );
    let r = &report.raw_scan_ms;
    println!("baseline, this run: raw RocksDB prefix scan of {PAGE} keys  p50 {:.3} ms  p99 {:.3} ms", r.p50, r.p99);
    for q in &report.queries {
        let l = &q.latency_ms;
        println!(
            "  {:<44} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({:.1} results)  p99 ÷ raw {:>6.2}  target < {:.0} ms: {}",
            q.query,
            l.p50,
            l.p99,
            l.max,
            q.mean_results,
            q.p99_vs_raw_scan,
            report.target_p99_ms,
            if q.met { "met" } else { "MISSED" }
        );
    }
    Ok(())
}

/// Synthetic vocabularies: names from syllables, ICD-10-CM-shaped codes,
/// medication names.
struct Vocabulary {
    first: Vec<String>,
    last: Vec<String>,
    codes: Vec<String>,
    meds: Vec<String>,
    providers: Vec<String>,
}

impl Vocabulary {
    fn new(rng: &mut ChaCha8Rng) -> Vocabulary {
        const SYL: [&str; 24] = [
            "ma", "ri", "jo", "se", "an", "na", "lu", "ca", "el", "ia", "go", "mez", "gar", "son", "ber", "to", "ra",
            "vi", "de", "li", "ne", "ko", "sa", "ta",
        ];
        let mut name = |parts: usize| -> String {
            let mut n: String = (0..parts).map(|_| SYL[rng.gen_range(0..SYL.len())]).collect();
            if let Some(f) = n.get_mut(0..1) {
                f.make_ascii_uppercase();
            }
            n
        };
        let first = (0..300).map(|_| name(2)).collect();
        let last = (0..500).map(|_| name(3)).collect();
        let codes =
            (0..300).map(|i| format!("{}{:02}.{}", (b'A' + (i % 26) as u8) as char, (i * 7) % 100, i % 10)).collect();
        let meds =
            (0..200).map(|i| format!("Medication{i:03} {}", ["tablet", "XR", "injection", "inhaler"][i % 4])).collect();
        let providers = (0..50).map(|i| format!("ST{i:038}")).collect();
        Vocabulary { first, last, codes, meds, providers }
    }

    fn doc(&self, rng: &mut ChaCha8Rng, i: u64) -> Doc {
        let pick = |rng: &mut ChaCha8Rng, v: &[String]| v[rng.gen_range(0..v.len())].clone();
        let mut terms = vec![
            (Field::PatientName, format!("{} {}", pick(rng, &self.first), pick(rng, &self.last))),
            (Field::Provider, pick(rng, &self.providers)),
            (Field::Patient, format!("ST{:038}", rng.gen_range(0..100_000u64))),
            (
                Field::RecordType,
                ["lab-results", "vitals", "diagnosis", "medications", "imaging"][rng.gen_range(0..5)].into(),
            ),
        ];
        for _ in 0..rng.gen_range(1..=3) {
            terms.push((Field::Diagnosis, pick(rng, &self.codes)));
        }
        for _ in 0..rng.gen_range(0..=3) {
            terms.push((Field::Medication, pick(rng, &self.meds)));
        }
        let mut id = i.to_be_bytes().to_vec();
        id.extend_from_slice(&rng.gen::<[u8; 8]>());
        Doc { scope: Scope::Records, id, sort: record_sort(1_600_000_000_000 + rng.gen_range(0..SPAN_MS)), terms }
    }
}

fn build(db: &ApiDb, key: &SearchKey, vocab: &Vocabulary, records: usize) -> anyhow::Result<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let cf = db.cf(Cf::Search);
    let mut unsynced = rocksdb::WriteOptions::default();
    // Building a benchmark's corpus, not serving: no WAL, one flush at
    // the end.
    unsynced.disable_wal(true);
    let mut keys = 0u64;
    let mut i = 0u64;
    while (i as usize) < records {
        let mut batch = rocksdb::WriteBatch::default();
        for _ in 0..10_000.min(records - i as usize) {
            for k in entries(key, &vocab.doc(&mut rng, i)) {
                batch.put_cf(cf, k, []);
                keys += 1;
            }
            i += 1;
        }
        db.raw().write_opt(batch, &unsynced).context("writing the index")?;
    }
    db.raw().flush_cf(cf).context("flush")?;
    db.raw().compact_range_cf::<&[u8], &[u8]>(cf, None, None);
    Ok(keys)
}

fn measure(records: usize, queries: usize) -> anyhow::Result<SearchBenchReport> {
    let dir = tempfile::tempdir()?;
    let db = ApiDb::open(&dir.path().join("db")).context("opening the database")?;
    let keys = SearchKeys::derive(&[9; 32], "bench");
    let key = keys.tokens();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let vocab = Vocabulary::new(&mut rng);
    eprintln!("indexing {records} synthetic records");
    let started = Instant::now();
    let written = build(&db, key, &vocab, records)?;
    let build_s = started.elapsed().as_secs_f64();

    // The baseline: the same diagnosis ranges, read raw.
    let cf = db.cf(Cf::Search);
    let mut raw = Vec::with_capacity(queries);
    for _ in 0..queries {
        let code = &vocab.codes[rng.gen_range(0..vocab.codes.len())];
        let prefix = key.query_prefixes(Field::Diagnosis, code)[0];
        let t = Instant::now();
        let mut n = 0;
        for item in db.raw().iterator_cf(cf, rocksdb::IteratorMode::From(&prefix, rocksdb::Direction::Forward)) {
            let (k, _) = item?;
            if !k.starts_with(&prefix) || n == PAGE {
                break;
            }
            n += 1;
        }
        raw.push(t.elapsed());
        anyhow::ensure!(n == PAGE, "a diagnosis range shorter than a page");
    }
    let raw_scan_ms = latency(raw);

    type Pick = fn(&Vocabulary, &mut ChaCha8Rng) -> Vec<(Field, String)>;
    let kinds: [(&'static str, Pick, bool); 5] = [
        ("diagnosis code", |v, r| vec![(Field::Diagnosis, v.codes[r.gen_range(0..v.codes.len())].clone())], false),
        (
            "diagnosis code, half refused",
            |v, r| vec![(Field::Diagnosis, v.codes[r.gen_range(0..v.codes.len())].clone())],
            true,
        ),
        (
            "name prefix (3 letters of the last name)",
            |v, r| vec![(Field::PatientName, v.last[r.gen_range(0..v.last.len())][..3].to_string())],
            false,
        ),
        (
            "name prefixes (first 2 + last 3 letters)",
            |v, r| {
                let (f, l) = (&v.first[r.gen_range(0..v.first.len())], &v.last[r.gen_range(0..v.last.len())]);
                vec![(Field::PatientName, format!("{} {}", &f[..2], &l[..3]))]
            },
            false,
        ),
        (
            "full name, one year",
            |v, r| {
                let (f, l) = (&v.first[r.gen_range(0..v.first.len())], &v.last[r.gen_range(0..v.last.len())]);
                vec![(Field::PatientName, format!("{f} {l}"))]
            },
            false,
        ),
    ];
    let mut reports = Vec::new();
    for (name, pick, half) in kinds {
        let mut samples = Vec::with_capacity(queries);
        let mut results = 0usize;
        for _ in 0..queries {
            let criteria = pick(&vocab, &mut rng);
            let (sort_from, sort_to) = if name.ends_with("one year") {
                let start = 1_600_000_000_000 + rng.gen_range(0..SPAN_MS - 365 * 86_400_000);
                (record_sort(start + 365 * 86_400_000), record_sort(start))
            } else {
                (0, u64::MAX)
            };
            let query = Query {
                scope: Scope::Records,
                criteria,
                sort_from,
                sort_to,
                after: None,
                limit: PAGE,
                max_examined: medanchor_api::search::MAX_EXAMINED,
            };
            let t = Instant::now();
            // The service's own reader: one RocksDB iterator per query.
            let store = IndexStore::new(&db);
            let found = search(key, &store, &query, |p| !half || p.id[15] % 2 == 0)?;
            samples.push(t.elapsed());
            results += found.results.len();
        }
        let latency_ms = latency(samples);
        // A full name within one year is rare in a small corpus; every
        // other kind finds pages at any size.
        anyhow::ensure!(results > 0 || name.ends_with("one year"), "{name}: no results at all");
        reports.push(QueryReport {
            query: name,
            p99_vs_raw_scan: latency_ms.p99 / raw_scan_ms.p99.max(1e-6),
            met: latency_ms.p99 < TARGET_P99_MS,
            mean_results: results as f64 / queries as f64,
            latency_ms,
        });
    }
    Ok(SearchBenchReport {
        records,
        keys: written,
        build_s,
        raw_scan_ms,
        queries: reports,
        target_p99_ms: TARGET_P99_MS,
    })
}
