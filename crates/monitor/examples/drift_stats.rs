//! Compute Freshet's two-sample statistics on the samples of a JSON file and print them
//! as JSON, so interop/test_drift_scipy.py can compare them with SciPy's.
//!
//! Usage: `drift_stats <input.json>` with
//! `{"reference": [f64], "current": [f64], "observed": [f64], "expected": [f64],
//!   "p": [f64], "q": [f64]}`; prints KS (statistic, p-value, method), Wasserstein (plain
//! and normalised), Jensen–Shannon of `p` and `q` (base e and 2), chi-square of
//! `observed` against `expected`, and Evidently's binned Jensen–Shannon and PSI of the
//! two samples.

use std::process::ExitCode;

use freshet_monitor::stats::binning::numeric_fractions;
use freshet_monitor::stats::{
    chi_square, jensen_shannon, ks_2samp, psi, wasserstein_distance, wasserstein_normed,
};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    reference: Vec<f64>,
    current: Vec<f64>,
    observed: Vec<f64>,
    expected: Vec<f64>,
    p: Vec<f64>,
    q: Vec<f64>,
}

fn run(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let input: Input = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let err = |e: freshet_monitor::Error| e.to_string();
    let ks = ks_2samp(&input.reference, &input.current).map_err(err)?;
    let chi = chi_square(&input.observed, &input.expected).map_err(err)?;
    let (rf, cf) = numeric_fractions(&input.reference, &input.current);
    let out = json!({
        "ks_statistic": ks.statistic,
        "ks_pvalue": ks.p_value,
        "ks_method": ks.method,
        "wasserstein": wasserstein_distance(&input.reference, &input.current).map_err(err)?,
        "wasserstein_normed": wasserstein_normed(&input.reference, &input.current).map_err(err)?,
        "jensenshannon": jensen_shannon(&input.p, &input.q, None).map_err(err)?,
        "jensenshannon_base2": jensen_shannon(&input.p, &input.q, Some(2.0)).map_err(err)?,
        "chisquare_statistic": chi.statistic,
        "chisquare_pvalue": chi.p_value,
        "binned_jensenshannon": jensen_shannon(&rf, &cf, None).map_err(err)?,
        "binned_psi": psi(&rf, &cf).map_err(err)?,
    });
    Ok(out.to_string())
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: drift_stats <input.json>");
        return ExitCode::FAILURE;
    };
    match run(&path) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("drift_stats: {e}");
            ExitCode::FAILURE
        }
    }
}
