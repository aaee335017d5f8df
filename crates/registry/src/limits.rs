//! MLflow's request limits, checked before anything is written, with MLflow's messages.

use crate::error::{RegistryError, Result};
use crate::model::{Metric, Param, Tag};

pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_PER_BATCH: usize = 100;
pub const MAX_TAGS_PER_BATCH: usize = 100;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
pub const MAX_KEY_LENGTH: usize = 250;
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;

fn invalid(msg: String) -> RegistryError {
    RegistryError::InvalidParameter(msg)
}

/// Check a log-batch request against MLflow's limits.
pub fn check_batch(metrics: &[Metric], params: &[Param], tags: &[Tag]) -> Result<()> {
    if metrics.len() > MAX_METRICS_PER_BATCH {
        return Err(invalid(format!(
            "A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. Got {} metrics. \
             Please split up metrics across multiple requests and try again.",
            metrics.len()
        )));
    }
    if params.len() > MAX_PARAMS_PER_BATCH {
        return Err(invalid(format!(
            "A batch logging request can contain at most {MAX_PARAMS_PER_BATCH} params. Got {} params. \
             Please split up params across multiple requests and try again.",
            params.len()
        )));
    }
    if tags.len() > MAX_TAGS_PER_BATCH {
        return Err(invalid(format!(
            "A batch logging request can contain at most {MAX_TAGS_PER_BATCH} tags. Got {} tags. \
             Please split up tags across multiple requests and try again.",
            tags.len()
        )));
    }
    let total = metrics.len() + params.len() + tags.len();
    if total > MAX_ENTITIES_PER_BATCH {
        return Err(invalid(format!(
            "A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} metrics, params, and tags in total. Got {total}."
        )));
    }
    for m in metrics {
        check_key("metric", &m.key)?;
    }
    for p in params {
        check_param(p)?;
    }
    for t in tags {
        check_tag(t)?;
    }
    Ok(())
}

/// Keys: 1–250 characters, no `..` or leading `/` (they name files in some stores).
pub fn check_key(kind: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(invalid(format!(
            "Missing value for required parameter '{kind} key'."
        )));
    }
    if key.len() > MAX_KEY_LENGTH {
        return Err(invalid(format!(
            "{kind} key exceeds the maximum length of {MAX_KEY_LENGTH}"
        )));
    }
    if key.starts_with('/') || key.split('/').any(|p| p == "..") {
        return Err(invalid(format!(
            "Invalid {kind} name: '{key}'. Names may be treated as files in certain cases, and must not resolve to other names when treated as such."
        )));
    }
    Ok(())
}

pub fn check_param(p: &Param) -> Result<()> {
    check_key("param", &p.key)?;
    if p.value.len() > MAX_PARAM_VALUE_LENGTH {
        return Err(invalid(format!(
            "Param value for key '{}' exceeds the maximum length of {MAX_PARAM_VALUE_LENGTH}",
            p.key
        )));
    }
    Ok(())
}

pub fn check_tag(t: &Tag) -> Result<()> {
    check_key("tag", &t.key)?;
    if t.value.len() > MAX_TAG_VALUE_LENGTH {
        return Err(invalid(format!(
            "Tag value for key '{}' exceeds the maximum length of {MAX_TAG_VALUE_LENGTH}",
            t.key
        )));
    }
    Ok(())
}

pub fn check_experiment_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(invalid(
            "Invalid experiment name: ''. Experiment name must be non-empty.".into(),
        ));
    }
    if name.len() > MAX_EXPERIMENT_NAME_LENGTH {
        return Err(invalid(format!(
            "Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(i: usize) -> Metric {
        Metric {
            key: format!("m{i}"),
            value: 1.0,
            timestamp: 0,
            step: 0,
        }
    }

    #[test]
    fn batch_limits_match_mlflow() {
        let ok: Vec<Metric> = (0..1000).map(metric).collect();
        assert!(check_batch(&ok, &[], &[]).is_ok());
        let too_many: Vec<Metric> = (0..1001).map(metric).collect();
        let e = check_batch(&too_many, &[], &[]).unwrap_err();
        assert!(e.to_string().contains("at most 1000 metrics. Got 1001"));
        let params: Vec<Param> = (0..101)
            .map(|i| Param {
                key: format!("p{i}"),
                value: "v".into(),
            })
            .collect();
        assert!(check_batch(&[], &params, &[]).is_err());
        let tags: Vec<Tag> = (0..101)
            .map(|i| Tag {
                key: format!("t{i}"),
                value: "v".into(),
            })
            .collect();
        assert!(check_batch(&[], &[], &tags).is_err());
        let mixed_m: Vec<Metric> = (0..950).map(metric).collect();
        let mixed_p: Vec<Param> = (0..60)
            .map(|i| Param {
                key: format!("p{i}"),
                value: "v".into(),
            })
            .collect();
        assert!(
            check_batch(&mixed_m, &mixed_p, &[])
                .unwrap_err()
                .to_string()
                .contains("in total")
        );
    }

    #[test]
    fn keys_cannot_escape() {
        assert!(check_key("metric", "../x").is_err());
        assert!(check_key("metric", "/abs").is_err());
        assert!(check_key("metric", "a/b").is_ok());
        assert!(check_key("metric", &"k".repeat(251)).is_err());
        assert!(check_key("metric", "").is_err());
    }
}
