//! MLflow's search language for registered models and model versions, compiled to SQL.
//!
//! Clauses are joined by `AND`. Registered models take `name` and `tags.<key>`; logged
//! models take `name`, `model_id`, `model_type`, `source_run_id`, `status`,
//! `creation_timestamp`, `tags.<key>` and `params.<key>`;
//! versions also take `run_id` (`=`, `!=`, `IN (...)`), `source_path`, `model_id` and
//! `version_number` (numbers: `= != < <= > >=`). Strings compare with
//! `= != LIKE ILIKE`. Every value reaches SQL as a bound parameter.

use crate::error::Result;
use crate::search::{SqlFilter, Token, invalid, string_comparison, tokenize};
use rusqlite::types::Value as SqlValue;

/// Which listing a filter applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `registered_models rm`
    RegisteredModels,
    /// `model_versions mv`
    ModelVersions,
    /// `logged_models lm`
    LoggedModels,
    /// `experiments e`
    Experiments,
}

enum Column {
    Text(&'static str),
    Number(&'static str),
    Tag(String),
    Param(String),
}

fn column(target: Target, id: &str) -> Result<Column> {
    if let Some(key) = id.strip_prefix("tags.").or_else(|| id.strip_prefix("tag.")) {
        if key.is_empty() {
            return Err(invalid("Invalid filter: missing key after 'tags.'"));
        }
        return Ok(Column::Tag(key.to_string()));
    }
    if target == Target::LoggedModels
        && let Some(key) = id
            .strip_prefix("params.")
            .or_else(|| id.strip_prefix("param."))
    {
        return Ok(Column::Param(key.to_string()));
    }
    let bare = id.strip_prefix("attributes.").unwrap_or(id);
    Ok(match (target, bare) {
        (Target::RegisteredModels, "name") => Column::Text("rm.name"),
        (Target::ModelVersions, "name") => Column::Text("mv.name"),
        (Target::ModelVersions, "run_id") => Column::Text("mv.run_id"),
        (Target::ModelVersions, "source_path" | "source") => Column::Text("mv.source"),
        (Target::ModelVersions, "model_id") => Column::Text("mv.model_id"),
        (Target::ModelVersions, "version_number" | "version") => Column::Number("mv.version"),
        (Target::LoggedModels, "name") => Column::Text("lm.name"),
        (Target::LoggedModels, "model_id") => Column::Text("lm.model_id"),
        (Target::LoggedModels, "model_type") => Column::Text("lm.model_type"),
        (Target::LoggedModels, "source_run_id") => Column::Text("lm.source_run_id"),
        (Target::LoggedModels, "status") => Column::Text("lm.status"),
        (Target::LoggedModels, "creation_timestamp" | "creation_time") => {
            Column::Number("lm.creation_time")
        }
        (Target::Experiments, "name") => Column::Text("e.name"),
        (Target::Experiments, "experiment_id") => Column::Number("e.experiment_id"),
        (Target::Experiments, "creation_time") => Column::Number("e.creation_time"),
        (Target::Experiments, "last_update_time") => Column::Number("e.last_update_time"),
        (_, other) => {
            let allowed = match target {
                Target::RegisteredModels => "name, tags.<key>",
                Target::ModelVersions => {
                    "name, run_id, source_path, model_id, version_number, tags.<key>"
                }
                Target::LoggedModels => {
                    "name, model_id, model_type, source_run_id, status, creation_timestamp, tags.<key>, params.<key>"
                }
                Target::Experiments => {
                    "name, experiment_id, creation_time, last_update_time, tags.<key>"
                }
            };
            return Err(invalid(format!(
                "Invalid filter: unknown key '{other}'; use one of {allowed}"
            )));
        }
    })
}

/// Compile a filter; an empty one matches everything.
pub fn compile(target: Target, filter: &str) -> Result<SqlFilter> {
    let tokens = tokenize(filter)?;
    let mut out = SqlFilter::default();
    let mut clauses = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let Some(Token::Ident(id)) = tokens.get(i) else {
            return Err(invalid("Invalid filter: expected a key such as name"));
        };
        let col = column(target, id)?;
        i += 1;
        let op = match tokens.get(i) {
            Some(Token::Op(o)) => o.clone(),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("like") => "LIKE".into(),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("ilike") => "ILIKE".into(),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("in") => "IN".into(),
            _ => {
                return Err(invalid(format!(
                    "Invalid filter: expected a comparison after '{id}'"
                )));
            }
        };
        i += 1;
        let clause = match (&col, op.as_str()) {
            (Column::Text(c @ "mv.run_id"), "IN") => {
                if tokens.get(i) != Some(&Token::LParen) {
                    return Err(invalid("Invalid filter: expected '(' after IN"));
                }
                i += 1;
                let mut marks = Vec::new();
                loop {
                    let Some(Token::Str(v)) = tokens.get(i) else {
                        return Err(invalid("Invalid filter: IN takes a list of quoted run ids"));
                    };
                    out.params.push(SqlValue::Text(v.clone()));
                    marks.push("?");
                    i += 1;
                    match tokens.get(i) {
                        Some(Token::Comma) => i += 1,
                        Some(Token::RParen) => {
                            i += 1;
                            break;
                        }
                        _ => return Err(invalid("Invalid filter: expected ',' or ')' in IN list")),
                    }
                }
                format!("{c} IN ({})", marks.join(", "))
            }
            (_, "IN") => {
                return Err(invalid("Invalid filter: IN is only supported for run_id"));
            }
            (Column::Number(c), _) => {
                let v = match tokens.get(i) {
                    Some(Token::Num(v)) => *v,
                    Some(Token::Str(s)) => s.parse::<f64>().map_err(|_| {
                        invalid(format!(
                            "Invalid filter: '{id}' must be compared with a number"
                        ))
                    })?,
                    _ => {
                        return Err(invalid(format!(
                            "Invalid filter: '{id}' must be compared with a number"
                        )));
                    }
                };
                if !["=", "!=", "<", "<=", ">", ">="].contains(&op.as_str()) {
                    return Err(invalid(format!("Invalid comparator '{op}' for a number")));
                }
                i += 1;
                out.params.push(SqlValue::Real(v));
                format!("{c} {op} ?")
            }
            (Column::Text(c), _) => {
                let Some(Token::Str(v)) = tokens.get(i) else {
                    return Err(invalid(format!(
                        "Invalid filter: '{id}' must be compared with a quoted string"
                    )));
                };
                i += 1;
                out.params.push(SqlValue::Text(v.clone()));
                string_comparison(&op)?.replace("{col}", c)
            }
            (Column::Param(key), _) => {
                let Some(Token::Str(v)) = tokens.get(i) else {
                    return Err(invalid(format!(
                        "Invalid filter: '{id}' must be compared with a quoted string"
                    )));
                };
                i += 1;
                out.params.push(SqlValue::Text(key.clone()));
                out.params.push(SqlValue::Text(v.clone()));
                let cmp = string_comparison(&op)?.replace("{col}", "p.value");
                format!(
                    "EXISTS (SELECT 1 FROM logged_model_params p WHERE p.model_id = lm.model_id AND p.key = ? AND {cmp})"
                )
            }
            (Column::Tag(key), _) => {
                let Some(Token::Str(v)) = tokens.get(i) else {
                    return Err(invalid(format!(
                        "Invalid filter: '{id}' must be compared with a quoted string"
                    )));
                };
                i += 1;
                out.params.push(SqlValue::Text(key.clone()));
                out.params.push(SqlValue::Text(v.clone()));
                // MLflow: a model or version without the tag is "not equal" to any
                // value (every MLflow 3 client filters with
                // `tag.mlflow.prompt.is_prompt != 'true'`, which untagged models pass).
                let negated = op == "!="
                    && matches!(target, Target::RegisteredModels | Target::ModelVersions);
                let cmp =
                    string_comparison(if negated { "=" } else { &op })?.replace("{col}", "t.value");
                let exists = if negated { "NOT EXISTS" } else { "EXISTS" };
                match target {
                    Target::RegisteredModels => format!(
                        "{exists} (SELECT 1 FROM registered_model_tags t WHERE t.name = rm.name AND t.key = ? AND {cmp})"
                    ),
                    Target::ModelVersions => format!(
                        "{exists} (SELECT 1 FROM model_version_tags t WHERE t.name = mv.name AND t.version = mv.version AND t.key = ? AND {cmp})"
                    ),
                    Target::LoggedModels => format!(
                        "EXISTS (SELECT 1 FROM logged_model_tags t WHERE t.model_id = lm.model_id AND t.key = ? AND {cmp})"
                    ),
                    // MLflow joins experiment tags: `!=` needs the tag to be there.
                    Target::Experiments => format!(
                        "EXISTS (SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.experiment_id AND t.key = ? AND {cmp})"
                    ),
                }
            }
        };
        clauses.push(clause);
        match tokens.get(i) {
            None => {}
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("and") => {
                i += 1;
                if i >= tokens.len() {
                    return Err(invalid("Invalid filter: dangling AND"));
                }
            }
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("or") => {
                return Err(invalid("Invalid filter: OR is not supported; use AND"));
            }
            Some(_) => return Err(invalid("Invalid filter: expected AND between clauses")),
        }
    }
    out.sql = if clauses.is_empty() {
        "1 = 1".into()
    } else {
        clauses.join(" AND ")
    };
    Ok(out)
}

/// Compile `order_by` terms to SQL; the default order follows MLflow's.
pub fn order_by(target: Target, terms: &[String]) -> Result<String> {
    let mut parts = Vec::new();
    for term in terms {
        let mut words: Vec<&str> = term.split_whitespace().collect();
        let dir = match words.last().map(|w| w.to_ascii_uppercase()) {
            Some(w) if w == "ASC" || w == "DESC" => {
                words.pop();
                w
            }
            _ => "ASC".into(),
        };
        let key = words.join(" ").replace('`', "");
        let key = key.strip_prefix("attributes.").unwrap_or(&key);
        let col = match (target, key) {
            (Target::RegisteredModels, "name") => "rm.name",
            (Target::RegisteredModels, "timestamp" | "last_updated_timestamp") => {
                "rm.last_update_time"
            }
            (Target::RegisteredModels, "creation_timestamp") => "rm.creation_time",
            (Target::ModelVersions, "name") => "mv.name",
            (Target::ModelVersions, "version_number" | "version") => "mv.version",
            (Target::ModelVersions, "creation_timestamp" | "timestamp") => "mv.creation_time",
            (Target::ModelVersions, "last_updated_timestamp") => "mv.last_update_time",
            (Target::LoggedModels, "name") => "lm.name",
            (Target::LoggedModels, "creation_timestamp" | "creation_time") => "lm.creation_time",
            (Target::LoggedModels, "last_updated_timestamp") => "lm.last_update_time",
            (Target::Experiments, "name") => "e.name",
            (Target::Experiments, "experiment_id") => "e.experiment_id",
            (Target::Experiments, "creation_time") => "e.creation_time",
            (Target::Experiments, "last_update_time") => "e.last_update_time",
            _ => return Err(invalid(format!("Invalid order_by clause '{term}'"))),
        };
        parts.push(format!("{col} {dir}"));
    }
    parts.push(match target {
        Target::RegisteredModels => "rm.name ASC".into(),
        Target::ModelVersions => "mv.name ASC, mv.version DESC".into(),
        Target::LoggedModels => "lm.creation_time DESC, lm.model_id ASC".into(),
        // MLflow's default (newest first), its tie-breaker always last.
        Target::Experiments if terms.is_empty() => {
            "e.creation_time DESC, e.experiment_id ASC".into()
        }
        Target::Experiments => "e.experiment_id ASC".into(),
    });
    Ok(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_filters_bind_their_values() {
        let f = compile(
            Target::ModelVersions,
            "name = 'fraud' AND run_id IN ('a', 'b') and tags.team LIKE 'ri%' and version_number >= 2",
        )
        .unwrap();
        assert_eq!(f.params.len(), 6);
        assert!(!f.sql.contains("fraud"));
        assert!(f.sql.contains("mv.run_id IN (?, ?)"));
        assert_eq!(compile(Target::ModelVersions, "").unwrap().sql, "1 = 1");
    }

    #[test]
    fn bad_filters_name_the_problem() {
        for (t, bad, says) in [
            (
                Target::RegisteredModels,
                "run_id = 'x'",
                "unknown key 'run_id'",
            ),
            (Target::ModelVersions, "name = 1", "quoted string"),
            (Target::ModelVersions, "version_number > 'x'", "number"),
            (Target::ModelVersions, "name = 'a' or name = 'b'", "OR"),
            (Target::ModelVersions, "name IN ('a')", "IN is only"),
        ] {
            let e = compile(t, bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn order_by_terms() {
        assert_eq!(
            order_by(Target::ModelVersions, &["version_number DESC".into()]).unwrap(),
            "mv.version DESC, mv.name ASC, mv.version DESC"
        );
        assert!(order_by(Target::RegisteredModels, &["metrics.x".into()]).is_err());
    }
}
