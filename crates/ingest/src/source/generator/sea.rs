//! SEA concepts (Street and Kim, 2001): three features uniform in [0, 10], of which only
//! the first two matter; label 1 when `f1 + f2 <= θ`. The thresholds of concepts
//! 0, 1, 2, 3 are 8, 9, 7 and 9.5 (the four classic variants), then they cycle.
//!
//! Note that MOA and River label the other side of the plane as 1 (`f1 + f2 > θ`); the
//! concepts and their boundaries are the same.

use crate::Row;
use freshet_core::{Field, FieldType, Schema, Value};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Thresholds θ of the SEA concepts, in concept order.
pub(super) const THETAS: [f64; 4] = [8.0, 9.0, 7.0, 9.5];

/// `f1, f2, f3` (floats in [0, 10]) and `label` (int 0/1), all required.
pub(super) fn schema() -> Schema {
    let feature = |name: &str| {
        Field::new(name, FieldType::Float)
            .required()
            .range(Some(0.0), Some(10.0))
    };
    Schema::new(vec![
        feature("f1"),
        feature("f2"),
        feature("f3"),
        Field::new("label", FieldType::Int)
            .required()
            .range(Some(0.0), Some(1.0)),
    ])
}

/// The label of concept `concept` for features `f1`, `f2`.
pub(super) fn label(f1: f64, f2: f64, concept: usize) -> i64 {
    i64::from(f1 + f2 <= THETAS[concept % THETAS.len()])
}

/// One event of concept `concept`.
pub(super) fn row(rng: &mut ChaCha8Rng, concept: usize) -> Row {
    let f1 = rng.random::<f64>() * 10.0;
    let f2 = rng.random::<f64>() * 10.0;
    let f3 = rng.random::<f64>() * 10.0;
    vec![
        Value::Float(f1),
        Value::Float(f2),
        Value::Float(f3),
        Value::Int(label(f1, f2, concept)),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::Generator;
    use super::super::tests::config;
    use super::*;
    use freshet_core::config::{DriftPoint, GeneratorKind};

    fn floats(row: &Row) -> (f64, f64, i64) {
        match (&row[0], &row[1], &row[3]) {
            (Value::Float(a), Value::Float(b), Value::Int(l)) => (*a, *b, *l),
            other => panic!("unexpected row {other:?}"),
        }
    }

    #[test]
    fn labels_by_hand() {
        // Concept 0, θ = 8.
        assert_eq!(label(3.0, 4.0, 0), 1);
        assert_eq!(label(4.0, 4.0, 0), 1); // on the boundary: <=
        assert_eq!(label(4.0, 4.5, 0), 0);
        // Concept 1, θ = 9.
        assert_eq!(label(4.0, 4.5, 1), 1);
        assert_eq!(label(5.0, 4.5, 1), 0);
        // Concept 2, θ = 7.
        assert_eq!(label(3.0, 4.5, 2), 0);
        assert_eq!(label(3.0, 3.5, 2), 1);
        // Concept 3, θ = 9.5, then the cycle restarts.
        assert_eq!(label(5.0, 4.5, 3), 1);
        assert_eq!(label(5.0, 4.6, 3), 0);
        assert_eq!(label(4.0, 4.5, 4), 0);
        assert_eq!(label(10.0, 0.0, 4), 0);
        assert_eq!(label(0.0, 0.0, 4), 1);
    }

    #[test]
    fn generated_rows_carry_the_concept_label() {
        let mut cfg = config(GeneratorKind::Sea, 21);
        cfg.drift = vec![
            DriftPoint { at: 100, width: 0 },
            DriftPoint { at: 200, width: 0 },
            DriftPoint { at: 300, width: 0 },
            DriftPoint { at: 400, width: 0 },
        ];
        let g = Generator::new(&cfg);
        assert_eq!(g.label_field(), "label");
        for (t, row) in g.clone().take(500).enumerate() {
            let (f1, f2, l) = floats(&row);
            let theta = [8.0, 9.0, 7.0, 9.5, 8.0][t / 100];
            assert_eq!(
                l,
                i64::from(f1 + f2 <= theta),
                "event {t}: {f1} + {f2} vs {theta}"
            );
        }
    }

    #[test]
    fn first_rows_by_hand() {
        let mut g = Generator::new(&config(GeneratorKind::Sea, 0));
        for _ in 0..5 {
            let row = g.next_row().unwrap_or_default();
            let (f1, f2, l) = floats(&row);
            assert!((0.0..10.0).contains(&f1) && (0.0..10.0).contains(&f2));
            assert_eq!(l, if f1 + f2 <= 8.0 { 1 } else { 0 });
        }
    }

    #[test]
    fn class_balance_follows_the_threshold() {
        // P(f1 + f2 <= θ) for two uniforms on [0, 10] is θ² / 200 when θ <= 10.
        let cfg = config(GeneratorKind::Sea, 3);
        let g = Generator::new(&cfg);
        let ones = g.take(20_000).filter(|r| r[3] == Value::Int(1)).count() as f64 / 20_000.0;
        assert!((ones - 0.32).abs() < 0.015, "{ones}");
    }
}
