use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use super::*;

/// An in-memory store whose first `writers` create-only writes wait for each other, so that
/// every writer has read the log before any of them claims a sequence number: a real race.
#[derive(Debug)]
struct RacingStore {
    inner: InMemory,
    barrier: tokio::sync::Barrier,
    waits: AtomicUsize,
}

impl RacingStore {
    fn new(writers: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: InMemory::new(),
            barrier: tokio::sync::Barrier::new(writers),
            waits: AtomicUsize::new(writers),
        })
    }
}

impl std::fmt::Display for RacingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RacingStore")
    }
}

#[async_trait::async_trait]
impl ObjectStore for RacingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let is_create = matches!(opts.mode, object_store::PutMode::Create);
        if is_create
            && self.waits.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            self.barrier.wait().await;
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn record(id: &str, version: &str) -> SegmentRecord {
    SegmentRecord {
        id: id.into(),
        data_source: "ds".into(),
        interval: Interval::parse("2020-01-01/2020-01-02").unwrap(),
        version: version.into(),
        partition: 0,
        partitions: 1,
        rows: 10,
        bytes: 100,
        path: Some(format!("segments/ds/{id}.parquet")),
        origin: Origin::Batch,
        created: version.into(),
    }
}

fn add(id: &str) -> Vec<Action> {
    vec![Action::AddSegments { segments: vec![record(id, "v1")] }]
}

fn stores() -> Vec<(DeepStorage, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let local = DeepStorage::open(dir.path().to_str().unwrap()).unwrap();
    vec![(DeepStorage::from_store(Arc::new(InMemory::new()), "root"), None), (local, Some(dir))]
}

fn catalog(storage: &DeepStorage) -> Catalog {
    Catalog::new(storage.clone(), DataSourceName::new("ds").unwrap())
}

#[tokio::test]
async fn commits_load_back_through_snapshots_and_log() {
    for (storage, _dir) in stores() {
        let catalog = catalog(&storage).with_snapshot_every(3);
        let mut state = catalog.load().await.unwrap();
        for i in 0..7 {
            let outcome = catalog.commit(&mut state, "test", |_| Ok(add(&format!("s{i}")))).await.unwrap();
            assert_eq!(outcome.seq, i + 1);
        }
        catalog
            .commit(&mut state, "test", |_| Ok(vec![Action::DropSegments { ids: vec!["s0".into()] }]))
            .await
            .unwrap();
        let loaded = catalog.load().await.unwrap();
        assert_eq!(loaded, state);
        assert_eq!(loaded.seq, 8);
        assert_eq!(loaded.segments.len(), 6);
        assert!(loaded.unused.contains_key("s0"));
        let snapshots = storage.list("catalog/ds/snapshot").await.unwrap();
        assert_eq!(snapshots.len(), 2, "snapshots at 3 and 6: {snapshots:?}");
        // Loading from the log alone gives the same state.
        for s in snapshots {
            storage.delete(&s.path).await.unwrap();
        }
        assert_eq!(catalog.load().await.unwrap(), state);
        assert_eq!(Catalog::data_sources(&storage).await.unwrap(), [DataSourceName::new("ds").unwrap()]);
    }
}

#[tokio::test]
async fn two_writers_racing_for_one_sequence_number_both_land_once() {
    {
        let storage = DeepStorage::from_store(RacingStore::new(2), "root");
        let catalog = catalog(&storage);
        // Both writers read the same (empty) state, so both aim at sequence 1.
        let mut a = catalog.load().await.unwrap();
        let mut b = a.clone();
        let (ra, rb) = tokio::join!(
            catalog.commit(&mut a, "a", |_| Ok(add("from-a"))),
            catalog.commit(&mut b, "b", |_| Ok(add("from-b"))),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let mut seqs = [ra.seq, rb.seq];
        seqs.sort();
        assert_eq!(seqs, [1, 2]);
        assert_eq!(ra.attempts + rb.attempts, 3, "exactly one writer lost the first race and retried");
        let state = catalog.load().await.unwrap();
        assert_eq!(state.segments.keys().collect::<Vec<_>>(), ["from-a", "from-b"]);
    }
}

#[tokio::test]
async fn many_concurrent_writers_lose_nothing_and_double_nothing() {
    for (storage, _dir) in stores() {
        let catalog = catalog(&storage).with_snapshot_every(7);
        let tasks: Vec<_> = (0..6)
            .map(|w| {
                let catalog = catalog.clone();
                tokio::spawn(async move {
                    let mut state = CatalogState::default();
                    for i in 0..5 {
                        catalog.commit(&mut state, "w", |_| Ok(add(&format!("w{w}-{i}")))).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let state = catalog.load().await.unwrap();
        assert_eq!(state.seq, 30);
        assert_eq!(state.segments.len(), 30);
        assert_eq!(storage.list("catalog/ds/log").await.unwrap().len(), 30);
    }
}

#[tokio::test]
async fn the_same_segment_twice_is_a_conflict_not_a_double() {
    let (storage, _dir) = stores().remove(0);
    let catalog = catalog(&storage);
    let mut state = catalog.load().await.unwrap();
    catalog.commit(&mut state, "t", |_| Ok(add("same"))).await.unwrap();
    let mut stale = CatalogState::default();
    let err = catalog.commit(&mut stale, "t", |_| Ok(add("same"))).await.unwrap_err();
    assert!(matches!(err, CatalogError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("segment same is already in the catalog"), "{err}");
    assert_eq!(catalog.load().await.unwrap().segments.len(), 1);
}

#[tokio::test]
async fn offset_checks_let_exactly_one_of_two_replicas_win() {
    let storage = DeepStorage::from_store(RacingStore::new(2), "root");
    let catalog = catalog(&storage);
    let offsets = |start: Option<i64>, end: i64| {
        vec![Action::SetOffsets { offsets: vec![OffsetMove { partition: 0, expected_start: start, end }] }]
    };
    let mut a = catalog.load().await.unwrap();
    let mut b = a.clone();
    let (ra, rb) = tokio::join!(
        catalog.commit(&mut a, "a", |_| Ok(offsets(None, 100))),
        catalog.commit(&mut b, "b", |_| Ok(offsets(None, 120))),
    );
    assert!(ra.is_ok() != rb.is_ok(), "exactly one replica publishes: {ra:?} {rb:?}");
    let loser = ra.err().or(rb.err()).unwrap();
    assert!(loser.to_string().contains("partition 0 offset is"), "{loser}");
    let state = catalog.load().await.unwrap();
    assert_eq!(state.seq, 1);
    assert!(matches!(state.offsets[&0], 100 | 120));
}

#[test]
fn commits_are_readable_json() {
    let commit = Commit {
        seq: 1,
        commit_id: "c".into(),
        time: "2020-01-01T00:00:00.000Z".into(),
        writer: "batch reindex".into(),
        actions: add("s"),
    };
    let json = serde_json::to_value(&commit).unwrap();
    assert_eq!(json["actions"][0]["action"], "addSegments");
    assert_eq!(
        json["actions"][0]["segments"][0]["interval"],
        "2020-01-01T00:00:00.000Z/2020-01-02T00:00:00.000Z"
    );
    assert_eq!(serde_json::from_value::<Commit>(json).unwrap(), commit);
}
