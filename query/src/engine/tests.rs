//! The engine over real segments written by the batch indexer, plus live rows from an
//! incremental index built directly.

use std::sync::Mutex;

use batch::ReindexOptions;
use bytes::Bytes;
use common::rollup::{RollupIndex, RollupSchema};
use common::spec::{DataSourceSpec, load_specs};
use common::time::{HOUR_MS, Interval};
use layouts::{RawFileName, RawLayout};
use serde_json::{Value, json};

use super::*;

/// 2013-08-31T00:00:00Z
const DAY: i64 = 1_377_907_200_000;

fn spec() -> DataSourceSpec {
    let spec = json!({
        "dataSchema": {
            "dataSource": "wiki",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["page", "lang"]},
            "metricsSpec": [{"type": "count", "name": "count"}, {"type": "longSum", "name": "added", "fieldName": "added"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "minute"}
        }
    });
    load_specs(&spec.to_string(), "test").unwrap().specs.remove(0)
}

/// Events in an hour: (minute, page, lang, added).
fn events(hour: i64, rows: &[(i64, &str, &str, i64)]) -> String {
    rows.iter()
        .map(|(minute, page, lang, added)| {
            let ts = DAY + hour * HOUR_MS + minute * 60_000;
            format!("{{\"ts\": {ts}, \"page\": \"{page}\", \"lang\": \"{lang}\", \"added\": {added}}}\n")
        })
        .collect()
}

async fn put(storage: &DeepStorage, hour: i64, name: &str, text: &str) {
    let layout = RawLayout::parse(RawLayout::DEFAULT_TEMPLATE).unwrap();
    let ds = DataSourceName::new("wiki").unwrap();
    let path = layout.hour_file(&ds, DAY + hour * HOUR_MS, &RawFileName::Foreign(name.into()));
    storage.put(&path, Bytes::from(text.to_string())).await.unwrap();
}

async fn reindex(storage: &DeepStorage) {
    let options = ReindexOptions {
        interval: Interval { start: DAY, end: DAY + 24 * HOUR_MS },
        raw_layout: RawLayout::parse(RawLayout::DEFAULT_TEMPLATE).unwrap(),
        threads: 2,
        progress: false,
    };
    batch::reindex(storage, &spec(), options).await.unwrap();
}

/// Two hours of events: 5 events in 4 rollup rows, 7 added... see the numbers below.
async fn fixture() -> DeepStorage {
    let storage = DeepStorage::open("memory://").unwrap();
    // Hour 1: "a"/en twice in minute 0 (one rollup row), "b"/de in minute 3.
    put(&storage, 1, "h1.json", &events(1, &[(0, "a", "en", 1), (0, "a", "en", 2), (3, "b", "de", 4)])).await;
    // Hour 2: "a"/en and "c"/en.
    put(&storage, 2, "h2.json", &events(2, &[(10, "a", "en", 8), (11, "c", "en", 16)])).await;
    reindex(&storage).await;
    storage
}

fn engine(storage: &DeepStorage) -> QueryEngine {
    QueryEngine::new(storage.clone(), EngineOptions { cache_bytes: 64 << 20, threads: 2 })
}

fn timeseries(granularity: Value, interval: &str) -> Value {
    json!({
        "queryType": "timeseries",
        "dataSource": "wiki",
        "intervals": [interval],
        "granularity": granularity,
        "aggregations": [
            {"type": "count", "name": "rows"},
            {"type": "longSum", "name": "events", "fieldName": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_rollup_rows_and_sums_events() {
    let storage = fixture().await;
    let answer = engine(&storage).native(&timeseries(json!("all"), "2013-08-31/2013-09-01")).await.unwrap();
    // Granularity `all` is reported at the first row's time, as Druid does.
    assert_eq!(
        answer,
        json!([{"timestamp": "2013-08-31T01:00:00.000Z", "result": {"rows": 4, "events": 5, "added": 31}}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_buckets_and_time_pruning() {
    let storage = fixture().await;
    let engine = engine(&storage);
    let answer = engine.native(&timeseries(json!("hour"), "2013-08-31T02/PT1H")).await.unwrap();
    assert_eq!(
        answer,
        json!([{"timestamp": "2013-08-31T02:00:00.000Z", "result": {"rows": 2, "events": 2, "added": 24}}])
    );
    // Each hour is its own segment; only hour 2's was read.
    assert_eq!(engine.cache().row_groups_read(), 1);
    // Asked again, it comes from memory.
    engine.native(&timeseries(json!("hour"), "2013-08-31T02/PT1H")).await.unwrap();
    assert_eq!(engine.cache().row_groups_read(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_engine_sees_a_new_version() {
    let storage = fixture().await;
    let engine = engine(&storage);
    let query = timeseries(json!("all"), "2013-08-31/2013-09-01");
    assert_eq!(engine.native(&query).await.unwrap()[0]["result"]["events"], 5);
    put(&storage, 2, "late.json", &events(2, &[(59, "d", "fr", 32)])).await;
    reindex(&storage).await;
    let answer = engine.native(&query).await.unwrap();
    assert_eq!(answer[0]["result"], json!({"rows": 5, "events": 6, "added": 63}));
}

/// A live source over an index fed directly, as the stream daemon's will be.
#[derive(Debug)]
struct IndexSource(Mutex<RollupIndex>);

impl LiveSource for IndexSource {
    fn snapshot(&self, _catalog: &CatalogState, within: Option<&[Interval]>) -> crate::table::LiveSnapshot {
        crate::table::LiveSnapshot::from_indexes(&[&self.0.lock().unwrap()], "wiki_live", within)
    }
}

/// A live source holding generations of events, each unpublished (`None`) or published by the
/// catalog commit numbered so: the stream daemon's hand-off, done by hand.
#[derive(Debug)]
struct Generations {
    generations: Vec<(Option<u64>, String)>,
    asked: Mutex<Vec<u64>>,
}

impl LiveSource for Generations {
    fn snapshot(&self, catalog: &CatalogState, _within: Option<&[Interval]>) -> crate::table::LiveSnapshot {
        let catalog_seq = catalog.seq;
        self.asked.lock().unwrap().push(catalog_seq);
        let mut index = RollupIndex::new(RollupSchema::new(&spec()));
        let unheld =
            self.generations.iter().filter(|(published, _)| published.is_none_or(|seq| seq > catalog_seq));
        for (_, lines) in unheld {
            for line in lines.lines() {
                index.add(line.as_bytes()).unwrap();
            }
        }
        crate::table::LiveSnapshot::from_index(&index, "wiki_live")
    }
}

/// The rows of a commit the query's catalog state holds are read from the segments only; the
/// rows of a later commit, and unpublished ones, from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_rows_a_commit_already_holds_are_counted_once() {
    let storage = fixture().await;
    let seq = Catalog::new(storage.clone(), DataSourceName::new("wiki").unwrap()).load().await.unwrap().seq;
    // The fixture's hour 2 was "published" by the reindex commit; hour 3 is still in memory.
    let hour2 = events(2, &[(10, "a", "en", 8), (11, "c", "en", 16)]);
    let hour3 = events(3, &[(0, "a", "en", 100)]);
    let query = timeseries(json!("all"), "2013-08-31/2013-09-01");

    let engine = engine(&storage);
    let source = Arc::new(Generations {
        generations: vec![(Some(seq), hour2.clone()), (None, hour3.clone())],
        asked: Mutex::new(Vec::new()),
    });
    engine.attach_live("wiki", source.clone());
    let answer = engine.native(&query).await.unwrap();
    assert_eq!(answer[0]["result"], json!({"rows": 5, "events": 6, "added": 131}));
    assert_eq!(*source.asked.lock().unwrap(), vec![seq]);

    // Published by a commit after the state the query read: still counted from memory.
    let hour4 = events(4, &[(0, "a", "en", 200)]);
    let later = Arc::new(Generations {
        generations: vec![(Some(seq + 1), hour3), (None, hour4)],
        asked: Mutex::new(Vec::new()),
    });
    engine.attach_live("wiki", later);
    let answer = engine.native(&query).await.unwrap();
    assert_eq!(answer[0]["result"], json!({"rows": 6, "events": 7, "added": 331}));

    // Time a batch version owns is the batch's alone: rows the stream still holds there (it
    // folded them before the batch landed) are not counted again.
    let stale = Arc::new(Generations { generations: vec![(None, hour2)], asked: Mutex::new(Vec::new()) });
    engine.attach_live("wiki", stale);
    let answer = engine.native(&query).await.unwrap();
    assert_eq!(answer[0]["result"], json!({"rows": 4, "events": 5, "added": 31}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_rows_join_the_segments() {
    let storage = fixture().await;
    let engine = engine(&storage);
    let mut index = RollupIndex::new(RollupSchema::new(&spec()));
    for line in events(3, &[(0, "a", "en", 100), (0, "a", "en", 200), (1, "z", "en", 400)]).lines() {
        index.add(line.as_bytes()).unwrap();
    }
    let source = Arc::new(IndexSource(Mutex::new(index)));
    engine.attach_live("wiki", source.clone());
    let hourly = engine.native(&timeseries(json!("hour"), "2013-08-31T01/2013-08-31T04")).await.unwrap();
    let added: Vec<i64> =
        hourly.as_array().unwrap().iter().map(|b| b["result"]["added"].as_i64().unwrap()).collect();
    assert_eq!(added, vec![7, 24, 700]);
    assert_eq!(hourly[2]["result"]["rows"], 2);
    assert_eq!(hourly[2]["result"]["events"], 3);

    // A row added after the first query shows in the next.
    source.0.lock().unwrap().add(events(3, &[(2, "q", "en", 1000)]).as_bytes()).unwrap();
    let request =
        crate::sql::SqlRequest::new("SELECT SUM(\"count\") AS events, SUM(added) AS added FROM wiki");
    let (_, body) = engine.sql(&request).await.unwrap().encode(&request);
    let rows: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(rows, json!([{"events": 9, "added": 1731}]));

    // Scan names the live rows' segment.
    let scan = json!({"queryType": "scan", "dataSource": "wiki", "intervals": ["2013-08-31T03/PT1H"], "columns": ["page"]});
    let answer = engine.native(&scan).await.unwrap();
    assert_eq!(answer[0]["segmentId"], "wiki_live");
    assert_eq!(answer[0]["events"].as_array().unwrap().len(), 3);

    // A dataSource with only live rows exists too.
    engine.detach_live("wiki");
    engine.attach_live("fresh", source);
    let answer = engine.native(&json!({"queryType": "timeBoundary", "dataSource": "fresh"})).await.unwrap();
    assert_eq!(answer[0]["result"]["maxTime"], "2013-08-31T03:02:00.000Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_cache_still_answers() {
    let storage = fixture().await;
    let engine = QueryEngine::new(storage.clone(), EngineOptions { cache_bytes: 16, threads: 2 });
    let query = timeseries(json!("all"), "2013-08-31/2013-09-01");
    assert_eq!(engine.native(&query).await.unwrap()[0]["result"]["events"], 5);
    assert_eq!(engine.native(&query).await.unwrap()[0]["result"]["events"], 5);
    assert_eq!(engine.cache().used_bytes(), 0);
    assert_eq!(engine.cache().row_groups_read(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_data_source_is_the_callers_error() {
    let storage = fixture().await;
    let mut query = timeseries(json!("all"), "2013-08-31/2013-09-01");
    query["dataSource"] = json!("nope");
    let error = engine(&storage).native(&query).await.unwrap_err();
    assert!(matches!(error, QueryError::UnknownDataSource(ref n) if n == "nope"), "{error:?}");
    assert_eq!(error.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_empty_buckets_drops_an_empty_all_row_only() {
    let storage = fixture().await;
    let engine = engine(&storage);
    let mut query = timeseries(json!("all"), "2013-08-31/2013-09-01");
    query["context"] = json!({"skipEmptyBuckets": true});
    let answer = engine.native(&query).await.unwrap();
    assert_eq!(answer[0]["result"]["events"], 5, "{answer}");
    query["filter"] = json!({"type": "selector", "dimension": "page", "value": "nowhere"});
    assert_eq!(engine.native(&query).await.unwrap(), json!([]));
}

/// topN and groupBy group plain string dimensions by their codes: segments and live rows share
/// one dictionary, nulls stay null, orderings see the values, and a dictionary replaced by a
/// new epoch gives the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_n_and_group_by_group_on_codes_of_segments_and_live_rows() {
    let storage = fixture().await;
    let mut index = RollupIndex::new(RollupSchema::new(&spec()));
    let mut live = events(3, &[(0, "a", "en", 100), (0, "a", "en", 200), (1, "z", "en", 400)]);
    live.push_str(&format!("{{\"ts\": {}, \"page\": \"n\", \"added\": 1}}\n", DAY + 3 * HOUR_MS));
    for line in live.lines() {
        index.add(line.as_bytes()).unwrap();
    }
    let group_by = json!({
        "queryType": "groupBy", "dataSource": "wiki", "granularity": "all",
        "intervals": ["2013-08-31/2013-09-01"],
        "dimensions": ["page", {"type": "default", "dimension": "lang", "outputName": "language"}],
        "aggregations": [{"type": "longSum", "name": "events", "fieldName": "count"},
                         {"type": "longSum", "name": "added", "fieldName": "added"}],
        "limitSpec": {"type": "default", "columns": [{"dimension": "page", "direction": "descending"}]}
    });
    let top_n = json!({
        "queryType": "topN", "dataSource": "wiki", "granularity": "all",
        "intervals": ["2013-08-31/2013-09-01"], "dimension": "page", "threshold": 2, "metric": "added",
        "aggregations": [{"type": "longSum", "name": "added", "fieldName": "added"}]
    });
    let rows = |answer: &Value| -> Vec<(Value, Value, i64, i64)> {
        let answer = answer.as_array().unwrap();
        let row = |r: &Value| {
            let e = &r["event"];
            (
                e["page"].clone(),
                e["language"].clone(),
                e["events"].as_i64().unwrap(),
                e["added"].as_i64().unwrap(),
            )
        };
        answer.iter().map(row).collect()
    };
    let expected = vec![
        (json!("z"), json!("en"), 1, 400),
        (json!("n"), Value::Null, 1, 1),
        (json!("c"), json!("en"), 1, 16),
        (json!("b"), json!("de"), 1, 4),
        (json!("a"), json!("en"), 5, 311),
    ];
    let top = json!([{"page": "z", "added": 400}, {"page": "a", "added": 311}]);

    for cache_bytes in [64 << 20, 64] {
        let engine = QueryEngine::new(storage.clone(), EngineOptions { cache_bytes, threads: 2 });
        engine.attach_live("wiki", Arc::new(IndexSource(Mutex::new(index.clone()))));
        let first_epoch = engine.cache().column_codes("page").epoch();
        for _ in 0..2 {
            assert_eq!(
                rows(&engine.native(&group_by).await.unwrap()),
                expected,
                "cache of {cache_bytes} bytes"
            );
            assert_eq!(
                engine.native(&top_n).await.unwrap()[0]["result"],
                top,
                "cache of {cache_bytes} bytes"
            );
        }
        let codes = engine.cache().column_codes("page");
        assert!(cache_bytes < 64 << 20 || codes.bytes() > 0, "the queries grouped on codes");
        let epoch = codes.epoch();
        // A roomy cache keeps one dictionary; one too small for the values starts anew.
        assert_eq!(epoch == first_epoch, cache_bytes > 64, "cache of {cache_bytes} bytes");
    }
}
