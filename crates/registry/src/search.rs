//! MLflow's run search language: `filter_string` and `order_by`, compiled to SQL.
//!
//! A filter is clauses joined by `AND` (as in MLflow, `OR` is not supported):
//! `<entity>.<key> <op> <value>`, where entity is `metrics`, `params`, `tags` or
//! `attributes` (and their singular or short forms); keys may be quoted with backticks
//! or double quotes. Metrics compare numbers (`= != < <= > >=`); params and tags compare
//! strings (`= != LIKE ILIKE`; `LIKE` is case-sensitive, `%` and `_` are wildcards);
//! attributes are `run_id` (`=`, `!=`, `IN (...)`, `NOT IN (...)`), `run_name`,
//! `status`, `user_id`, `artifact_uri` (strings) and `start_time`, `end_time`
//! (numbers). `x != v` matches runs that have `x` with another value, not runs without
//! `x`, as in MLflow. Every value reaches SQL as a bound parameter.

use crate::error::{RegistryError, Result};
use rusqlite::types::Value as SqlValue;

/// A compiled filter: a SQL boolean expression over the `runs` table and its parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlFilter {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Op(String),
    LParen,
    RParen,
    Comma,
}

pub(crate) fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::InvalidParameter(msg.into())
}

pub(crate) fn tokenize(s: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::LParen);
                i += 1;
            }
            ')' => {
                out.push(Token::RParen);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '\'' | '"' | '`' => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(invalid(format!(
                                "Invalid filter: unterminated {quote}quoted{quote} text"
                            )));
                        }
                        Some(&q) if q == quote => {
                            // A doubled quote inside a quoted text stands for the quote itself.
                            if chars.get(i + 1) == Some(&quote) {
                                text.push(quote);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                // Backticks and double quotes quote identifiers (after a dot) or values.
                if quote == '`'
                    || (quote == '"'
                        && matches!(out.last(), Some(Token::Ident(id)) if id.ends_with('.')))
                {
                    match out.last_mut() {
                        Some(Token::Ident(id)) if id.ends_with('.') => id.push_str(&text),
                        _ => out.push(Token::Ident(text)),
                    }
                } else {
                    out.push(Token::Str(text));
                }
            }
            '=' | '!' | '<' | '>' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = if ["!=", "<=", ">=", "=="].contains(&two.as_str()) {
                    two
                } else {
                    c.to_string()
                };
                if op == "!" {
                    return Err(invalid("Invalid filter: '!' must be followed by '='"));
                }
                i += op.len();
                out.push(Token::Op(if op == "==" { "=".into() } else { op }));
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '.')
                    && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || chars[i] == '.'
                        || ((chars[i] == '-' || chars[i] == '+')
                            && matches!(chars[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                out.push(Token::Num(text.parse().map_err(|_| {
                    invalid(format!("Invalid filter: bad number '{text}'"))
                })?));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric()
                        || matches!(chars[i], '_' | '.' | '-' | '/' | ':'))
                {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => {
                return Err(invalid(format!(
                    "Invalid filter: unexpected character '{other}'"
                )));
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
}

fn split_identifier(id: &str) -> Result<(Entity, String)> {
    let (prefix, key) = id.split_once('.').ok_or_else(|| {
        invalid(format!("Invalid filter: '{id}' must be qualified, e.g. metrics.{id}, params.{id}, tags.{id} or attributes.{id}"))
    })?;
    let entity = match prefix.to_ascii_lowercase().as_str() {
        "metric" | "metrics" => Entity::Metric,
        "param" | "params" | "parameter" | "parameters" => Entity::Param,
        "tag" | "tags" => Entity::Tag,
        "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
        other => return Err(invalid(format!("Invalid entity type '{other}' in filter"))),
    };
    if key.is_empty() {
        return Err(invalid(format!(
            "Invalid filter: missing key after '{prefix}.'"
        )));
    }
    Ok((entity, key.to_string()))
}

fn attribute_column(key: &str) -> Result<(&'static str, bool)> {
    Ok(match key {
        "run_id" | "run_uuid" => ("runs.run_id", false),
        "run_name" => ("runs.run_name", false),
        "status" => ("runs.status", false),
        "user_id" => ("runs.user_id", false),
        "artifact_uri" => ("runs.artifact_uri", false),
        "start_time" => ("runs.start_time", true),
        "end_time" => ("runs.end_time", true),
        other => {
            return Err(invalid(format!(
                "Invalid attribute key '{other}' in filter"
            )));
        }
    })
}

/// Compile a filter string; an empty filter matches every run.
pub fn compile_filter(filter: &str) -> Result<SqlFilter> {
    let tokens = tokenize(filter)?;
    let mut out = SqlFilter::default();
    let mut clauses = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let Some(Token::Ident(id)) = tokens.get(i) else {
            return Err(invalid(
                "Invalid filter: expected an identifier such as metrics.accuracy",
            ));
        };
        let (entity, key) = split_identifier(id)?;
        i += 1;
        let op = match tokens.get(i) {
            Some(Token::Op(o)) => o.clone(),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("like") => "LIKE".into(),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("ilike") => "ILIKE".into(),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("in") => "IN".into(),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("not") => match tokens.get(i + 1) {
                Some(Token::Ident(w2)) if w2.eq_ignore_ascii_case("in") => {
                    i += 1;
                    "NOT IN".into()
                }
                _ => return Err(invalid("Invalid filter: expected IN after NOT")),
            },
            _ => {
                return Err(invalid(format!(
                    "Invalid filter: expected a comparison after '{id}'"
                )));
            }
        };
        i += 1;
        let clause = match (entity, op.as_str()) {
            (Entity::Attribute, "IN" | "NOT IN") => {
                let (col, _) = attribute_column(&key)?;
                if col != "runs.run_id" {
                    return Err(invalid(
                        "Invalid filter: IN is only supported for attributes.run_id",
                    ));
                }
                if tokens.get(i) != Some(&Token::LParen) {
                    return Err(invalid("Invalid filter: expected '(' after IN"));
                }
                i += 1;
                let mut values = Vec::new();
                loop {
                    match tokens.get(i) {
                        Some(Token::Str(s)) => values.push(s.clone()),
                        _ => {
                            return Err(invalid(
                                "Invalid filter: IN takes a list of quoted run ids",
                            ));
                        }
                    }
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
                let marks = vec!["?"; values.len()].join(", ");
                out.params.extend(values.into_iter().map(SqlValue::Text));
                format!("{col} {op} ({marks})")
            }
            (_, "IN" | "NOT IN") => {
                return Err(invalid(
                    "Invalid filter: IN is only supported for attributes.run_id",
                ));
            }
            (Entity::Metric, _) => {
                let Some(Token::Num(v)) = tokens.get(i) else {
                    return Err(invalid(format!(
                        "Invalid filter: metrics.{key} must be compared with a number"
                    )));
                };
                if !["=", "!=", "<", "<=", ">", ">="].contains(&op.as_str()) {
                    return Err(invalid(format!("Invalid comparator '{op}' for a metric")));
                }
                i += 1;
                out.params.push(SqlValue::Text(key));
                out.params.push(SqlValue::Real(*v));
                format!(
                    "EXISTS (SELECT 1 FROM latest_metrics lm WHERE lm.run_id = runs.run_id AND lm.key = ? AND lm.is_nan = 0 AND lm.value {op} ?)"
                )
            }
            (Entity::Param | Entity::Tag, _) => {
                let Some(Token::Str(v)) = tokens.get(i) else {
                    return Err(invalid(format!(
                        "Invalid filter: {key} must be compared with a quoted string"
                    )));
                };
                i += 1;
                let table = if entity == Entity::Param {
                    "params"
                } else {
                    "tags"
                };
                let cmp = string_comparison(&op)?;
                out.params.push(SqlValue::Text(key));
                out.params.push(SqlValue::Text(v.clone()));
                format!(
                    "EXISTS (SELECT 1 FROM {table} kv WHERE kv.run_id = runs.run_id AND kv.key = ? AND {})",
                    cmp.replace("{col}", "kv.value")
                )
            }
            (Entity::Attribute, _) => {
                let (col, numeric) = attribute_column(&key)?;
                let value = match tokens.get(i) {
                    Some(Token::Num(v)) if numeric => SqlValue::Integer(*v as i64),
                    Some(Token::Str(s)) if !numeric => SqlValue::Text(s.clone()),
                    _ => {
                        return Err(invalid(format!(
                            "Invalid filter: attributes.{key} must be compared with {}",
                            if numeric {
                                "a number"
                            } else {
                                "a quoted string"
                            }
                        )));
                    }
                };
                i += 1;
                out.params.push(value);
                if numeric {
                    if !["=", "!=", "<", "<=", ">", ">="].contains(&op.as_str()) {
                        return Err(invalid(format!(
                            "Invalid comparator '{op}' for attributes.{key}"
                        )));
                    }
                    format!("{col} {op} ?")
                } else {
                    string_comparison(&op)?.replace("{col}", col)
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
                return Err(invalid(
                    "Invalid filter: OR is not supported; combine clauses with AND",
                ));
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

pub(crate) fn string_comparison(op: &str) -> Result<String> {
    Ok(match op {
        "=" => "{col} = ?".into(),
        "!=" => "{col} != ?".into(),
        // LIKE is case-sensitive, as in MLflow: the store turns on `case_sensitive_like`.
        "LIKE" => "{col} LIKE ? ESCAPE '\\'".into(),
        "ILIKE" => "lower({col}) LIKE lower(?) ESCAPE '\\'".into(),
        other => {
            return Err(invalid(format!(
                "Invalid comparator '{other}' for a string"
            )));
        }
    })
}

/// One `order_by` term compiled to a SQL expression (with its parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct SqlOrder {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

/// Compile `order_by` terms such as `metrics.auc DESC` or `attributes.start_time`.
/// Runs without the ordered value sort last, as in MLflow.
pub fn compile_order_by(terms: &[String]) -> Result<SqlOrder> {
    let mut parts = Vec::new();
    let mut params = Vec::new();
    for term in terms {
        let mut words: Vec<&str> = term.split_whitespace().collect();
        let dir = match words.last().map(|w| w.to_ascii_uppercase()) {
            Some(w) if w == "ASC" || w == "DESC" => {
                words.pop();
                w
            }
            _ => "ASC".into(),
        };
        let id = words.join(" ");
        let id = id.replace(['`', '"'], "");
        let (entity, key) = split_identifier(&id)
            .map_err(|_| invalid(format!("Invalid order_by clause '{term}'")))?;
        let expr = match entity {
            Entity::Attribute => attribute_column(&key)?.0.to_string(),
            Entity::Metric => {
                params.push(SqlValue::Text(key));
                "(SELECT lm.value FROM latest_metrics lm WHERE lm.run_id = runs.run_id AND lm.key = ? AND lm.is_nan = 0)".into()
            }
            Entity::Param | Entity::Tag => {
                params.push(SqlValue::Text(key));
                let table = if entity == Entity::Param {
                    "params"
                } else {
                    "tags"
                };
                format!(
                    "(SELECT kv.value FROM {table} kv WHERE kv.run_id = runs.run_id AND kv.key = ?)"
                )
            }
        };
        parts.push(format!("({expr}) IS NULL, {expr} {dir}"));
        // The expression appears twice, so its parameter does too.
        if let Some(last) = params.last().cloned()
            && entity != Entity::Attribute
        {
            params.push(last);
        }
    }
    parts.push("runs.start_time DESC, runs.run_id ASC".into());
    Ok(SqlOrder {
        sql: parts.join(", "),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_to_bound_sql() {
        let f = compile_filter(
            "metrics.auc > 0.9 and params.lr = '0.01' AND tags.`team name` LIKE 'ri%'",
        )
        .unwrap();
        assert_eq!(f.params.len(), 6);
        assert!(f.sql.contains("lm.value > ?"));
        assert!(!f.sql.contains("0.01"), "values are bound, never inlined");
        let f = compile_filter("attributes.run_id IN ('a', 'b') and attributes.start_time >= 10")
            .unwrap();
        assert!(f.sql.contains("IN (?, ?)"));
        assert_eq!(compile_filter("").unwrap().sql, "1 = 1");
        let f = compile_filter("metrics.\"my metric\" = 1e-3").unwrap();
        assert_eq!(f.params[0], SqlValue::Text("my metric".into()));
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        for (bad, says) in [
            ("auc > 1", "qualified"),
            ("metrics.auc > 'x'", "number"),
            ("params.lr > 1", "quoted string"),
            ("metrics.a > 1 or metrics.b > 1", "OR"),
            ("metrics.a > 1 and", "dangling"),
            ("attributes.nope = 'x'", "attribute"),
            ("params.x = 'unterminated", "unterminated"),
            ("foo.x = 'y'", "entity"),
            ("metrics.a ! 1", "'!'"),
        ] {
            let e = compile_filter(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn order_by_terms() {
        let o =
            compile_order_by(&["metrics.auc DESC".into(), "attributes.start_time".into()]).unwrap();
        assert!(o.sql.starts_with("((SELECT lm.value"));
        assert_eq!(o.params.len(), 2);
        assert!(compile_order_by(&["nonsense".into()]).is_err());
    }
}
