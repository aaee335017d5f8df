//! Hand-computed encodings, missing values, JSON and row adapters, and a property test
//! that the vector always has one value per output name.

use super::*;
use freshet_core::model_spec::{FeatureKind, MissingPolicy};
use freshet_core::{Field, Value};
use proptest::prelude::*;
use serde_json::json;
use std::collections::HashMap;

fn feature(field: &str, ty: FieldType, kind: FeatureKind) -> ResolvedFeature {
    ResolvedFeature {
        field: field.into(),
        field_type: ty,
        kind,
    }
}

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("amount", FieldType::Float),
        Field::new("merchant", FieldType::String).categories(["grocery", "fuel"]),
        Field::new("shop", FieldType::String),
        Field::new("ts", FieldType::Timestamp),
        Field::new("day", FieldType::Date),
        Field::new("online", FieldType::Bool),
        Field::new("hour", FieldType::Int),
    ])
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
}

#[test]
fn numeric_missing_policies_by_hand() {
    let s = schema();
    let policy = |missing| {
        let mut p = FeaturePipeline::new(
            &[feature(
                "amount",
                FieldType::Float,
                FeatureKind::Numeric { missing },
            )],
            &s,
        )
        .expect("pipeline");
        // mean 4, population variance ((2-4)² + (4-4)² + (6-4)²) / 3 = 8/3
        for x in [2.0, 4.0, 6.0] {
            p.learn_one(&json!({ "amount": x }));
        }
        p.learn_one(&json!({})); // missing values teach nothing
        p
    };
    let sd = (8.0f64 / 3.0).sqrt();
    let mean = policy(MissingPolicy::Mean);
    assert_eq!(mean.output_names(), ["amount"]);
    assert!(close(
        &mean.transform(&json!({ "amount": 7.0 })),
        &[3.0 / sd]
    ));
    assert_eq!(mean.transform(&json!({})), [0.0]);
    assert_eq!(mean.transform(&json!({ "amount": null })), [0.0]);
    // A string holding a number is read as ingest reads it.
    assert!(close(
        &mean.transform(&json!({ "amount": " 7 " })),
        &[3.0 / sd]
    ));
    let zero = policy(MissingPolicy::Zero);
    assert!(close(&zero.transform(&json!({})), &[-4.0 / sd]));
    let ind = policy(MissingPolicy::Indicator);
    assert_eq!(ind.output_names(), ["amount", "amount__missing"]);
    assert_eq!(ind.transform(&json!({})), [0.0, 1.0]);
    assert!(close(
        &ind.transform(&json!({ "amount": 4.0 })),
        &[0.0, 0.0]
    ));
}

#[test]
fn numeric_passes_through_before_any_variance() {
    let s = schema();
    let mut p = FeaturePipeline::new(
        &[feature(
            "amount",
            FieldType::Float,
            FeatureKind::Numeric {
                missing: MissingPolicy::Mean,
            },
        )],
        &s,
    )
    .expect("pipeline");
    assert_eq!(p.transform(&json!({ "amount": 5.0 })), [5.0]);
    p.learn_one(&json!({ "amount": 5.0 }));
    // One value: mean 5, variance 0, so the std is taken as 1.
    assert_eq!(p.transform(&json!({ "amount": 7.0 })), [2.0]);
}

#[test]
fn onehot_declared_categories_first_then_learnt_then_unseen() {
    let s = schema();
    let mut p = FeaturePipeline::new(
        &[
            feature(
                "merchant",
                FieldType::String,
                FeatureKind::Onehot { max_categories: 3 },
            ),
            feature(
                "hour",
                FieldType::Int,
                FeatureKind::Onehot { max_categories: 2 },
            ),
        ],
        &s,
    )
    .expect("pipeline");
    assert_eq!(
        p.output_names(),
        [
            "merchant=grocery",
            "merchant=fuel",
            "merchant=__slot2__",
            "merchant=__unseen__",
            "hour=__slot0__",
            "hour=__slot1__",
            "hour=__unseen__",
        ]
    );
    // Transform alone learns nothing: "travel" is unseen until learnt.
    let travel = json!({ "merchant": "travel", "hour": 3 });
    assert_eq!(p.transform(&travel), [0., 0., 0., 1., 0., 0., 1.]);
    p.learn_one(&travel);
    p.learn_one(&json!({ "merchant": "toys", "hour": 4.0 })); // merchant slots are full
    p.learn_one(&json!({ "hour": 5 })); // hour slots are full too
    assert_eq!(p.output_names()[2], "merchant=travel");
    assert_eq!(p.output_names()[4..6], ["hour=3", "hour=4"]);
    assert_eq!(p.transform(&travel), [0., 0., 1., 0., 1., 0., 0.]);
    assert_eq!(
        p.transform(&json!({ "merchant": "toys", "hour": 4 })),
        [0., 0., 0., 1., 0., 1., 0.]
    );
    assert_eq!(p.transform(&json!({})), [0.; 7]);
}

#[test]
fn hash_buckets_follow_fnv1a() {
    // Published FNV-1a test vectors.
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    let s = schema();
    let p = FeaturePipeline::new(
        &[feature(
            "shop",
            FieldType::String,
            FeatureKind::Hash { buckets: 4 },
        )],
        &s,
    )
    .expect("pipeline");
    assert_eq!(
        p.output_names(),
        ["shop__hash0", "shop__hash1", "shop__hash2", "shop__hash3"]
    );
    let slot = (0xaf63_dc4c_8601_ec8cu64 % 4) as usize;
    let mut want = [0.0; 4];
    want[slot] = 1.0;
    assert_eq!(p.transform(&json!({ "shop": "a" })), want);
    assert_eq!(p.transform(&json!({})), [0.0; 4]);
}

#[test]
fn time_columns_by_hand() {
    let s = schema();
    let p = FeaturePipeline::new(
        &[
            feature("ts", FieldType::Timestamp, FeatureKind::Time),
            feature("day", FieldType::Date, FeatureKind::Time),
        ],
        &s,
    )
    .expect("pipeline");
    assert_eq!(
        p.output_names(),
        [
            "ts__hour_sin",
            "ts__hour_cos",
            "ts__dow_sin",
            "ts__dow_cos",
            "ts__weekend",
            "day__dow_sin",
            "day__dow_cos",
            "day__weekend",
        ]
    );
    // Saturday 2026-01-10 at 06:00 UTC: hour 6 is a quarter turn, Saturday is day 5.
    let sat = 2.0 * std::f64::consts::PI * 5.0 / 7.0;
    let want = [1.0, 0.0, sat.sin(), sat.cos(), 1.0];
    let v = p.transform(&json!({ "ts": "2026-01-10T06:00:00Z", "day": "2026-01-10" }));
    assert!(close(&v[..5], &want), "{v:?}");
    assert!(close(&v[5..], &want[2..]), "{v:?}");
    // The same instant as epoch milliseconds, as a row value, and missing.
    let ms = 1_768_024_800_000i64;
    assert!(close(&p.transform(&json!({ "ts": ms }))[..5], &want));
    let mut row = HashMap::new();
    row.insert("ts".to_string(), Value::Timestamp(ms * 1000));
    assert!(close(&p.transform(&row)[..5], &want));
    // 1970-01-01 00:00 was a Thursday (day 3), not a weekend.
    let thu = 2.0 * std::f64::consts::PI * 3.0 / 7.0;
    assert!(close(
        &p.transform(&json!({ "ts": 0 }))[..5],
        &[0.0, 1.0, thu.sin(), thu.cos(), 0.0]
    ));
    assert_eq!(p.transform(&json!({ "ts": "not a time" })), [0.0; 8]);
}

#[test]
fn bool_and_wrong_types() {
    let s = schema();
    let p = FeaturePipeline::new(
        &[
            feature("online", FieldType::Bool, FeatureKind::Bool),
            feature(
                "amount",
                FieldType::Float,
                FeatureKind::Numeric {
                    missing: MissingPolicy::Indicator,
                },
            ),
        ],
        &s,
    )
    .expect("pipeline");
    assert_eq!(
        p.transform(&json!({ "online": true, "amount": 1 })),
        [1.0, 1.0, 0.0]
    );
    assert_eq!(p.transform(&json!({ "online": "FALSE" })), [0.0, 0.0, 1.0]);
    assert_eq!(p.transform(&json!({})), [0.5, 0.0, 1.0]);
    // Lenient: a wrong type is a missing value. Strict: an error naming the field only.
    let bad = json!({ "online": 3, "amount": "4111-1111-1111-1111" });
    assert_eq!(p.transform(&bad), [0.5, 0.0, 1.0]);
    let err = p.try_transform(&bad).unwrap_err();
    assert_eq!(err.to_string(), "field 'online': expected a bool, got int");
    let err = p
        .try_transform(&json!({ "amount": "4111-1111-1111-1111" }))
        .unwrap_err();
    assert!(!err.to_string().contains("4111"), "{err}");
    assert_eq!(
        p.try_transform(&json!({ "online": false })),
        Ok(vec![0.0, 0.0, 1.0])
    );
}

#[test]
fn rows_maps_and_json_read_alike() {
    let s = schema();
    let p = FeaturePipeline::new(
        &[
            feature(
                "merchant",
                FieldType::String,
                FeatureKind::Onehot { max_categories: 2 },
            ),
            feature("online", FieldType::Bool, FeatureKind::Bool),
        ],
        &s,
    )
    .expect("pipeline");
    let values = vec![
        Value::Float(1.0),
        Value::Str("fuel".into()),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Bool(true),
        Value::Null,
    ];
    let from_row = p.transform(&SchemaRow::new(&s, &values));
    let map: HashMap<String, Value> = [
        ("merchant".to_string(), Value::Str("fuel".into())),
        ("online".to_string(), Value::Bool(true)),
    ]
    .into();
    let obj = json!({ "merchant": "fuel", "online": true });
    assert_eq!(from_row, [0.0, 1.0, 0.0, 1.0]);
    assert_eq!(p.transform(&map), from_row);
    assert_eq!(p.transform(obj.as_object().expect("object")), from_row);
    // Not an object: everything is missing.
    assert_eq!(p.transform(&json!([1, 2])), [0.0, 0.0, 0.0, 0.5]);
    // A short row is missing its tail, never out of bounds.
    assert_eq!(
        p.transform(&SchemaRow::new(&s, &values[..2])),
        [0.0, 1.0, 0.0, 0.5]
    );
}

#[test]
fn schema_mismatches_name_the_field() {
    let s = schema();
    let err = FeaturePipeline::new(&[feature("nope", FieldType::Int, FeatureKind::Bool)], &s)
        .unwrap_err();
    assert_eq!(
        err,
        FeatureError::NotInSchema {
            field: "nope".into()
        }
    );
    let err = FeaturePipeline::new(&[feature("amount", FieldType::Int, FeatureKind::Bool)], &s)
        .unwrap_err();
    assert!(err.to_string().contains("'amount'"), "{err}");
}

#[test]
fn state_round_trips_through_json() {
    let s = schema();
    let mut p = FeaturePipeline::new(
        &[
            feature(
                "amount",
                FieldType::Float,
                FeatureKind::Numeric {
                    missing: MissingPolicy::Zero,
                },
            ),
            feature(
                "shop",
                FieldType::String,
                FeatureKind::Onehot { max_categories: 4 },
            ),
        ],
        &s,
    )
    .expect("pipeline");
    for (i, shop) in ["x", "y", "x", "z"].iter().enumerate() {
        p.learn_one(&json!({ "amount": 0.1 * i as f64 + 1.0 / 3.0, "shop": shop }));
    }
    let back: FeaturePipeline =
        serde_json::from_str(&serde_json::to_string(&p).expect("json")).expect("parse");
    assert_eq!(back, p);
    let r = json!({ "amount": 0.77, "shop": "z" });
    assert_eq!(back.transform(&r), p.transform(&r));
}

fn any_kind() -> impl Strategy<Value = (FieldType, FeatureKind)> {
    prop_oneof![
        prop_oneof![
            Just(MissingPolicy::Mean),
            Just(MissingPolicy::Zero),
            Just(MissingPolicy::Indicator)
        ]
        .prop_map(|missing| (FieldType::Float, FeatureKind::Numeric { missing })),
        (1usize..6).prop_map(|m| (FieldType::String, FeatureKind::Onehot { max_categories: m })),
        (1usize..6).prop_map(|b| (FieldType::Int, FeatureKind::Hash { buckets: b })),
        Just((FieldType::Timestamp, FeatureKind::Time)),
        Just((FieldType::Date, FeatureKind::Time)),
        Just((FieldType::Bool, FeatureKind::Bool)),
    ]
}

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[a-z0-9 :TZ-]{0,12}".prop_map(serde_json::Value::from),
        Just(json!({ "nested": 1 })),
    ]
}

proptest! {
    #[test]
    fn output_length_always_matches_the_names(
        kinds in prop::collection::vec(any_kind(), 0..6),
        records in prop::collection::vec(prop::collection::vec(prop::option::of(any_json()), 6), 0..12),
    ) {
        let fields: Vec<Field> = kinds
            .iter()
            .enumerate()
            .map(|(i, (ty, _))| Field::new(format!("f{i}"), *ty))
            .collect();
        let schema = Schema::new(fields);
        let spec: Vec<ResolvedFeature> = kinds
            .iter()
            .enumerate()
            .map(|(i, (ty, k))| feature(&format!("f{i}"), *ty, k.clone()))
            .collect();
        let mut p = FeaturePipeline::new(&spec, &schema).expect("pipeline");
        for values in &records {
            let mut obj = serde_json::Map::new();
            for (i, v) in values.iter().enumerate() {
                if let Some(v) = v {
                    obj.insert(format!("f{i}"), v.clone());
                }
            }
            let names = p.output_names();
            let before = p.transform(&obj);
            prop_assert_eq!(before.len(), names.len());
            prop_assert_eq!(before.len(), p.width());
            prop_assert!(before.iter().all(|x| x.is_finite()));
            if let Ok(strict) = p.try_transform(&obj) {
                prop_assert_eq!(&strict, &before);
            }
            p.learn_one(&obj);
            prop_assert_eq!(p.transform(&obj).len(), names.len());
            prop_assert_eq!(p.output_names().len(), names.len());
        }
    }
}
