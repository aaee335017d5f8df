//! The Postgres [`ModelStore`]: logged models, registered models, versions, aliases and
//! tags, in the same database as the runs. Validation and messages are the SQLite
//! store's ([`super::sqlite_models`]); only the SQL and the locking differ.

use super::pg::{Conn, is_unique_violation};
use super::postgres::{PostgresStore, active_run, now_ms};
use super::sqlite_models::{
    MODEL_VERSIONS_TAG, check_alias, check_name, check_source, not_found_logged, not_found_model,
    not_found_version,
};
use super::{DatasetInput, ModelStore, look_ahead, next_token, parse_token};
use crate::error::{RegistryError, Result};
use crate::model::{Metric, Page, Param, Tag};
use crate::models::*;
use crate::search_models::{self, Target};
use tokio_postgres::Row;

fn tags_of(
    conn: &mut Conn<'_>,
    sql: &str,
    args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Tag>> {
    conn.query(sql, args)?
        .into_iter()
        .map(|r| {
            Ok(Tag {
                key: r.try_get(0)?,
                value: r.try_get(1)?,
            })
        })
        .collect()
}

fn read_logged_model(conn: &mut Conn<'_>, model_id: &str) -> Result<Option<LoggedModel>> {
    let Some(r) = conn.query_opt(
        "SELECT model_id, experiment_id, name, artifact_uri, status, model_type, source_run_id,
                status_message, creation_time, last_update_time
         FROM logged_models WHERE model_id = $1 AND lifecycle_stage = 'active'",
        &[&model_id],
    )?
    else {
        return Ok(None);
    };
    let mut info = LoggedModelInfo {
        model_id: r.try_get(0)?,
        experiment_id: r.try_get::<_, i64>(1)?.to_string(),
        name: r.try_get(2)?,
        artifact_uri: r.try_get(3)?,
        status: LoggedModelStatus::parse(r.try_get(4)?).unwrap_or(LoggedModelStatus::Pending),
        model_type: r.try_get(5)?,
        source_run_id: r.try_get(6)?,
        status_message: r.try_get(7)?,
        creation_timestamp_ms: r.try_get(8)?,
        last_updated_timestamp_ms: r.try_get(9)?,
        tags: Vec::new(),
        registrations: Vec::new(),
    };
    info.tags = tags_of(
        conn,
        "SELECT key, value FROM logged_model_tags WHERE model_id = $1 ORDER BY key",
        &[&model_id],
    )?;
    info.registrations = conn
        .query(
            "SELECT name, version FROM model_versions WHERE model_id = $1 ORDER BY name, version",
            &[&model_id],
        )?
        .into_iter()
        .map(|r| {
            Ok(Registration {
                name: r.try_get(0)?,
                version: r.try_get(1)?,
            })
        })
        .collect::<Result<_>>()?;
    let params: Vec<Param> = tags_of(
        conn,
        "SELECT key, value FROM logged_model_params WHERE model_id = $1 ORDER BY key",
        &[&model_id],
    )?
    .into_iter()
    .map(|t| Param {
        key: t.key,
        value: t.value,
    })
    .collect();
    let metrics = conn
        .query(
            "SELECT key, value, is_nan, timestamp, step, run_id FROM logged_model_metrics
             WHERE model_id = $1 ORDER BY key, step, timestamp, seq",
            &[&model_id],
        )?
        .into_iter()
        .map(|r| {
            let nan: i64 = r.try_get(2)?;
            Ok(LoggedModelMetric {
                key: r.try_get(0)?,
                value: if nan != 0 {
                    f64::NAN
                } else {
                    r.try_get::<_, Option<f64>>(1)?.unwrap_or(f64::NAN)
                },
                timestamp: r.try_get(3)?,
                step: r.try_get(4)?,
                run_id: r.try_get(5)?,
                model_id: model_id.to_string(),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Some(LoggedModel {
        info,
        data: LoggedModelData { params, metrics },
    }))
}

/// `Ok` if the logged model exists and is active; with `lock`, its row stays locked
/// until the transaction ends.
fn logged_model_exists(conn: &mut Conn<'_>, model_id: &str, lock: bool) -> Result<()> {
    let sql = if lock {
        "SELECT 1 FROM logged_models WHERE model_id = $1 AND lifecycle_stage = 'active' FOR NO KEY UPDATE"
    } else {
        "SELECT 1 FROM logged_models WHERE model_id = $1 AND lifecycle_stage = 'active'"
    };
    match conn.query_opt(sql, &[&model_id])? {
        Some(_) => Ok(()),
        None => Err(not_found_logged(model_id)),
    }
}

const VERSION_COLUMNS: &str = "mv.name, mv.version, mv.creation_time, mv.last_update_time, mv.user_id, mv.current_stage, mv.description, mv.source, mv.storage_location, mv.run_id, mv.run_link, mv.model_id";

fn version_from_row(r: &Row) -> Result<ModelVersion> {
    Ok(ModelVersion {
        name: r.try_get(0)?,
        version: r.try_get(1)?,
        creation_timestamp: r.try_get(2)?,
        last_updated_timestamp: r.try_get(3)?,
        user_id: r.try_get(4)?,
        current_stage: Stage::parse(r.try_get(5)?).unwrap_or(Stage::None).as_str(),
        description: r.try_get(6)?,
        source: r.try_get(7)?,
        storage_location: r.try_get(8)?,
        run_id: r.try_get(9)?,
        run_link: r.try_get(10)?,
        model_id: r.try_get(11)?,
        status: "READY",
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

/// Tags and aliases of each version.
fn fill_versions(conn: &mut Conn<'_>, versions: &mut [ModelVersion]) -> Result<()> {
    for v in versions.iter_mut() {
        v.tags = tags_of(
            conn,
            "SELECT key, value FROM model_version_tags WHERE name = $1 AND version = $2 ORDER BY key",
            &[&v.name, &v.version],
        )?;
        v.aliases = conn
            .query(
                "SELECT alias FROM registered_model_aliases WHERE name = $1 AND version = $2 ORDER BY alias",
                &[&v.name, &v.version],
            )?
            .into_iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
    }
    Ok(())
}

fn read_version(conn: &mut Conn<'_>, name: &str, version: i64) -> Result<Option<ModelVersion>> {
    let Some(r) = conn.query_opt(
        &format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions mv WHERE mv.name = $1 AND mv.version = $2"
        ),
        &[&name, &version],
    )?
    else {
        return Ok(None);
    };
    let mut one = [version_from_row(&r)?];
    fill_versions(conn, &mut one)?;
    let [v] = one;
    Ok(Some(v))
}

fn version_or_404(conn: &mut Conn<'_>, name: &str, version: i64) -> Result<ModelVersion> {
    read_version(conn, name, version)?.ok_or_else(|| not_found_version(name, version))
}

fn latest_versions(conn: &mut Conn<'_>, name: &str) -> Result<Vec<ModelVersion>> {
    let mut out: Vec<ModelVersion> = conn
        .query(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM model_versions mv
                 WHERE mv.name = $1 AND mv.version = (
                     SELECT max(o.version) FROM model_versions o
                     WHERE o.name = mv.name AND o.current_stage = mv.current_stage)
                 ORDER BY mv.version"
            ),
            &[&name],
        )?
        .iter()
        .map(version_from_row)
        .collect::<Result<_>>()?;
    fill_versions(conn, &mut out)?;
    Ok(out)
}

fn read_registered(conn: &mut Conn<'_>, name: &str) -> Result<Option<RegisteredModel>> {
    let Some(r) = conn.query_opt(
        "SELECT name, creation_time, last_update_time, description FROM registered_models WHERE name = $1",
        &[&name],
    )?
    else {
        return Ok(None);
    };
    let mut m = RegisteredModel {
        name: r.try_get(0)?,
        creation_timestamp: r.try_get(1)?,
        last_updated_timestamp: r.try_get(2)?,
        description: r.try_get(3)?,
        tags: Vec::new(),
        aliases: Vec::new(),
        latest_versions: Vec::new(),
    };
    m.tags = tags_of(
        conn,
        "SELECT key, value FROM registered_model_tags WHERE name = $1 ORDER BY key",
        &[&name],
    )?;
    m.aliases = conn
        .query(
            "SELECT alias, version FROM registered_model_aliases WHERE name = $1 ORDER BY alias",
            &[&name],
        )?
        .into_iter()
        .map(|r| {
            Ok(Alias {
                alias: r.try_get(0)?,
                version: r.try_get(1)?,
            })
        })
        .collect::<Result<_>>()?;
    m.latest_versions = latest_versions(conn, name)?;
    Ok(Some(m))
}

fn registered_or_404(conn: &mut Conn<'_>, name: &str) -> Result<RegisteredModel> {
    read_registered(conn, name)?.ok_or_else(|| not_found_model(name))
}

fn touch_model(conn: &mut Conn<'_>, name: &str) -> Result<()> {
    let n = conn.execute(
        "UPDATE registered_models SET last_update_time = $2 WHERE name = $1",
        &[&name, &now_ms()],
    )?;
    if n == 0 {
        return Err(not_found_model(name));
    }
    Ok(())
}

fn touch_version(conn: &mut Conn<'_>, name: &str, version: i64) -> Result<()> {
    let n = conn.execute(
        "UPDATE model_versions SET last_update_time = $3 WHERE name = $1 AND version = $2",
        &[&name, &version, &now_ms()],
    )?;
    if n == 0 {
        return Err(not_found_version(name, version));
    }
    Ok(())
}

fn single_text(conn: &mut Conn<'_>, sql: &str, arg: &str) -> Result<Option<String>> {
    conn.query_opt(sql, &[&arg])?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(Into::into)
}

/// Where a version's files are: the logged model's artifacts for `models:/m-…`, the
/// run's artifacts for `runs:/<id>/<path>`, else the URI itself.
fn resolve_source(conn: &mut Conn<'_>, source: &str) -> Result<String> {
    check_source(source)?;
    if let Some(id) = source.strip_prefix("models:/")
        && id.starts_with("m-")
    {
        let id = id.trim_end_matches('/');
        return single_text(
            conn,
            "SELECT artifact_uri FROM logged_models WHERE model_id = $1",
            id,
        )?
        .ok_or_else(|| not_found_logged(id));
    }
    if let Some(rest) = source.strip_prefix("runs:/") {
        let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
        let uri = single_text(
            conn,
            "SELECT artifact_uri FROM runs WHERE run_id = $1",
            run_id,
        )?
        .ok_or_else(|| RegistryError::NotFound(format!("Run with id={run_id} not found")))?;
        let path = path.trim_matches('/');
        return Ok(if path.is_empty() {
            uri
        } else {
            format!("{uri}/{path}")
        });
    }
    Ok(source.to_string())
}

fn upsert_logged_tag(conn: &mut Conn<'_>, model_id: &str, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO logged_model_tags VALUES ($1, $2, $3)
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
        &[&model_id, &key, &value],
    )?;
    Ok(())
}

impl ModelStore for PostgresStore {
    fn create_logged_model(&self, new: NewLoggedModel) -> Result<LoggedModel> {
        let exp_id: i64 = new.experiment_id.parse().map_err(|_| {
            RegistryError::NotFound(format!(
                "No Experiment with id={} exists",
                new.experiment_id
            ))
        })?;
        crate::limits::check_batch(&[], &new.params, &new.tags)?;
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let name = new
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("model-{}", &model_id[2..10]));
        let mut conn = self.write()?;
        let location: String = conn
            .query_opt(
                "SELECT artifact_location FROM experiments WHERE experiment_id = $1 AND lifecycle_stage = 'active'",
                &[&exp_id],
            )?
            .map(|r| r.try_get(0))
            .transpose()?
            .ok_or_else(|| {
                RegistryError::NotFound(format!("No Experiment with id={exp_id} exists"))
            })?;
        if let Some(run) = new.source_run_id.as_deref().filter(|r| !r.is_empty()) {
            active_run(&mut conn, run, false)?;
        }
        let artifact_uri = format!(
            "{}/models/{model_id}/artifacts",
            location.trim_end_matches('/')
        );
        let t = now_ms();
        conn.execute(
            "INSERT INTO logged_models VALUES ($1, $2, $3, $4, 'LOGGED_MODEL_PENDING', $5, $6, '', $7, $7, 'active')",
            &[
                &model_id,
                &exp_id,
                &name,
                &artifact_uri,
                &new.model_type.unwrap_or_default(),
                &new.source_run_id.unwrap_or_default(),
                &t,
            ],
        )?;
        for p in &new.params {
            conn.execute(
                "INSERT INTO logged_model_params VALUES ($1, $2, $3)
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                &[&model_id, &p.key, &p.value],
            )?;
        }
        for tag in &new.tags {
            upsert_logged_tag(&mut conn, &model_id, &tag.key, &tag.value)?;
        }
        conn.commit()?;
        read_logged_model(&mut conn, &model_id)?.ok_or_else(|| not_found_logged(&model_id))
    }

    fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        read_logged_model(&mut self.conn()?, model_id)?.ok_or_else(|| not_found_logged(model_id))
    }

    fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel> {
        let mut conn = self.write()?;
        let n = conn.execute(
            "UPDATE logged_models SET status = $2, last_update_time = $3 WHERE model_id = $1 AND lifecycle_stage = 'active'",
            &[&model_id, &status.as_str(), &now_ms()],
        )?;
        if n == 0 {
            return Err(not_found_logged(model_id));
        }
        conn.commit()?;
        read_logged_model(&mut conn, model_id)?.ok_or_else(|| not_found_logged(model_id))
    }

    fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()> {
        crate::limits::check_batch(&[], &[], tags)?;
        let mut conn = self.write()?;
        logged_model_exists(&mut conn, model_id, true)?;
        for t in tags {
            upsert_logged_tag(&mut conn, model_id, &t.key, &t.value)?;
        }
        conn.commit()
    }

    fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        let mut conn = self.write()?;
        logged_model_exists(&mut conn, model_id, false)?;
        let n = conn.execute(
            "DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2",
            &[&model_id, &key],
        )?;
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "No tag with key '{key}' on logged model '{model_id}'"
            )));
        }
        conn.commit()
    }

    fn log_logged_model_params(&self, model_id: &str, params_in: &[Param]) -> Result<()> {
        crate::limits::check_batch(&[], params_in, &[])?;
        let mut conn = self.write()?;
        // Writers of one model queue here, so the check below cannot race.
        logged_model_exists(&mut conn, model_id, true)?;
        for p in params_in {
            let old = conn
                .query_opt(
                    "SELECT value FROM logged_model_params WHERE model_id = $1 AND key = $2",
                    &[&model_id, &p.key],
                )?
                .map(|r| r.try_get::<_, String>(0))
                .transpose()?;
            match old {
                Some(v) if v != p.value => {
                    return Err(RegistryError::InvalidParameter(format!(
                        "Changing param values is not allowed. Param with key='{}' was already logged for model '{model_id}'",
                        p.key
                    )));
                }
                Some(_) => {}
                None => {
                    conn.execute(
                        "INSERT INTO logged_model_params VALUES ($1, $2, $3)",
                        &[&model_id, &p.key, &p.value],
                    )?;
                }
            }
        }
        conn.commit()
    }

    fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        let mut conn = self.write()?;
        let n = conn.execute(
            "UPDATE logged_models SET lifecycle_stage = 'deleted', last_update_time = $2 WHERE model_id = $1 AND lifecycle_stage = 'active'",
            &[&model_id, &now_ms()],
        )?;
        if n == 0 {
            return Err(not_found_logged(model_id));
        }
        conn.commit()
    }

    fn search_logged_models(
        &self,
        experiment_ids: &[String],
        q: &ModelQuery,
    ) -> Result<Page<LoggedModel>> {
        let offset = parse_token(q.page_token.as_deref())?;
        let ids: Vec<i64> = experiment_ids
            .iter()
            .filter_map(|e| e.parse().ok())
            .collect();
        if ids.is_empty() {
            return Err(RegistryError::InvalidParameter(
                "Missing value for required parameter 'experiment_ids'.".into(),
            ));
        }
        let filter = search_models::compile(Target::LoggedModels, &q.filter)?;
        let order = search_models::order_by(Target::LoggedModels, &q.order_by)?;
        let mut conn = self.conn()?;
        let marks = vec!["?"; ids.len()].join(",");
        let sql = format!(
            "SELECT lm.model_id FROM logged_models lm
             WHERE lm.experiment_id IN ({marks}) AND lm.lifecycle_stage = 'active' AND {}
             ORDER BY {order} LIMIT {} OFFSET {offset}",
            filter.sql,
            look_ahead(q.max_results)
        );
        let mut args: Vec<rusqlite::types::Value> = ids
            .iter()
            .map(|i| rusqlite::types::Value::Integer(*i))
            .collect();
        args.extend(filter.params);
        let mut found: Vec<String> = conn
            .query_values(&sql, &args)?
            .into_iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        let next_page_token = next_token(&mut found, offset, q.max_results);
        let mut items = Vec::with_capacity(found.len());
        for id in &found {
            if let Some(m) = read_logged_model(&mut conn, id)? {
                items.push(m);
            }
        }
        Ok(Page {
            next_page_token,
            items,
        })
    }

    fn log_logged_model_metrics(&self, run_id: &str, metrics: &[(String, Metric)]) -> Result<()> {
        if metrics.is_empty() {
            return Ok(());
        }
        let mut conn = self.write()?;
        for (model_id, m) in metrics {
            logged_model_exists(&mut conn, model_id, false)?;
            let nan = m.value.is_nan();
            conn.execute(
                "INSERT INTO logged_model_metrics (model_id, run_id, key, value, is_nan, timestamp, step)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    model_id,
                    &run_id,
                    &m.key,
                    &(!nan).then_some(m.value),
                    &i64::from(nan),
                    &m.timestamp,
                    &m.step,
                ],
            )?;
        }
        conn.commit()
    }

    fn run_models(&self, run_id: &str) -> Result<super::RunModels> {
        let mut conn = self.conn()?;
        let inputs = conn
            .query(
                "SELECT model_id FROM run_model_inputs WHERE run_id = $1 ORDER BY model_id",
                &[&run_id],
            )?
            .into_iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        let outputs = conn
            .query(
                "SELECT model_id, step FROM run_outputs WHERE run_id = $1 ORDER BY step, model_id",
                &[&run_id],
            )?
            .into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        Ok(super::RunModels { inputs, outputs })
    }

    fn log_run_outputs(&self, run_id: &str, models: &[(String, i64)]) -> Result<()> {
        let mut conn = self.write()?;
        active_run(&mut conn, run_id, true)?;
        for (model_id, step) in models {
            logged_model_exists(&mut conn, model_id, false)?;
            conn.execute(
                "INSERT INTO run_outputs VALUES ($1, $2, $3)
                 ON CONFLICT (run_id, model_id) DO UPDATE SET step = excluded.step",
                &[&run_id, model_id, step],
            )?;
        }
        conn.commit()
    }

    fn log_run_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        model_ids: &[String],
    ) -> Result<()> {
        let mut conn = self.write()?;
        active_run(&mut conn, run_id, true)?;
        for d in datasets {
            if d.name.is_empty() || d.digest.is_empty() {
                return Err(RegistryError::InvalidParameter(
                    "A dataset input needs a name and a digest".into(),
                ));
            }
            let tags = serde_json::to_string(&d.tags).unwrap_or_else(|_| "[]".into());
            conn.execute(
                "INSERT INTO run_dataset_inputs (run_id, name, digest, source_type, source, schema, profile, tags)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                &[
                    &run_id,
                    &d.name,
                    &d.digest,
                    &d.source_type,
                    &d.source,
                    &d.schema,
                    &d.profile,
                    &tags,
                ],
            )?;
        }
        for model_id in model_ids {
            logged_model_exists(&mut conn, model_id, false)?;
            conn.execute(
                "INSERT INTO run_model_inputs VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&run_id, model_id],
            )?;
        }
        conn.commit()
    }

    fn dataset_summaries(&self, experiment_ids: &[String]) -> Result<Vec<super::DatasetSummary>> {
        let ids: Vec<i64> = experiment_ids
            .iter()
            .filter_map(|e| e.parse().ok())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.conn()?.query(
            "SELECT DISTINCT r.experiment_id, d.name, d.digest, d.tags
             FROM run_dataset_inputs d JOIN runs r ON r.run_id = d.run_id
             WHERE r.experiment_id = ANY($1) AND r.lifecycle_stage = 'active'
             ORDER BY r.experiment_id, d.name, d.digest LIMIT 1000",
            &[&ids],
        )?;
        let mut out: Vec<super::DatasetSummary> = Vec::new();
        for r in rows {
            let experiment_id: i64 = r.try_get(0)?;
            let tags: Vec<Tag> = serde_json::from_str(r.try_get(3)?).unwrap_or_default();
            let summary = super::DatasetSummary {
                experiment_id: experiment_id.to_string(),
                name: r.try_get(1)?,
                digest: r.try_get(2)?,
                context: tags
                    .into_iter()
                    .find(|t| t.key == "mlflow.data.context")
                    .map(|t| t.value)
                    .unwrap_or_default(),
            };
            if !out.contains(&summary) {
                out.push(summary);
            }
        }
        Ok(out)
    }

    fn run_dataset_inputs(&self, run_id: &str) -> Result<Vec<DatasetInput>> {
        self.conn()?
            .query(
                "SELECT name, digest, source_type, source, schema, profile, tags
                 FROM run_dataset_inputs WHERE run_id = $1 ORDER BY seq",
                &[&run_id],
            )?
            .into_iter()
            .map(|r| {
                Ok(DatasetInput {
                    name: r.try_get(0)?,
                    digest: r.try_get(1)?,
                    source_type: r.try_get(2)?,
                    source: r.try_get(3)?,
                    schema: r.try_get(4)?,
                    profile: r.try_get(5)?,
                    tags: serde_json::from_str(r.try_get(6)?).unwrap_or_default(),
                })
            })
            .collect()
    }

    fn create_registered_model(
        &self,
        name: &str,
        tags: &[Tag],
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        check_name("name", name)?;
        crate::limits::check_batch(&[], &[], tags)?;
        let mut conn = self.write()?;
        let t = now_ms();
        let inserted = conn.execute(
            "INSERT INTO registered_models VALUES ($1, $2, $2, $3, 1) ON CONFLICT DO NOTHING",
            &[&name, &t, &description.unwrap_or_default()],
        )?;
        if inserted == 0 {
            return Err(RegistryError::AlreadyExists(format!(
                "Registered Model (name={name}) already exists."
            )));
        }
        for tag in tags {
            conn.execute(
                "INSERT INTO registered_model_tags VALUES ($1, $2, $3)
                 ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
                &[&name, &tag.key, &tag.value],
            )?;
        }
        conn.commit()?;
        registered_or_404(&mut conn, name)
    }

    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        registered_or_404(&mut self.conn()?, name)
    }

    fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        check_name("new_name", new_name)?;
        let already = || {
            RegistryError::AlreadyExists(format!(
                "Registered Model (name={new_name}) already exists."
            ))
        };
        let mut conn = self.write()?;
        registered_or_404(&mut conn, name)?;
        if name != new_name && read_registered(&mut conn, new_name)?.is_some() {
            return Err(already());
        }
        match conn.execute(
            "UPDATE registered_models SET name = $2, last_update_time = $3 WHERE name = $1",
            &[&name, &new_name, &now_ms()],
        ) {
            Err(e) if is_unique_violation(&e) => return Err(already()),
            other => other?,
        };
        conn.commit()?;
        registered_or_404(&mut conn, new_name)
    }

    fn update_registered_model(&self, name: &str, description: &str) -> Result<RegisteredModel> {
        let mut conn = self.write()?;
        let n = conn.execute(
            "UPDATE registered_models SET description = $2, last_update_time = $3 WHERE name = $1",
            &[&name, &description, &now_ms()],
        )?;
        if n == 0 {
            return Err(not_found_model(name));
        }
        conn.commit()?;
        registered_or_404(&mut conn, name)
    }

    fn delete_registered_model(&self, name: &str) -> Result<()> {
        let mut conn = self.write()?;
        let n = conn.execute("DELETE FROM registered_models WHERE name = $1", &[&name])?;
        if n == 0 {
            return Err(not_found_model(name));
        }
        conn.commit()
    }

    fn search_registered_models(&self, q: &ModelQuery) -> Result<Page<RegisteredModel>> {
        let filter = search_models::compile(Target::RegisteredModels, &q.filter)?;
        let order = search_models::order_by(Target::RegisteredModels, &q.order_by)?;
        let offset = parse_token(q.page_token.as_deref())?;
        let mut conn = self.conn()?;
        let sql = format!(
            "SELECT rm.name FROM registered_models rm WHERE {} ORDER BY {order} LIMIT {} OFFSET {offset}",
            filter.sql,
            look_ahead(q.max_results)
        );
        let mut names: Vec<String> = conn
            .query_values(&sql, &filter.params)?
            .into_iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        let next_page_token = next_token(&mut names, offset, q.max_results);
        let mut items = Vec::with_capacity(names.len());
        for n in &names {
            if let Some(m) = read_registered(&mut conn, n)? {
                items.push(m);
            }
        }
        Ok(Page {
            next_page_token,
            items,
        })
    }

    fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<()> {
        crate::limits::check_batch(&[], &[], std::slice::from_ref(tag))?;
        let mut conn = self.write()?;
        touch_model(&mut conn, name)?;
        conn.execute(
            "INSERT INTO registered_model_tags VALUES ($1, $2, $3)
             ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
            &[&name, &tag.key, &tag.value],
        )?;
        conn.commit()
    }

    fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        let mut conn = self.write()?;
        touch_model(&mut conn, name)?;
        conn.execute(
            "DELETE FROM registered_model_tags WHERE name = $1 AND key = $2",
            &[&name, &key],
        )?;
        conn.commit()
    }

    fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<()> {
        check_alias(alias)?;
        let mut conn = self.write()?;
        version_or_404(&mut conn, name, version)?;
        conn.execute(
            "INSERT INTO registered_model_aliases VALUES ($1, $2, $3)
             ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
            &[&name, &alias, &version],
        )?;
        touch_model(&mut conn, name)?;
        conn.commit()
    }

    fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let mut conn = self.write()?;
        registered_or_404(&mut conn, name)?;
        conn.execute(
            "DELETE FROM registered_model_aliases WHERE name = $1 AND alias = $2",
            &[&name, &alias],
        )?;
        touch_model(&mut conn, name)?;
        conn.commit()
    }

    fn alias_history(&self, name: &str) -> Result<Vec<AliasChange>> {
        self.conn()?
            .query(
                "SELECT alias, version, at_ms FROM model_alias_history WHERE name = $1 ORDER BY seq",
                &[&name],
            )?
            .into_iter()
            .map(|r| {
                Ok(AliasChange {
                    alias: r.try_get(0)?,
                    version: r.try_get(1)?,
                    at_ms: r.try_get(2)?,
                })
            })
            .collect()
    }

    fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let mut conn = self.conn()?;
        let version: i64 = conn
            .query_opt(
                "SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2",
                &[&name, &alias],
            )?
            .map(|r| r.try_get(0))
            .transpose()?
            .ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "Registered model alias {alias} not found on model {name}"
                ))
            })?;
        version_or_404(&mut conn, name, version)
    }

    fn get_latest_versions(&self, name: &str, stages: &[Stage]) -> Result<Vec<ModelVersion>> {
        let mut conn = self.conn()?;
        registered_or_404(&mut conn, name)?;
        let all = latest_versions(&mut conn, name)?;
        Ok(if stages.is_empty() {
            all
        } else {
            all.into_iter()
                .filter(|v| stages.iter().any(|s| s.as_str() == v.current_stage))
                .collect()
        })
    }

    fn create_model_version(&self, new: NewModelVersion) -> Result<ModelVersion> {
        check_name("name", &new.name)?;
        crate::limits::check_batch(&[], &[], &new.tags)?;
        let mut conn = self.write()?;
        let storage = resolve_source(&mut conn, &new.source)?;
        let model_id = new.model_id.clone().unwrap_or_else(|| {
            new.source
                .strip_prefix("models:/")
                .filter(|id| id.starts_with("m-"))
                .map(|id| id.trim_end_matches('/').to_string())
                .unwrap_or_default()
        });
        let mut run_id = new.run_id.clone().unwrap_or_default();
        if !model_id.is_empty() {
            // Locked: two versions made from one logged model at once must both land
            // in its `mlflow.modelVersions` tag.
            logged_model_exists(&mut conn, &model_id, true)?;
            // A version made from a logged model comes from the run that logged it.
            if run_id.is_empty() {
                run_id = single_text(
                    &mut conn,
                    "SELECT source_run_id FROM logged_models WHERE model_id = $1",
                    &model_id,
                )?
                .unwrap_or_default();
            }
        }
        // The update locks the model's row: concurrent registrations number in turn.
        let version: i64 = conn
            .query_opt(
                "UPDATE registered_models SET next_version = next_version + 1, last_update_time = $2
                 WHERE name = $1 RETURNING next_version - 1",
                &[&new.name, &now_ms()],
            )?
            .map(|r| r.try_get(0))
            .transpose()?
            .ok_or_else(|| not_found_model(&new.name))?;
        let t = now_ms();
        conn.execute(
            "INSERT INTO model_versions VALUES ($1, $2, $3, $3, $4, 'None', $5, $6, $7, $8, $9, $10)",
            &[
                &new.name,
                &version,
                &t,
                &new.user_id.unwrap_or_default(),
                &new.description.unwrap_or_default(),
                &new.source,
                &storage,
                &run_id,
                &new.run_link.unwrap_or_default(),
                &model_id,
            ],
        )?;
        for tag in &new.tags {
            conn.execute(
                "INSERT INTO model_version_tags VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
                &[&new.name, &version, &tag.key, &tag.value],
            )?;
        }
        if !model_id.is_empty() {
            // As mlflow server does: the logged model lists the versions made from it.
            let existing = conn
                .query_opt(
                    "SELECT value FROM logged_model_tags WHERE model_id = $1 AND key = $2",
                    &[&model_id, &MODEL_VERSIONS_TAG],
                )?
                .map(|r| r.try_get::<_, String>(0))
                .transpose()?;
            let mut list: Vec<serde_json::Value> = existing
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default();
            let entry = serde_json::json!({ "name": new.name, "version": version });
            if !list.contains(&entry) {
                list.push(entry);
            }
            upsert_logged_tag(
                &mut conn,
                &model_id,
                MODEL_VERSIONS_TAG,
                &serde_json::Value::Array(list).to_string(),
            )?;
        }
        conn.commit()?;
        version_or_404(&mut conn, &new.name, version)
    }

    fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        version_or_404(&mut self.conn()?, name, version)
    }

    fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: &str,
    ) -> Result<ModelVersion> {
        let mut conn = self.write()?;
        let n = conn.execute(
            "UPDATE model_versions SET description = $3, last_update_time = $4 WHERE name = $1 AND version = $2",
            &[&name, &version, &description, &now_ms()],
        )?;
        if n == 0 {
            return Err(not_found_version(name, version));
        }
        conn.commit()?;
        version_or_404(&mut conn, name, version)
    }

    fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        let mut conn = self.write()?;
        let n = conn.execute(
            "DELETE FROM model_versions WHERE name = $1 AND version = $2",
            &[&name, &version],
        )?;
        if n == 0 {
            return Err(not_found_version(name, version));
        }
        touch_model(&mut conn, name)?;
        conn.commit()
    }

    fn search_model_versions(&self, q: &ModelQuery) -> Result<Page<ModelVersion>> {
        let filter = search_models::compile(Target::ModelVersions, &q.filter)?;
        let order = if q.order_by.is_empty() {
            "mv.last_update_time DESC, mv.name ASC, mv.version DESC".to_string()
        } else {
            search_models::order_by(Target::ModelVersions, &q.order_by)?
        };
        let offset = parse_token(q.page_token.as_deref())?;
        let mut conn = self.conn()?;
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions mv WHERE {} ORDER BY {order} LIMIT {} OFFSET {offset}",
            filter.sql,
            look_ahead(q.max_results)
        );
        let mut items: Vec<ModelVersion> = conn
            .query_values(&sql, &filter.params)?
            .iter()
            .map(version_from_row)
            .collect::<Result<_>>()?;
        let next_page_token = next_token(&mut items, offset, q.max_results);
        fill_versions(&mut conn, &mut items)?;
        Ok(Page {
            next_page_token,
            items,
        })
    }

    fn set_model_version_tag(&self, name: &str, version: i64, tag: &Tag) -> Result<()> {
        crate::limits::check_batch(&[], &[], std::slice::from_ref(tag))?;
        let mut conn = self.write()?;
        touch_version(&mut conn, name, version)?;
        conn.execute(
            "INSERT INTO model_version_tags VALUES ($1, $2, $3, $4)
             ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
            &[&name, &version, &tag.key, &tag.value],
        )?;
        conn.commit()
    }

    fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        let mut conn = self.write()?;
        touch_version(&mut conn, name, version)?;
        conn.execute(
            "DELETE FROM model_version_tags WHERE name = $1 AND version = $2 AND key = $3",
            &[&name, &version, &key],
        )?;
        conn.commit()
    }

    fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        let mut conn = self.write()?;
        let t = now_ms();
        let n = conn.execute(
            "UPDATE model_versions SET current_stage = $3, last_update_time = $4 WHERE name = $1 AND version = $2",
            &[&name, &version, &stage.as_str(), &t],
        )?;
        if n == 0 {
            return Err(not_found_version(name, version));
        }
        if archive_existing && matches!(stage, Stage::Staging | Stage::Production) {
            conn.execute(
                "UPDATE model_versions SET current_stage = 'Archived', last_update_time = $4
                 WHERE name = $1 AND version != $2 AND current_stage = $3",
                &[&name, &version, &stage.as_str(), &t],
            )?;
        }
        conn.execute(
            "UPDATE registered_models SET last_update_time = $2 WHERE name = $1",
            &[&name, &t],
        )?;
        conn.commit()?;
        version_or_404(&mut conn, name, version)
    }

    fn get_download_uri(&self, name: &str, version: i64) -> Result<String> {
        Ok(version_or_404(&mut self.conn()?, name, version)?.storage_location)
    }
}
