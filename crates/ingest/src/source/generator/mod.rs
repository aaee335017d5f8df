//! Built-in synthetic streams: card transactions with a fraud label, SEA, the rotating
//! hyperplane and Agrawal's loan functions, each with configurable concept drift.
//!
//! # Determinism
//!
//! Every event is a pure function of `(seed, position)`: the generator keeps no state
//! between events except the position of the next one. Each event draws from
//! ChaCha8 generators whose 256-bit key is expanded (splitmix64) from the seed and a
//! purpose tag (features, drift, noise) and whose 64-bit stream number is the event's
//! position. Hence [`Generator::seek`] is O(1) and a resumed run continues with
//! exactly the rows an uninterrupted run would have produced, and the features of
//! SEA, hyperplane and Agrawal events do not depend on the drift or noise settings
//! (only their labels do).
//!
//! # Drift
//!
//! Concept `k` is the one in force after `k` drift points (points are taken in order of
//! `at`). A point with `width` 0 switches abruptly at `at`. A point with `width` w > 0
//! is gradual, as MOA's `ConceptDriftStream`: at position t the newer concept is used
//! with probability `1 / (1 + exp(-4 (t - at) / w))`, drawn per event; several points
//! nest, the latest point being decided first.
//!
//! # Noise
//!
//! `noise` is the probability of flipping an event's 0/1 label, for every kind
//! including `cards` (where it also raises the observed fraud rate, since legitimate
//! rows far outnumber fraudulent ones).
//!
//! # Generators
//!
//! | kind | label | what |
//! |---|---|---|
//! | `cards` | `is_fraud` | card transactions, 16 fields, about 360 bytes of JSON each, ~3% fraud; the fraud pattern cycles through three schemes, one per concept |
//! | `sea` | `label` | `f1, f2, f3` uniform in [0, 10]; label 1 when `f1 + f2 <= θ`, θ cycling through 8, 9, 7, 9.5 |
//! | `hyperplane` | `label` | `x0..x{d-1}` uniform in [0, 1]; label 1 when `Σ wᵢxᵢ >= ½ Σ wᵢ`, a new weight vector per concept |
//! | `agrawal` | `label` | Agrawal et al. (1993) applicants; concept k uses classification function k mod 10 |

mod agrawal;
mod cards;
mod hyperplane;
mod sea;

use crate::Row;
use freshet_core::config::{DriftPoint, GeneratorConfig, GeneratorKind};
use freshet_core::{Schema, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Number of hyperplane features used by [`Generator::schema_for`] (the configuration's default).
pub const DEFAULT_HYPERPLANE_FEATURES: usize = 10;

/// A deterministic, seekable synthetic stream.
///
/// ```
/// use freshet_core::config::{GeneratorConfig, GeneratorKind};
/// use freshet_ingest::source::generator::Generator;
///
/// let cfg = GeneratorConfig {
///     kind: GeneratorKind::Sea,
///     seed: 7,
///     rate_per_sec: None,
///     limit: Some(3),
///     drift: vec![],
///     noise: 0.0,
///     n_features: 10,
/// };
/// let mut generator = Generator::new(&cfg);
/// let rows: Vec<_> = std::iter::from_fn(|| generator.next_row()).collect();
/// assert_eq!(rows.len(), 3);
///
/// let mut resumed = Generator::new(&cfg);
/// resumed.seek(2);
/// assert_eq!(resumed.next_row().as_ref(), rows.get(2));
/// ```
#[derive(Debug, Clone)]
pub struct Generator {
    kind: GeneratorKind,
    schema: Schema,
    label_index: usize,
    limit: Option<u64>,
    drift: Vec<DriftPoint>,
    noise: f64,
    position: u64,
    keys: Keys,
    model: Model,
}

/// ChaCha8 keys, one per purpose, so that each purpose draws from its own stream.
#[derive(Debug, Clone)]
struct Keys {
    features: [u8; 32],
    drift: [u8; 32],
    noise: [u8; 32],
}

/// Per-kind state that is fixed for the whole stream (derived from the seed only).
#[derive(Debug, Clone)]
enum Model {
    Cards(cards::Cards),
    Sea,
    Hyperplane(hyperplane::Hyperplane),
    Agrawal,
}

const TAG_FEATURES: u64 = 0x6665_6174_7572_6573; // "features"
const TAG_DRIFT: u64 = 0x6472_6966_7400_0000; // "drift"
const TAG_NOISE: u64 = 0x6e6f_6973_6500_0000; // "noise"
const TAG_WEIGHTS: u64 = 0x7765_6967_6874_7300; // "weights"
const TAG_CARDS: u64 = 0x6361_7264_7300_0000; // "cards"

impl Generator {
    /// Build a generator from its configuration, positioned at event 0.
    ///
    /// Drift points are taken in order of `at` (the configuration validator already
    /// requires that order); `noise` outside [0, 1] is clamped and NaN counts as 0;
    /// `n_features` below 1 counts as 1 (the validator requires 2 to 1000).
    pub fn new(cfg: &GeneratorConfig) -> Self {
        let mut drift = cfg.drift.clone();
        drift.sort_by_key(|d| d.at);
        let noise = if cfg.noise.is_nan() {
            0.0
        } else {
            cfg.noise.clamp(0.0, 1.0)
        };
        let (schema, model) = match cfg.kind {
            GeneratorKind::Cards => (
                cards::schema(),
                Model::Cards(cards::Cards::new(derive_u64(cfg.seed, TAG_CARDS))),
            ),
            GeneratorKind::Sea => (sea::schema(), Model::Sea),
            GeneratorKind::Hyperplane => {
                let d = cfg.n_features.max(1);
                let weights_key = derive_key(cfg.seed, TAG_WEIGHTS);
                let model = hyperplane::Hyperplane::new(d, drift.len() + 1, |concept| {
                    event_rng(&weights_key, concept as u64)
                });
                (hyperplane::schema(d), Model::Hyperplane(model))
            }
            GeneratorKind::Agrawal => (agrawal::schema(), Model::Agrawal),
        };
        let label_index = schema.len().saturating_sub(1);
        Self {
            kind: cfg.kind,
            schema,
            label_index,
            limit: cfg.limit,
            drift,
            noise,
            position: 0,
            keys: Keys {
                features: derive_key(cfg.seed, TAG_FEATURES),
                drift: derive_key(cfg.seed, TAG_DRIFT),
                noise: derive_key(cfg.seed, TAG_NOISE),
            },
            model,
        }
    }

    /// The schema a generator of this kind produces, label last. For the hyperplane it
    /// has [`DEFAULT_HYPERPLANE_FEATURES`] features; use [`schema`](Self::schema) for a
    /// configured generator.
    pub fn schema_for(kind: GeneratorKind) -> Schema {
        match kind {
            GeneratorKind::Cards => cards::schema(),
            GeneratorKind::Sea => sea::schema(),
            GeneratorKind::Hyperplane => hyperplane::schema(DEFAULT_HYPERPLANE_FEATURES),
            GeneratorKind::Agrawal => agrawal::schema(),
        }
    }

    /// The schema of the rows this generator produces; the label is the last field.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Which stream this generator produces.
    pub fn kind(&self) -> GeneratorKind {
        self.kind
    }

    /// Name of the label column: `is_fraud` for cards, `label` otherwise.
    pub fn label_field(&self) -> &'static str {
        match self.kind {
            GeneratorKind::Cards => cards::LABEL,
            GeneratorKind::Sea | GeneratorKind::Hyperplane | GeneratorKind::Agrawal => "label",
        }
    }

    /// Index of the next event [`next_row`](Self::next_row) produces (0 for a fresh generator).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Continue from event `position` (0-based), in O(1): the next row is exactly the
    /// `position + 1`-th row of a fresh generator with the same configuration.
    pub fn seek(&mut self, position: u64) {
        self.position = position;
    }

    /// The next event, or `None` once `limit` events have been produced (a generator
    /// without a limit stops only at position `u64::MAX`).
    pub fn next_row(&mut self) -> Option<Row> {
        if self.position == u64::MAX || self.limit.is_some_and(|limit| self.position >= limit) {
            return None;
        }
        let row = self.row_at(self.position);
        self.position += 1;
        Some(row)
    }

    /// The event at `position`, regardless of the current position and the limit.
    pub fn row_at(&self, position: u64) -> Row {
        let concept = self.event_concept(position);
        let mut rng = event_rng(&self.keys.features, position);
        let mut row = match &self.model {
            Model::Cards(cards) => cards.row(&mut rng, position, concept),
            Model::Sea => sea::row(&mut rng, concept),
            Model::Hyperplane(hyperplane) => hyperplane.row(&mut rng, concept),
            Model::Agrawal => agrawal::row(&mut rng, concept),
        };
        if self.noise > 0.0
            && event_rng(&self.keys.noise, position).random::<f64>() < self.noise
            && let Some(Value::Int(label)) = row.get_mut(self.label_index)
        {
            *label = 1 - *label;
        }
        row
    }

    /// The concept (0-based) in force at `position` when drift is abrupt: the number of
    /// drift points with `at <= position`. For a gradual point this is the concept that
    /// is more likely from its midpoint `at` on; see [`event_concept`](Self::event_concept)
    /// for the concept a given event actually used.
    pub fn concept_at(&self, position: u64) -> usize {
        self.drift.partition_point(|d| d.at <= position)
    }

    /// The concept (0-based) the event at `position` was generated from. Equal to
    /// [`concept_at`](Self::concept_at) for abrupt drift; during a gradual drift it is a
    /// per-event random draw between the old and new concepts.
    pub fn event_concept(&self, position: u64) -> usize {
        if self.drift.is_empty() {
            return 0;
        }
        let mut rng = event_rng(&self.keys.drift, position);
        for (i, point) in self.drift.iter().enumerate().rev() {
            let newer = if point.width == 0 {
                position >= point.at
            } else {
                rng.random::<f64>() < new_concept_probability(position, point)
            };
            if newer {
                return i + 1;
            }
        }
        0
    }
}

impl Iterator for Generator {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        self.next_row()
    }
}

/// Probability that the event at `position` uses the concept after a gradual `point`.
fn new_concept_probability(position: u64, point: &DriftPoint) -> f64 {
    let offset = position as f64 - point.at as f64;
    1.0 / (1.0 + (-4.0 * offset / point.width as f64).exp())
}

/// One splitmix64 step: advance `state` and return the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix64(*state)
}

/// The splitmix64 finaliser: a bijection of `u64` that scatters nearby inputs.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit value derived from the seed and a purpose tag.
fn derive_u64(seed: u64, tag: u64) -> u64 {
    let mut state = seed ^ mix64(tag);
    splitmix64(&mut state)
}

/// A ChaCha key derived from the seed and a purpose tag.
fn derive_key(seed: u64, tag: u64) -> [u8; 32] {
    let mut state = seed ^ mix64(tag);
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    key
}

/// The random generator of one event (or one concept): `key`, stream `stream`.
fn event_rng(key: &[u8; 32], stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::from_seed(*key);
    rng.set_stream(stream);
    rng
}

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Index drawn with probability proportional to `weights` (which must not all be 0).
fn weighted_index(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::FieldType;

    pub(super) fn config(kind: GeneratorKind, seed: u64) -> GeneratorConfig {
        GeneratorConfig {
            kind,
            seed,
            rate_per_sec: None,
            limit: None,
            drift: vec![],
            noise: 0.0,
            n_features: 10,
        }
    }

    const KINDS: [GeneratorKind; 4] = [
        GeneratorKind::Cards,
        GeneratorKind::Sea,
        GeneratorKind::Hyperplane,
        GeneratorKind::Agrawal,
    ];

    fn take(g: &mut Generator, n: usize) -> Vec<Row> {
        std::iter::from_fn(|| g.next_row()).take(n).collect()
    }

    #[test]
    fn generator_is_send_sync_clone_debug() {
        fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
        check::<Generator>();
    }

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        for kind in KINDS {
            let mut cfg = config(kind, 11);
            cfg.drift = vec![DriftPoint { at: 50, width: 20 }];
            cfg.noise = 0.1;
            let a = take(&mut Generator::new(&cfg), 200);
            let b = take(&mut Generator::new(&cfg), 200);
            assert_eq!(a, b, "{kind:?}");
            cfg.seed = 12;
            let c = take(&mut Generator::new(&cfg), 200);
            assert_ne!(a, c, "{kind:?}");
        }
    }

    #[test]
    fn seek_resumes_exactly() {
        for kind in KINDS {
            let mut cfg = config(kind, 5);
            cfg.drift = vec![
                DriftPoint { at: 100, width: 0 },
                DriftPoint { at: 200, width: 60 },
            ];
            cfg.noise = 0.05;
            let reference = take(&mut Generator::new(&cfg), 300);
            for n in [0u64, 1, 99, 100, 170, 231, 299] {
                let mut g = Generator::new(&cfg);
                g.seek(n);
                assert_eq!(g.position(), n);
                assert_eq!(
                    g.next_row().as_ref(),
                    reference.get(n as usize),
                    "{kind:?} at {n}"
                );
                assert_eq!(g.position(), n + 1);
            }
            // Seeking backwards replays.
            let mut g = Generator::new(&cfg);
            let _ = take(&mut g, 250);
            g.seek(10);
            assert_eq!(take(&mut g, 5), reference[10..15].to_vec());
        }
    }

    #[test]
    fn limit_stops_the_stream() {
        let mut cfg = config(GeneratorKind::Sea, 1);
        cfg.limit = Some(25);
        let mut g = Generator::new(&cfg);
        assert_eq!(take(&mut g, 100).len(), 25);
        assert_eq!(g.next_row(), None);
        assert_eq!(g.position(), 25);
        g.seek(24);
        assert!(g.next_row().is_some());
        assert!(g.next_row().is_none());
        g.seek(1_000);
        assert!(g.next_row().is_none());
        cfg.limit = Some(0);
        assert!(Generator::new(&cfg).next_row().is_none());
        // The iterator honours the limit too.
        cfg.limit = Some(7);
        assert_eq!(Generator::new(&cfg).count(), 7);
    }

    #[test]
    fn rows_match_the_schema() {
        for kind in KINDS {
            let mut cfg = config(kind, 3);
            cfg.drift = vec![
                DriftPoint { at: 300, width: 0 },
                DriftPoint { at: 600, width: 0 },
            ];
            cfg.n_features = 4;
            let g = Generator::new(&cfg);
            let schema = g.schema().clone();
            assert_eq!(
                schema.fields().last().map(|f| f.name.as_str()),
                Some(g.label_field())
            );
            assert!(
                schema
                    .fields()
                    .iter()
                    .all(|f| freshet_core::schema::is_valid_field_name(&f.name))
            );
            for row in g.clone().take(1000) {
                assert_eq!(row.len(), schema.len());
                for (value, field) in row.iter().zip(schema.fields()) {
                    let ok = matches!(
                        (field.ty, value),
                        (FieldType::String, Value::Str(_))
                            | (FieldType::Int, Value::Int(_))
                            | (FieldType::Float, Value::Float(_))
                            | (FieldType::Bool, Value::Bool(_))
                            | (FieldType::Timestamp, Value::Timestamp(_))
                    );
                    assert!(ok, "{kind:?}.{} has {}", field.name, value.kind());
                    let number = match value {
                        Value::Int(i) => Some(*i as f64),
                        Value::Float(f) => Some(*f),
                        _ => None,
                    };
                    if let Some(x) = number {
                        assert!(x.is_finite());
                        assert!(
                            field.min.is_none_or(|m| x >= m),
                            "{kind:?}.{} = {x}",
                            field.name
                        );
                        assert!(
                            field.max.is_none_or(|m| x <= m),
                            "{kind:?}.{} = {x}",
                            field.name
                        );
                    }
                    if let (Some(cats), Value::Str(s)) = (&field.categories, value) {
                        assert!(cats.contains(s), "{kind:?}.{} = {s}", field.name);
                    }
                    if let (Some(max), Value::Str(s)) = (field.max_length, value) {
                        assert!(s.chars().count() <= max);
                    }
                }
            }
        }
    }

    #[test]
    fn schema_for_matches_a_default_generator() {
        for kind in KINDS {
            assert_eq!(
                &Generator::schema_for(kind),
                Generator::new(&config(kind, 9)).schema()
            );
        }
        let mut cfg = config(GeneratorKind::Hyperplane, 1);
        cfg.n_features = 3;
        assert_eq!(Generator::new(&cfg).schema().len(), 4);
    }

    #[test]
    fn abrupt_drift_switches_exactly_at_the_point() {
        let mut cfg = config(GeneratorKind::Sea, 2);
        cfg.drift = vec![
            DriftPoint { at: 100, width: 0 },
            DriftPoint { at: 250, width: 0 },
        ];
        let g = Generator::new(&cfg);
        for t in 0..400u64 {
            let expected = usize::from(t >= 100) + usize::from(t >= 250);
            assert_eq!(g.concept_at(t), expected);
            assert_eq!(g.event_concept(t), expected);
        }
    }

    #[test]
    fn gradual_drift_mixes_along_a_sigmoid() {
        let mut cfg = config(GeneratorKind::Sea, 2);
        cfg.drift = vec![DriftPoint {
            at: 10_000,
            width: 1_000,
        }];
        let g = Generator::new(&cfg);
        let share_new = |from: u64, to: u64| {
            (from..to).filter(|&t| g.event_concept(t) == 1).count() as f64 / (to - from) as f64
        };
        // Far before: old concept only; far after: new concept only.
        assert_eq!(share_new(0, 2_000), 0.0);
        assert_eq!(share_new(20_000, 22_000), 1.0);
        // Around the midpoint, about half; a quarter-width either side, 1/(1+e) and e/(1+e).
        let mid = share_new(9_900, 10_100);
        assert!((mid - 0.5).abs() < 0.1, "{mid}");
        let before = share_new(9_700, 9_800);
        let after = share_new(10_200, 10_300);
        assert!(
            (before - 0.23).abs() < 0.1 && (after - 0.77).abs() < 0.1,
            "{before} {after}"
        );
        // Both concepts really occur inside the window, interleaved.
        let window: Vec<usize> = (9_500..10_500).map(|t| g.event_concept(t)).collect();
        assert!(window.windows(2).filter(|w| w[0] != w[1]).count() > 100);
        assert_eq!(g.concept_at(9_999), 0);
        assert_eq!(g.concept_at(10_000), 1);
    }

    #[test]
    fn nested_drift_points_reach_every_concept() {
        let mut cfg = config(GeneratorKind::Sea, 4);
        cfg.drift = vec![
            DriftPoint {
                at: 1_000,
                width: 200,
            },
            DriftPoint {
                at: 2_000,
                width: 0,
            },
            DriftPoint {
                at: 3_000,
                width: 400,
            },
        ];
        let g = Generator::new(&cfg);
        assert_eq!(g.event_concept(0), 0);
        assert_eq!(g.event_concept(1_500), 1);
        assert_eq!(g.event_concept(2_500), 2);
        assert_eq!(g.event_concept(5_000), 3);
        // Unordered drift points are sorted.
        cfg.drift.reverse();
        assert_eq!(Generator::new(&cfg).concept_at(2_500), 2);
    }

    #[test]
    fn noise_flips_labels_at_the_configured_rate_and_keeps_features() {
        let clean_cfg = config(GeneratorKind::Sea, 8);
        let mut noisy_cfg = clean_cfg.clone();
        noisy_cfg.noise = 0.2;
        let clean = take(&mut Generator::new(&clean_cfg), 10_000);
        let noisy = take(&mut Generator::new(&noisy_cfg), 10_000);
        let mut flipped = 0;
        for (c, n) in clean.iter().zip(&noisy) {
            assert_eq!(c[..3], n[..3]);
            flipped += usize::from(c[3] != n[3]);
        }
        let rate = flipped as f64 / 10_000.0;
        assert!((rate - 0.2).abs() < 0.02, "{rate}");
    }

    #[test]
    fn odd_configurations_do_not_panic() {
        for kind in KINDS {
            let mut cfg = config(kind, u64::MAX);
            cfg.noise = f64::NAN;
            cfg.n_features = 0;
            cfg.drift = vec![
                DriftPoint {
                    at: 0,
                    width: u64::MAX,
                },
                DriftPoint {
                    at: u64::MAX,
                    width: 0,
                },
            ];
            let mut g = Generator::new(&cfg);
            assert!(g.next_row().is_some());
            g.seek(u64::MAX - 1);
            assert!(g.next_row().is_some());
            assert!(g.next_row().is_none());
        }
    }
}
