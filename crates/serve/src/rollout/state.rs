//! The state of a model's rollout, kept in the registry as the registered model's tag
//! [`STATE_TAG`] (JSON), so that it survives restarts, is shared by every Freshet node
//! and command using the same registry, and shows up in MLflow clients.

use super::error::{Result, RolloutError};
use freshet_registry::RegistryError;
use freshet_registry::Store;
use freshet_registry::limits::MAX_TAG_VALUE_LENGTH;
use freshet_registry::model::Tag;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The registered-model tag holding the rollout state.
pub const STATE_TAG: &str = "freshet.rollout";
/// The layout version of the stored state; a newer layout is refused, not misread.
pub const STATE_FORMAT: u32 = 1;
/// Decisions kept in the state: the recent history a person needs to see why the
/// rollout is where it is. Older ones are dropped (and earlier still when the tag
/// would outgrow the registry's tag limit).
pub const MAX_DECISIONS: usize = 20;
/// Reasons and evidence summaries are cut to this many characters, so that one
/// verbose check cannot crowd every other decision out of the tag.
const MAX_TEXT_CHARS: usize = 400;

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Phase {
    /// Registered for a rollout that has not begun.
    Candidate,
    /// The challenger scores a mirrored copy of every request; users never see it.
    Shadow,
    /// The challenger answers this share of requests (percent).
    Canary { weight_pct: f64 },
    /// The candidate was promoted and is champion; the previous champion (the
    /// `challenger` alias now) scores a mirrored copy of every request until the bake
    /// shows the candidate is not worse on live labels, or rolls it back.
    Baking,
    /// The challenger became champion. Terminal.
    Promoted,
    /// The challenger was withdrawn and the champion restored. Terminal.
    RolledBack,
    /// Waiting for a person; [`resume`](super::RolloutController::resume) returns to
    /// `resume_to` and holds that phase again from the start.
    Paused {
        reason: String,
        resume_to: Box<Phase>,
    },
    /// Every check passed, but the model's risk tier needs a second person's sign-off
    /// (maker-checker): the champion keeps answering and the challenger stays in
    /// shadow until approval `request` is approved (then it is promoted) or rejected
    /// (then it is rolled back).
    AwaitingApproval { request: String },
}

impl Phase {
    /// Whether the rollout is still under way (a paused or baking one is).
    pub fn is_active(&self) -> bool {
        !matches!(self, Phase::Promoted | Phase::RolledBack)
    }

    /// Whether this is the bake, or a pause that returns to it: the candidate is
    /// champion already and the `challenger` alias names the previous champion.
    pub fn is_baking(&self) -> bool {
        match self {
            Phase::Baking => true,
            Phase::Paused { resume_to, .. } => resume_to.is_baking(),
            _ => false,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Candidate => f.write_str("candidate"),
            Phase::Shadow => f.write_str("shadow"),
            Phase::Canary { weight_pct } => write!(f, "canary {weight_pct}%"),
            Phase::Baking => f.write_str("baking"),
            Phase::Promoted => f.write_str("promoted"),
            Phase::RolledBack => f.write_str("rolled back"),
            Phase::Paused { resume_to, .. } => write!(f, "paused at {resume_to}"),
            Phase::AwaitingApproval { request } => write!(f, "awaiting approval {request}"),
        }
    }
}

/// One transition and why it was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// When (Unix milliseconds).
    pub at_ms: i64,
    /// The version the rollout concerned.
    pub candidate_version: i64,
    pub from: String,
    pub to: String,
    pub reason: String,
    /// The figures the decision rested on, when it rested on figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Taken by a person (a command) rather than by the controller.
    #[serde(default)]
    pub manual: bool,
}

/// A model's rollout: which version is on trial, against which champion, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutState {
    /// [`STATE_FORMAT`] of the writer.
    pub format: u32,
    pub model: String,
    /// The champion when the rollout started: what a rollback restores, and what the
    /// candidate is compared with while baking. `None` only for states a hand rollback
    /// created on a model that had no champion.
    pub champion_version: Option<i64>,
    /// The version on trial.
    pub candidate_version: i64,
    pub phase: Phase,
    /// When the current phase began (Unix ms); evidence is counted from here.
    pub phase_started_ms: i64,
    /// Index of the current canary step in the configured steps (0 otherwise).
    pub step_index: usize,
    /// Bumped on every save, so that concurrent writers notice each other.
    pub revision: u64,
    /// The most recent decisions, oldest first.
    pub decisions: Vec<Decision>,
}

/// What the router does with the challenger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Routing {
    /// The challenger takes no traffic.
    None,
    /// The challenger scores mirrored copies; the champion answers.
    Shadow,
    /// The challenger answers this share of requests (percent).
    Canary { weight_pct: f64 },
}

impl Routing {
    /// The router's mode for this routing (`None`: keep the challenger out).
    pub fn mode(self) -> Option<crate::router::Mode> {
        match self {
            Routing::None => None,
            Routing::Shadow => Some(crate::router::Mode::Shadow),
            Routing::Canary { weight_pct } => Some(crate::router::Mode::Canary { weight_pct }),
        }
    }
}

/// The traffic the challenger gets in this state. A paused rollout falls back to
/// shadow: nobody is watching, so no user should get the challenger's answers, but
/// evidence keeps accumulating for the person who will look. While baking, the
/// challenger alias names the previous champion, which is shadowed the same way.
pub fn routing(state: &RolloutState) -> Routing {
    match &state.phase {
        Phase::Shadow | Phase::Baking | Phase::Paused { .. } | Phase::AwaitingApproval { .. } => {
            Routing::Shadow
        }
        Phase::Canary { weight_pct } => Routing::Canary {
            weight_pct: *weight_pct,
        },
        Phase::Candidate | Phase::Promoted | Phase::RolledBack => Routing::None,
    }
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

impl RolloutState {
    /// A rollout of `candidate` against `champion`, not yet begun.
    pub fn new(model: &str, champion: Option<i64>, candidate: i64, now_ms: i64) -> Self {
        Self {
            format: STATE_FORMAT,
            model: model.to_string(),
            champion_version: champion,
            candidate_version: candidate,
            phase: Phase::Candidate,
            phase_started_ms: now_ms,
            step_index: 0,
            revision: 0,
            decisions: Vec::new(),
        }
    }

    /// Move to `to`, recording why; the new phase's clock starts at `at_ms`.
    pub fn record(
        &mut self,
        to: Phase,
        at_ms: i64,
        reason: &str,
        evidence: Option<String>,
        manual: bool,
    ) {
        let to = match to {
            Phase::Paused { reason, resume_to } => Phase::Paused {
                reason: clip(&reason),
                resume_to,
            },
            other => other,
        };
        self.decisions.push(Decision {
            at_ms,
            candidate_version: self.candidate_version,
            from: self.phase.to_string(),
            to: to.to_string(),
            reason: clip(reason),
            evidence: evidence.map(|e| clip(&e)),
            manual,
        });
        let excess = self.decisions.len().saturating_sub(MAX_DECISIONS);
        self.decisions.drain(..excess);
        self.phase = to;
        self.phase_started_ms = at_ms;
    }

    /// The tag value: JSON under the registry's tag limit, dropping the oldest
    /// decisions until it fits.
    pub fn to_tag_value(&self) -> Result<String> {
        let mut state = self.clone();
        loop {
            let text = serde_json::to_string(&state).map_err(|e| RolloutError::BadState {
                model: self.model.clone(),
                reason: e.to_string(),
            })?;
            if text.len() < MAX_TAG_VALUE_LENGTH || state.decisions.is_empty() {
                return Ok(text);
            }
            state.decisions.remove(0);
        }
    }

    /// Parse a tag value written by [`to_tag_value`](Self::to_tag_value).
    pub fn from_tag_value(model: &str, text: &str) -> Result<Self> {
        let bad = |reason: String| RolloutError::BadState {
            model: model.to_string(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        match value.get("format").and_then(serde_json::Value::as_u64) {
            Some(f) if f == u64::from(STATE_FORMAT) => {}
            Some(f) => {
                return Err(bad(format!(
                    "it has format {f}, this Freshet reads format {STATE_FORMAT}"
                )));
            }
            None => return Err(bad("it has no format number".into())),
        }
        serde_json::from_value(value).map_err(|e| bad(e.to_string()))
    }
}

/// The model's rollout state, `None` when it never had one.
pub fn load_state(store: &dyn Store, model: &str) -> Result<Option<RolloutState>> {
    let registered = match store.get_registered_model(model) {
        Ok(m) => m,
        Err(RegistryError::NotFound(_)) => {
            return Err(RolloutError::UnknownModel(model.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    state_from_tags(model, &registered.tags)
}

/// The rollout held in a registered model's tags, if any.
pub fn state_from_tags(model: &str, tags: &[Tag]) -> Result<Option<RolloutState>> {
    tags.iter()
        .find(|t| t.key == STATE_TAG)
        .map(|t| RolloutState::from_tag_value(model, &t.value))
        .transpose()
}

/// Store `state`, refusing with [`RolloutError::Conflict`] when the stored state is no
/// longer the one `state` was read from (its revision moved). On success the revision
/// is bumped. The check and the write are two statements, so two writers racing within
/// one registry round trip can still both succeed; the controller's writes are rare
/// and the window is small.
pub fn save_state(store: &dyn Store, state: &mut RolloutState) -> Result<()> {
    let stored = load_state(store, &state.model)?.map_or(0, |s| s.revision);
    if stored != state.revision {
        return Err(RolloutError::Conflict(state.model.clone()));
    }
    state.revision += 1;
    let tag = Tag {
        key: STATE_TAG.to_string(),
        value: state.to_tag_value()?,
    };
    if let Err(e) = store.set_registered_model_tag(&state.model, &tag) {
        state.revision -= 1;
        return Err(e.into());
    }
    Ok(())
}
