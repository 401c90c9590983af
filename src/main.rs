//! The `braid` command line: parses arguments, wires the library crates together and prints
//! their results. No pipeline logic lives here.

mod config;
mod output;
mod quickstart;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use batch::{CleanupOptions, Job, JobDefinition, PutInput, ReindexOptions, Scheduler, SchedulerOptions};
use clap::{Args, Parser, Subcommand, ValueEnum};
use common::catalog::Catalog;
use common::spec::{DataSourceSpec, load_specs};
use common::storage::DeepStorage;
use common::time::{Interval, Period};
use layouts::{DataSourceName, RawLayout};
use tracing::warn;

/// braid: a lambda-architecture ingestion pipeline for event analytics, Druid-compatible.
#[derive(Debug, Parser)]
#[command(name = "braid", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log format on standard error; the level comes from RUST_LOG (default: warn).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "BRAID_LOG_FORMAT")]
    log_format: LogFormat,

    /// A TOML file of settings, keyed by flag name (`deep-storage = "./var/deep"`); flags and
    /// environment variables win over it.
    #[arg(long, global = true, env = "BRAID_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The raw archive: hourly gzip files of raw events in deep storage.
    #[command(subcommand)]
    Raw(RawCommand),
    /// The batch indexer.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Print the segment timeline: visible versions, their partitions, overshadowed segments.
    Segments(SegmentsArgs),
    /// Write reproducible wikipedia-like events as hourly gzip files (benchmarks and demos).
    Generate(GenerateArgs),
    /// Serve Druid's query API (native queries and SQL) over the segments in deep storage.
    Serve(ServeArgs),
    /// The streaming daemon: consume each spec's Kafka topic into fresh rollups, served by the
    /// query API at once and checkpointed to deep storage exactly once.
    Stream(StreamArgs),
    /// Run one query, against a running server (--url) or straight against deep storage.
    Query(QueryArgs),
    /// The whole pipeline in one process: the stream daemon for every dataSource of the specs,
    /// the batch scheduler that swaps its segments for batch versions, and the query API.
    Run(RunArgs),
    /// Remove overshadowed segments and files no commit names, after a retention period.
    Cleanup(CleanupArgs),
    /// See the whole pipeline in one command: an embedded Kafka broker, a producer of
    /// wikipedia-like events, the stream, the batch scheduler and the query API, with a live view.
    Quickstart(QuickstartArgs),
    /// Run a Kafka-protocol broker embedded in braid (librdkafka's mock cluster) for local
    /// development and tests; prints its bootstrap address on the first line.
    Broker(BrokerArgs),
}

#[derive(Debug, Args)]
struct QuickstartArgs {
    /// Deep storage: a directory, file://path, s3://bucket/prefix or memory://.
    #[arg(long, env = "BRAID_DEEP_STORAGE", default_value = "./braid-data")]
    deep_storage: String,
    /// Require this token on the API (Bearer, or basic auth with it as the password); the
    /// health check and metrics stay open.
    #[arg(long, env = "BRAID_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Address of the query API.
    #[arg(long, env = "BRAID_LISTEN", default_value = "127.0.0.1:8082")]
    listen: String,
    /// Events produced per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// When the batch scheduler runs (cron with a seconds field).
    #[arg(long, default_value = "0 * * * * *")]
    cron: String,
    /// How long after an interval ends before the batch rebuilds it.
    #[arg(long, default_value = "PT2M")]
    settle: String,
    /// How far back the scheduler looks.
    #[arg(long, default_value = "PT3H")]
    lookback: String,
    /// How long overshadowed segments are kept.
    #[arg(long, default_value = "PT10M")]
    retention: String,
}

#[derive(Debug, Args)]
struct BrokerArgs {
    /// Brokers in the cluster.
    #[arg(long, default_value_t = 1)]
    brokers: i32,
    /// Topics to create, as NAME or NAME:PARTITIONS (others are created with 4 partitions when
    /// a client first asks for them).
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// Where to serve /status/health and /metrics (topics, partitions and their offsets); port 0
    /// picks a free one. The address is printed on the second line.
    #[arg(long, default_value = "127.0.0.1:8084")]
    listen: String,
}

#[derive(Debug, Subcommand)]
enum RawCommand {
    /// Store newline-delimited JSON events (plain or gzip; files, or stdin when none or "-")
    /// into hourly raw files. Files are named by the SHA-256 of their content and written
    /// create-only, so putting the same input twice stores nothing new.
    Put(PutArgs),
}

#[derive(Debug, Subcommand)]
enum BatchCommand {
    /// Rebuild an interval's segments from the raw archive and publish them as a new version.
    Reindex(ReindexArgs),
    /// Run reindex jobs on cron schedules: each run rebuilds the closed intervals of its
    /// lookback window whose raw files changed or were never batch-indexed.
    Schedule(ScheduleArgs),
    /// Print the scheduler's recorded runs.
    History(HistoryArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("jobs_source").required(true).args(["spec", "jobs"]))]
struct JobArgs {
    /// The spec of the dataSources to schedule (every dataSource in the file unless
    /// --data-source names one).
    #[arg(long, env = "BRAID_SPEC", requires = "cron")]
    spec: Option<PathBuf>,
    /// Which dataSource of the spec, when it holds several.
    #[arg(long, requires = "spec")]
    data_source: Option<String>,
    /// When to run, as a cron expression with a seconds field: "0 15 * * * *" is minute 15 of
    /// every hour.
    #[arg(long, env = "BRAID_CRON")]
    cron: Option<String>,
    /// How far back each run looks for intervals to reindex (ISO 8601 period).
    #[arg(long, env = "BRAID_LOOKBACK", default_value = batch::schedule::DEFAULT_LOOKBACK)]
    lookback: String,
    /// How long after an interval ends before it is reindexed (ISO 8601 period).
    #[arg(long, env = "BRAID_SETTLE", default_value = batch::schedule::DEFAULT_SETTLE)]
    settle: String,
    /// Reindex with this spec instead (e.g. a coarser queryGranularity for older data).
    #[arg(long, requires = "spec")]
    reindex_spec: Option<PathBuf>,
    /// Several jobs from a file: TOML ([[job]] tables) or JSON ({"jobs": [...]}), each with
    /// name, spec, cron, lookback, settle and optionally reindex_spec.
    #[arg(long, conflicts_with_all = ["spec", "cron", "reindex_spec"])]
    jobs: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SchedulerArgs {
    /// Reindex jobs running at once, over all jobs.
    #[arg(long, env = "BRAID_MAX_CONCURRENT", default_value_t = 1)]
    max_concurrent: usize,
    /// Worker threads of each reindex (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Retries of an interval after a deep-storage failure, with backoff from 1 s.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// How long overshadowed segments are kept before cleanup (run after every scheduler run)
    /// deletes their files (ISO 8601 period).
    #[arg(long, env = "BRAID_RETENTION", default_value = DEFAULT_RETENTION)]
    retention: String,
    /// Do not run cleanup after scheduler runs.
    #[arg(long)]
    no_cleanup: bool,
}

#[derive(Debug, Args)]
struct ScheduleArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Address of /status/health and /metrics.
    #[arg(long, default_value = "127.0.0.1:8083")]
    listen: String,
    #[command(flatten)]
    jobs: JobArgs,
    #[command(flatten)]
    scheduler: SchedulerArgs,
    /// Raw archive path template under the deep-storage root.
    #[arg(long, env = "BRAID_RAW_LAYOUT", default_value = RawLayout::DEFAULT_TEMPLATE)]
    raw_layout: String,
}

#[derive(Debug, Args)]
struct HistoryArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Only this dataSource.
    #[arg(long)]
    data_source: Option<String>,
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// Only the last N runs.
    #[arg(long)]
    limit: Option<usize>,
    /// Print a JSON array of run records instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CleanupArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Only this dataSource.
    #[arg(long)]
    data_source: Option<String>,
    /// How long a dropped segment's file is kept (ISO 8601 period); files no commit names are
    /// kept at least this long and at least an hour.
    #[arg(long, env = "BRAID_RETENTION", default_value = DEFAULT_RETENTION)]
    retention: String,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Raw archive path template under the deep-storage root.
    #[arg(long, env = "BRAID_RAW_LAYOUT", default_value = RawLayout::DEFAULT_TEMPLATE)]
    raw_layout: String,
    /// Print the reports as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Druid Kafka supervisor specs; every dataSource in them is streamed and scheduled.
    #[arg(long = "spec", env = "BRAID_SPEC", required = true, value_delimiter = ',')]
    specs: Vec<PathBuf>,
    /// When the batch scheduler runs (cron with a seconds field).
    #[arg(long, env = "BRAID_CRON", default_value = DEFAULT_RUN_CRON)]
    cron: String,
    /// How far back each scheduler run looks (ISO 8601 period).
    #[arg(long, env = "BRAID_LOOKBACK", default_value = batch::schedule::DEFAULT_LOOKBACK)]
    lookback: String,
    /// How long after an interval ends before the batch rebuilds it (ISO 8601 period).
    #[arg(long, env = "BRAID_SETTLE", default_value = batch::schedule::DEFAULT_SETTLE)]
    settle: String,
    #[command(flatten)]
    scheduler: SchedulerArgs,
    /// Raw archive path template under the deep-storage root.
    #[arg(long, env = "BRAID_RAW_LAYOUT", default_value = RawLayout::DEFAULT_TEMPLATE)]
    raw_layout: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// How long cleanup keeps overshadowed segments' files by default.
const DEFAULT_RETENTION: &str = "P1D";
/// When `braid run`'s scheduler runs by default: minute 15 of every hour, as in Druid's docs.
const DEFAULT_RUN_CRON: &str = "0 15 * * * *";

#[derive(Debug, Args)]
struct StorageArgs {
    /// Deep storage: a directory, file://path, s3://bucket/prefix or memory://.
    #[arg(long, env = "BRAID_DEEP_STORAGE")]
    deep_storage: String,
}

#[derive(Debug, Args)]
struct SpecArgs {
    /// A Druid spec: Kafka supervisor spec, task spec or legacy realtime spec.
    #[arg(long, env = "BRAID_SPEC")]
    spec: PathBuf,
    /// Which dataSource of the spec, when it holds several.
    #[arg(long)]
    data_source: Option<String>,
    /// Raw archive path template under the deep-storage root.
    #[arg(long, env = "BRAID_RAW_LAYOUT", default_value = RawLayout::DEFAULT_TEMPLATE)]
    raw_layout: String,
}

#[derive(Debug, Args)]
struct PutArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    spec: SpecArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Input files; none or "-" reads standard input.
    inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct ReindexArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    spec: SpecArgs,
    /// Interval to rebuild, e.g. 2013-08-31/2013-09-01 or 2013-08-31T00/PT6H; must line up
    /// with the spec's segmentGranularity.
    #[arg(long)]
    interval: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SegmentsArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Only this dataSource.
    #[arg(long)]
    data_source: Option<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Directory to write the hourly files `events-00.json.gz`, `events-01.json.gz`, ... into.
    #[arg(long)]
    out: PathBuf,
    /// Total number of events.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Number of hourly files.
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// First hour, ISO 8601.
    #[arg(long, default_value = "2013-08-31T00:00:00Z")]
    start: String,
    /// Random seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// The query API's port, token and cache, shared by every daemon that serves queries.
#[derive(Debug, Args)]
struct ApiArgs {
    /// Require this token on the API (Bearer, or basic auth with it as the password); the
    /// health check and metrics stay open.
    #[arg(long, env = "BRAID_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "BRAID_LISTEN", default_value = "127.0.0.1:8082")]
    listen: String,
    /// Memory for decoded segment rows, in MiB.
    #[arg(long, env = "BRAID_CACHE_MIB", default_value_t = 1024)]
    cache_mib: usize,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Args)]
struct StreamArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// A Druid Kafka supervisor spec (or a file holding several); every dataSource in it is
    /// ingested. More can be posted to /druid/indexer/v1/supervisor at runtime.
    #[arg(long, env = "BRAID_SPEC")]
    spec: Option<PathBuf>,
    /// Raw archive path template under the deep-storage root.
    #[arg(long, env = "BRAID_RAW_LAYOUT", default_value = RawLayout::DEFAULT_TEMPLATE)]
    raw_layout: String,
    /// Only these partitions of each topic (e.g. 0,2), so several daemons can split a topic.
    #[arg(long, value_delimiter = ',')]
    partitions: Option<Vec<i32>>,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["url", "deep_storage"]))]
#[command(group = clap::ArgGroup::new("text").required(true).args(["sql", "json"]))]
struct QueryArgs {
    /// A braid (or Druid) server, e.g. http://127.0.0.1:8082.
    #[arg(long)]
    url: Option<String>,
    /// Query deep storage directly, without a server.
    #[arg(long)]
    deep_storage: Option<String>,
    /// A Druid SQL statement; the result prints as an aligned table.
    #[arg(long)]
    sql: Option<String>,
    /// A file holding a native JSON query ("-" for standard input); the result prints as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = match config::args_with_config_file(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(args);
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Raw(RawCommand::Put(args)) => raw_put(args).await,
        Command::Batch(BatchCommand::Reindex(args)) => reindex(args).await,
        Command::Segments(args) => segments(args).await,
        Command::Generate(args) => generate(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Stream(args) => stream_daemon(args).await,
        Command::Query(args) => query(args).await,
        Command::Batch(BatchCommand::Schedule(args)) => schedule(args).await,
        Command::Batch(BatchCommand::History(args)) => history(args).await,
        Command::Cleanup(args) => cleanup(args).await,
        Command::Run(args) => run_pipeline(args).await,
        Command::Quickstart(args) => quickstart::run(args, shutdown_signal()).await,
        Command::Broker(args) => broker(args).await,
    }
}

fn open_storage(args: &StorageArgs) -> Result<DeepStorage> {
    Ok(DeepStorage::open(&args.deep_storage)?)
}

/// For commands that only read: a mistyped directory is an error, not a new empty one.
fn open_existing_storage(args: &StorageArgs) -> Result<DeepStorage> {
    Ok(DeepStorage::open_existing(&args.deep_storage)?)
}

/// Loads the spec file and picks one dataSource, warning once about fields braid ignores.
fn load_spec(args: &SpecArgs) -> Result<(DataSourceSpec, RawLayout)> {
    let text = std::fs::read_to_string(&args.spec)
        .with_context(|| format!("reading spec {}", args.spec.display()))?;
    let loaded = load_specs(&text, &args.spec.display().to_string())?;
    if !loaded.ignored_fields.is_empty() {
        warn!(
            spec = %args.spec.display(),
            fields = %loaded.ignored_fields.join(", "),
            "Spec fields accepted but not used by braid."
        );
    }
    let spec = loaded.select(args.data_source.as_deref()).map_err(anyhow::Error::msg)?.clone();
    let layout = RawLayout::parse(&args.raw_layout)?;
    Ok((spec, layout))
}

async fn raw_put(args: PutArgs) -> Result<()> {
    let (spec, layout) = load_spec(&args.spec)?;
    // Every input is checked before anything is stored, so a typo does not leave half a put.
    for path in args.inputs.iter().filter(|p| p.as_os_str() != "-") {
        std::fs::File::open(path).with_context(|| format!("input {}", path.display()))?;
    }
    let storage = open_storage(&args.storage)?;
    let mut inputs: Vec<PutInput> = args
        .inputs
        .iter()
        .map(|p| if p.as_os_str() == "-" { PutInput::Stdin } else { PutInput::File(p.clone()) })
        .collect();
    if inputs.is_empty() {
        inputs.push(PutInput::Stdin);
    }
    if inputs.iter().filter(|i| matches!(i, PutInput::Stdin)).count() > 1 {
        bail!("standard input (\"-\") can be read only once");
    }
    let progress = std::io::stderr().is_terminal() && !args.json;
    let report = batch::put_raw(&storage, &spec, &layout, inputs, progress).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        output::put_report(&report);
    }
    Ok(())
}

async fn reindex(args: ReindexArgs) -> Result<()> {
    let (spec, raw_layout) = load_spec(&args.spec)?;
    let storage = open_storage(&args.storage)?;
    let interval = Interval::parse(&args.interval).with_context(|| "--interval".to_string())?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let options = ReindexOptions {
        interval,
        raw_layout,
        threads,
        progress: std::io::stderr().is_terminal() && !args.json,
    };
    let report = batch::reindex(&storage, &spec, options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        output::reindex_report(&report);
    }
    Ok(())
}

async fn segments(args: SegmentsArgs) -> Result<()> {
    let only = args.data_source.as_deref().map(DataSourceName::new).transpose()?;
    let storage = open_existing_storage(&args.storage)?;
    let names = match only {
        Some(name) => vec![name],
        None => Catalog::data_sources(&storage).await?,
    };
    let mut views = Vec::new();
    for name in names {
        let state = Catalog::new(storage.clone(), name).load().await?;
        views.extend(common::catalog::describe_segments(&state));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else {
        output::segments_table(&views);
    }
    Ok(())
}

async fn generate(args: GenerateArgs) -> Result<()> {
    let start = common::time::parse_iso(&args.start).with_context(|| "--start".to_string())?;
    let files = batch::generate::write_hourly_files(&args.out, args.seed, args.events, start, args.hours)?;
    let bytes: u64 = files.iter().map(|f| f.1).sum();
    println!(
        "wrote {} events in {} files ({}) to {}",
        args.events,
        files.len(),
        output::human_bytes(bytes),
        args.out.display()
    );
    Ok(())
}

/// Binds a listening socket; the address says which port a ":0" request got.
async fn bind(address: &str) -> Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

fn query_engine(storage: DeepStorage, cache_mib: usize) -> query::QueryEngine {
    let options =
        query::EngineOptions { cache_bytes: cache_mib.saturating_mul(1 << 20), ..Default::default() };
    query::QueryEngine::new(storage, options)
}

async fn serve(args: ServeArgs) -> Result<()> {
    let storage = open_existing_storage(&args.storage)?;
    let (listener, address) = bind(&args.api.listen).await?;
    // Scripts and tests wait for this line rather than polling the port.
    println!("braid serving Druid queries on http://{address}");
    tracing::info!(%address, deep_storage = %args.storage.deep_storage, "Serving queries.");
    let engine = query_engine(storage, args.api.cache_mib);
    query::server::serve(listener, engine, args.api.auth_token.clone(), shutdown_signal()).await?;
    Ok(())
}

async fn stream_daemon(args: StreamArgs) -> Result<()> {
    let specs = match &args.spec {
        Some(path) => read_stream_specs(path)?,
        None => Vec::new(),
    };
    let storage = open_storage(&args.storage)?;
    let raw_layout = RawLayout::parse(&args.raw_layout)?;
    let (listener, address) = bind(&args.api.listen).await?;
    let engine = query_engine(storage.clone(), args.api.cache_mib);
    let options = stream::StreamOptions {
        storage,
        raw_layout,
        specs,
        partitions: args.partitions,
        auth_token: args.api.auth_token.clone(),
        extra_metrics: None,
    };
    // Scripts and tests wait for this line rather than polling the port.
    println!("braid streaming; Druid queries on http://{address}");
    tracing::info!(%address, deep_storage = %args.storage.deep_storage, "Streaming.");
    stream::run(options, engine, listener, shutdown_signal()).await?;
    Ok(())
}

/// Every dataSource of a stream spec file, each with the file's JSON (what the supervisor API
/// shows for it).
fn read_stream_specs(path: &Path) -> Result<Vec<(DataSourceSpec, serde_json::Value)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading spec {}", path.display()))?;
    let loaded = load_specs(&text, &path.display().to_string())?;
    if !loaded.ignored_fields.is_empty() {
        warn!(spec = %path.display(), fields = %loaded.ignored_fields.join(", "), "Spec fields accepted but not used by braid.");
    }
    let json: serde_json::Value = serde_json::from_str(&text)?;
    Ok(loaded.specs.into_iter().map(|spec| (spec, json.clone())).collect())
}

fn scheduler_options(args: &SchedulerArgs, raw_layout: RawLayout) -> Result<SchedulerOptions> {
    let mut options = SchedulerOptions::new(raw_layout);
    options.max_concurrent = args.max_concurrent.max(1);
    if let Some(threads) = args.threads {
        options.threads = threads.max(1);
    }
    options.retries = args.retries;
    if !args.no_cleanup {
        let retention = Period::parse(&args.retention).context("--retention")?;
        options.cleanup = Some(CleanupOptions { retention, dry_run: false });
    }
    Ok(options)
}

fn load_jobs(args: &JobArgs) -> Result<Vec<Job>> {
    if let Some(path) = &args.jobs {
        return Ok(batch::schedule::load_jobs_file(path)?);
    }
    let (Some(spec), Some(cron)) = (&args.spec, &args.cron) else {
        bail!("give --jobs, or --spec with --cron");
    };
    let definition = JobDefinition {
        name: None,
        spec: spec.clone(),
        data_source: args.data_source.clone(),
        cron: cron.clone(),
        lookback: Some(args.lookback.clone()),
        settle: Some(args.settle.clone()),
        reindex_spec: args.reindex_spec.clone(),
    };
    Ok(batch::schedule::jobs_from_definition(&definition, Path::new(""))?)
}

/// Prints the scheduler's first line (scripts and tests wait for it) and one line per job.
fn announce_jobs(scheduler: &Scheduler, suffix: &str) {
    println!("braid batch scheduler running {} jobs{suffix}", scheduler.jobs().len());
    let now = common::catalog::now_millis();
    for job in scheduler.jobs() {
        let next = job.next_fire_after(now).map_or("never".to_string(), common::time::format_iso);
        println!(
            "  job {} (dataSource {}): cron \"{}\", lookback {}, settle {}; next run {next}",
            job.name,
            job.spec.data_source,
            job.cron.source(),
            job.lookback,
            job.settle
        );
    }
}

async fn schedule(args: ScheduleArgs) -> Result<()> {
    let raw_layout = RawLayout::parse(&args.raw_layout)?;
    let jobs = load_jobs(&args.jobs)?;
    let storage = open_storage(&args.storage)?;
    let scheduler = Scheduler::new(storage, jobs, scheduler_options(&args.scheduler, raw_layout)?);
    let (listener, address) = bind(&args.listen).await?;
    let metrics = {
        let scheduler = scheduler.clone();
        Arc::new(move || scheduler.metrics_text())
    };
    let stop = Stop::on(shutdown_signal());
    let server = tokio::spawn(query::server::serve_status(listener, metrics, stop.stopped()));
    announce_jobs(&scheduler, &format!("; health and metrics on http://{address}"));
    scheduler.run(stop.stopped()).await;
    stop.stop();
    let _ = server.await;
    Ok(())
}

async fn history(args: HistoryArgs) -> Result<()> {
    let only = args.data_source.as_deref().map(DataSourceName::new).transpose()?;
    let storage = open_existing_storage(&args.storage)?;
    let mut records = batch::read_history(&storage, only.as_ref()).await?;
    if let Some(job) = &args.job {
        records.retain(|r| &r.job == job);
    }
    if let Some(limit) = args.limit {
        records.drain(..records.len().saturating_sub(limit));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&records)?);
    } else {
        output::history_table(&records);
    }
    Ok(())
}

async fn cleanup(args: CleanupArgs) -> Result<()> {
    let only = args.data_source.as_deref().map(DataSourceName::new).transpose()?;
    let retention = Period::parse(&args.retention).context("--retention")?;
    let raw_layout = RawLayout::parse(&args.raw_layout)?;
    let storage = open_existing_storage(&args.storage)?;
    let names = match only {
        Some(name) => vec![name],
        None => Catalog::data_sources(&storage).await?,
    };
    let options = CleanupOptions { retention, dry_run: args.dry_run };
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for name in names {
        match batch::cleanup(&storage, &name, &raw_layout, &options).await {
            Ok(report) => reports.push(report),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        output::cleanup_table(&reports);
    }
    if !failures.is_empty() {
        bail!("cleanup failed for {}", failures.join("; "));
    }
    Ok(())
}

async fn broker(args: BrokerArgs) -> Result<()> {
    let broker = stream::demo::EmbeddedBroker::start(args.brokers)?;
    for topic in &args.topics {
        let (name, partitions) = match topic.split_once(':') {
            Some((name, n)) => (
                name,
                n.parse::<i32>().ok().filter(|n| *n > 0).with_context(|| {
                    format!("--topic {topic:?}: the partition count must be a positive number")
                })?,
            ),
            None => (topic.as_str(), 1),
        };
        broker.create_topic(name, partitions)?;
    }
    let observer = broker.observer()?;
    let (listener, address) = bind(&args.listen).await?;
    // Scripts and tests read the bootstrap address from the first line.
    println!("{}", broker.bootstrap_servers());
    println!("health and metrics on http://{address}");
    eprintln!(
        "braid broker: embedded Kafka-protocol broker on {}; Ctrl-C stops it",
        broker.bootstrap_servers()
    );
    let metrics = Arc::new(move || observer.metrics_text());
    query::server::serve_status(listener, metrics, shutdown_signal()).await?;
    drop(broker);
    Ok(())
}

async fn run_pipeline(args: RunArgs) -> Result<()> {
    let mut specs = Vec::new();
    let mut jobs = Vec::new();
    for path in &args.specs {
        let read = read_stream_specs(path)?;
        let definition = JobDefinition {
            name: None,
            spec: path.clone(),
            data_source: None,
            cron: args.cron.clone(),
            lookback: Some(args.lookback.clone()),
            settle: Some(args.settle.clone()),
            reindex_spec: None,
        };
        let spec_list = read.iter().map(|(spec, _)| spec.clone()).collect();
        jobs.extend(batch::schedule::jobs_with_specs(&definition, spec_list, None)?);
        specs.extend(read);
    }
    let storage = open_storage(&args.storage)?;
    let raw_layout = RawLayout::parse(&args.raw_layout)?;
    let scheduler =
        Scheduler::new(storage.clone(), jobs, scheduler_options(&args.scheduler, raw_layout.clone())?);
    let (listener, address) = bind(&args.api.listen).await?;
    let engine = query_engine(storage.clone(), args.api.cache_mib);
    let options = stream::StreamOptions {
        storage,
        raw_layout,
        specs,
        partitions: None,
        auth_token: args.api.auth_token.clone(),
        extra_metrics: None,
    };
    let stop = Stop::on(shutdown_signal());
    // Scripts and tests wait for this line rather than polling the port.
    println!("braid running; Druid queries on http://{address}");
    announce_jobs(&scheduler, "");
    tracing::info!(%address, deep_storage = %args.storage.deep_storage, "Running the stream, the batch scheduler and the query API.");
    stream_with_scheduler(options, engine, listener, scheduler, &stop).await?;
    Ok(())
}

/// One stop for several tasks: the first shutdown signal, or [`Stop::stop`].
struct Stop {
    sender: tokio::sync::watch::Sender<bool>,
    signal: tokio::task::JoinHandle<()>,
}

impl Stop {
    fn on(shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        let (sender, _) = tokio::sync::watch::channel(false);
        let on_signal = sender.clone();
        let signal = tokio::spawn(async move {
            shutdown.await;
            on_signal.send_replace(true);
        });
        Self { sender, signal }
    }

    /// Completes once stopped.
    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.sender.subscribe();
        async move {
            let _ = receiver.wait_for(|stopped| *stopped).await;
        }
    }

    fn stop(&self) {
        self.sender.send_replace(true);
        self.signal.abort();
    }
}

/// The stream daemon and the batch scheduler until `stop` (or until the stream fails, which
/// stops the scheduler too), with the scheduler's metrics on the stream's `/metrics`.
async fn stream_with_scheduler(
    mut options: stream::StreamOptions,
    engine: query::QueryEngine,
    listener: tokio::net::TcpListener,
    scheduler: Scheduler,
    stop: &Stop,
) -> Result<(), stream::StreamError> {
    let metrics = scheduler.clone();
    options.extra_metrics = Some(stream::daemon::ExtraMetrics(Arc::new(move || metrics.metrics_text())));
    let batch = tokio::spawn(scheduler.run(stop.stopped()));
    let streamed = stream::run(options, engine, listener, stop.stopped()).await;
    stop.stop();
    if let Err(e) = batch.await {
        warn!(error = %e, "The batch scheduler panicked.");
    }
    streamed
}

/// Completes on SIGINT or SIGTERM; from then on a second signal exits at once, without the
/// clean stop the first one started.
async fn shutdown_signal() {
    let mut signals = match StopSignals::listen() {
        Ok(signals) => signals,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot listen for SIGTERM; only Ctrl-C stops braid.");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    signals.recv().await;
    tracing::info!("Stopping cleanly; a second signal exits at once.");
    // The same listeners go on, so a second signal sent at once is not missed.
    tokio::spawn(async move {
        signals.recv().await;
        eprintln!("braid: second signal, exiting at once");
        std::process::exit(130);
    });
}

/// SIGINT and SIGTERM listeners, registered from the moment they are made.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn query(args: QueryArgs) -> Result<()> {
    let (path, body) = match (&args.sql, &args.json) {
        (Some(sql), _) => {
            ("/druid/v2/sql", serde_json::json!({"query": sql, "resultFormat": "array", "header": true}))
        }
        (None, Some(file)) => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading the query from standard input")?
            } else {
                std::fs::read_to_string(file).with_context(|| format!("reading query {}", file.display()))?
            };
            let body: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
            ("/druid/v2", body)
        }
        (None, None) => bail!("give --sql or --json"),
    };
    let answer: serde_json::Value = match (&args.url, &args.deep_storage) {
        (Some(url), _) => {
            let url = format!("{}{path}", url.trim_end_matches('/'));
            let tool = tokio::task::spawn_blocking(move || post_json(&url, &body));
            tool.await.context("the HTTP request panicked")??
        }
        (None, Some(deep_storage)) => {
            let storage = DeepStorage::open_existing(deep_storage)?;
            let engine = query_engine(storage, 1024);
            if args.sql.is_some() {
                let request: query::sql::SqlRequest = serde_json::from_value(body)?;
                let (_, bytes) = engine.sql(&request).await.map_err(query_failure)?.encode(&request);
                serde_json::from_slice(&bytes)?
            } else {
                engine.native(&body).await.map_err(query_failure)?
            }
        }
        (None, None) => bail!("give --url or --deep-storage"),
    };
    if args.sql.is_some() {
        output::sql_table(&answer)?;
    } else {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    }
    Ok(())
}

fn query_failure(e: query::QueryError) -> anyhow::Error {
    anyhow::anyhow!("query failed ({}): {e}", e.druid_body()["error"].as_str().unwrap_or("error"))
}

/// POSTs a JSON body and returns the JSON answer; Druid's error body becomes the error.
fn post_json(url: &str, body: &serde_json::Value) -> Result<serde_json::Value> {
    let response = ureq::post(url)
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(body)
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text =
        response.into_body().read_to_string().with_context(|| format!("reading the answer of {url}"))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{url} answered HTTP {status} with non-JSON: {text}"))?;
    if !status.is_success() {
        let message = value.get("errorMessage").and_then(|m| m.as_str()).unwrap_or(&text);
        let kind = value.get("error").and_then(|m| m.as_str()).unwrap_or("error");
        bail!("query failed with HTTP {status} ({kind}): {message}");
    }
    Ok(value)
}
