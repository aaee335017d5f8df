//! Command-line interface.

use clap::{Args, Parser, Subcommand, ValueEnum};
use freshet_core::config::GeneratorKind;
use std::path::PathBuf;

/// Freshet keeps machine-learning models fresh on live data: streaming ingest with
/// in-flight cleaning, exactly-once Delta Lake landing, retraining on drift, an
/// MLflow-compatible registry, gated rollouts, serving and monitoring.
#[derive(Debug, Parser)]
#[command(name = "freshet", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "FRESHET_CONFIG",
        default_value = "freshet.yaml"
    )]
    pub config: PathBuf,
    /// Log as JSON lines (for log shippers) instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole loop on one machine, narrated: stream drifting card transactions,
    /// train and promote v1, serve a client that sends labels late, detect the drift,
    /// retrain, canary and promote v2, and compare with a model never retrained.
    Demo(DemoArgs),
    /// Write a working example freshet.yaml, a PII key file and sample data.
    Init(InitArgs),
    /// Check a configuration; every problem is reported with its key path.
    Validate,
    /// Run the server: HTTP ingest, generator and file sources, lake maintenance.
    Up(UpArgs),
    /// Push a CSV or NDJSON file through a stream's pipeline into the lake (resumable).
    Ingest(IngestArgs),
    /// Train a model declared in freshet.yaml from its stream's table at a pinned
    /// Delta version, hold out the newest rows for scoring, and register a new version.
    Train(TrainArgs),
    /// Look at and steer a model's rollout (shadow, canary steps, promotion, rollback).
    /// With --url (or FRESHET_URL) every step goes through the running server's API under
    /// --token: authenticated, authorized and audited as that token. Without it the
    /// registry file is changed directly (an operator on the server's host). See
    /// docs/rollout.md.
    Rollout(RolloutArgs),
    /// Score every row of a table with a registered version into another table.
    Score(ScoreArgs),
    /// List the lake's tables with their version, rows and files.
    Tables,
    /// Inspect one table.
    #[command(subcommand)]
    Table(TableCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// API tokens: create (shown once), list, revoke. Talks to the running server with
    /// an admin token (--token, FRESHET_TOKEN, or auth.admin_token_file).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The audit trail: verify the hash chain and its signed checkpoints, export it as
    /// JSON lines. Reads the files directly; works while the server runs.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Maker-checker: promotions of models whose risk tier needs it wait here until an
    /// approver who neither asked for nor created the version approves or rejects.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// The model inventory: owner, risk tier, intended use, review cadence, last review
    /// and next due, with overdue reviews flagged. Reads the files; no server needed.
    Inventory(InventoryArgs),
    /// Lineage, both ways: from a prediction or a model version up to its run, table
    /// version and sources; from a table version down to the versions trained on it,
    /// when they served and the predictions they made; which version was champion at a
    /// time. Asks the running server (a viewer token is enough).
    #[command(subcommand)]
    Lineage(LineageCommand),
}

#[derive(Debug, Subcommand)]
pub enum LineageCommand {
    /// A model version: its run, the table version and sources it learnt from, the
    /// periods it served and the predictions it made.
    Version {
        model: String,
        version: i64,
        #[command(flatten)]
        out: LineageOut,
    },
    /// A prediction, by the request id the server answered with (or the client's own
    /// id): the version that answered and that version's lineage.
    Request {
        id: String,
        /// Look in this model's captured predictions only (faster; needed when the
        /// token reads only some models).
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        out: LineageOut,
    },
    /// A version of a stream's table (events/<stream>): every model version whose
    /// training window held rows of that commit.
    Table {
        stream: String,
        version: i64,
        #[command(flatten)]
        out: LineageOut,
    },
    /// Which version an alias (champion by default) named at a time.
    Champion {
        model: String,
        /// RFC 3339 time, e.g. 2026-12-01T09:30:00Z (default: now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long, default_value = "champion")]
        alias: String,
        #[command(flatten)]
        out: LineageOut,
    },
}

#[derive(Debug, Args)]
pub struct LineageOut {
    /// text (for people) or json (the API's answer).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// table (for people), csv or json.
    #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
    pub format: String,
    /// Only models whose review is overdue (exit 1 when there are any).
    #[arg(long)]
    pub overdue: bool,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approval requests (pending by default).
    List {
        /// pending, approved, rejected or all.
        #[arg(long, default_value = "pending", value_parser = ["pending", "approved", "rejected", "all"])]
        state: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Approve a request: the version may become champion (until the approval expires).
    Approve {
        id: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Reject a request: the loop rolls the rollout back.
    Reject {
        id: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// How a CLI command reaches the running server.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's base URL (default: http:// + server.listen of the configuration).
    #[arg(long, env = "FRESHET_URL")]
    pub url: Option<String>,
    /// Bearer token (default: the file auth.admin_token_file names).
    #[arg(long, env = "FRESHET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once; only its hash is stored.
    Create {
        /// A unique name (letters, digits, '-', '_', '.', '@').
        name: String,
        /// Roles: viewer, producer, scorer, data_scientist, approver, operator, admin.
        #[arg(long = "role", required = true, num_args = 1..)]
        roles: Vec<String>,
        /// Limit the roles to these resources (globs over stream:<name>, model:<name>,
        /// experiment:<name>); default: everything.
        #[arg(long = "scope", num_args = 1..)]
        scopes: Vec<String>,
        /// Expire after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke a token by name; requests with it get 401 from then on.
    Revoke {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every record's hash and link and every checkpoint's signature; reports the
    /// first bad sequence number. Exits 1 when the chain does not verify.
    Verify {
        /// The public key file (default: audit.pub beside audit.key_file).
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the records as JSON lines to stdout (or --out), from --since on; or append
    /// the records not exported yet to a Delta table (--delta), exactly once.
    Export {
        /// RFC 3339 time, e.g. 2026-12-01T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, conflicts_with = "delta")]
        out: Option<PathBuf>,
        /// A Delta table (folder or file:// URL), created if missing; each run appends
        /// the records after the last one it holds.
        #[arg(long)]
        delta: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's data, registry and config (cleared if a previous demo made it).
    #[arg(long, default_value = "freshet-demo-run")]
    pub dir: PathBuf,
    /// Run the loop on this CSV file instead of the card generator.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The label column of --data.
    #[arg(long)]
    pub label: Option<String>,
    /// Events per second the simulated client sends.
    #[arg(long, default_value_t = 1500)]
    pub rate: u64,
    /// Labels arrive this many events after their prediction.
    #[arg(long, default_value_t = 300)]
    pub label_delay: u64,
    /// The generated stream when no --data is given: card transactions whose fraud
    /// pattern changes, or one of the concept-drift benchmarks (SEA, rotating
    /// hyperplane, Agrawal) whose concept changes abruptly.
    #[arg(long, default_value = "cards", value_parser = parse_generator)]
    pub generator: GeneratorKind,
    /// The event where the generated stream's concept changes.
    #[arg(long, default_value_t = 25_000)]
    pub drift_at: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of generated labels flipped at random (0 to 0.5).
    #[arg(long, default_value_t = 0.0, value_parser = parse_noise)]
    pub noise: f64,
    /// Stop after this many events (default: the stream's end, or --after-promotion
    /// events after the new champion for a generated stream).
    #[arg(long)]
    pub events: Option<u64>,
    /// How the champion answers: `snapshot` (the registered version) or `live` (a
    /// learner that starts from it and learns each label as it arrives, with the
    /// snapshot as its safety net; docs/serving.md). Live mode scores one event at a
    /// time and hands each due label over before the next event, so the label delay is
    /// exact. Default: live for the concept-drift generators, snapshot otherwise.
    #[arg(long, value_parser = ["snapshot", "live"])]
    pub serving: Option<String>,
    /// Learner of the demo model: a `type` (see docs/models.md) or a whole inline
    /// spec, e.g. `'{type: windowed_gbt, n_trees: 100}'`. Default: logistic
    /// regression for the card stream (the adaptive random forest when live); for any
    /// other stream, the default of an unknown stream (docs/loop.md, "Defaults for a
    /// stream nobody tuned for").
    #[arg(long)]
    pub learner: Option<String>,
    /// Rows the first version waits for (default: 4,000 for cards, 1,000 otherwise).
    #[arg(long)]
    pub initial_rows: Option<u64>,
    /// Rows of the new concept the retraining waits for after a drift (default: 4,000
    /// for cards, 500 otherwise).
    #[arg(long)]
    pub rows_after_drift: Option<u64>,
    /// Newest rows a training job learns from (default: 20,000 for cards, 5,000
    /// otherwise).
    #[arg(long)]
    pub window_rows: Option<u64>,
    /// How versions are trained: `builtin` (a fresh model on the newest window) or
    /// `online` (one live model learns every row; triggers snapshot it).
    #[arg(long, value_parser = ["builtin", "online"])]
    pub job: Option<String>,
    /// Also retrain (or snapshot) after this many new rows; 0: only on drift
    /// (default: 0 for cards, 1,000 otherwise).
    #[arg(long)]
    pub retrain_rows: Option<u64>,
    /// Requests the challenger must see in shadow and in the canary step (default:
    /// 300 for cards, 100 otherwise).
    #[arg(long)]
    pub rollout_requests: Option<u64>,
    /// Seconds the shadow and canary phases last at least (default: 2 for cards, 1
    /// otherwise).
    #[arg(long)]
    pub rollout_secs: Option<u64>,
    /// Events the client keeps sending once the new champion answers.
    #[arg(long, default_value_t = 12_000)]
    pub after_promotion: u64,
    /// Stop the client after this many seconds whatever happened.
    #[arg(long, default_value_t = 170)]
    pub max_seconds: u64,
}

/// The generated streams `--generator` names, one spelling each.
pub const GENERATORS: [(&str, GeneratorKind); 4] = [
    ("cards", GeneratorKind::Cards),
    ("sea", GeneratorKind::Sea),
    ("hyperplane", GeneratorKind::Hyperplane),
    ("agrawal", GeneratorKind::Agrawal),
];

fn parse_generator(s: &str) -> Result<GeneratorKind, String> {
    GENERATORS
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| format!("unknown generator '{s}': use cards, sea, hyperplane or agrawal"))
}

fn parse_noise(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=0.5).contains(&x) => Ok(x),
        Ok(x) => Err(format!("{x} is outside 0 to 0.5")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to write into.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Override server.listen (e.g. 127.0.0.1:0 for an ephemeral port).
    #[arg(long)]
    pub listen: Option<String>,
    /// Write the bound address to this file once listening (for scripts and tests).
    #[arg(long)]
    pub addr_file: Option<PathBuf>,
    /// Do not start generator, file and Kafka sources, nor topic bindings (HTTP only).
    #[arg(long)]
    pub no_sources: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Stream to ingest into (as named in the configuration).
    pub stream: String,
    /// CSV (with a header row) or NDJSON file.
    pub file: PathBuf,
    /// File format; taken from the extension when absent.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Keep following the file as it grows (Ctrl-C to stop).
    #[arg(long)]
    pub follow: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Model name (a key of `models:` in freshet.yaml).
    pub model: String,
    /// Delta version of the stream's table to train from; the latest when absent. The
    /// version is recorded in the run as its lineage.
    #[arg(long)]
    pub version: Option<i64>,
    /// Fraction of the newest rows held out for scoring; overrides the model's `holdout`.
    #[arg(long)]
    pub holdout: Option<f64>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// The running server to act through (its audited rollout API); without it the
    /// registry file is changed directly.
    #[arg(long, env = "FRESHET_URL", global = true)]
    pub url: Option<String>,
    /// Bearer token for --url (default: the file auth.admin_token_file names).
    #[arg(long, env = "FRESHET_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: RolloutCommand,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Champion and challenger versions, the phase, the challenger's traffic and the
    /// recent decisions.
    Status {
        /// Registered model name.
        model: String,
    },
    /// Begin rolling out a version: it becomes the challenger and enters shadow (or the
    /// first canary step); the current champion is recorded for rollbacks.
    Start {
        /// Registered model name.
        model: String,
        /// The version to roll out.
        #[arg(long)]
        version: i64,
    },
    /// Make the challenger champion now, whatever phase it is in.
    Promote {
        /// Registered model name.
        model: String,
    },
    /// Withdraw the challenger and restore the champion recorded at the start (also
    /// undoes a promotion), or point the champion at any version with --to-version.
    Rollback {
        /// Registered model name.
        model: String,
        /// Make this version champion in one step, ending any rollout in progress.
        #[arg(long)]
        to_version: Option<i64>,
    },
    /// Hold the rollout where it is (the challenger falls back to shadow traffic).
    Pause {
        /// Registered model name.
        model: String,
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Return a paused rollout to its phase, which holds again from now.
    Resume {
        /// Registered model name.
        model: String,
    },
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Registered model name.
    pub model: String,
    /// Table to score, e.g. events/cards.
    #[arg(long)]
    pub table: String,
    /// Version of the table; the latest when absent.
    #[arg(long)]
    pub version: Option<i64>,
    /// Table to write (created if missing): the input columns plus `prediction`,
    /// `probabilities` and `model_version`.
    #[arg(long)]
    pub out: String,
    /// Score with this model version instead of the alias.
    #[arg(long)]
    pub model_version: Option<i64>,
    /// The alias naming the version to score with.
    #[arg(long, default_value = "champion")]
    pub alias: String,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Schema, row count and the first rows of a table, at its latest or a given version.
    Show {
        /// Table name, e.g. events/payments or dlq/payments.
        name: String,
        /// Version to read (time travel).
        #[arg(long)]
        version: Option<i64>,
        /// Rows to print.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// The table's commits, newest first.
    History {
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Drive HTTP ingest from concurrent clients and report records/s landed in Delta,
    /// acknowledgement latency and peak server RSS.
    Ingest(BenchIngestArgs),
    /// Run the MLflow tracking workload against any MLflow-compatible server (Freshet or
    /// `mlflow server`); bench/tracking_vs_mlflow.sh compares the two.
    Tracking(BenchTrackingArgs),
    /// Prequential accuracy and rows/s of the built-in online learners on a CSV stream;
    /// bench/learners_vs_river.py compares them with River.
    Learners(BenchLearnersArgs),
    /// Closed-loop single-row scoring load against a serving endpoint (Freshet's
    /// invocations or `mlflow models serve`); bench/serve_vs_mlflow.sh compares the two.
    /// Without --url it trains a logistic regression and serves it from its own
    /// `freshet up` (needed for --auth on|both).
    Serve(BenchServeArgs),
    /// Append a chain of audit records from many concurrent appenders into a temporary
    /// folder, then time `freshet audit verify` over it.
    Audit(BenchAuditArgs),
    /// Run ingest, scoring with capture, feedback and a model's loop together at steady
    /// rates for a fixed time against its own server, report RSS, open files, threads,
    /// p99 latency and the lake's size every interval, and fail if any grows without
    /// bound (docs/benchmarks.md, "Soak").
    Soak(BenchSoakArgs),
    /// Print the ingest bench's records (card transactions from the generator) as
    /// NDJSON on stdout, to feed other systems (bench/kafka_ingest.py produces them to
    /// Kafka); --schema-out writes the stream's schema fields as JSON.
    Records(BenchRecordsArgs),
}

#[derive(Debug, Args)]
pub struct BenchSoakArgs {
    /// How long to run, in minutes.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Seconds between samples (one row of the report each).
    #[arg(long, default_value_t = 60.0)]
    pub interval_secs: f64,
    /// Minutes of start-up not judged: growth is measured from the sample at their end.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_minutes: f64,
    /// Single-row scoring requests per second, paced across --connections.
    #[arg(long, default_value_t = 5000.0)]
    pub score_rate: f64,
    /// Keep-alive connections the scoring load is spread over.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Records ingested per second over HTTP (NDJSON bodies of --ingest-batch records).
    #[arg(long, default_value_t = 20000.0)]
    pub ingest_rate: f64,
    /// Records per ingest request.
    #[arg(long, default_value_t = 500)]
    pub ingest_batch: usize,
    /// Ingest senders, each with one request in flight (an acknowledgement waits for
    /// the records' commit, so the rate needs several).
    #[arg(long, default_value_t = 8)]
    pub ingest_connections: usize,
    /// One scored answer in this many gets its label fed back (0: no feedback).
    #[arg(long, default_value_t = 10)]
    pub label_every: u64,
    /// Largest RSS growth after the warm-up, as a fraction of the RSS at its end.
    #[arg(long, default_value_t = 0.10)]
    pub max_rss_growth: f64,
    /// Largest departure of an interval's p99 from the median p99 after the warm-up.
    #[arg(long, default_value_t = 0.20)]
    pub max_p99_change: f64,
    /// Write the samples and the verdict as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchRecordsArgs {
    /// Records to print.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// Write the schema's fields (a JSON list, usable as `schema: { fields: ... }`) here.
    #[arg(long)]
    pub schema_out: Option<PathBuf>,
}

/// Authentication of the server a bench starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchAuth {
    /// `auth.enabled: false` (requests act as admin; mutating ones are still audited).
    Off,
    /// `auth.enabled: true`; the client sends a least-privilege bearer token.
    On,
    /// Off and on interleaved, three runs each, then medians and the on/off ratio.
    Both,
}

#[derive(Debug, Args)]
pub struct BenchAuditArgs {
    /// Records in the chain.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Concurrent appenders (each awaits its record's fsync before the next, as a
    /// request does).
    #[arg(long, default_value_t = 256)]
    pub appenders: u64,
    /// Where to write the chain (a temporary folder by default, removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Write the figures as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct BenchServeArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:7070. Without it the bench starts
    /// its own `freshet up` serving a logistic regression trained on synthetic data.
    #[arg(long)]
    pub url: Option<String>,
    /// Served model name (the default path is /serving-endpoints/{model}/invocations).
    #[arg(long)]
    pub model: String,
    /// Authentication of the bench's own server (no --url): off, on (a scorer token),
    /// or both (interleaved, three runs each).
    #[arg(long, value_enum, default_value_t = BenchAuth::Off)]
    pub auth: BenchAuth,
    /// Request path instead of the default, e.g. /invocations for `mlflow models serve`.
    #[arg(long)]
    pub path: Option<String>,
    /// Concurrent keep-alive connections, each sending its next request on the answer.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Numeric input columns of the default single-row `dataframe_records` bodies.
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Send this file as every request's body instead.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// Content type of the requests.
    #[arg(long, default_value = "application/json")]
    pub content_type: String,
    /// Seed of the default bodies' values.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Sample this server process's (and its children's) RSS and CPU during the run.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Write the figures as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchLearnersArgs {
    /// CSV file: numeric feature columns and a label column.
    #[arg(long)]
    pub data: PathBuf,
    /// Name of the label column.
    #[arg(long)]
    pub label: String,
    /// Write the figures as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seed of the randomised learners (adaptive tree, random forest).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct BenchTrackingArgs {
    /// Base URL of the tracking server, e.g. http://127.0.0.1:7070.
    #[arg(long)]
    pub url: String,
    /// Seconds per workload.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Runs in the search corpus.
    #[arg(long, default_value_t = 1000)]
    pub search_runs: usize,
    /// Points in the metric whose history is read.
    #[arg(long, default_value_t = 20_000)]
    pub history_points: usize,
    /// Write the figures as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Records per request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Commit policy: max rows per commit.
    #[arg(long)]
    pub max_rows: Option<usize>,
    /// Commit policy: max latency per commit, ms.
    #[arg(long)]
    pub max_latency_ms: Option<u64>,
    /// Where to put the server's data (a temporary folder by default, removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The lake's root (default: `lake` in the data folder). An `s3://<bucket>/<prefix>`
    /// measures ingest into S3, reached through the AWS environment (`AWS_ENDPOINT_URL`
    /// and `AWS_ALLOW_HTTP` for an S3-compatible store); use a fresh prefix per run.
    #[arg(long)]
    pub lake: Option<String>,
    /// Write the report as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Authentication of the server: off, on (a producer token), or both (interleaved,
    /// three runs each).
    #[arg(long, value_enum, default_value_t = BenchAuth::Off)]
    pub auth: BenchAuth,
}
