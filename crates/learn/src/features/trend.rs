//! Feature hygiene: numeric features whose values trend with arrival order.
//!
//! A timestamp or date stored as a number, a counter or an id rises (or falls) with the
//! order rows arrive in. A model trained on the first rows then meets values it never
//! saw and extrapolates them: a linear model on Elec2's `date` scores 0.85 on its
//! holdout and 0.59 served. [`trending_features`] finds such features by Spearman's
//! rank correlation between each numeric feature's value and the row's position (ties
//! get average ranks, missing values are skipped, fewer than [`TREND_MIN_VALUES`]
//! values are not judged); `|rho| >= `[`TREND_THRESHOLD`] trends. [`exclude_trending`]
//! applies a model's `trending` policy to its resolved spec before the model is built,
//! logging each decision and recording the fields it left out in
//! [`ResolvedModelSpec::trending_excluded`].

use super::Record;
use super::encode::numeric;
use freshet_core::ModelSpec;
use freshet_core::model_spec::{FeatureKind, ResolvedModelSpec, TrendingPolicy};

/// `|rho|` from which a feature trends with arrival order.
pub const TREND_THRESHOLD: f64 = 0.9;

/// Non-missing values a feature needs to be judged at all.
pub const TREND_MIN_VALUES: usize = 200;

/// A numeric feature that trends with arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendFinding {
    /// The field the feature reads.
    pub field: String,
    /// Spearman's rank correlation between its values and their arrival order.
    pub rho: f64,
}

/// Spearman's rank correlation between `values` and their positions in the slice
/// (0, 1, …), in O(n log n). Ties get the average of their ranks. `None` with fewer
/// than two values or when every value is the same (no order to correlate).
///
/// ```rust
/// use freshet_learn::features::trend::rank_correlation_with_order;
///
/// let rising = [1.0, 5.0, 7.0, 20.0];
/// assert_eq!(rank_correlation_with_order(&rising), Some(1.0));
/// assert_eq!(rank_correlation_with_order(&[3.0, 3.0, 3.0]), None);
/// ```
pub fn rank_correlation_with_order(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    // 1-based ranks; a run of equal values shares the mean of the ranks it spans.
    let mut ranks = vec![0.0; n];
    let mut start = 0;
    while start < n {
        let v = values[order[start]];
        let mut end = start + 1;
        while end < n && values[order[end]] == v {
            end += 1;
        }
        let shared = (start + end + 1) as f64 / 2.0;
        for &k in &order[start..end] {
            ranks[k] = shared;
        }
        start = end;
    }
    // Pearson's correlation of the two rank vectors; both have mean (n + 1) / 2, and
    // the positions' ranks are the positions themselves (no ties).
    let mean = (n as f64 + 1.0) / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (pos, r) in ranks.iter().enumerate() {
        let x = pos as f64 + 1.0 - mean;
        let y = r - mean;
        sxy += x * y;
        sxx += x * x;
        syy += y * y;
    }
    if syy <= 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// The numeric features of `spec` that trend with arrival order in `rows` (given in
/// arrival order), in the spec's feature order. A value that is missing, not finite
/// or not a number is skipped; a feature with fewer than [`TREND_MIN_VALUES`] values
/// left is not judged.
pub fn trending_features<R: Record>(spec: &ResolvedModelSpec, rows: &[R]) -> Vec<TrendFinding> {
    let mut values = Vec::with_capacity(rows.len());
    let mut found = Vec::new();
    for f in &spec.features {
        if !matches!(f.kind, FeatureKind::Numeric { .. }) {
            continue;
        }
        values.clear();
        values.extend(
            rows.iter()
                .filter_map(|r| numeric(r.field(&f.field)).ok().flatten()),
        );
        if values.len() < TREND_MIN_VALUES {
            continue;
        }
        if let Some(rho) = rank_correlation_with_order(&values)
            && rho.abs() >= TREND_THRESHOLD
        {
            found.push(TrendFinding {
                field: f.field.clone(),
                rho,
            });
        }
    }
    found
}

/// Judge `resolved`'s numeric features on its training `rows` (in arrival order) and
/// apply `spec.trending`: with `exclude`, trending features are left out of
/// `resolved.features` and named in `resolved.trending_excluded`, each with a warning.
/// Nothing is left out when the features are listed in the spec (listing is the
/// opt-in; a trending one still gets a warning), with `trending: keep`, or when every
/// feature trends (a model needs inputs; it says so). Returns what trends.
pub fn exclude_trending<R: Record>(
    spec: &ModelSpec,
    resolved: &mut ResolvedModelSpec,
    rows: &[R],
) -> Vec<TrendFinding> {
    let found = trending_features(resolved, rows);
    if found.is_empty() {
        return found;
    }
    let model = resolved.name.as_str();
    let listed = spec.features.is_some();
    let all = found.len() == resolved.features.len();
    for t in &found {
        let rho = format_args!("{:.3}", t.rho);
        if listed {
            tracing::warn!(model = %model, field = %t.field, rho = %rho,
                "listed feature trends with arrival order; kept because it is listed");
        } else if spec.trending == TrendingPolicy::Keep {
            tracing::info!(model = %model, field = %t.field, rho = %rho,
                "feature trends with arrival order; kept (trending: keep)");
        } else if all {
            tracing::warn!(model = %model, field = %t.field, rho = %rho,
                "feature trends with arrival order; kept because every feature of the model trends");
        } else {
            tracing::warn!(model = %model, field = %t.field, rho = %rho,
                "feature trends with arrival order; left out (set trending: keep or list it under features to keep it)");
        }
    }
    if !listed && spec.trending == TrendingPolicy::Exclude && !all {
        resolved
            .features
            .retain(|f| !found.iter().any(|t| t.field == f.field));
        resolved.trending_excluded = found.iter().map(|t| t.field.clone()).collect();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::SchemaRow;
    use freshet_core::{Field, FieldType, Schema, Value};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const N: usize = 2_000;

    fn rho(values: &[f64]) -> f64 {
        rank_correlation_with_order(values).expect("judged")
    }

    #[test]
    fn a_monotone_counter_trends() {
        let counter: Vec<f64> = (0..N).map(|i| i as f64).collect();
        assert_eq!(rho(&counter), 1.0);
        let falling: Vec<f64> = counter.iter().rev().copied().collect();
        assert_eq!(rho(&falling), -1.0);
    }

    #[test]
    fn a_noisy_timestamp_trends() {
        // Elec2's `date`: rising with arrival, with jitter well above one row's step.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ts: Vec<f64> = (0..N)
            .map(|i| i as f64 / N as f64 + rng.random_range(-0.05..0.05))
            .collect();
        let r = rho(&ts);
        assert!(r > TREND_THRESHOLD && r < 1.0, "{r}");
    }

    #[test]
    fn stationary_and_periodic_columns_do_not_trend() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let uniform: Vec<f64> = (0..N).map(|_| rng.random_range(0.0..1.0)).collect();
        assert!(rho(&uniform).abs() < 0.1, "{}", rho(&uniform));
        // Hour of day, cycling every 24 rows: many ties, no trend.
        let hour: Vec<f64> = (0..N).map(|i| (i % 24) as f64).collect();
        assert!(rho(&hour).abs() < 0.1, "{}", rho(&hour));
    }

    #[test]
    fn ties_get_average_ranks() {
        // Ranks of the values: 1.5, 1.5, 3, 4; positions 1..4. By hand:
        // d = (0.5, -0.5, 0, 0); Pearson of the ranks = 4.5 / sqrt(5 * 4.5).
        let r = rho(&[1.0, 1.0, 2.0, 3.0]);
        assert!((r - 4.5 / (5.0f64 * 4.5).sqrt()).abs() < 1e-12, "{r}");
        assert_eq!(rank_correlation_with_order(&[7.0]), None);
        assert_eq!(rank_correlation_with_order(&[2.0; 300]), None);
    }

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("seq", FieldType::Int),
            Field::new("ts", FieldType::Float),
            Field::new("x", FieldType::Float),
            Field::new("hour", FieldType::Int),
            Field::new("shop", FieldType::String),
            Field::new("y", FieldType::Bool),
        ])
    }

    /// `n` rows: a counter, a noisy timestamp (missing every third row), a uniform
    /// column, the hour of day, a category and the label.
    fn rows(n: usize) -> Vec<Vec<Value>> {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        (0..n)
            .map(|i| {
                let x: f64 = rng.random_range(0.0..1.0);
                let ts = if i % 3 == 0 {
                    Value::Null
                } else {
                    Value::Float(1.7e9 + i as f64 * 60.0 + rng.random_range(-600.0..600.0))
                };
                vec![
                    Value::Int(i as i64),
                    ts,
                    Value::Float(x),
                    Value::Int((i % 24) as i64),
                    Value::Str(format!("s{}", i % 5)),
                    Value::Bool(x > 0.5),
                ]
            })
            .collect()
    }

    fn spec(yaml_extra: serde_json::Value) -> ModelSpec {
        let mut v = serde_json::json!({ "stream": "s", "label": "y" });
        if let (Some(o), Some(extra)) = (v.as_object_mut(), yaml_extra.as_object()) {
            o.extend(extra.clone());
        }
        serde_json::from_value(v).expect("spec")
    }

    fn fields(r: &ResolvedModelSpec) -> Vec<&str> {
        r.features.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn only_the_counter_and_the_timestamp_trend() {
        let s = schema();
        let data = rows(N);
        let recs: Vec<SchemaRow<'_>> = data.iter().map(|r| SchemaRow::new(&s, r)).collect();
        let resolved = spec(serde_json::json!({}))
            .resolve("m", &s)
            .expect("resolve");
        let found = trending_features(&resolved, &recs);
        let names: Vec<&str> = found.iter().map(|t| t.field.as_str()).collect();
        assert_eq!(names, ["seq", "ts"], "{found:?}");
        assert_eq!(found[0].rho, 1.0);
        assert!(found[1].rho > 0.99, "{found:?}");
    }

    #[test]
    fn too_few_values_are_not_judged() {
        let s = schema();
        // 250 rows: 250 counter values are judged, but only 166 timestamps.
        let data = rows(250);
        let recs: Vec<SchemaRow<'_>> = data.iter().map(|r| SchemaRow::new(&s, r)).collect();
        let resolved = spec(serde_json::json!({}))
            .resolve("m", &s)
            .expect("resolve");
        let names: Vec<String> = trending_features(&resolved, &recs)
            .into_iter()
            .map(|t| t.field)
            .collect();
        assert_eq!(names, ["seq"]);
        let few = &recs[..TREND_MIN_VALUES - 1];
        assert!(trending_features(&resolved, few).is_empty());
    }

    #[test]
    fn the_policy_decides_what_is_left_out() {
        let s = schema();
        let data = rows(N);
        let recs: Vec<SchemaRow<'_>> = data.iter().map(|r| SchemaRow::new(&s, r)).collect();

        // Derived features, default policy: both trending ones are left out.
        let m = spec(serde_json::json!({}));
        let mut r = m.resolve("m", &s).expect("resolve");
        let found = exclude_trending(&m, &mut r, &recs);
        assert_eq!(found.len(), 2);
        assert_eq!(fields(&r), ["x", "hour", "shop"]);
        assert_eq!(r.trending_excluded, ["seq", "ts"]);

        // `trending: keep`: found, nothing left out.
        let m = spec(serde_json::json!({ "trending": "keep" }));
        let mut r = m.resolve("m", &s).expect("resolve");
        assert_eq!(exclude_trending(&m, &mut r, &recs).len(), 2);
        assert_eq!(fields(&r), ["seq", "ts", "x", "hour", "shop"]);
        assert!(r.trending_excluded.is_empty());

        // Listed features are the opt-in: kept, even under the default policy.
        let m = spec(serde_json::json!({ "features": [
            { "field": "seq", "kind": "numeric" },
            { "field": "x", "kind": "numeric" },
        ] }));
        let mut r = m.resolve("m", &s).expect("resolve");
        assert_eq!(exclude_trending(&m, &mut r, &recs).len(), 1);
        assert_eq!(fields(&r), ["seq", "x"]);
        assert!(r.trending_excluded.is_empty());
    }

    #[test]
    fn a_model_whose_every_feature_trends_keeps_them() {
        let s = Schema::new(vec![
            Field::new("seq", FieldType::Int),
            Field::new("y", FieldType::Bool),
        ]);
        let data: Vec<Vec<Value>> = (0..N)
            .map(|i| vec![Value::Int(i as i64), Value::Bool(i % 2 == 0)])
            .collect();
        let recs: Vec<SchemaRow<'_>> = data.iter().map(|r| SchemaRow::new(&s, r)).collect();
        let m = spec(serde_json::json!({}));
        let mut r = m.resolve("m", &s).expect("resolve");
        assert_eq!(exclude_trending(&m, &mut r, &recs).len(), 1);
        assert_eq!(fields(&r), ["seq"]);
        assert!(r.trending_excluded.is_empty());
    }
}
