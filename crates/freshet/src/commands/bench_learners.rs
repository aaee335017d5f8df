//! `freshet bench learners --data FILE.csv --label COL`: prequential (test-then-train)
//! accuracy and rows per second of the built-in online learners on a CSV stream, the
//! loop River's `evaluate.progressive_val_score` runs. `bench/learners_vs_river.py` runs
//! River's learners on the same files in the same run and prints both side by side.

use crate::cli::BenchLearnersArgs;
use anyhow::{Context, Result, bail};
use freshet_core::Task;
use freshet_core::model_spec::{LearnerSpec, TreeSpec};
use freshet_learn::Classifier;
use freshet_learn::ensemble::{
    LeveragingBaggingClassifier, LeveragingBaggingConfig, ModelSelector, SRPClassifier, SRPConfig,
};
use freshet_learn::evaluate::prequential_classification;
use freshet_learn::forest::{ARFClassifier, ARFConfig};
use freshet_learn::linear::LogisticRegression;
use freshet_learn::metrics::{Accuracy, ClassificationMetric};
use freshet_learn::model::{LearnerState, SelectorMember};
use freshet_learn::naive_bayes::GaussianNB;
use freshet_learn::tree::{
    HoeffdingAdaptiveTreeClassifier, HoeffdingAdaptiveTreeConfig, HoeffdingTreeClassifier,
};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Instant;

/// One learner's figures on one stream.
#[derive(Debug, Serialize)]
pub struct LearnerReport {
    pub learner: &'static str,
    pub rows: usize,
    pub accuracy: f64,
    pub rows_per_sec: f64,
    /// For the selector: which member answered at the end, and how often it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A learner under test: any classifier, or the selector, whose state is reported.
enum Learner {
    Plain(Box<dyn Classifier>),
    Selector(Box<ModelSelector<SelectorMember>>),
}

impl Learner {
    fn classifier_mut(&mut self) -> &mut dyn Classifier {
        match self {
            Learner::Plain(c) => c.as_mut(),
            Learner::Selector(s) => s.as_mut(),
        }
    }

    fn detail(&self) -> Option<String> {
        let Learner::Selector(s) = self else {
            return None;
        };
        let names = s.member_names();
        let errors: Vec<String> = names
            .iter()
            .zip(s.recent_errors())
            .map(|(n, e)| format!("{n} {e:.3}"))
            .collect();
        Some(format!(
            "serving {} at the end after {} switches; recent errors: {}",
            names.get(s.serving()).copied().unwrap_or("?"),
            s.n_switches(),
            errors.join(", ")
        ))
    }
}

/// A labelled numeric stream: features in column order, labels as class indices in
/// order of first appearance.
#[derive(Debug)]
pub struct Stream {
    pub features: Vec<String>,
    pub rows: Vec<(Vec<f64>, usize)>,
    pub classes: Vec<String>,
}

/// Read a CSV whose columns are all numeric except the label.
pub fn read_stream(path: &std::path::Path, label: &str) -> Result<Stream> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = r.headers()?.clone();
    let label_at = headers.iter().position(|h| h == label).with_context(|| {
        format!(
            "no column '{label}' in {}; columns: {:?}",
            path.display(),
            headers.iter().collect::<Vec<_>>()
        )
    })?;
    let features: Vec<String> = headers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != label_at)
        .map(|(_, h)| h.to_string())
        .collect();
    let mut classes: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut rows = Vec::new();
    for (line, rec) in r.records().enumerate() {
        let rec = rec?;
        let mut x = Vec::with_capacity(features.len());
        for (i, cell) in rec.iter().enumerate() {
            if i == label_at {
                continue;
            }
            let v: f64 = cell.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "line {}: column '{}' is not a number",
                    line + 2,
                    headers.get(i).unwrap_or("?")
                )
            })?;
            x.push(v);
        }
        let y = rec.get(label_at).unwrap_or("").to_string();
        let next = index.len();
        let class = *index.entry(y.clone()).or_insert_with(|| {
            classes.push(y);
            next
        });
        rows.push((x, class));
    }
    if rows.is_empty() {
        bail!("{} has no rows", path.display());
    }
    Ok(Stream {
        features,
        rows,
        classes,
    })
}

/// The learners with their default settings; `seed` seeds the randomised ones.
fn learners(seed: u64) -> Result<Vec<(&'static str, Learner)>> {
    let hat = HoeffdingAdaptiveTreeConfig {
        seed,
        ..HoeffdingAdaptiveTreeConfig::default()
    };
    let arf = ARFConfig {
        seed,
        ..ARFConfig::default()
    };
    let lb = LeveragingBaggingConfig {
        seed,
        ..LeveragingBaggingConfig::default()
    };
    let srp = SRPConfig {
        seed,
        ..SRPConfig::default()
    };
    let plain: Vec<(&'static str, Box<dyn Classifier>)> = vec![
        (
            "logistic_regression",
            Box::new(LogisticRegression::default()),
        ),
        ("gaussian_nb", Box::new(GaussianNB::default())),
        (
            "hoeffding_tree",
            Box::new(HoeffdingTreeClassifier::default()),
        ),
        (
            "hoeffding_adaptive_tree",
            Box::new(HoeffdingAdaptiveTreeClassifier::new(hat)?),
        ),
        ("arf_10", Box::new(ARFClassifier::new(arf)?)),
        (
            "leveraging_bagging_10",
            Box::new(LeveragingBaggingClassifier::new(lb)?),
        ),
        ("srp_10", Box::new(SRPClassifier::new(srp)?)),
    ];
    let mut out: Vec<(&'static str, Learner)> = plain
        .into_iter()
        .map(|(name, c)| (name, Learner::Plain(c)))
        .collect();
    out.push(("selector", Learner::Selector(Box::new(selector(seed)?))));
    Ok(out)
}

/// The model selector as `learner: { type: selector }` builds it (ARF(10), Hoeffding
/// adaptive tree, Gaussian NB, logistic regression; window 500), with `seed` for the
/// randomised members instead of their spec defaults.
fn selector(seed: u64) -> Result<ModelSelector<SelectorMember>> {
    let members = LearnerSpec::default_selector_members()
        .into_iter()
        .map(|m| match m {
            LearnerSpec::AdaptiveRandomForest { n_models, .. } => {
                LearnerSpec::AdaptiveRandomForest { n_models, seed }
            }
            LearnerSpec::HoeffdingAdaptiveTree(t) => {
                LearnerSpec::HoeffdingAdaptiveTree(TreeSpec { seed, ..t })
            }
            other => other,
        })
        .collect();
    let spec = LearnerSpec::Selector {
        members: Some(members),
        window: 500,
    };
    match LearnerState::new(&spec, Task::Multiclass)? {
        LearnerState::Selector(s) => Ok(s),
        other => bail!("a selector spec built a {}", other.name()),
    }
}

pub fn run(a: BenchLearnersArgs) -> Result<()> {
    let stream = read_stream(&a.data, &a.label)?;
    eprintln!(
        "{}: {} rows, {} features, classes {:?}",
        a.data.display(),
        stream.rows.len(),
        stream.features.len(),
        stream.classes
    );
    let mut reports = Vec::new();
    for (name, mut model) in learners(a.seed)? {
        let mut acc = Accuracy::default();
        let started = Instant::now();
        {
            let mut metrics: [&mut dyn ClassificationMetric; 1] = [&mut acc];
            prequential_classification(
                model.classifier_mut(),
                stream.rows.iter().cloned(),
                &mut metrics,
                0,
            );
        }
        let secs = started.elapsed().as_secs_f64();
        let r = LearnerReport {
            learner: name,
            rows: stream.rows.len(),
            accuracy: acc.get(),
            rows_per_sec: stream.rows.len() as f64 / secs,
            detail: model.detail(),
        };
        println!(
            "{:<26} accuracy {:>7.4}   {:>12.0} rows/s",
            r.learner, r.accuracy, r.rows_per_sec
        );
        if let Some(d) = &r.detail {
            println!("{:<26} {d}", "");
        }
        reports.push(r);
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&reports)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numeric_streams_and_names_bad_cells() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(&p, "a,label,b\n1,UP,2\n3,DOWN,4\n5,UP,6\n").unwrap();
        let s = read_stream(&p, "label").unwrap();
        assert_eq!(s.features, ["a", "b"]);
        assert_eq!(s.classes, ["UP", "DOWN"]);
        assert_eq!(s.rows[1], (vec![3.0, 4.0], 1));
        assert!(
            read_stream(&p, "nope")
                .unwrap_err()
                .to_string()
                .contains("no column 'nope'")
        );
        std::fs::write(&p, "a,label\nx,UP\n").unwrap();
        let e = read_stream(&p, "label").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("'a'"), "{e}");
    }
}
