//! Training a model on a window of rows with an out-of-time holdout.
//!
//! Rows arrive in time order. The newest `holdout` fraction is kept back and the model
//! learns the older rows in order, scored test-then-train as it goes (prequential);
//! then the frozen model is scored on the holdout. A random split would leak the
//! future into training and flatter a model that is about to go stale, so the split is
//! always by time.

use crate::features::Record;
use crate::metrics::{
    Accuracy, ClassPrediction, ClassificationMetric, CohensKappa, F1, LogLoss, Mae, Precision, R2,
    Recall, RegressionMetric, Rmse, RocAuc,
};
use crate::model::{Model, ModelError, Output};
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
    auc: RocAuc,
    precision: Precision,
    recall: Recall,
    f1: F1,
    kappa: CohensKappa,
}

impl ClassScores {
    fn new() -> Self {
        Self {
            accuracy: Accuracy::default(),
            log_loss: LogLoss::default(),
            auc: RocAuc::default(),
            precision: Precision::default(),
            recall: Recall::default(),
            f1: F1::default(),
            kappa: CohensKappa::default(),
        }
    }

    fn update(&mut self, y: usize, p: &ClassPrediction) {
        self.accuracy.update(y, p);
        self.log_loss.update(y, p);
        self.auc.update(y, p);
        self.precision.update(y, p);
        self.recall.update(y, p);
        self.f1.update(y, p);
        self.kappa.update(y, p);
    }

    fn report(&self, prefix: &str, binary: bool, out: &mut Vec<(String, f64)>) {
        out.push((format!("{prefix}_accuracy"), self.accuracy.get()));
        out.push((format!("{prefix}_log_loss"), self.log_loss.get()));
        out.push((format!("{prefix}_kappa"), self.kappa.get()));
        if binary {
            out.push((format!("{prefix}_roc_auc"), self.auc.get()));
            out.push((format!("{prefix}_precision"), self.precision.get()));
            out.push((format!("{prefix}_recall"), self.recall.get()));
            out.push((format!("{prefix}_f1"), self.f1.get()));
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
            Scores::Class(ClassScores::new())
        } else {
            Scores::Reg(RegScores::new())
        }
    }

    /// Score the model's current answer for `record` against its label; `false` when
    /// the label is unusable or the model cannot answer yet.
    fn score<R: Record + ?Sized>(&mut self, model: &Model, record: &R) -> bool {
        let label = model.spec().label.clone();
        let Ok(output) = model.predict_output(record) else {
            return false;
        };
        match (self, output) {
            (Scores::Class(s), Output::Proba(p)) => {
                let Some(y) = model.class_index(record.field(&label)) else {
                    return false;
                };
                s.update(y, &ClassPrediction::proba(p));
                true
            }
            (Scores::Reg(s), Output::Value(v)) => match model.target(record.field(&label)) {
                Some(y) => {
                    s.update(y, v);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    fn report(&self, prefix: &str, binary: bool, out: &mut Vec<(String, f64)>) {
        match self {
            Scores::Class(s) => s.report(prefix, binary, out),
            Scores::Reg(s) => s.report(prefix, out),
        }
    }
}

/// Train `model` on `rows` (oldest first) holding out the newest `holdout` fraction;
/// `progress` is called with the number of rows handled so far.
///
/// # Errors
/// Only when no row at all could be learnt (every label missing or unusable).
pub fn train_with_holdout<R: Record>(
    mut model: Model,
    rows: &[R],
    holdout: f64,
    mut progress: impl FnMut(u64),
) -> Result<TrainOutcome, ModelError> {
    let split = holdout_start(rows.len(), holdout);
    let task = model.task();
    let mut prequential = Scores::for_task(task);
    let mut skipped = 0u64;
    let mut learnt = 0u64;
    for (i, r) in rows[..split].iter().enumerate() {
        prequential.score(&model, r);
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
                "none of the {split} training rows has a usable label ({skipped} skipped)"
            ),
        });
    }
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
    let binary = task == Task::Binary;
    let mut metrics = Vec::new();
    if scored > 0 {
        scores.report("holdout", binary, &mut metrics);
    }
    prequential.report("train_prequential", binary, &mut metrics);
    model.build_reference_profile(rows[..split].iter());
    Ok(TrainOutcome {
        model,
        train_rows: learnt,
        holdout_rows: scored,
        skipped_rows: skipped,
        metrics,
    })
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
