//! Concept-drift detectors over a live error or loss stream.
//!
//! Every detector follows River's contract: feed one value with
//! [`DriftDetector::update`] and read the [`DetectorState`] it returns. A detector
//! that reported [`DetectorState::Drift`] starts afresh on its next update (River's
//! detectors reset themselves then), so each drift is reported once and measured
//! against the new concept only. The defaults are River 0.26.1's, and on the same
//! stream each detector flags the same indices as River's (checked by
//! `interop/test_detectors_river.py`).
//!
//! | detector | input | warning | River defaults |
//! |---|---|---|---|
//! | [`Adwin`] | any real | no | delta 0.002, clock 32, max_buckets 5, min_window_length 5, grace_period 10 |
//! | [`PageHinkley`] | any real | no | min_instances 30, delta 0.005, threshold 50, alpha 1 − 0.0001, mode both |
//! | [`Ddm`] | 0/1 errors | yes | warm_start 30, warning_threshold 2, drift_threshold 3 |
//! | [`Eddm`] | 0/1 errors | yes | warm_start 30, alpha 0.95, beta 0.9 |
//! | [`HddmA`] | values in [0, 1] | yes | drift_confidence 0.001, warning_confidence 0.005, two_sided_test false |
//! | [`HddmW`] | values in [0, 1] | yes | drift_confidence 0.001, warning_confidence 0.005, lambda 0.05, two_sided_test false |
//! | [`Kswin`] | any real | no | alpha 0.005, window_size 100, stat_size 30, seed |
//!
//! Non-finite values are ignored: they change nothing and the last state is returned
//! again. State serialises (serde), so a detector can be snapshotted and resumed
//! exactly, RNG included.

mod adwin;
mod ddm;
mod eddm;
mod hddm_a;
mod hddm_w;
mod kswin;
mod page_hinkley;
mod py_random;
mod running;

pub use adwin::{Adwin, AdwinConfig};
pub use ddm::{Ddm, DdmConfig};
pub use eddm::{Eddm, EddmConfig};
pub use hddm_a::{HddmA, HddmAConfig};
pub use hddm_w::{HddmW, HddmWConfig};
pub use kswin::{Kswin, KswinConfig};
pub use page_hinkley::{PageHinkley, PageHinkleyConfig, PageHinkleyMode};

use serde::{Deserialize, Serialize};

use crate::Result;

/// What a detector concluded from the values so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorState {
    /// Nothing unusual.
    #[default]
    Stable,
    /// The stream may be changing (only DDM, EDDM and the HDDMs warn).
    Warning,
    /// The stream changed at this value; the detector restarts on the next one.
    Drift,
}

/// A change detector over a stream of real values.
pub trait DriftDetector: Send + Sync + std::fmt::Debug {
    /// Feed one value; the state after it.
    fn update(&mut self, x: f64) -> DetectorState;
    /// The state after the last update (`Stable` before any).
    fn state(&self) -> DetectorState;
    /// Forget everything seen, keeping the parameters.
    fn reset(&mut self);
}

/// Which detector, with its parameters: the closed set Freshet offers, as it appears
/// in configuration (`{ type: adwin, delta: 0.002 }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DetectorConfig {
    Adwin(AdwinConfig),
    PageHinkley(PageHinkleyConfig),
    Ddm(DdmConfig),
    Eddm(EddmConfig),
    HddmA(HddmAConfig),
    HddmW(HddmWConfig),
    Kswin(KswinConfig),
}

impl DetectorConfig {
    /// The detector with River's defaults, by River's class name in snake case
    /// (`adwin`, `page_hinkley`, `ddm`, `eddm`, `hddm_a`, `hddm_w`, `kswin`).
    pub fn default_for(name: &str) -> Option<Self> {
        Some(match name {
            "adwin" => Self::Adwin(AdwinConfig::default()),
            "page_hinkley" => Self::PageHinkley(PageHinkleyConfig::default()),
            "ddm" => Self::Ddm(DdmConfig::default()),
            "eddm" => Self::Eddm(EddmConfig::default()),
            "hddm_a" => Self::HddmA(HddmAConfig::default()),
            "hddm_w" => Self::HddmW(HddmWConfig::default()),
            "kswin" => Self::Kswin(KswinConfig::default()),
            _ => return None,
        })
    }

    /// Build the detector.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the first parameter out of range.
    pub fn build(&self) -> Result<Detector> {
        Ok(match self {
            Self::Adwin(c) => Detector::Adwin(Adwin::new(c.clone())?),
            Self::PageHinkley(c) => Detector::PageHinkley(PageHinkley::new(c.clone())?),
            Self::Ddm(c) => Detector::Ddm(Ddm::new(c.clone())?),
            Self::Eddm(c) => Detector::Eddm(Eddm::new(c.clone())?),
            Self::HddmA(c) => Detector::HddmA(HddmA::new(c.clone())?),
            Self::HddmW(c) => Detector::HddmW(HddmW::new(c.clone())?),
            Self::Kswin(c) => Detector::Kswin(Kswin::new(c.clone())?),
        })
    }
}

/// Any detector, as one serialisable value (for snapshots).
///
/// ```
/// use freshet_monitor::{DetectorConfig, DetectorState, DriftDetector};
/// let mut d = DetectorConfig::default_for("page_hinkley").unwrap().build().unwrap();
/// let mut first = None;
/// for t in 0..2000 {
///     let x = if t < 1000 { 0.0 } else { 1.0 };
///     if d.update(x) == DetectorState::Drift && first.is_none() {
///         first = Some(t);
///     }
/// }
/// assert!(first.is_some_and(|t| (1000..1100).contains(&t)));
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Detector {
    Adwin(Adwin),
    PageHinkley(PageHinkley),
    Ddm(Ddm),
    Eddm(Eddm),
    HddmA(HddmA),
    HddmW(HddmW),
    Kswin(Kswin),
}

impl Detector {
    fn inner(&self) -> &dyn DriftDetector {
        match self {
            Self::Adwin(d) => d,
            Self::PageHinkley(d) => d,
            Self::Ddm(d) => d,
            Self::Eddm(d) => d,
            Self::HddmA(d) => d,
            Self::HddmW(d) => d,
            Self::Kswin(d) => d,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn DriftDetector {
        match self {
            Self::Adwin(d) => d,
            Self::PageHinkley(d) => d,
            Self::Ddm(d) => d,
            Self::Eddm(d) => d,
            Self::HddmA(d) => d,
            Self::HddmW(d) => d,
            Self::Kswin(d) => d,
        }
    }
}

impl DriftDetector for Detector {
    fn update(&mut self, x: f64) -> DetectorState {
        self.inner_mut().update(x)
    }
    fn state(&self) -> DetectorState {
        self.inner().state()
    }
    fn reset(&mut self) {
        self.inner_mut().reset();
    }
}

/// The state from River's two flags (a drift wins over a warning).
pub(crate) fn state_of(drift: bool, warning: bool) -> DetectorState {
    if drift {
        DetectorState::Drift
    } else if warning {
        DetectorState::Warning
    } else {
        DetectorState::Stable
    }
}

pub(crate) fn check(ok: bool, field: &'static str, problem: &'static str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(crate::Error::InvalidConfig { field, problem })
    }
}

#[cfg(test)]
mod tests;
