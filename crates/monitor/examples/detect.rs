//! Run one drift detector, with River's defaults, over a stream file and print where it
//! fired, as JSON: `{"drifts": [i, ...], "warnings": [i, ...]}` (0-based indices).
//!
//! Usage: `detect <adwin|page_hinkley|ddm|eddm|hddm_a|hddm_w|kswin> <stream> [seed]`
//! where `<stream>` holds one number per line. Used by interop/test_detectors_river.py
//! to compare Freshet's detectors with River's on the same streams.

use std::process::ExitCode;

use freshet_monitor::detectors::{DetectorConfig, KswinConfig};
use freshet_monitor::{DetectorState, DriftDetector};

fn run(args: &[String]) -> Result<String, String> {
    let [name, path, rest @ ..] = args else {
        return Err("usage: detect <detector> <stream file> [seed]".into());
    };
    let mut config =
        DetectorConfig::default_for(name).ok_or_else(|| format!("unknown detector {name}"))?;
    if let (DetectorConfig::Kswin(_), Some(seed)) = (&config, rest.first()) {
        let seed = seed.parse().map_err(|e| format!("seed {seed}: {e}"))?;
        config = DetectorConfig::Kswin(KswinConfig {
            seed,
            ..KswinConfig::default()
        });
    }
    let mut detector = config.build().map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let (mut drifts, mut warnings) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let x: f64 = line
            .trim()
            .parse()
            .map_err(|e| format!("{path}: line {}: {e}", i + 1))?;
        match detector.update(x) {
            DetectorState::Drift => drifts.push(i),
            DetectorState::Warning => warnings.push(i),
            DetectorState::Stable => {}
        }
    }
    Ok(serde_json::json!({ "drifts": drifts, "warnings": warnings }).to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("detect: {e}");
            ExitCode::FAILURE
        }
    }
}
