//! The `braid` command line: parses arguments, wires the library crates together and prints
//! their results. No pipeline logic lives here.

mod output;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use batch::{PutInput, ReindexOptions};
use clap::{Args, Parser, Subcommand, ValueEnum};
use common::catalog::Catalog;
use common::spec::{DataSourceSpec, load_specs};
use common::storage::DeepStorage;
use common::time::Interval;
use layouts::{DataSourceName, RawLayout};
use tracing::warn;

/// braid: a lambda-architecture ingestion pipeline for event analytics, Druid-compatible.
#[derive(Debug, Parser)]
#[command(name = "braid", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log format on standard error; the level comes from RUST_LOG (default: warn).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "BRAID_LOG_FORMAT")]
    log_format: LogFormat,

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
}

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

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Address to listen on.
    #[arg(long, env = "BRAID_LISTEN", default_value = "127.0.0.1:8082")]
    listen: String,
    /// Memory for decoded segment rows, in MiB.
    #[arg(long, default_value_t = 1024)]
    cache_mib: usize,
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
    /// Address to listen on.
    #[arg(long, env = "BRAID_LISTEN", default_value = "127.0.0.1:8082")]
    listen: String,
    /// Memory for decoded segment rows, in MiB.
    #[arg(long, default_value_t = 1024)]
    cache_mib: usize,
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
    let cli = Cli::parse();
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
    let report = batch::put_raw(&storage, &spec, &layout, inputs).await?;
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

fn query_engine(storage: DeepStorage, cache_mib: usize) -> query::QueryEngine {
    let options =
        query::EngineOptions { cache_bytes: cache_mib.saturating_mul(1 << 20), ..Default::default() };
    query::QueryEngine::new(storage, options)
}

async fn serve(args: ServeArgs) -> Result<()> {
    let storage = open_existing_storage(&args.storage)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    // Scripts and tests wait for this line rather than polling the port.
    println!("braid serving Druid queries on http://{address}");
    tracing::info!(%address, deep_storage = %args.storage.deep_storage, "Serving queries.");
    let engine = query_engine(storage, args.cache_mib);
    query::server::serve(listener, engine, shutdown_signal()).await?;
    Ok(())
}

async fn stream_daemon(args: StreamArgs) -> Result<()> {
    let mut specs = Vec::new();
    if let Some(path) = &args.spec {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading spec {}", path.display()))?;
        let loaded = load_specs(&text, &path.display().to_string())?;
        if !loaded.ignored_fields.is_empty() {
            warn!(spec = %path.display(), fields = %loaded.ignored_fields.join(", "), "Spec fields accepted but not used by braid.");
        }
        let json: serde_json::Value = serde_json::from_str(&text)?;
        specs.extend(loaded.specs.into_iter().map(|spec| (spec, json.clone())));
    }
    let storage = open_storage(&args.storage)?;
    let raw_layout = RawLayout::parse(&args.raw_layout)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let engine = query_engine(storage.clone(), args.cache_mib);
    let options = stream::StreamOptions { storage, raw_layout, specs, partitions: args.partitions };
    // Scripts and tests wait for this line rather than polling the port.
    println!("braid streaming; Druid queries on http://{address}");
    tracing::info!(%address, deep_storage = %args.storage.deep_storage, "Streaming.");
    stream::run(options, engine, listener, shutdown_signal()).await?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
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
