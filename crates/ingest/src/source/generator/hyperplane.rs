//! Rotating hyperplane (Hulten, Spencer and Domingos, 2001): `d` features uniform in
//! [0, 1]; label 1 when `Σ wᵢxᵢ >= ½ Σ wᵢ`, which splits the unit cube through its
//! centre, so both classes are equally likely. Each concept `k` has its own weight
//! vector, uniform in [0, 1]ᵈ, drawn from `(seed, k)`; a drift point therefore turns the
//! hyperplane to a new orientation.

use crate::Row;
use freshet_core::{Field, FieldType, Schema, Value};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// `x0 .. x{d-1}` (floats in [0, 1]) and `label` (int 0/1), all required.
pub(super) fn schema(d: usize) -> Schema {
    let mut fields: Vec<Field> = (0..d)
        .map(|i| {
            Field::new(format!("x{i}"), FieldType::Float)
                .required()
                .range(Some(0.0), Some(1.0))
        })
        .collect();
    fields.push(
        Field::new("label", FieldType::Int)
            .required()
            .range(Some(0.0), Some(1.0)),
    );
    Schema::new(fields)
}

/// The weight vectors of every concept a stream can reach.
#[derive(Debug, Clone)]
pub(super) struct Hyperplane {
    /// `weights[k]` is the normal of concept `k`'s hyperplane.
    weights: Vec<Vec<f64>>,
}

impl Hyperplane {
    /// `d` features and `concepts` concepts; `concept_rng(k)` is concept k's generator.
    pub(super) fn new(
        d: usize,
        concepts: usize,
        concept_rng: impl Fn(usize) -> ChaCha8Rng,
    ) -> Self {
        let weights = (0..concepts)
            .map(|k| {
                let mut rng = concept_rng(k);
                (0..d).map(|_| rng.random::<f64>()).collect()
            })
            .collect();
        Self { weights }
    }

    /// The label of `x` under concept `concept` (the last concept if past the end).
    pub(super) fn label(&self, x: &[f64], concept: usize) -> i64 {
        let Some(w) = self.weights.get(concept).or(self.weights.last()) else {
            return 0;
        };
        let dot: f64 = w.iter().zip(x).map(|(w, x)| w * x).sum();
        let half: f64 = 0.5 * w.iter().sum::<f64>();
        i64::from(dot >= half)
    }

    /// One event of concept `concept`.
    pub(super) fn row(&self, rng: &mut ChaCha8Rng, concept: usize) -> Row {
        let d = self.weights.first().map_or(0, Vec::len);
        let x: Vec<f64> = (0..d).map(|_| rng.random::<f64>()).collect();
        let label = self.label(&x, concept);
        let mut row: Row = x.into_iter().map(Value::Float).collect();
        row.push(Value::Int(label));
        row
    }
}

#[cfg(test)]
mod tests {
    use super::super::Generator;
    use super::super::tests::config;
    use super::*;
    use freshet_core::config::{DriftPoint, GeneratorKind};
    use rand::SeedableRng;

    fn features(row: &Row) -> Vec<f64> {
        row.iter()
            .filter_map(|v| match v {
                Value::Float(f) => Some(*f),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn label_by_hand() {
        let h = Hyperplane {
            weights: vec![vec![1.0, 0.0, 0.0], vec![0.2, 0.3, 0.5]],
        };
        // Concept 0: x0 >= 0.5.
        assert_eq!(h.label(&[0.5, 0.9, 0.9], 0), 1);
        assert_eq!(h.label(&[0.49, 1.0, 1.0], 0), 0);
        // Concept 1: 0.2 x0 + 0.3 x1 + 0.5 x2 >= 0.5.
        assert_eq!(h.label(&[1.0, 1.0, 0.0], 1), 1); // 0.5
        assert_eq!(h.label(&[1.0, 0.0, 0.5], 1), 0); // 0.45
        assert_eq!(h.label(&[0.0, 0.0, 1.0], 1), 1); // 0.5
        // Past the last concept: the last one.
        assert_eq!(h.label(&[1.0, 0.0, 0.5], 7), 0);
    }

    #[test]
    fn rows_have_the_configured_width_and_balanced_labels() {
        let mut cfg = config(GeneratorKind::Hyperplane, 17);
        cfg.n_features = 5;
        let g = Generator::new(&cfg);
        assert_eq!(g.schema().len(), 6);
        assert_eq!(g.schema().fields()[4].name, "x4");
        assert_eq!(g.label_field(), "label");
        let rows: Vec<Row> = g.take(10_000).collect();
        assert!(rows.iter().all(|r| r.len() == 6 && features(r).len() == 5));
        let ones = rows.iter().filter(|r| r[5] == Value::Int(1)).count() as f64 / 10_000.0;
        assert!((ones - 0.5).abs() < 0.05, "{ones}");
    }

    #[test]
    fn each_concept_has_its_own_hyperplane() {
        let mut cfg = config(GeneratorKind::Hyperplane, 23);
        cfg.drift = vec![DriftPoint {
            at: 5_000,
            width: 0,
        }];
        let g = Generator::new(&cfg);
        // Relabel the same features under both concepts: a real rotation disagrees often.
        let Some(h) = (match &g.model {
            super::super::Model::Hyperplane(h) => Some(h.clone()),
            _ => None,
        }) else {
            panic!("not a hyperplane model")
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let disagree = (0..5_000)
            .filter(|_| {
                let x: Vec<f64> = (0..10).map(|_| rng.random::<f64>()).collect();
                h.label(&x, 0) != h.label(&x, 1)
            })
            .count();
        assert!(disagree > 250, "{disagree}");
        // And the generated labels follow concept 0, then concept 1.
        for (t, row) in g.take(10_000).enumerate() {
            assert_eq!(
                row[10],
                Value::Int(h.label(&features(&row), usize::from(t >= 5_000)))
            );
        }
        // The weights come from (seed, k): the same for another stream with more drift.
        cfg.drift.push(DriftPoint {
            at: 9_000,
            width: 0,
        });
        let g2 = Generator::new(&cfg);
        if let super::super::Model::Hyperplane(h2) = &g2.model {
            assert_eq!(h2.weights[..2], h.weights[..]);
        }
    }
}
