//! `braid quickstart`: the whole pipeline on one machine with nothing to install or configure.
//! An embedded broker, a producer of wikipedia-like events (some late, some malformed), the
//! stream daemon, the batch scheduler on a short cron and the query API, with a live view of
//! what each is doing.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use batch::{CleanupOptions, Scheduler, SchedulerOptions};
use common::catalog::{Catalog, Origin, describe_segments};
use common::spec::load_specs;
use common::storage::DeepStorage;
use common::time::{Period, format_iso};
use layouts::{DataSourceName, RawLayout};
use serde_json::Value;
use stream::demo::{DemoCounts, DemoOptions, EmbeddedBroker, spawn_demo_producer};

use crate::QuickstartArgs;

const TOPIC: &str = "wikipedia";
const DATA_SOURCE: &str = "wikipedia";

/// The bundled wikipedia Kafka spec (hourly segments), with checkpoints every 10 s and messages
/// more than an hour late thrown away by the stream (and archived for the batch). Segments
/// shorter than the raw archive's hours would make every checkpoint change every closed
/// interval of its hour, and the scheduler rebuild them all.
fn quickstart_spec(bootstrap: &str) -> Value {
    let mut spec: Value = serde_json::from_str(include_str!("../examples/wikipedia-kafka.json"))
        .expect("the bundled spec is JSON");
    let inner = &mut spec["spec"];
    // The demo producer's fields (the tutorial spec's dimensions are Druid's wikipedia schema).
    inner["dataSchema"]["dimensionsSpec"]["dimensions"] = common::generator::DIMENSIONS.to_vec().into();
    inner["ioConfig"]["consumerProperties"]["bootstrap.servers"] = bootstrap.into();
    inner["ioConfig"]["lateMessageRejectionPeriod"] = "PT1H".into();
    inner["tuningConfig"]["checkpointPeriod"] = "PT10S".into();
    spec
}

pub async fn run(
    args: QuickstartArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let broker = EmbeddedBroker::start(1)?;
    broker.create_topic(TOPIC, 2)?;
    let bootstrap = broker.bootstrap_servers();
    let spec_json = quickstart_spec(&bootstrap);
    let specs = load_specs(&spec_json.to_string(), "the quickstart spec")?.specs;
    let storage = DeepStorage::open(&args.deep_storage)?;
    let raw_layout = RawLayout::parse(RawLayout::DEFAULT_TEMPLATE)?;

    let definition = batch::JobDefinition {
        name: Some("quickstart".into()),
        spec: std::path::PathBuf::new(),
        data_source: None,
        cron: args.cron.clone(),
        lookback: Some(args.lookback.clone()),
        settle: Some(args.settle.clone()),
        reindex_spec: None,
    };
    let jobs = batch::schedule::jobs_with_specs(&definition, specs.clone(), None)?;
    let mut scheduler_options = SchedulerOptions::new(raw_layout.clone());
    scheduler_options.cleanup = Some(CleanupOptions {
        retention: Period::parse(&args.retention).context("--retention")?,
        dry_run: false,
    });
    let scheduler = Scheduler::new(storage.clone(), jobs, scheduler_options);

    let (listener, address) = crate::bind(&args.listen).await?;
    let engine = crate::query_engine(storage.clone(), 512);
    let options = stream::StreamOptions {
        storage: storage.clone(),
        raw_layout,
        specs: specs.into_iter().map(|s| (s, spec_json.clone())).collect(),
        partitions: None,
        auth_token: args.auth_token.clone(),
        extra_metrics: None,
    };

    let counts = Arc::new(DemoCounts::default());
    let stop_producing = Arc::new(AtomicBool::new(false));
    let demo = DemoOptions {
        per_second: args.rate,
        late_every: 50,
        malformed_every: 200,
        lateness: Duration::from_secs(70 * 60),
    };
    let producer = spawn_demo_producer(&bootstrap, TOPIC, demo, counts.clone(), stop_producing.clone())?;

    // Scripts and tests wait for this line.
    println!("braid quickstart; Druid queries on http://{address}");
    print_intro(&bootstrap, &address.to_string(), &args);

    let stop = crate::Stop::on(shutdown);
    let view = tokio::spawn(live_view(storage, format!("http://{address}"), counts.clone(), stop.stopped()));
    let streamed = crate::stream_with_scheduler(options, engine, listener, scheduler, &stop).await;
    stop_producing.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || producer.join()).await;
    let _ = view.await;
    println!(
        "produced {} events, {} late, {} malformed; deep storage kept in {}",
        counts.events.load(Ordering::Relaxed),
        counts.late.load(Ordering::Relaxed),
        counts.malformed.load(Ordering::Relaxed),
        args.deep_storage
    );
    drop(broker);
    streamed?;
    Ok(())
}

fn print_intro(bootstrap: &str, address: &str, args: &QuickstartArgs) {
    println!("  Kafka broker (embedded): {bootstrap}, topic {TOPIC}; produce to it with any client, e.g.");
    println!("    kcat -b {bootstrap} -t {TOPIC} -P");
    println!(
        "  {} wikipedia-like events/s (1 in 50 stamped 70 minutes back, 1 in 200 malformed) -> stream -> hourly segments",
        args.rate
    );
    println!(
        "  batch scheduler: cron \"{}\", settle {}, lookback {}: the late events become a batch version of the",
        args.cron, args.settle, args.lookback
    );
    println!(
        "  previous hour within minutes, and each hour's stream segments turn into a batch version once it ends"
    );
    println!("  deep storage: {}", args.deep_storage);
    println!("Try:");
    println!(
        "  curl -s -XPOST http://{address}/druid/v2/sql -H 'Content-Type: application/json' -d '{{\"query\":\"SELECT \\\"language\\\", SUM(\\\"count\\\") AS edits, SUM(added) AS added FROM wikipedia GROUP BY 1 ORDER BY 2 DESC LIMIT 5\"}}'"
    );
    println!(
        "  braid query --url http://{address} --sql 'SELECT TIME_FLOOR(__time, '\\''PT1M'\\'') AS \"minute\", SUM(\"count\") AS edits FROM wikipedia GROUP BY 1 ORDER BY 1 DESC LIMIT 5'"
    );
    println!("Ctrl-C stops it (a final checkpoint first).");
    println!();
}

/// Redraws a small status block every second on a terminal; elsewhere prints a line every 10 s.
async fn live_view(
    storage: DeepStorage,
    url: String,
    counts: Arc<DemoCounts>,
    stopped: impl std::future::Future<Output = ()>,
) {
    let terminal = std::io::stdout().is_terminal();
    let every = if terminal { Duration::from_secs(1) } else { Duration::from_secs(10) };
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    tokio::pin!(stopped);
    let mut previous: Option<(Instant, f64)> = None;
    let mut drawn = 0;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut stopped => return,
        }
        let metrics_url = format!("{url}/metrics");
        let metrics = tokio::task::spawn_blocking(move || scrape(&metrics_url))
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let processed = metric(&metrics, "ingest_events_processed_total");
        let now = Instant::now();
        let rate =
            previous.map_or(0.0, |(at, before)| (processed - before) / now.duration_since(at).as_secs_f64());
        previous = Some((now, processed));
        let mut lines = vec![format!(
            "{}  events/s {:.0}  processed {:.0}  thrown away {:.0}  unparseable {:.0}  rows in memory {:.0}  checkpoints {:.0} (last {:.2} s)  produced {}",
            format_iso(common::catalog::now_millis()),
            rate,
            processed,
            metric(&metrics, "ingest_events_thrown_away_total"),
            metric(&metrics, "ingest_events_unparseable_total"),
            metric(&metrics, "ingest_rows_in_memory"),
            metric(&metrics, "ingest_checkpoints_total"),
            metric(&metrics, "ingest_checkpoint_last_seconds"),
            counts.events.load(Ordering::Relaxed) + counts.late.load(Ordering::Relaxed),
        )];
        if terminal {
            lines.extend(pipeline_lines(&storage).await);
            let mut out = std::io::stdout().lock();
            if drawn > 0 {
                let _ = write!(out, "\x1b[{drawn}A\x1b[J");
            }
            for line in &lines {
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
            drawn = lines.len();
        } else {
            println!("{}", lines[0]);
        }
    }
}

/// The last batch run and the newest minutes of the timeline.
async fn pipeline_lines(storage: &DeepStorage) -> Vec<String> {
    let ds = DataSourceName::new(DATA_SOURCE).expect("valid name");
    let mut lines = Vec::new();
    match batch::read_history(storage, Some(&ds)).await {
        Ok(history) => match history.last() {
            Some(run) => {
                let published = run.intervals.iter().filter(|i| i.version.is_some()).count();
                lines.push(format!(
                    "last batch run {}: {} ({published} intervals published, {} events)",
                    run.started,
                    run.outcome.name(),
                    run.events
                ));
            }
            None => lines.push("last batch run: none yet".into()),
        },
        Err(e) => lines.push(format!("history: {e}")),
    }
    let state = match Catalog::new(storage.clone(), ds).load().await {
        Ok(state) => state,
        Err(e) => return [lines, vec![format!("catalog: {e}")]].concat(),
    };
    let views = describe_segments(&state);
    let mut intervals: Vec<(String, String, String, u64, usize)> = Vec::new();
    for view in views.iter().filter(|v| v.visible) {
        let origin = match view.origin {
            Origin::Stream => "stream",
            Origin::Batch => "batch",
        };
        match intervals.last_mut() {
            Some(last) if last.0 == view.interval && last.1 == view.version => {
                last.3 += view.rows;
                last.4 += 1;
            }
            _ => intervals.push((
                view.interval.clone(),
                view.version.clone(),
                origin.to_string(),
                view.rows,
                1,
            )),
        }
    }
    lines.push("timeline (newest intervals):".into());
    for (interval, version, origin, rows, partitions) in intervals.iter().rev().take(6).rev() {
        lines.push(format!(
            "  {interval}  {origin:<6}  version {version}  {partitions} partitions  {rows} rows"
        ));
    }
    lines
}

fn scrape(url: &str) -> Option<String> {
    ureq::get(url).call().ok()?.into_body().read_to_string().ok()
}

/// Sums a Prometheus metric over its label sets.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_sum_over_labels_and_skip_prefix_matches() {
        let text = "# HELP x\nm_total{a=\"1\"} 2\nm_total{a=\"2\"} 3\nm_total_other 10\nm_total 1\n";
        assert_eq!(metric(text, "m_total"), 6.0);
        assert_eq!(metric(text, "absent"), 0.0);
    }

    #[test]
    fn the_bundled_spec_loads() {
        let spec = quickstart_spec("127.0.0.1:9");
        let loaded = load_specs(&spec.to_string(), "quickstart").unwrap();
        assert_eq!(loaded.specs[0].data_source.as_str(), DATA_SOURCE);
        assert_eq!(loaded.specs[0].granularity.segment, common::time::Granularity::Hour);
    }
}
