//! Fits gradient-boosted trees on a CSV with an out-of-time split and prints one JSON
//! line: accuracy, ROC AUC and timings. Driven by `bench/gbt_vs_sklearn.py`.
//!
//! The label column may hold any strings; classes are numbered in sorted order (so
//! Elec2's `DOWN`/`UP` are 0/1, as in scikit-learn) and the AUC scores class 1.
//! Every other column must be numeric; an unparsable cell counts as missing.
//!
//! ```sh
//! cargo run -p freshet-learn --example gbt_elec2 -- --data ../shared/data/elec2.csv \
//!     --label class [--train-frac 0.8] [--params '{"n_trees": 100}']
//! ```

use std::error::Error;
use std::time::Instant;

use freshet_learn::boosting::{GbtParams, GradientBoostedTrees};

struct Args {
    data: String,
    label: String,
    train_frac: f64,
    params: GbtParams,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        data: String::new(),
        label: "class".into(),
        train_frac: 0.8,
        params: GbtParams::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--data" => args.data = value,
            "--label" => args.label = value,
            "--train-frac" => args.train_frac = value.parse()?,
            "--params" => args.params = serde_json::from_str(&value)?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if args.data.is_empty() {
        return Err("--data is required".into());
    }
    Ok(args)
}

/// Rows of features (label column removed), labels as strings, feature names.
type Table = (Vec<Vec<f64>>, Vec<String>, Vec<String>);

fn read_csv(path: &str, label: &str) -> Result<Table, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty file")?.split(',').collect();
    let label_at = header
        .iter()
        .position(|h| *h == label)
        .ok_or(format!("no column {label}"))?;
    let names = header
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != label_at)
        .map(|(_, h)| h.to_string())
        .collect();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for line in lines.filter(|l| !l.is_empty()) {
        let mut x = Vec::with_capacity(header.len() - 1);
        for (i, cell) in line.split(',').enumerate() {
            if i == label_at {
                ys.push(cell.to_string());
            } else {
                x.push(cell.trim().parse().unwrap_or(f64::NAN));
            }
        }
        xs.push(x);
    }
    Ok((xs, ys, names))
}

/// Exact ROC AUC (Mann–Whitney, ties counted half), scores of class 1.
fn roc_auc(scores: &[f64], positive: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid_rank * order[i..=j].iter().filter(|&&k| positive[k]).count() as f64;
        i = j + 1;
    }
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let (xs, labels, _names) = read_csv(&args.data, &args.label)?;
    let mut classes: Vec<&String> = labels.iter().collect();
    classes.sort();
    classes.dedup();
    let ys: Vec<f64> = labels
        .iter()
        .map(|l| classes.binary_search(&l).map_or(f64::NAN, |k| k as f64))
        .collect();
    let n_train = (xs.len() as f64 * args.train_frac) as usize;
    let (train_x, test_x) = xs.split_at(n_train);
    let (train_y, test_y) = ys.split_at(n_train);

    let t = Instant::now();
    let model = GradientBoostedTrees::fit(args.params, train_x, train_y, None)?;
    let fit_seconds = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let probas: Vec<Vec<f64>> = test_x.iter().map(|x| model.predict_proba_one(x)).collect();
    let predict_seconds = t.elapsed().as_secs_f64();
    let hits = probas
        .iter()
        .zip(test_y)
        .filter(|(p, y)| freshet_learn::argmax(p) == Some(**y as usize))
        .count();
    let scores: Vec<f64> = probas
        .iter()
        .map(|p| p.get(1).copied().unwrap_or(0.0))
        .collect();
    let positive: Vec<bool> = test_y.iter().map(|&y| y == 1.0).collect();
    let leaves: usize = model.rounds().iter().flatten().map(|t| t.n_leaves()).sum();
    let out = serde_json::json!({
        "n_train": n_train,
        "n_test": test_x.len(),
        "classes": classes,
        "accuracy": hits as f64 / test_x.len().max(1) as f64,
        "auc": roc_auc(&scores, &positive),
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "n_rounds": model.n_rounds(),
        "mean_leaves": leaves as f64 / model.n_rounds().max(1) as f64,
    });
    println!("{out}");
    Ok(())
}
