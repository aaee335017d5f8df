//! Lineage, both ways, from the records the loop already keeps. Up: from an inference
//! request or a model version to the run, the table version and the sources its rows
//! came from. Down: from a table version to every version whose training window held
//! rows of it, the periods each served under an alias (and who approved), and the
//! predictions each made. The champion at any time comes from the registry's alias
//! history (rules in `freshet_govern::lineage`).

use crate::error::{ControlError, Result};
use crate::job::sort_by_arrival;
use freshet_core::system_columns as sys;
use freshet_core::{Field, FieldType, Schema, Value};
use freshet_govern::approvals::{Approvals, State};
use freshet_govern::lineage::{self as rules, AliasMove, Period};
use freshet_lake::arrow::array::{Array, Int64Array, StringArray};
use freshet_lake::arrow::compute::cast;
use freshet_lake::arrow::datatypes::DataType;
use freshet_lake::arrow::record_batch::RecordBatch;
use freshet_lake::{Lake, LakeError, Table};
use freshet_registry::models::ModelQuery;
use freshet_registry::{RegistryError, Store};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a version learnt from.
#[derive(Debug, Clone, Serialize)]
pub struct TrainedOn {
    /// e.g. `events/cards`.
    pub table: String,
    pub table_uri: String,
    pub table_version: i64,
    /// Rows in that table version.
    pub table_rows: u64,
    /// The training window: the newest `window_rows` rows of that version in arrival
    /// order (train, holdout and rows without a usable label).
    pub window_rows: u64,
    /// Rows of the window per `_source` (`http`, `file:…`, `generator:…`).
    pub sources: BTreeMap<String, u64>,
}

/// The predictions a version made, as captured in `inference/<model>`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Predictions {
    pub table: String,
    pub rows: u64,
    /// Rows per variant that answered (`champion`, `challenger`, `shadow`, …).
    pub by_variant: BTreeMap<String, u64>,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// One version, up and down.
#[derive(Debug, Clone, Serialize)]
pub struct VersionLineage {
    pub model: String,
    pub version: i64,
    pub created_ms: i64,
    /// Who registered it.
    pub created_by: String,
    pub run_id: String,
    pub experiment_id: Option<String>,
    /// Why the loop trained it, when the loop did.
    pub trigger: Option<String>,
    /// `passed` or `failed` when the loop gated it.
    pub gates: Option<String>,
    /// `None` for a version registered from elsewhere (an MLflow client's own run).
    pub trained_on: Option<TrainedOn>,
    /// Every period an alias named it, oldest first.
    pub served: Vec<Period>,
    pub predictions: Predictions,
}

/// One captured answer and the version behind it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestLineage {
    pub request_id: String,
    pub model: String,
    pub ts_ms: Option<i64>,
    /// Each version that scored the request's rows, with its variant and row count
    /// (a shadow scores the same rows without answering).
    pub answers: Vec<Answer>,
    /// The lineage of the version whose answer was returned.
    pub version: VersionLineage,
}

#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub version: i64,
    pub variant: String,
    pub rows: u64,
}

/// A table version and what learnt from it.
#[derive(Debug, Clone, Serialize)]
pub struct TableLineage {
    pub table: String,
    pub table_version: i64,
    /// Rows the commit of that version added (by arrival position).
    pub rows_added: u64,
    pub committed_ms: Option<i64>,
    pub versions: Vec<VersionLineage>,
}

/// Which version held the alias at a time.
#[derive(Debug, Clone, Serialize)]
pub struct HolderAt {
    pub model: String,
    pub alias: String,
    pub at_ms: i64,
    pub period: Option<Period>,
    /// When the registry's alias history starts for this model (earlier times are
    /// not known).
    pub history_from_ms: Option<i64>,
}

/// Lineage queries over the registry, the lake and the approvals.
#[derive(Clone)]
pub struct LineageService {
    store: Arc<dyn Store>,
    lake: Lake,
    approvals: Option<Arc<Approvals>>,
    /// Declared models: where a request id is looked for when no model is named.
    models: Vec<String>,
}

fn not_found(what: String) -> ControlError {
    ControlError::Registry(RegistryError::NotFound(what))
}

fn tag(tags: &[freshet_registry::model::Tag], key: &str) -> Option<String> {
    tags.iter().find(|t| t.key == key).map(|t| t.value.clone())
}

fn strings(b: &RecordBatch, i: usize) -> Result<StringArray> {
    let c = cast(b.column(i), &DataType::Utf8).map_err(LakeError::from)?;
    Ok(c.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .unwrap_or_else(|| StringArray::from(Vec::<Option<String>>::new())))
}

fn ints(b: &RecordBatch, i: usize) -> Result<Int64Array> {
    let c = cast(b.column(i), &DataType::Int64).map_err(LakeError::from)?;
    Ok(c.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .unwrap_or_else(|| Int64Array::from(Vec::<Option<i64>>::new())))
}

/// The day (`YYYY-MM-DD`) of a UUIDv7 request id's timestamp and the days either
/// side; `None` for an id of another kind.
fn days_of_request(id: &str) -> Option<[String; 3]> {
    let u = uuid::Uuid::try_parse(id).ok()?;
    if u.get_version_num() != 7 {
        return None;
    }
    let (secs, _) = u.get_timestamp()?.to_unix();
    let day = chrono::DateTime::from_timestamp(secs as i64, 0)?.date_naive();
    let d = |n: i64| (day + chrono::Duration::days(n)).to_string();
    Some([d(-1), d(0), d(1)])
}

impl LineageService {
    pub fn new(
        store: Arc<dyn Store>,
        lake: Lake,
        approvals: Option<Arc<Approvals>>,
        models: Vec<String>,
    ) -> Self {
        Self {
            store,
            lake,
            approvals,
            models,
        }
    }

    /// Every period of every alias of `model`, with approvers filled in.
    fn periods(&self, model: &str) -> Result<Vec<Period>> {
        let moves: Vec<AliasMove> = self
            .store
            .alias_history(model)?
            .into_iter()
            .map(|c| AliasMove {
                alias: c.alias,
                version: c.version,
                at_ms: c.at_ms,
            })
            .collect();
        let mut periods = rules::periods(&moves);
        if let Some(approvals) = &self.approvals {
            let approved =
                approvals
                    .list(Some(State::Approved))
                    .map_err(|e| ControlError::Job {
                        model: model.to_string(),
                        reason: format!("approvals unreadable: {e}"),
                    })?;
            for p in periods.iter_mut().filter(|p| p.alias == "champion") {
                // The newest approval of this version decided before it took over.
                p.approved_by = approved
                    .iter()
                    .filter(|a| a.model == model && a.version == p.version)
                    .filter(
                        |a| match (a.decided_at.map(|t| t.timestamp_millis()), p.from_ms) {
                            (Some(d), Some(f)) => d <= f,
                            _ => true,
                        },
                    )
                    .max_by_key(|a| a.decided_at)
                    .and_then(|a| a.decided_by.clone());
            }
        }
        Ok(periods)
    }

    /// The rows a version's training window held (train, holdout and rows without a
    /// usable label, from its run's params); `None` when its run does not say.
    fn window_of(run: Option<&freshet_registry::model::Run>) -> Option<u64> {
        let run = run?;
        let rows: Vec<u64> = ["train_rows", "holdout_rows", "skipped_rows"]
            .iter()
            .filter_map(|k| run.data.params.iter().find(|p| p.key == *k))
            .filter_map(|p| p.value.parse().ok())
            .collect();
        (!rows.is_empty()).then(|| rows.iter().sum())
    }

    async fn open(&self, name: &str) -> Result<Option<Table>> {
        let url = self.lake.table_url(name)?;
        match Table::open(url).await {
            Ok(t) => Ok(Some(t)),
            Err(LakeError::NotATable(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `model`'s version `version`, up (run, table, sources) and down (periods,
    /// predictions).
    pub async fn version(&self, model: &str, version: i64) -> Result<VersionLineage> {
        let mut preds = self.predictions_of(model).await?;
        self.version_with(model, version, &mut preds).await
    }

    /// [`version`](Self::version) with `model`'s predictions already counted.
    async fn version_with(
        &self,
        model: &str,
        version: i64,
        preds: &mut BTreeMap<i64, Predictions>,
    ) -> Result<VersionLineage> {
        let mv = self.store.get_model_version(model, version)?;
        let run = (!mv.run_id.is_empty())
            .then(|| self.store.get_run(&mv.run_id).ok())
            .flatten();
        let trained_on = match (
            tag(&mv.tags, "freshet.table"),
            tag(&mv.tags, "freshet.table_version").and_then(|v| v.parse::<i64>().ok()),
        ) {
            (Some(table), Some(tv)) => {
                let window = Self::window_of(run.as_ref()).unwrap_or(0);
                Some(self.trained_on(&table, tv, window).await?)
            }
            _ => None,
        };
        let served = self
            .periods(model)?
            .into_iter()
            .filter(|p| p.version == version)
            .collect();
        let predictions = preds.remove(&version).unwrap_or_else(|| Predictions {
            table: format!("inference/{model}"),
            ..Default::default()
        });
        Ok(VersionLineage {
            model: model.to_string(),
            version,
            created_ms: mv.creation_timestamp,
            created_by: mv.user_id.clone(),
            run_id: mv.run_id.clone(),
            experiment_id: run.as_ref().map(|r| r.info.experiment_id.clone()),
            trigger: tag(&mv.tags, "freshet.trigger"),
            gates: tag(&mv.tags, "freshet.gates"),
            trained_on,
            served,
            predictions,
        })
    }

    /// The table, its rows at `tv` and the sources of the newest `window` of them
    /// (all rows when the window is unknown).
    async fn trained_on(&self, table: &str, tv: i64, window: u64) -> Result<TrainedOn> {
        let Some(t) = self.open(table).await? else {
            return Err(not_found(format!("table {table} not found")));
        };
        let info = t.info(Some(tv)).await?;
        let window = if window == 0 {
            info.rows
        } else {
            window.min(info.rows)
        };
        let has = |c: &str| info.columns.iter().any(|(n, _)| n == c);
        let mut sources = BTreeMap::new();
        if has(sys::SOURCE) && has(sys::INGESTED_AT) && has(sys::POSITION) {
            let cols = [sys::SOURCE, sys::INGESTED_AT, sys::POSITION];
            let schema = Schema::new(vec![
                Field::new(sys::SOURCE, FieldType::String),
                Field::new(sys::INGESTED_AT, FieldType::Timestamp),
                Field::new(sys::POSITION, FieldType::Int),
            ]);
            let mut rows: Vec<Vec<Value>> = Vec::new();
            for b in t.scan(Some(tv), &cols, |_| true).await? {
                rows.extend(freshet_lake::batch_rows(&b, &schema)?);
            }
            sort_by_arrival(&mut rows, &schema);
            let skip = rows.len().saturating_sub(window as usize);
            for r in &rows[skip..] {
                let s = match r.first() {
                    Some(Value::Str(s)) => s.clone(),
                    _ => "unknown".into(),
                };
                *sources.entry(s).or_insert(0u64) += 1;
            }
        }
        Ok(TrainedOn {
            table: table.to_string(),
            table_uri: info.uri,
            table_version: tv,
            table_rows: info.rows,
            window_rows: window,
            sources,
        })
    }

    /// Every version's predictions in `model`'s captures, in one scan.
    async fn predictions_of(&self, model: &str) -> Result<BTreeMap<i64, Predictions>> {
        let name = format!("inference/{model}");
        let mut out: BTreeMap<i64, Predictions> = BTreeMap::new();
        let Some(t) = self.open(&name).await? else {
            return Ok(out);
        };
        for b in t
            .scan(None, &["version", "variant", "ts"], |_| true)
            .await?
        {
            let (v, variant, ts) = (ints(&b, 0)?, strings(&b, 1)?, ints(&b, 2)?);
            for i in 0..b.num_rows() {
                if v.is_null(i) {
                    continue;
                }
                let p = out.entry(v.value(i)).or_insert_with(|| Predictions {
                    table: name.clone(),
                    ..Default::default()
                });
                p.rows += 1;
                let var = if variant.is_null(i) {
                    "unknown"
                } else {
                    variant.value(i)
                };
                *p.by_variant.entry(var.to_string()).or_insert(0) += 1;
                if !ts.is_null(i) {
                    let ms = ts.value(i) / 1000;
                    p.first_ms = Some(p.first_ms.map_or(ms, |f| f.min(ms)));
                    p.last_ms = Some(p.last_ms.map_or(ms, |l| l.max(ms)));
                }
            }
        }
        Ok(out)
    }

    /// The request `request_id` (the server's id or the client's own), looked for in
    /// `model`'s captured predictions or, without a model, in every declared model's.
    pub async fn request(&self, request_id: &str, model: Option<&str>) -> Result<RequestLineage> {
        let models: Vec<String> = match model {
            Some(m) => vec![m.to_string()],
            None => self.models.clone(),
        };
        let days = days_of_request(request_id);
        for m in &models {
            let Some(t) = self.open(&format!("inference/{m}")).await? else {
                continue;
            };
            let keep = |p: &std::collections::HashMap<String, Option<String>>| match (
                &days,
                p.get("date"),
            ) {
                (Some(days), Some(Some(d))) => days.iter().any(|x| x == d),
                _ => true,
            };
            let cols = [
                "request_id",
                "client_request_id",
                "version",
                "variant",
                "ts",
            ];
            let mut answers: BTreeMap<(i64, String), u64> = BTreeMap::new();
            let mut ts_ms = None;
            for b in t.scan(None, &cols, keep).await? {
                let (rid, cid) = (strings(&b, 0)?, strings(&b, 1)?);
                let (v, variant, ts) = (ints(&b, 2)?, strings(&b, 3)?, ints(&b, 4)?);
                for i in 0..b.num_rows() {
                    let hit = (!rid.is_null(i) && rid.value(i) == request_id)
                        || (!cid.is_null(i) && cid.value(i) == request_id);
                    if !hit || v.is_null(i) {
                        continue;
                    }
                    let var = if variant.is_null(i) {
                        "unknown".to_string()
                    } else {
                        variant.value(i).to_string()
                    };
                    *answers.entry((v.value(i), var)).or_insert(0) += 1;
                    if !ts.is_null(i) {
                        ts_ms.get_or_insert(ts.value(i) / 1000);
                    }
                }
            }
            if answers.is_empty() {
                continue;
            }
            let answers: Vec<Answer> = answers
                .into_iter()
                .map(|((version, variant), rows)| Answer {
                    version,
                    variant,
                    rows,
                })
                .collect();
            // The answer returned: anything but a shadow.
            let served = answers
                .iter()
                .find(|a| a.variant != "shadow")
                .unwrap_or(&answers[0])
                .version;
            return Ok(RequestLineage {
                request_id: request_id.to_string(),
                model: m.clone(),
                ts_ms,
                answers,
                version: self.version(m, served).await?,
            });
        }
        Err(not_found(format!(
            "no captured prediction has request id {request_id}{}",
            model
                .map(|m| format!(" in inference/{m}"))
                .unwrap_or_default()
        )))
    }

    /// Down from `events/<stream>` at `table_version`: every version whose training
    /// window held rows that commit added.
    pub async fn table(&self, stream: &str, table_version: i64) -> Result<TableLineage> {
        let name = format!("events/{stream}");
        let Some(t) = self.open(&name).await? else {
            return Err(not_found(format!("table {name} not found")));
        };
        let rows_at = t.info(Some(table_version)).await?.rows;
        let rows_before = if table_version > 0 {
            t.info(Some(table_version - 1)).await?.rows
        } else {
            0
        };
        let committed_ms = t
            .history(None)
            .await?
            .into_iter()
            .find(|c| c.version == table_version)
            .and_then(|c| c.timestamp_ms);
        let mut versions = Vec::new();
        let mut preds: BTreeMap<String, BTreeMap<i64, Predictions>> = BTreeMap::new();
        let mut rows_of: BTreeMap<i64, u64> = BTreeMap::new();
        let mut page: Option<String> = None;
        loop {
            let found = self.store.search_model_versions(&ModelQuery {
                filter: format!("tags.`freshet.table` = '{}'", name.replace('\'', "''")),
                max_results: 1000,
                page_token: page.clone(),
                ..Default::default()
            })?;
            for mv in &found.items {
                let Some(tv) =
                    tag(&mv.tags, "freshet.table_version").and_then(|v| v.parse::<i64>().ok())
                else {
                    continue;
                };
                if tv < table_version || rows_at <= rows_before {
                    continue;
                }
                // The window is the newest rows of its own table version: does it
                // reach back to the rows this commit added? (Decided before the
                // sources and predictions are read.)
                let rows_then = match rows_of.get(&tv) {
                    Some(n) => *n,
                    None => {
                        let n = t.info(Some(tv)).await?.rows;
                        rows_of.insert(tv, n);
                        n
                    }
                };
                let run = self.store.get_run(&mv.run_id).ok();
                let window = Self::window_of(run.as_ref())
                    .unwrap_or(rows_then)
                    .min(rows_then);
                if rows_then.saturating_sub(window) >= rows_at {
                    continue;
                }
                if !preds.contains_key(&mv.name) {
                    let p = self.predictions_of(&mv.name).await?;
                    preds.insert(mv.name.clone(), p);
                }
                let model_preds = preds.entry(mv.name.clone()).or_default();
                versions.push(self.version_with(&mv.name, mv.version, model_preds).await?);
            }
            page = found.next_page_token;
            if page.is_none() {
                break;
            }
        }
        versions.sort_by(|a, b| (&a.model, a.version).cmp(&(&b.model, b.version)));
        Ok(TableLineage {
            table: name,
            table_version,
            rows_added: rows_at.saturating_sub(rows_before),
            committed_ms,
            versions,
        })
    }

    /// Which version `alias` named at `at_ms`.
    pub fn holder_at(&self, model: &str, alias: &str, at_ms: i64) -> Result<HolderAt> {
        self.store.get_registered_model(model)?;
        let periods = self.periods(model)?;
        let history_from_ms = periods.iter().filter_map(|p| p.from_ms).min();
        Ok(HolderAt {
            model: model.to_string(),
            alias: alias.to_string(),
            at_ms,
            period: rules::holder_at(&periods, alias, at_ms).cloned(),
            history_from_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v7_request_id_names_its_day_and_others_do_not() {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let today = chrono::Utc::now().date_naive().to_string();
        assert!(days_of_request(&id).unwrap().contains(&today));
        assert_eq!(days_of_request(&uuid::Uuid::new_v4().to_string()), None);
        assert_eq!(days_of_request("client-7"), None);
    }
}
