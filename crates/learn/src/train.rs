//! Training a model on a window of rows with an out-of-time holdout.
//!
//! Rows arrive in time order. The newest `holdout` fraction is kept back and the model
//! learns the older rows: an online model in order, scored test-then-train as it goes
//! (prequential); a batch model (gradient-boosted trees) fitted on them at once, then
//! scored on them in sample. Either way the frozen model is then scored on the holdout.
//! A random split would leak the future into training and flatter a model that is
//! about to go stale, so the split is always by time.

use crate::features::Record;
use crate::metrics::{
    Accuracy, ClassPrediction, ClassificationMetric, CohensKappa, F1, LogLoss, Mae, Precision, R2,
    Recall, RegressionMetric, Rmse, RocAuc,
};
use crate::model::{Model, ModelError, Output, ProfileBuilder};
use freshet_core::Task;

/// What a training run measured, with the trained model.
#[derive(Debug)]
pub struct TrainOutcome {
    pub model: Model,
    pub train_rows: u64,
    pub holdout_rows: u64,
    /// Rows left out because their label was missing or unusable.
    pub skipped_rows: u64,
    /// `(name, value)` pairs such as `holdout_accuracy`, in a stable order.
    pub metrics: Vec<(String, f64)>,
}

/// Where the holdout starts for `n` rows: at least one row each side when `n >= 2`.
pub fn holdout_start(n: usize, holdout: f64) -> usize {
    if n < 2 || holdout <= 0.0 {
        return n;
    }
    let keep = ((n as f64) * holdout.clamp(0.0, 1.0)).round() as usize;
    n - keep.clamp(1, n - 1)
}

struct ClassScores {
    accuracy: Accuracy,
    log_loss: LogLoss,
    kappa: CohensKappa,
    /// Only for a binary task, the only one they are reported for.
    binary: Option<BinaryScores>,
}

#[derive(Default)]
struct BinaryScores {
    auc: RocAuc,
    precision: Precision,
    recall: Recall,
    f1: F1,
}

impl ClassScores {
    fn new(binary: bool) -> Self {
        Self {
            accuracy: Accuracy::default(),
            log_loss: LogLoss::default(),
            kappa: CohensKappa::default(),
            binary: binary.then(BinaryScores::default),
        }
    }

    fn update(&mut self, y: usize, p: &ClassPrediction) {
        self.accuracy.update(y, p);
        self.log_loss.update(y, p);
        self.kappa.update(y, p);
        if let Some(b) = &mut self.binary {
            b.auc.update(y, p);
            b.precision.update(y, p);
            b.recall.update(y, p);
            b.f1.update(y, p);
        }
    }

    fn report(&self, prefix: &str, out: &mut Vec<(String, f64)>) {
        out.push((format!("{prefix}_accuracy"), self.accuracy.get()));
        out.push((format!("{prefix}_log_loss"), self.log_loss.get()));
        out.push((format!("{prefix}_kappa"), self.kappa.get()));
        if let Some(b) = &self.binary {
            out.push((format!("{prefix}_roc_auc"), b.auc.get()));
            out.push((format!("{prefix}_precision"), b.precision.get()));
            out.push((format!("{prefix}_recall"), b.recall.get()));
            out.push((format!("{prefix}_f1"), b.f1.get()));
        }
    }
}

struct RegScores {
    mae: Mae,
    rmse: Rmse,
    r2: R2,
}

impl RegScores {
    fn new() -> Self {
        Self {
            mae: Mae::default(),
            rmse: Rmse::default(),
            r2: R2::default(),
        }
    }
    fn update(&mut self, y: f64, p: f64) {
        self.mae.update(y, p);
        self.rmse.update(y, p);
        self.r2.update(y, p);
    }
    fn report(&self, prefix: &str, out: &mut Vec<(String, f64)>) {
        out.push((format!("{prefix}_mae"), self.mae.get()));
        out.push((format!("{prefix}_rmse"), self.rmse.get()));
        out.push((format!("{prefix}_r2"), self.r2.get()));
    }
}

enum Scores {
    Class(ClassScores),
    Reg(RegScores),
}

impl Scores {
    fn for_task(task: Task) -> Self {
        if task.is_classification() {
            Scores::Class(ClassScores::new(task == Task::Binary))
        } else {
            Scores::Reg(RegScores::new())
        }
    }

    /// Score the model's current answer for `record` against its label; `false` when
    /// the label is unusable or the model cannot answer yet.
    fn score<R: Record + ?Sized>(&mut self, model: &Model, record: &R) -> bool {
        let Ok(output) = model.predict_output(record) else {
            return false;
        };
        self.score_output(model, record, output)
    }

    /// Score an answer already given for `record`.
    fn score_output<R: Record + ?Sized>(
        &mut self,
        model: &Model,
        record: &R,
        output: Output,
    ) -> bool {
        let label = &model.spec().label;
        match (self, output) {
            (Scores::Class(s), Output::Proba(p)) => {
                let Some(y) = model.class_index(record.field(label)) else {
                    return false;
                };
                s.update(y, &ClassPrediction::proba(p));
                true
            }
            (Scores::Reg(s), Output::Value(v)) => match model.target(record.field(label)) {
                Some(y) => {
                    s.update(y, v);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    fn report(&self, prefix: &str, out: &mut Vec<(String, f64)>) {
        match self {
            Scores::Class(s) => s.report(prefix, out),
            Scores::Reg(s) => s.report(prefix, out),
        }
    }
}

/// Score a trained model on `rows` without changing it: metrics named
/// `<prefix>_<metric>` and how many rows could be scored. Used to compare a candidate
/// with the champion on the same out-of-time slice.
pub fn score_rows<R: Record>(model: &Model, rows: &[R], prefix: &str) -> (u64, Vec<(String, f64)>) {
    let mut scores = Scores::for_task(model.task());
    let scored = rows.iter().filter(|r| scores.score(model, *r)).count() as u64;
    let mut out = Vec::new();
    if scored > 0 {
        scores.report(prefix, &mut out);
    }
    (scored, out)
}

/// Score answers already given — each record with the output the model gave for it
/// before it learnt the record — as metrics named `<prefix>_<metric>`: how an online
/// model did test-then-train on them. `model` supplies the task, classes and label.
pub fn score_answers<R: Record>(
    model: &Model,
    answers: &[(R, Output)],
    prefix: &str,
) -> (u64, Vec<(String, f64)>) {
    let mut scores = Scores::for_task(model.task());
    let scored = answers
        .iter()
        .filter(|(r, out)| scores.score_output(model, r, out.clone()))
        .count() as u64;
    let mut out = Vec::new();
    if scored > 0 {
        scores.report(prefix, &mut out);
    }
    (scored, out)
}

/// Train `model` on `rows` (oldest first) holding out the newest `holdout` fraction;
/// `progress` is called with the number of rows handled so far.
///
/// An online learner learns the training slice one row at a time and is scored on each
/// row before it learns it: `train_prequential_*` metrics. A batch learner
/// ([`Model::is_batch`]) has no model to test until the whole slice is fitted
/// ([`Model::fit_window`]), so it has no prequential scores; it is scored instead on
/// the slice it was fitted on, `train_in_sample_*`, which flatter it by construction:
/// read them against `holdout_*`, their gap shows how much the trees overfit. Both
/// kinds are scored the same way on the holdout, which never teaches the model.
///
/// # Errors
/// When no training row could be learnt (every label missing or unusable), or a batch
/// learner refuses its window.
pub fn train_with_holdout<R: Record>(
    mut model: Model,
    rows: &[R],
    holdout: f64,
    mut progress: impl FnMut(u64),
) -> Result<TrainOutcome, ModelError> {
    let split = holdout_start(rows.len(), holdout);
    let task = model.task();
    let mut train_metrics = Vec::new();
    let (learnt, mut skipped) = if model.is_batch() {
        let train = &rows[..split];
        model
            .fit_window(train)
            .map_err(|e| no_label_in_slice(e, split))?;
        progress(split as u64);
        let learnt = model.metadata().training_rows;
        let mut in_sample = Scores::for_task(task);
        // The fitted model answers each training row once, for its in-sample score and
        // its reference profile alike.
        let mut profile = ProfileBuilder::new(&model);
        for r in train {
            let answer = model.predict_output(r);
            if let Ok(out) = &answer {
                in_sample.score_output(&model, r, out.clone());
            }
            profile.observe_answer(r, answer);
        }
        model.set_reference_profile(profile.finish());
        in_sample.report("train_in_sample", &mut train_metrics);
        (learnt, (split as u64).saturating_sub(learnt))
    } else {
        learn_prequentially(
            &mut model,
            &rows[..split],
            &mut progress,
            &mut train_metrics,
        )?
    };
    let mut scores = Scores::for_task(task);
    let mut scored = 0u64;
    for (i, r) in rows[split..].iter().enumerate() {
        if scores.score(&model, r) {
            scored += 1;
        } else {
            skipped += 1;
        }
        if i % 4096 == 0 {
            progress((split + i) as u64);
        }
    }
    progress(rows.len() as u64);
    // Holdout first: it is the figure that decides whether a model ships.
    let mut metrics = Vec::new();
    if scored > 0 {
        scores.report("holdout", &mut metrics);
    }
    metrics.append(&mut train_metrics);
    if !model.is_batch() {
        // The online model's profile holds its answers once it learnt the whole slice.
        model.build_reference_profile(rows[..split].iter());
    }
    Ok(TrainOutcome {
        model,
        train_rows: learnt,
        holdout_rows: scored,
        skipped_rows: skipped,
        metrics,
    })
}

/// The online half of [`train_with_holdout`]: test-then-train over `train`, returning
/// the rows learnt and skipped, with the prequential scores added to `metrics`.
fn learn_prequentially<R: Record>(
    model: &mut Model,
    train: &[R],
    progress: &mut impl FnMut(u64),
    metrics: &mut Vec<(String, f64)>,
) -> Result<(u64, u64), ModelError> {
    let task = model.task();
    let mut prequential = Scores::for_task(task);
    let mut skipped = 0u64;
    let mut learnt = 0u64;
    for (i, r) in train.iter().enumerate() {
        prequential.score(model, r);
        match model.learn_record(r) {
            Ok(()) => learnt += 1,
            Err(ModelError::Label { .. }) => skipped += 1,
            Err(e) => return Err(e),
        }
        if i % 4096 == 0 {
            progress(i as u64);
        }
    }
    if learnt == 0 {
        return Err(ModelError::Label {
            field: model.spec().label.clone(),
            reason: format!(
                "none of the {} training rows has a usable label ({skipped} skipped)",
                train.len()
            ),
        });
    }
    prequential.report("train_prequential", metrics);
    Ok((learnt, skipped))
}

/// `fit_window`'s "no usable label" error, reworded to say it is the training slice.
fn no_label_in_slice(e: ModelError, split: usize) -> ModelError {
    match e {
        ModelError::Label { field, .. } => ModelError::Label {
            field,
            reason: format!(
                "none of the {split} training rows has a usable label ({split} skipped)"
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelStamp;
    use freshet_core::model_spec::ModelSpec;
    use freshet_core::{Field, FieldType, ManualClock, Schema};
    use serde_json::json;

    fn model(yaml: &str) -> Model {
        let schema = Schema::new(vec![
            Field::new("x", FieldType::Float),
            Field::new("y", FieldType::Bool),
            Field::new("t", FieldType::Float),
        ]);
        let spec: ModelSpec = serde_yaml_ng::from_str(yaml).unwrap();
        let resolved = spec.resolve("m", &schema).unwrap();
        Model::new(&resolved, &schema, ModelStamp::new(&ManualClock::new(0))).unwrap()
    }

    fn spec(learner: &str) -> String {
        format!(
            "stream: s\nlabel: y\nfeatures: [{{ field: x, kind: numeric }}]\nlearner: {{ type: {learner} }}\n"
        )
    }

    #[test]
    fn a_separable_stream_scores_well_on_the_newest_slice() {
        // y = x > 0; the holdout is the last 25 rows, and 3 rows without a label are skipped.
        let mut rows: Vec<serde_json::Value> = (0..200)
            .map(|i| {
                let x = ((i * 37) % 101) as f64 - 50.0;
                json!({"x": x, "y": x > 0.0})
            })
            .collect();
        for i in [5, 50, 120] {
            rows[i]["y"] = serde_json::Value::Null;
        }
        let out =
            train_with_holdout(model(&spec("logistic_regression")), &rows, 0.125, |_| {}).unwrap();
        assert_eq!(
            (out.train_rows, out.holdout_rows, out.skipped_rows),
            (172, 25, 3)
        );
        let get = |k: &str| out.metrics.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        assert!(
            get("holdout_accuracy").unwrap() >= 0.95,
            "{:?}",
            out.metrics
        );
        assert!(get("holdout_roc_auc").unwrap() >= 0.95);
        assert!(get("train_prequential_accuracy").unwrap() > 0.8);
        assert!(out.model.reference_profile().is_some());
        assert_eq!(out.model.metadata().training_rows, 172);
    }

    /// y = x > 0 over 200 rows, with rows 5, 50 and 120 unlabelled.
    fn separable() -> Vec<serde_json::Value> {
        let mut rows: Vec<serde_json::Value> = (0..200)
            .map(|i| {
                let x = ((i * 37) % 101) as f64 - 50.0;
                json!({"x": x, "y": x > 0.0, "t": 2.0 * x + 1.0})
            })
            .collect();
        for i in [5, 50, 120] {
            rows[i]["y"] = serde_json::Value::Null;
        }
        rows
    }

    fn metric(out: &TrainOutcome, name: &str) -> Option<f64> {
        out.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    #[test]
    fn a_batch_learner_is_fitted_on_the_training_slice_and_scored_on_the_holdout() {
        let rows = separable();
        let mut seen = Vec::new();
        let out = train_with_holdout(model(&spec("gbt")), &rows, 0.125, |n| seen.push(n)).unwrap();
        assert_eq!(
            (out.train_rows, out.holdout_rows, out.skipped_rows),
            (172, 25, 3)
        );
        assert_eq!(out.model.metadata().training_rows, 172);
        assert!(
            metric(&out, "holdout_accuracy").unwrap() >= 0.95,
            "{:?}",
            out.metrics
        );
        assert!(metric(&out, "holdout_roc_auc").unwrap() >= 0.95);
        // No prequential scores for a batch learner: in-sample ones instead.
        assert!(metric(&out, "train_prequential_accuracy").is_none());
        assert!(metric(&out, "train_in_sample_accuracy").unwrap() >= 0.95);
        assert_eq!(out.metrics[0].0, "holdout_accuracy");
        assert!(out.model.reference_profile().is_some());
        assert_eq!(seen.last(), Some(&200));
    }

    #[test]
    fn a_regression_booster_scores_well_out_of_time() {
        // t = 2x + 1, learnt from x alone.
        let yaml = "stream: s\nlabel: t\nfeatures: [{ field: x, kind: numeric }]\nlearner: { type: gbt }\n";
        let out = train_with_holdout(model(yaml), &separable(), 0.2, |_| {}).unwrap();
        assert_eq!((out.train_rows, out.holdout_rows), (160, 40));
        assert!(
            metric(&out, "holdout_r2").unwrap() > 0.95,
            "{:?}",
            out.metrics
        );
        assert!(metric(&out, "train_in_sample_rmse").is_some());
    }

    #[test]
    fn the_forest_learns_online_like_the_other_learners() {
        let out = train_with_holdout(
            model(&spec("adaptive_random_forest")),
            &separable(),
            0.125,
            |_| {},
        )
        .unwrap();
        assert_eq!((out.train_rows, out.skipped_rows), (172, 3));
        assert!(
            metric(&out, "holdout_accuracy").unwrap() >= 0.9,
            "{:?}",
            out.metrics
        );
        assert!(metric(&out, "train_prequential_accuracy").is_some());
    }

    #[test]
    fn a_batch_learner_without_a_usable_label_is_an_error_naming_the_field() {
        let rows = vec![json!({"x": 1.0}), json!({"x": 2.0, "y": "maybe"})];
        let e = train_with_holdout(model(&spec("gbt")), &rows, 0.5, |_| {}).unwrap_err();
        assert_eq!(
            e.to_string(),
            "label 'y': none of the 1 training rows has a usable label (1 skipped)"
        );
    }

    #[test]
    fn the_holdout_never_teaches_the_model() {
        // The newest slice flips the concept: a model that learnt it would score well.
        let rows: Vec<serde_json::Value> = (0..100)
            .map(|i| {
                let x = ((i * 37) % 101) as f64 - 50.0;
                json!({"x": x, "y": if i < 80 { x > 0.0 } else { x <= 0.0 }})
            })
            .collect();
        let out =
            train_with_holdout(model(&spec("logistic_regression")), &rows, 0.2, |_| {}).unwrap();
        let acc = out
            .metrics
            .iter()
            .find(|(n, _)| n == "holdout_accuracy")
            .unwrap()
            .1;
        assert!(
            acc <= 0.2,
            "the flipped holdout must score badly, got {acc}"
        );
    }

    #[test]
    fn no_usable_label_is_an_error_naming_the_field() {
        let rows = vec![json!({"x": 1.0}), json!({"x": 2.0, "y": "maybe"})];
        let e = train_with_holdout(model(&spec("gaussian_nb")), &rows, 0.5, |_| {}).unwrap_err();
        assert!(e.to_string().contains("'y'"), "{e}");
    }

    #[test]
    fn the_holdout_is_the_newest_slice_and_never_empty() {
        assert_eq!(holdout_start(100, 0.2), 80);
        assert_eq!(holdout_start(3, 0.01), 2);
        assert_eq!(holdout_start(3, 0.99), 1);
        assert_eq!(holdout_start(1, 0.5), 1);
        assert_eq!(holdout_start(10, 0.0), 10);
    }
}
