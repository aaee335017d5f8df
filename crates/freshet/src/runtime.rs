//! Wiring: from a loaded configuration to running tables, committers and sources.

use crate::lake_sink::{LakeSink, StreamTables, dlq_schema, events_schema};
use anyhow::{Context, Result};
use freshet_control::controller::LoopEvent;
use freshet_core::config::SourceConfig;
use freshet_core::{FreshetConfig, SystemClock};
use freshet_ingest::metrics::IngestMetrics;
use freshet_ingest::process::pii::PiiKey;
use freshet_ingest::service::{IngestService, build_pipelines};
use freshet_lake::{Lake, TableKind, TableOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Read, interpolate and validate a configuration file. Errors list every problem with
/// its key path.
pub fn load_config(path: &Path) -> Result<(FreshetConfig, PathBuf)> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (run `freshet init` to create one)",
            path.display()
        )
    })?;
    let mut config = FreshetConfig::from_yaml_str(&text).map_err(|errs| {
        let list: Vec<String> = errs.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!("{} is invalid:\n{}", path.display(), list.join("\n"))
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    // Files a source reads itself are taken from the config's folder, wherever it runs.
    for stream in config.streams.values_mut() {
        if let freshet_core::config::SourceConfig::PostgresCdc(p) = &mut stream.source
            && let Some(ca) = &mut p.tls_ca_file
            && Path::new(ca.as_str()).is_relative()
        {
            *ca = base.join(&*ca).display().to_string();
        }
    }
    Ok((config, base))
}

/// Sees what each model's loop did (model name, event).
pub type LoopObserver = Arc<dyn Fn(&str, &freshet_control::controller::LoopEvent) + Send + Sync>;

/// The PII policy of each model's stream, applied to scoring inputs: a hashed field is
/// hashed with the stream's key, a redacted one redacted, as ingest does.
#[derive(Debug)]
struct StreamPii {
    /// model → (field → action)
    actions: HashMap<String, HashMap<String, freshet_core::PiiAction>>,
    key: Option<PiiKey>,
}

impl freshet_serve::service::InputProtector for StreamPii {
    fn protect(&self, model: &str, input: &freshet_core::Schema, row: &mut [freshet_core::Value]) {
        let Some(actions) = self.actions.get(model) else {
            return;
        };
        for (f, v) in input.fields().iter().zip(row.iter_mut()) {
            let Some(action) = actions.get(&f.name) else {
                continue;
            };
            if v.is_null() {
                continue;
            }
            use freshet_ingest::process::pii::{REDACTED, protect_value};
            // A dropped field cannot be left out of a model's input: it is redacted.
            *v = protect_value(
                self.key.as_ref(),
                std::mem::replace(v, freshet_core::Value::Null),
                Some(*action),
            )
            .unwrap_or_else(|| freshet_core::Value::Str(REDACTED.into()));
        }
    }
}

/// The lake of a configuration, with relative paths taken from the config's folder; an
/// `s3://` lake is checked to be reachable and to honour conditional writes.
pub async fn open_lake(config: &FreshetConfig, base: &Path) -> Result<Lake> {
    let p = &config.lake.path;
    let root = if p.contains("://") || Path::new(p).is_absolute() {
        p.clone()
    } else {
        base.join(p).display().to_string()
    };
    Lake::open(&root, &config.s3)
        .await
        .with_context(|| format!("cannot open the lake at {root}"))
}

/// The tracking store of a configuration: Postgres when `registry.url` is set (shared
/// by every node), else its SQLite file relative to the config's folder.
pub fn open_tracking(
    config: &FreshetConfig,
    base: &Path,
) -> Result<Arc<dyn freshet_registry::Store>> {
    Ok(open_registry(config, base)?.0)
}

/// [`open_tracking`], with the Postgres store itself when there is one (the cluster's
/// leases live in the same database).
pub fn open_registry(
    config: &FreshetConfig,
    base: &Path,
) -> Result<(
    Arc<dyn freshet_registry::Store>,
    Option<freshet_registry::PostgresStore>,
)> {
    if let Some(url) = &config.registry.url {
        let ca = config.registry.tls_ca_file.as_ref().map(|f| {
            let p = Path::new(f);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        });
        let ca = ca.as_ref().map(|p| p.to_string_lossy().into_owned());
        let store = freshet_registry::PostgresStore::open(url, ca.as_deref(), "mlflow-artifacts:")
            .context("cannot open the registry in Postgres (registry.url)")?;
        tracing::info!(
            database = %freshet_core::secrets::url_origin(url),
            schema = store.schema_version().unwrap_or(0),
            "registry in postgres"
        );
        return Ok((Arc::new(store.clone()), Some(store)));
    }
    let p = Path::new(&config.registry.path);
    let path = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let store = freshet_registry::SqliteStore::open(&path, "mlflow-artifacts:")
        .with_context(|| format!("cannot open the registry at {}", path.display()))?;
    Ok((Arc::new(store), None))
}

/// The registry handle to act for `model` with and the lease token it acts at (0 for a
/// node alone): `None` when another node leads the model. A leader's handle is fenced:
/// its writes are refused once the lease has moved on.
pub fn leader_store(
    cluster: Option<&Arc<freshet_cluster::Cluster>>,
    default: &Arc<dyn freshet_registry::Store>,
    model: &str,
) -> Option<(i64, Arc<dyn freshet_registry::Store>)> {
    match cluster {
        None => Some((0, default.clone())),
        Some(c) => c
            .fenced_store(&freshet_cluster::model_lease(model))
            .map(|(t, s)| (t, Arc::new(s) as Arc<dyn freshet_registry::Store>)),
    }
}

/// Where live learners journal what they learn: beside the registry.
pub fn live_journal_dir(config: &FreshetConfig, base: &Path) -> PathBuf {
    let p = Path::new(&config.registry.path);
    let registry = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    registry
        .parent()
        .map_or_else(|| base.join("live"), |d| d.join("live"))
}

/// The schema of every stream's `events/<stream>` table as the configuration builds it
/// (declared fields after PII and transforms, with their ranges and categories, then
/// the system columns): what models are resolved and trained against.
pub fn events_schemas(
    config: &FreshetConfig,
    base: &Path,
) -> Result<std::collections::BTreeMap<String, freshet_core::Schema>> {
    let key = PiiKey::load(&config.pii, base).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pipelines = build_pipelines(config, key).map_err(|errs| {
        let list: Vec<String> = errs.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!("the configuration is invalid:\n{}", list.join("\n"))
    })?;
    Ok(pipelines
        .iter()
        .map(|(name, p)| (name.clone(), events_schema(p.output_schema())))
        .collect())
}

/// The artifact store of a configuration (a directory relative to the config's folder).
pub fn open_artifacts(
    config: &FreshetConfig,
    base: &Path,
) -> Result<Arc<dyn freshet_registry::artifacts::ArtifactStore>> {
    let location = &config.registry.artifacts;
    if location.starts_with("s3://") || location.starts_with("s3a://") {
        let store = freshet_registry::artifacts_s3::S3ArtifactStore::open(location, &config.s3)
            .with_context(|| format!("cannot open the artifact store at {location}"))?;
        return Ok(Arc::new(store));
    }
    let p = Path::new(location.strip_prefix("file://").unwrap_or(location));
    let root = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let store = freshet_registry::artifacts::LocalArtifactStore::new(&root)
        .with_context(|| format!("cannot open the artifact store at {}", root.display()))?;
    Ok(Arc::new(store))
}

/// Run a source until it finishes or `stop` turns true; when it fails (a commit that
/// could not be written, say) restart it after a pause. A restarted source resumes from
/// the position its table holds, so the retry neither loses nor repeats records.
async fn supervise<F, Fut, E>(name: String, stop: watch::Receiver<bool>, run: F)
where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut pause = Duration::from_millis(500);
    loop {
        match run(stop.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(stream = %name, error = %e, retry_in_ms = pause.as_millis() as u64, "source failed; restarting from the committed position")
            }
        }
        let mut stop_rx = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop_rx.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// Everything `freshet up` runs.
pub struct Runtime {
    pub config: FreshetConfig,
    pub base_dir: PathBuf,
    pub lake: Lake,
    pub sink: Arc<LakeSink>,
    pub ingest: Arc<IngestService>,
    pub registry: prometheus::Registry,
    /// Experiments, runs and their metrics (the MLflow tracking API).
    pub tracking: Arc<dyn freshet_registry::Store>,
    /// Run files and model directories (the mlflow-artifacts proxy).
    pub artifacts: Arc<dyn freshet_registry::artifacts::ArtifactStore>,
    /// The served models and the scoring path.
    pub scorer: Arc<freshet_serve::service::Scorer>,
    /// Every prediction, into `inference/<model>`.
    pub capture: Arc<freshet_serve::capture::Capture>,
    /// Drift, live accuracy and alerts per model.
    pub monitoring: Arc<crate::monitoring::Monitoring>,
    /// Identity, authorization and the audit chain.
    pub governance: Arc<freshet_govern::Governance>,
    /// Whether connector sources reach their brokers (`/readyz`).
    pub sources: freshet_ingest::health::SourceHealth,
    /// The label tables, shared by `POST .../feedback` and feedback topics.
    pub labels: Arc<freshet_serve::feedback::LabelTables>,
    /// Rollouts as the models' specs say, with the approvals: one for the controller's
    /// ticks, the loops' hand-overs and the rollout API.
    rollout: Arc<freshet_serve::rollout::RolloutController>,
    kafka_metrics: freshet_connect::kafka::KafkaMetrics,
    cdc_metrics: freshet_connect::pgcdc::CdcMetrics,
    pulsar_metrics: freshet_connect::pulsar::PulsarMetrics,
    /// The registry in Postgres, when it is there (several nodes may share it).
    postgres: Option<freshet_registry::PostgresStore>,
    /// Who leads what, once [`Runtime::start_cluster`] ran on a Postgres registry.
    pub cluster: Option<Arc<freshet_cluster::Cluster>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Runtime {
    /// Open (or create) every stream's tables and start the committers.
    pub async fn start(config: FreshetConfig, base_dir: PathBuf) -> Result<Self> {
        let pii_key = PiiKey::load(&config.pii, &base_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
        let pipelines = build_pipelines(&config, pii_key.clone()).map_err(|errs| {
            anyhow::anyhow!(
                "{}",
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })?;
        let lake = open_lake(&config, &base_dir).await?;
        let governance = crate::governance::open(&config, &base_dir)?;
        let options = TableOptions {
            partition_by: vec![freshet_core::system_columns::INGEST_DATE.to_string()],
            checkpoint_interval: config.lake.checkpoint_interval.get(),
        };
        let registry = prometheus::Registry::new_custom(None, None)?;
        // Sinks whose clients live in freshet-connect (Kafka, Pulsar), for predictions
        // and dead letters alike.
        let (kafka_sinks, pulsar_sinks) = (
            freshet_connect::kafka::sink::factory(),
            freshet_connect::pulsar::sink::factory(),
        );
        let topic_sinks: Box<freshet_serve::sinks::SinkFactory> = Box::new(move |model, spec| {
            kafka_sinks(model, spec).or_else(|| pulsar_sinks(model, spec))
        });
        let dead_dropped = freshet_serve::sinks::dead_letter_dropped_counter(&registry);
        let mut tables = HashMap::new();
        for (name, p) in &pipelines {
            let schema = events_schema(p.output_schema());
            let events = freshet_lake::Table::open_or_create(
                lake.url_for(TableKind::Events, name)?,
                &schema,
                &options,
            )
            .await
            .with_context(|| format!("stream '{name}': cannot open events/{name}"))?;
            let dlq = freshet_lake::Table::open_or_create(
                lake.url_for(TableKind::DeadLetter, name)?,
                &dlq_schema(),
                &options,
            )
            .await
            .with_context(|| format!("stream '{name}': cannot open dlq/{name}"))?;
            tables.insert(
                name.clone(),
                StreamTables {
                    events: Arc::new(events),
                    dlq: Arc::new(dlq),
                    user_columns: p.output_schema().len(),
                    events_schema: schema,
                    dlq_schema: dlq_schema(),
                    dead_letter_sinks: Arc::new(
                        config.streams[name]
                            .dead_letter_sinks
                            .iter()
                            .map(|spec| {
                                freshet_serve::sinks::Sink::start(
                                    name,
                                    &resolve_sink(spec, &base_dir),
                                    dead_dropped.clone(),
                                    Some(topic_sinks.as_ref()),
                                )
                                .map_err(|e| {
                                    anyhow::anyhow!("stream '{name}': a dead-letter sink: {e}")
                                })
                            })
                            .collect::<Result<Vec<_>>>()?,
                    ),
                },
            );
        }
        // Each model's prediction and label tables exist before anything writes them:
        // the model loop, the rollout task and the first feedback call all open them,
        // and two of them creating one at once would leave a handle that cannot commit.
        for model in config.models.keys() {
            for (table, schema) in [
                (
                    format!("inference/{model}"),
                    freshet_serve::capture::inference_schema(),
                ),
                (
                    format!("labels/{model}"),
                    freshet_serve::feedback::labels_schema(),
                ),
            ] {
                freshet_serve::feedback::open_table(&lake, &table, &schema)
                    .await
                    .with_context(|| format!("model '{model}': cannot open {table}"))?;
            }
        }
        let sink = Arc::new(LakeSink::new(tables));
        let metrics = IngestMetrics::new(&registry)?;
        let ingest = Arc::new(IngestService::start(
            &config,
            pipelines,
            sink.clone(),
            Arc::new(SystemClock),
            metrics,
        ));
        let (tracking, postgres) = open_registry(&config, &base_dir)?;
        let artifacts = open_artifacts(&config, &base_dir)?;
        // Sink file paths are relative to the config file, like every other path.
        let sinks = config
            .models
            .iter()
            .map(|(name, m)| {
                let specs = m.sinks.iter().map(|s| resolve_sink(s, &base_dir)).collect();
                (name.clone(), specs)
            })
            .collect();
        let capture = Arc::new(
            freshet_serve::capture::Capture::start_with_sinks(
                lake.clone(),
                freshet_serve::capture::CaptureOptions::default(),
                &registry,
                &sinks,
                Some(topic_sinks.as_ref()),
            )
            .map_err(anyhow::Error::msg)?,
        );
        let protector = StreamPii {
            actions: config
                .models
                .iter()
                .filter_map(|(name, m)| {
                    let stream = config.streams.get(&m.stream)?;
                    let fields = stream.schema.as_ref()?;
                    let map: HashMap<String, freshet_core::PiiAction> = fields
                        .fields
                        .iter()
                        .filter_map(|f| f.pii.map(|a| (f.name.clone(), a)))
                        .collect();
                    (!map.is_empty()).then(|| (name.clone(), map))
                })
                .collect(),
            key: pii_key,
        };
        let monitoring = Arc::new(crate::monitoring::Monitoring::new(&registry, &config)?);
        let live_specs: HashMap<String, freshet_core::model_spec::LiveSpec> = config
            .models
            .iter()
            .filter(|(_, m)| m.serving == freshet_core::model_spec::ServingMode::Live)
            .map(|(name, m)| (name.clone(), m.live.clone()))
            .collect();
        let live = Arc::new(freshet_serve::live::LiveHub::new(
            live_specs,
            Some(live_journal_dir(&config, &base_dir)),
            Some(monitoring.clone() as Arc<dyn freshet_serve::live::LiveObserver>),
        ));
        let scorer = Arc::new(
            freshet_serve::service::Scorer::new(
                Arc::new(freshet_serve::router::Endpoints::new()),
                Some(capture.clone()),
            )
            .with_metrics(freshet_serve::metrics::ServeMetrics::new(&registry)?)
            .with_protector(Arc::new(protector))
            .with_live(live),
        );
        let kafka_metrics = freshet_connect::kafka::KafkaMetrics::new(&registry)?;
        let cdc_metrics = freshet_connect::pgcdc::CdcMetrics::new(&registry)?;
        let pulsar_metrics = freshet_connect::pulsar::PulsarMetrics::new(&registry)?;
        let (stop, _) = watch::channel(false);
        let rollout = Arc::new(
            freshet_serve::rollout::RolloutController::from_models(&config.models)
                .with_approvals(governance.approvals().clone()),
        );
        Ok(Self {
            rollout,
            governance,
            sources: Default::default(),
            labels: Arc::default(),
            kafka_metrics,
            cdc_metrics,
            pulsar_metrics,
            monitoring,
            config,
            base_dir,
            lake,
            sink,
            ingest,
            registry,
            tracking,
            artifacts,
            scorer,
            capture,
            postgres,
            cluster: None,
            stop,
            tasks: Vec::new(),
        })
    }

    /// On a Postgres registry, join the cluster as the node serving at `address`: take
    /// the leases of the models and tables it can (a first round now, so the loops
    /// started next know what this node leads), then keep renewing them. A node alone
    /// on SQLite leads everything and does nothing here.
    pub async fn start_cluster(&mut self, address: std::net::SocketAddr) -> Result<()> {
        let Some(store) = self.postgres.clone() else {
            return Ok(());
        };
        let node_id = self
            .config
            .cluster
            .node_id
            .clone()
            .unwrap_or_else(freshet_cluster::default_node_id);
        let cluster = Arc::new(freshet_cluster::Cluster::new(
            store,
            node_id,
            address.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
            Duration::from_millis(self.config.cluster.lease_ttl_ms),
        ));
        let mut leases: Vec<String> = self
            .config
            .models
            .keys()
            .map(|m| freshet_cluster::model_lease(m))
            .collect();
        if self.config.lake.compaction.enabled {
            leases.extend(self.sink.tables().flat_map(|(_, t)| {
                [t.events.url().to_string(), t.dlq.url().to_string()]
                    .map(|u| freshet_cluster::maintenance_lease(&u))
            }));
        }
        let log = |changes: Vec<freshet_cluster::Change>| {
            for c in changes {
                match c {
                    freshet_cluster::Change::Lead { lease, token } => {
                        tracing::info!(%lease, token, "leading")
                    }
                    freshet_cluster::Change::Lost { lease, token, why } => {
                        tracing::warn!(%lease, token, why, "stepped down")
                    }
                }
            }
        };
        let (c, l) = (cluster.clone(), leases.clone());
        log(tokio::task::spawn_blocking(move || c.round(&l)).await?);
        tracing::info!(node = %cluster.node_id(), leases = leases.len(), ttl_ms = self.config.cluster.lease_ttl_ms, "joined the cluster");
        let mut stop = self.stop.subscribe();
        let c = cluster.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(c.round_interval());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                let (c2, l) = (c.clone(), leases.clone());
                match tokio::task::spawn_blocking(move || c2.round(&l)).await {
                    Ok(changes) => log(changes),
                    Err(e) => tracing::error!(error = %e, "cluster round panicked"),
                }
            }
            // A clean stop hands the leases over at once.
            let c2 = c.clone();
            let _ = tokio::task::spawn_blocking(move || c2.release_all()).await;
        }));
        self.cluster = Some(cluster);
        Ok(())
    }

    /// What the HTTP handlers share; `ready` turns true once the server listens.
    pub fn app_state(&self, ready: Arc<std::sync::atomic::AtomicBool>) -> crate::server::AppState {
        crate::server::AppState {
            ingest: self.ingest.clone(),
            registry: self.registry.clone(),
            tracking: self.tracking.clone(),
            artifacts: self.artifacts.clone(),
            scorer: self.scorer.clone(),
            lake: self.lake.clone(),
            labels: self.labels.clone(),
            monitoring: self.monitoring.clone(),
            ready,
            sources: self.sources.clone(),
            governance: self.governance.clone(),
            models: self.config.models.keys().cloned().collect(),
            rollout: self.rollout.clone(),
            cluster: self.cluster.clone(),
        }
    }

    /// Start generator and followed-file sources.
    pub fn start_sources(&mut self) {
        for (name, s) in &self.config.streams {
            match &s.source {
                SourceConfig::Generator(g) => {
                    let (svc, name, g, stop) = (
                        self.ingest.clone(),
                        name.clone(),
                        g.clone(),
                        self.stop.subscribe(),
                    );
                    self.tasks
                        .push(tokio::spawn(supervise(name.clone(), stop, move |stop| {
                            let (svc, name, g) = (svc.clone(), name.clone(), g.clone());
                            async move {
                                let pos = freshet_ingest::source::synthetic::run_generator(
                                    svc,
                                    name.clone(),
                                    g,
                                    stop,
                                )
                                .await?;
                                tracing::info!(stream = %name, position = pos, "generator stopped");
                                Ok::<(), freshet_ingest::IngestError>(())
                            }
                        })));
                }
                SourceConfig::File {
                    path,
                    format,
                    follow,
                    poll_ms,
                } => {
                    let path = if path.is_absolute() {
                        path.clone()
                    } else {
                        self.base_dir.join(path)
                    };
                    let Some(fmt) =
                        format.or_else(|| freshet_core::config::FileFormat::from_path(&path))
                    else {
                        continue;
                    };
                    let mut opts = freshet_ingest::source::file::FileOptions::new(fmt);
                    opts.follow = *follow;
                    opts.poll = Duration::from_millis(poll_ms.get());
                    let (svc, name, stop) =
                        (self.ingest.clone(), name.clone(), self.stop.subscribe());
                    self.tasks.push(tokio::spawn(supervise(name.clone(), stop, move |stop| {
                        let (svc, name, path, opts) = (svc.clone(), name.clone(), path.clone(), opts.clone());
                        async move {
                            let p = freshet_ingest::source::file::ingest_file(&svc, &name, &path, &opts, stop, &|_| {}).await?;
                            tracing::info!(stream = %name, offset = p.offset, accepted = p.accepted, "file source done");
                            Ok::<(), freshet_ingest::IngestError>(())
                        }
                    })));
                }
                SourceConfig::Kafka(k) => {
                    let (svc, name, k, stop) = (
                        self.ingest.clone(),
                        name.clone(),
                        k.clone(),
                        self.stop.subscribe(),
                    );
                    let (health, metrics) = (self.sources.clone(), self.kafka_metrics.clone());
                    self.tasks
                        .push(tokio::spawn(supervise(name.clone(), stop, move |stop| {
                            freshet_connect::kafka::run_kafka(
                                svc.clone(),
                                name.clone(),
                                k.clone(),
                                freshet_connect::kafka::KafkaOptions::default(),
                                health.clone(),
                                metrics.clone(),
                                stop,
                            )
                        })));
                }
                SourceConfig::PostgresCdc(p) => {
                    let (svc, name, p, stop) = (
                        self.ingest.clone(),
                        name.clone(),
                        p.clone(),
                        self.stop.subscribe(),
                    );
                    let (health, metrics) = (self.sources.clone(), self.cdc_metrics.clone());
                    self.tasks
                        .push(tokio::spawn(supervise(name.clone(), stop, move |stop| {
                            freshet_connect::pgcdc::run_postgres_cdc(
                                svc.clone(),
                                name.clone(),
                                p.clone(),
                                health.clone(),
                                metrics.clone(),
                                stop,
                            )
                        })));
                }
                SourceConfig::Pulsar(p) => {
                    let (svc, name, p, stop) = (
                        self.ingest.clone(),
                        name.clone(),
                        p.clone(),
                        self.stop.subscribe(),
                    );
                    let (health, metrics) = (self.sources.clone(), self.pulsar_metrics.clone());
                    self.tasks
                        .push(tokio::spawn(supervise(name.clone(), stop, move |stop| {
                            freshet_connect::pulsar::run_pulsar(
                                svc.clone(),
                                name.clone(),
                                p.clone(),
                                freshet_connect::pulsar::PulsarOptions::default(),
                                health.clone(),
                                metrics.clone(),
                                stop,
                            )
                        })));
                }
                SourceConfig::Http {} => {}
            }
        }
    }

    /// The topics models are tied to: bindings (`models.<name>.bind`) score events and
    /// answer on their output topics; feedback topics (`models.<name>.feedback`) land
    /// labels in `labels/<name>`. Each is reported in `/readyz` under its own name.
    pub fn start_model_topics(&mut self) {
        use freshet_connect::kafka::{bind, feedback};
        use freshet_core::config_connect::{BindSpec, FeedbackSpec};
        let sink = Arc::new(feedback::LabelSink {
            tables: self.labels.clone(),
            lake: self.lake.clone(),
            live: self.scorer.live.clone(),
        });
        let models: Vec<_> = self
            .config
            .models
            .iter()
            .map(|(m, s)| (m.clone(), s.bind.clone(), s.feedback.clone()))
            .collect();
        for (model, binds, feedbacks) in models {
            for spec in binds {
                let (scorer, model, health) =
                    (self.scorer.clone(), model.clone(), self.sources.clone());
                match spec {
                    BindSpec::Kafka(k) => {
                        self.supervised(bind::binding_name(&model, &k), move |stop| {
                            bind::run_binding(
                                scorer.clone(),
                                model.clone(),
                                k.clone(),
                                bind::BindOptions::default(),
                                health.clone(),
                                stop,
                            )
                        })
                    }
                    BindSpec::Pulsar(p) => {
                        use freshet_connect::pulsar::bind as pulsar_bind;
                        self.supervised(pulsar_bind::binding_name(&model, &p), move |stop| {
                            pulsar_bind::run_binding(
                                scorer.clone(),
                                model.clone(),
                                p.clone(),
                                bind::BindOptions::default(),
                                health.clone(),
                                stop,
                            )
                        })
                    }
                }
            }
            for spec in feedbacks {
                let (sink, model, health) = (sink.clone(), model.clone(), self.sources.clone());
                match spec {
                    FeedbackSpec::Kafka(k) => {
                        self.supervised(feedback::feedback_name(&model, &k), move |stop| {
                            feedback::run_feedback(
                                sink.clone(),
                                model.clone(),
                                k.clone(),
                                health.clone(),
                                stop,
                            )
                        })
                    }
                    FeedbackSpec::Pulsar(p) => {
                        use freshet_connect::pulsar::feedback as pulsar_feedback;
                        self.supervised(pulsar_feedback::feedback_name(&model, &p), move |stop| {
                            pulsar_feedback::run_feedback(
                                sink.clone(),
                                model.clone(),
                                p.clone(),
                                health.clone(),
                                stop,
                            )
                        })
                    }
                }
            }
        }
    }

    /// Run `run` under [`supervise`] until the runtime stops.
    fn supervised<F, Fut, E>(&mut self, name: String, run: F)
    where
        F: Fn(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + 'static,
    {
        let stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(supervise(name, stop, run)));
    }

    /// Keep the served models in line with the registry's aliases: a moved `champion`
    /// or `challenger` alias is served within `interval`, without a restart.
    pub fn start_serving(&mut self, interval: Duration) {
        let endpoints = self.scorer.endpoints.clone();
        let store = self.tracking.clone();
        let artifacts = self.artifacts.clone();
        let mut stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                let (e, s, a) = (endpoints.clone(), store.clone(), artifacts.clone());
                let done = tokio::task::spawn_blocking(move || {
                    e.refresh(
                        s.as_ref(),
                        a.as_ref(),
                        &freshet_serve::rollout::RolloutModes,
                    )
                })
                .await;
                if let Ok(Err(e)) = done {
                    tracing::warn!(error = %e, "cannot refresh the served models");
                }
            }
        }));
    }

    /// Run the rollout controller: every `interval`, each model with `rollout.auto`
    /// and a rollout in progress is judged on what serving recorded and on the labels
    /// of the predictions made since its phase began (joined afresh every round while
    /// a rollout is in progress), and moved on, rolled back or paused.
    pub fn start_rollouts(&mut self, interval: Duration) {
        let controller = self.rollout.clone();
        let endpoints = self.scorer.endpoints.clone();
        let store = self.tracking.clone();
        let lake = self.lake.clone();
        // Only these are ever judged by the controller.
        let models: Vec<String> = self
            .config
            .models
            .iter()
            .filter(|(_, m)| m.rollout.auto)
            .map(|(name, _)| name.clone())
            .collect();
        let monitoring = self.monitoring.clone();
        let governance = self.governance.clone();
        let cluster = self.cluster.clone();
        let mut stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Per model, the phase being judged and where its label join reads from:
            // each round reads the commits since the phase began, not whole tables.
            let mut anchors: HashMap<String, (i64, freshet_serve::feedback::PhaseAnchor)> =
                HashMap::new();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                // Only the models this node leads, each with its fenced handle: a
                // follower reads neither their rollout states nor their label tables.
                let led: Vec<(String, Arc<dyn freshet_registry::Store>)> = models
                    .iter()
                    .filter_map(|m| {
                        leader_store(cluster.as_ref(), &store, m).map(|(_, s)| (m.clone(), s))
                    })
                    .collect();
                // Of those, the ones with a rollout to judge, and when their phase began.
                let (st, names) = (
                    store.clone(),
                    led.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
                );
                let active: Vec<(String, i64)> = tokio::task::spawn_blocking(move || {
                    names
                        .into_iter()
                        .filter_map(|m| {
                            let s = freshet_serve::rollout::load_state(st.as_ref(), &m)
                                .ok()
                                .flatten()
                                .filter(|s| s.phase.is_active())?;
                            Some((m, s.phase_started_ms))
                        })
                        .collect()
                })
                .await
                .unwrap_or_default();
                let recent = chrono::Utc::now().timestamp_millis()
                    - freshet_serve::evidence::LABELS_FLOWING_MS;
                let mut labels = freshet_serve::evidence::LabelFigures::new();
                let mut windows = HashMap::new();
                anchors.retain(|m, _| active.iter().any(|(a, _)| a == m));
                for (m, since) in &active {
                    // Each phase reads the tables from where they stood when it began.
                    let anchor = match anchors.get(m) {
                        Some((s, a)) if s == since => *a,
                        _ => match freshet_serve::feedback::PhaseAnchor::now(&lake, m).await {
                            Ok(a) => {
                                anchors.insert(m.clone(), (*since, a));
                                a
                            }
                            Err(e) => {
                                tracing::debug!(model = %m, error = %e, "no label join yet");
                                continue;
                            }
                        },
                    };
                    match freshet_serve::feedback::performance_from(
                        &lake, m, *since, recent, anchor,
                    )
                    .await
                    {
                        Ok(join) => {
                            let (figures, window) =
                                freshet_serve::evidence::phase_label_figures(m, *since, &join);
                            labels.extend(figures);
                            windows.insert(m.clone(), window);
                        }
                        Err(e) => tracing::debug!(model = %m, error = %e, "no label join yet"),
                    }
                }
                let led: Vec<_> = led
                    .into_iter()
                    .filter(|(m, _)| active.iter().any(|(a, _)| a == m))
                    .collect();
                let (c, e, l, w) = (controller.clone(), endpoints.clone(), labels, windows);
                let outcome = tokio::task::spawn_blocking(move || {
                    let now = chrono::Utc::now().timestamp_millis();
                    let source = freshet_serve::evidence::ServedEvidence {
                        endpoints: &e,
                        labels: &l,
                        windows: &w,
                        now_ms: now,
                    };
                    led.into_iter()
                        .map(|(m, s)| {
                            let t = c.tick(s.as_ref(), &source, &m, now);
                            (m, t)
                        })
                        .collect::<Vec<_>>()
                })
                .await;
                for (model, result) in outcome.unwrap_or_default() {
                    match result {
                        Ok(freshet_serve::rollout::Transition::Stay) => {}
                        Ok(t) => {
                            tracing::info!(model, transition = ?t, "rollout moved");
                            monitoring.observe_rollout(&model, &t);
                            let (action, why) = match &t {
                                freshet_serve::rollout::Transition::Enter(p) => ("rollout.enter", p.to_string()),
                                freshet_serve::rollout::Transition::Promote => ("rollout.promote", String::new()),
                                freshet_serve::rollout::Transition::Rollback(r) => ("rollout.rollback", r.clone()),
                                freshet_serve::rollout::Transition::Pause(r) => ("rollout.pause", r.clone()),
                                freshet_serve::rollout::Transition::AwaitApproval(r) => ("rollout.await_approval", r.clone()),
                                freshet_serve::rollout::Transition::Stay => ("rollout.stay", String::new()),
                            };
                            let ev = freshet_govern::audit::AuditEvent::new(
                                "system:rollout",
                                action,
                                format!("model:{model}"),
                                uuid::Uuid::now_v7().to_string(),
                                freshet_govern::audit::Outcome::Succeeded,
                            )
                            .with_detail("reason", why);
                            if let Err(e) = governance.audit().append(ev).await {
                                tracing::error!(model, error = %e, "cannot audit a rollout decision");
                            }
                        }
                        Err(
                            freshet_serve::rollout::RolloutError::NoRollout(_)
                            | freshet_serve::rollout::RolloutError::UnknownModel(_),
                        ) => {}
                        Err(e) => tracing::warn!(model, error = %e, "rollout tick failed"),
                    }
                }
            }
        }));
    }

    /// Run the loop controller of every declared model: triggers, one training job at a
    /// time, gates, hand-over to the rollout (docs/loop.md). `on_event` sees what each
    /// loop did (the demo narrates it; `freshet up` logs it).
    pub fn start_loops(&mut self, interval: Duration, on_event: LoopObserver) -> Result<()> {
        // The stream tables' schemas, as the pipelines built at start-up made them.
        let schemas: HashMap<&String, &freshet_core::Schema> = self
            .sink
            .tables()
            .map(|(name, t)| (name, &t.events_schema))
            .collect();
        // What the loops do, as Prometheus series beside the serving ones.
        let events = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "freshet_loop_events_total",
                "What each model's loop did: drift, trained, gated_out, coalesced, job_failed",
            ),
            &["model", "event"],
        )?;
        let _ = self.registry.register(Box::new(events.clone()));
        let monitoring = self.monitoring.clone();
        let governance = self.governance.clone();
        let on_event: LoopObserver = Arc::new(move |model: &str, e: &LoopEvent| {
            monitoring.observe_loop(model, e);
            let kind = match e {
                LoopEvent::Monitored { .. } | LoopEvent::LiveAccuracy { .. } => {
                    on_event(model, e);
                    return;
                }
                LoopEvent::DriftDetected { .. } => "drift",
                LoopEvent::Trained { gates, .. } if !gates.passed => "gated_out",
                LoopEvent::Trained { .. } => "trained",
                LoopEvent::Coalesced { .. } => "coalesced",
                LoopEvent::JobFailed { .. } => "job_failed",
                LoopEvent::RolloutSuperseded { .. } => "rollout_superseded",
            };
            events.with_label_values(&[model, kind]).inc();
            // Every decision of the loop goes into the audit chain.
            let mut ev = freshet_govern::audit::AuditEvent::new(
                "system:loop",
                format!("loop.{kind}"),
                format!("model:{model}"),
                uuid::Uuid::now_v7().to_string(),
                freshet_govern::audit::Outcome::Succeeded,
            );
            match e {
                LoopEvent::Trained {
                    version,
                    trigger,
                    table_version,
                    ..
                } => {
                    ev = ev
                        .with_detail("version", version.to_string())
                        .with_detail("trigger", trigger.clone())
                        .with_detail("table_version", table_version.to_string());
                }
                LoopEvent::DriftDetected { reason, .. } => {
                    ev = ev.with_detail("reason", reason.clone())
                }
                LoopEvent::JobFailed { reason } => {
                    ev = ev.with_detail("reason", reason.clone());
                    ev.outcome = freshet_govern::audit::Outcome::Failed;
                }
                _ => {}
            }
            let audit = governance.audit().clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = audit.append(ev).await {
                        tracing::error!(error = %e, "cannot audit a loop decision");
                    }
                });
            } else if let Err(e) = audit.append_blocking(ev) {
                tracing::error!(error = %e, "cannot audit a loop decision");
            }
            on_event(model, e);
        });
        let deps = freshet_control::controller::LoopDeps {
            store: self.tracking.clone(),
            artifacts: self.artifacts.clone(),
            lake: self.lake.clone(),
            rollout: self.rollout.clone(),
            tracking_uri: format!(
                "{}://{}",
                if self.config.auth.tls.is_some() {
                    "https"
                } else {
                    "http"
                },
                self.config.server.listen
            ),
            job_token: self.config.auth.enabled.then(|| {
                let gov = self.governance.clone();
                let mint: freshet_control::controller::JobTokenMinter =
                    Arc::new(move |model: &str, job: &str, secs: u64| {
                        crate::governance::mint_job_token(&gov, model, job, secs)
                    });
                mint
            }),
        };
        for (name, spec) in &self.config.models {
            let Some(schema) = schemas.get(&spec.stream).map(|s| (*s).clone()) else {
                continue;
            };
            let (spec, deps) = (spec.clone(), deps.clone());
            let cluster = self.cluster.clone();
            let mut stop = self.stop.subscribe();
            let on_event = on_event.clone();
            let name = name.clone();
            self.tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                // The loop runs only while this node leads the model, and acts through
                // the registry handle fenced at the token it leads at; a new token (the
                // lease lost and retaken) starts it afresh from the registry's state.
                let mut current: Option<(i64, freshet_control::ModelLoop)> = None;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.changed() => break,
                    }
                    let Some((token, store)) = leader_store(cluster.as_ref(), &deps.store, &name)
                    else {
                        if current.take().is_some() {
                            tracing::info!(model = %name, "loop stopped: another node leads the model");
                        }
                        continue;
                    };
                    if current.as_ref().map(|c| c.0) != Some(token) {
                        if cluster.is_some() {
                            tracing::info!(model = %name, token, "loop started: this node leads the model");
                        }
                        let deps = freshet_control::controller::LoopDeps {
                            store,
                            ..deps.clone()
                        };
                        current = Some((
                            token,
                            freshet_control::ModelLoop::new(&name, spec.clone(), schema.clone(), deps),
                        ));
                    }
                    let Some((_, model_loop)) = current.as_mut() else {
                        continue;
                    };
                    match model_loop.tick().await {
                        Ok(events) => {
                            for e in &events {
                                on_event(&name, e);
                            }
                        }
                        Err(e) => tracing::warn!(model = %name, error = %e, "loop tick failed"),
                    }
                }
            }));
        }
        Ok(())
    }

    /// Background compaction and vacuum of every table.
    pub fn start_maintenance(&mut self) {
        let c = self.config.lake.compaction.clone();
        if !c.enabled {
            return;
        }
        let retention = self.config.lake.retention_hours;
        let tables: Vec<_> = self
            .sink
            .tables()
            .flat_map(|(_, t)| [t.events.clone(), t.dlq.clone()])
            .collect();
        let cluster = self.cluster.clone();
        let mut stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(c.interval_secs.get()));
            tick.tick().await;
            let mut rounds = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                for t in &tables {
                    // One node per table: the one holding its maintenance lease.
                    if let Some(c) = &cluster
                        && c.token(&freshet_cluster::maintenance_lease(t.url().as_str()))
                            .is_none()
                    {
                        continue;
                    }
                    match t
                        .compact(c.small_file_mb.get() << 20, c.min_files.get())
                        .await
                    {
                        Ok(m) if m.files_removed > 0 => tracing::info!(
                            table = %t.url(),
                            partitions = m.partitions_compacted,
                            files_removed = m.files_removed,
                            files_added = m.files_added,
                            version = m.version.unwrap_or(-1),
                            "compacted"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(table = %t.url(), error = %e, "compaction failed"),
                    }
                    // Vacuum about hourly, whatever the compaction interval.
                    if rounds.is_multiple_of((3600 / c.interval_secs.get().max(1)).max(1))
                        && let Err(e) = t.vacuum(retention).await
                    {
                        tracing::warn!(table = %t.url(), error = %e, "vacuum failed");
                    }
                }
                rounds += 1;
            }
        }));
    }

    /// Stop sources and wait for buffered records to be committed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.capture.shutdown()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.ingest.buffered() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A final checkpoint seals what was appended.
        if let Err(e) = self.governance.audit().checkpoint_now() {
            tracing::warn!(error = %e, "cannot write the closing audit checkpoint");
        }
    }
}

/// A sink as configured, with an NDJSON path made relative to the config file's folder.
fn resolve_sink(
    spec: &freshet_core::model_spec::SinkSpec,
    base_dir: &Path,
) -> freshet_core::model_spec::SinkSpec {
    match spec {
        freshet_core::model_spec::SinkSpec::Ndjson { path } if !Path::new(path).is_absolute() => {
            freshet_core::model_spec::SinkSpec::Ndjson {
                path: base_dir.join(path).display().to_string(),
            }
        }
        other => other.clone(),
    }
}
