//! The rollout controller: applies transitions to the registry. Every state change is
//! one call here, whether the controller took it on evidence ([`RolloutController::tick`])
//! or a person did (`freshet rollout …`), and each one appends a [`Decision`].
//!
//! Writes happen aliases first, state second: if the process dies between the two, the
//! state still names the earlier phase and repeating the operation completes it (alias
//! moves are idempotent).

use super::error::{Result, RolloutError};
use super::judge::{BakeVerdict, Evidence, Transition, first_phase, judge_bake, next_phase, step};
use super::state::{Phase, RolloutState, load_state, routing, save_state};
use crate::router::{CHALLENGER, CHAMPION, Mode, ModeSource};
use freshet_core::model_spec::{ModelSpec, RolloutSpec};
use freshet_govern::approvals::{Approvals, Verdict};
use freshet_registry::{RegistryError, Store};
use std::collections::BTreeMap;
use std::sync::Arc;

#[cfg(doc)]
use super::state::Decision;

/// Where the controller gets a phase's figures from; the server's router implements it
/// from its per-version statistics and the label joins.
pub trait EvidenceSource {
    /// Both variants' figures since `since_ms` (the phase's start). `champion` is
    /// `None` when the model has no champion to compare with.
    fn evidence(
        &self,
        model: &str,
        champion: Option<i64>,
        challenger: i64,
        since_ms: i64,
    ) -> Evidence;
}

/// A model's rollout as a person wants to see it: the live aliases beside the state.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutStatus {
    pub champion: Option<i64>,
    pub challenger: Option<i64>,
    pub state: Option<RolloutState>,
    /// Whether the controller moves this model's rollout by itself.
    pub auto: bool,
}

/// Runs rollouts as the models' specs say.
#[derive(Debug, Clone, Default)]
pub struct RolloutController {
    specs: BTreeMap<String, RolloutSpec>,
    /// For registered models that `freshet.yaml` does not declare: they can still be
    /// rolled out by hand.
    fallback: RolloutSpec,
    /// Maker-checker: consulted before a version becomes champion.
    approvals: Option<Arc<Approvals>>,
}

/// The version an alias points at, `None` when it is not set.
fn alias(store: &dyn Store, model: &str, name: &str) -> Result<Option<i64>> {
    Ok(crate::router::alias_version(store, model, name)?)
}

/// Remove an alias; already absent is fine.
fn remove_alias(store: &dyn Store, model: &str, name: &str) -> Result<()> {
    match store.delete_alias(model, name) {
        Ok(()) | Err(RegistryError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn require_version(store: &dyn Store, model: &str, version: i64) -> Result<()> {
    match store.get_model_version(model, version) {
        Ok(_) => Ok(()),
        Err(RegistryError::NotFound(_)) => Err(RolloutError::VersionNotFound {
            model: model.to_string(),
            version,
        }),
        Err(e) => Err(e.into()),
    }
}

fn invalid(model: &str, message: String) -> RolloutError {
    RolloutError::InvalidOp {
        model: model.to_string(),
        message,
    }
}

/// What a transition turned into once applied: a promotion the maker-checker held back
/// is an [`AwaitApproval`](Transition::AwaitApproval) (or a rollback after a rejection).
fn effective(t: Transition, state: &RolloutState) -> Transition {
    if t != Transition::Promote {
        return t;
    }
    match &state.phase {
        Phase::AwaitingApproval { request } => Transition::AwaitApproval(request.clone()),
        Phase::RolledBack => Transition::Rollback(
            state
                .decisions
                .last()
                .map_or_else(String::new, |d| d.reason.clone()),
        ),
        _ => t,
    }
}

impl RolloutController {
    pub fn new(specs: BTreeMap<String, RolloutSpec>) -> Self {
        Self {
            specs,
            fallback: RolloutSpec::default(),
            approvals: None,
        }
    }

    /// Promotions of models whose risk tier needs it wait for an approval.
    pub fn with_approvals(mut self, approvals: Arc<Approvals>) -> Self {
        self.approvals = Some(approvals);
        self
    }

    /// The maker-checker check before `state`'s candidate becomes champion. `None`:
    /// go ahead. `Some(t)`: what to do instead — park the rollout awaiting approval
    /// (a request is opened when none is), or roll back after a rejection. A manual
    /// promotion of a rejected version is refused.
    fn approval_gate(
        &self,
        store: &dyn Store,
        state: &RolloutState,
        requester: &str,
        manual: bool,
    ) -> Result<Option<Transition>> {
        let Some(approvals) = &self.approvals else {
            return Ok(None);
        };
        let (model, version) = (&state.model, state.candidate_version);
        let verdict = approvals
            .check(model, version)
            .map_err(|e| invalid(model, format!("approvals: {e}")))?;
        let request = match verdict {
            Verdict::NotRequired | Verdict::Approved(_) => return Ok(None),
            Verdict::Rejected(r) if manual => {
                return Err(invalid(
                    model,
                    format!(
                        "version {version} was rejected by {} (request {}); it cannot be promoted",
                        r.decided_by.as_deref().unwrap_or("an approver"),
                        r.id
                    ),
                ));
            }
            Verdict::Rejected(r) => {
                return Ok(Some(Transition::Rollback(format!(
                    "promotion rejected by {} (request {})",
                    r.decided_by.as_deref().unwrap_or("an approver"),
                    r.id
                ))));
            }
            Verdict::Pending(r) => r,
            Verdict::Missing => {
                let creator = store
                    .get_model_version(model, version)
                    .map(|v| v.user_id)
                    .unwrap_or_default();
                approvals
                    .request(model, version, requester, &creator)
                    .map_err(|e| invalid(model, format!("approvals: {e}")))?
            }
        };
        Ok(Some(Transition::AwaitApproval(request.id)))
    }

    /// The rollout specs of the configured models.
    pub fn from_models(models: &BTreeMap<String, ModelSpec>) -> Self {
        Self::new(
            models
                .iter()
                .map(|(name, m)| (name.clone(), m.rollout.clone()))
                .collect(),
        )
    }

    /// The model's spec; the defaults for a model the configuration does not declare.
    pub fn spec(&self, model: &str) -> &RolloutSpec {
        self.specs.get(model).unwrap_or(&self.fallback)
    }

    /// Whether a promotion of this model is followed by a bake: only for a model the
    /// controller moves by itself, since nobody else would judge the bake.
    fn bakes(&self, model: &str) -> bool {
        self.specs
            .get(model)
            .is_some_and(|s| s.auto && s.bake.enabled)
    }

    /// The live aliases and the stored state.
    pub fn status(&self, store: &dyn Store, model: &str) -> Result<RolloutStatus> {
        let state = load_state(store, model)?;
        Ok(RolloutStatus {
            champion: alias(store, model, CHAMPION)?,
            challenger: alias(store, model, CHALLENGER)?,
            state,
            auto: self.specs.get(model).is_some_and(|s| s.auto),
        })
    }

    /// Begin rolling out `candidate`: it becomes the `challenger` and enters the first
    /// phase; the current champion is recorded so that a rollback can restore it.
    pub fn start(
        &self,
        store: &dyn Store,
        model: &str,
        candidate: i64,
        now_ms: i64,
    ) -> Result<RolloutState> {
        let previous = load_state(store, model)?;
        if let Some(p) = &previous
            && p.phase.is_active()
        {
            return Err(RolloutError::InProgress {
                model: model.to_string(),
                version: p.candidate_version,
                phase: p.phase.to_string(),
            });
        }
        require_version(store, model, candidate)?;
        let champion = alias(store, model, CHAMPION)?.ok_or_else(|| RolloutError::NoChampion {
            model: model.to_string(),
            why: "to compare a candidate with",
        })?;
        if champion == candidate {
            return Err(invalid(
                model,
                format!("version {candidate} is already the champion"),
            ));
        }
        let spec = self.spec(model);
        let Some((first, index)) = first_phase(spec) else {
            return Err(invalid(
                model,
                "its rollout has neither shadow nor canary steps".into(),
            ));
        };
        let mut state = RolloutState::new(model, Some(champion), candidate, now_ms);
        // The history of earlier rollouts stays visible; the revision carries over so
        // that the save below checks against what is stored.
        if let Some(p) = previous {
            state.decisions = p.decisions;
            state.revision = p.revision;
        }
        state.step_index = index;
        state.record(
            first,
            now_ms,
            &format!("rollout of version {candidate} started against champion {champion}"),
            None,
            true,
        );
        store.set_alias(model, CHALLENGER, candidate)?;
        save_state(store, &mut state)?;
        Ok(state)
    }

    /// Judge the model's rollout on fresh evidence and apply what follows, if the
    /// configuration declares the model with `auto` (models it does not declare are
    /// only ever moved by hand). Returns the transition taken (`Stay` when nothing
    /// happened; `Promote` when a bake passed, `Rollback` when it failed). The
    /// controller's clock `now_ms` overrides the evidence's.
    pub fn tick(
        &self,
        store: &dyn Store,
        source: &dyn EvidenceSource,
        model: &str,
        now_ms: i64,
    ) -> Result<Transition> {
        let Some(spec) = self.specs.get(model).filter(|s| s.auto) else {
            return Ok(Transition::Stay);
        };
        let Some(mut state) = load_state(store, model)? else {
            return Ok(Transition::Stay);
        };
        if state.phase == Phase::Baking {
            return self.tick_bake(store, source, spec, state, now_ms);
        }
        if matches!(state.phase, Phase::AwaitingApproval { .. }) {
            let t = match self.approval_gate(store, &state, "system:loop", false)? {
                None => Transition::Promote,
                Some(Transition::AwaitApproval(_)) => return Ok(Transition::Stay),
                Some(other) => other,
            };
            self.apply(store, &mut state, t.clone(), now_ms, None, false)?;
            return Ok(t);
        }
        if !matches!(state.phase, Phase::Shadow | Phase::Canary { .. }) {
            return Ok(Transition::Stay);
        }
        // Someone moved the challenger alias outside the rollout (an MLflow client):
        // the evidence would be about another version, so a person must look.
        let challenger = alias(store, model, CHALLENGER)?;
        if challenger != Some(state.candidate_version) {
            let now = challenger.map_or("removed".to_string(), |v| format!("moved to version {v}"));
            let t = Transition::Pause(format!(
                "the challenger alias was {now} outside the rollout of version {}",
                state.candidate_version
            ));
            self.apply(store, &mut state, t.clone(), now_ms, None, false)?;
            return Ok(t);
        }
        let mut ev = source.evidence(
            model,
            state.champion_version,
            state.candidate_version,
            state.phase_started_ms,
        );
        ev.now_ms = now_ms;
        let t = step(spec, &state, &ev);
        if t != Transition::Stay {
            self.apply(
                store,
                &mut state,
                t.clone(),
                now_ms,
                Some(ev.summary()),
                false,
            )?;
        }
        Ok(effective(t, &state))
    }

    /// One tick of a bake: the serving champion is the candidate, the shadowed
    /// challenger the previous champion; the evidence is asked for in that order.
    fn tick_bake(
        &self,
        store: &dyn Store,
        source: &dyn EvidenceSource,
        spec: &RolloutSpec,
        mut state: RolloutState,
        now_ms: i64,
    ) -> Result<Transition> {
        let model = state.model.clone();
        let candidate = state.candidate_version;
        let champion = alias(store, &model, CHAMPION)?;
        let challenger = alias(store, &model, CHALLENGER)?;
        let moved = |name: &str, now: Option<i64>| {
            let now = now.map_or("removed".to_string(), |v| format!("moved to version {v}"));
            format!("the {name} alias was {now} outside the bake of version {candidate}")
        };
        let outside = if champion != Some(candidate) {
            Some(moved(CHAMPION, champion))
        } else if challenger != state.champion_version {
            Some(moved(CHALLENGER, challenger))
        } else {
            None
        };
        if let Some(reason) = outside {
            let t = Transition::Pause(reason);
            self.apply(store, &mut state, t.clone(), now_ms, None, false)?;
            return Ok(t);
        }
        let mut ev = match state.champion_version {
            Some(previous) => {
                source.evidence(&model, Some(candidate), previous, state.phase_started_ms)
            }
            None => Evidence::default(),
        };
        ev.now_ms = now_ms;
        let summary = state
            .champion_version
            .map(|previous| ev.bake_summary(candidate, previous));
        match judge_bake(spec, &state, &ev) {
            BakeVerdict::Wait => Ok(Transition::Stay),
            BakeVerdict::Passed(reason) => {
                self.promote_for_good(store, &mut state, &reason, summary, false, now_ms)?;
                Ok(Transition::Promote)
            }
            BakeVerdict::Failed(reason) => {
                let t = Transition::Rollback(reason);
                self.apply(store, &mut state, t.clone(), now_ms, summary, false)?;
                Ok(t)
            }
        }
    }

    /// Make the candidate champion for good (a promotion without a bake, or the end of
    /// one): no challenger stays.
    fn promote_for_good(
        &self,
        store: &dyn Store,
        state: &mut RolloutState,
        reason: &str,
        evidence: Option<String>,
        manual: bool,
        now_ms: i64,
    ) -> Result<()> {
        store.set_alias(&state.model, CHAMPION, state.candidate_version)?;
        remove_alias(store, &state.model, CHALLENGER)?;
        state.record(Phase::Promoted, now_ms, reason, evidence, manual);
        save_state(store, state)
    }

    /// [`tick`](Self::tick) every configured model with `auto`; a failure of one model
    /// does not stop the others.
    pub fn tick_all(
        &self,
        store: &dyn Store,
        source: &dyn EvidenceSource,
        now_ms: i64,
    ) -> Vec<(String, Result<Transition>)> {
        self.specs
            .iter()
            .filter(|(_, s)| s.auto)
            .map(|(m, _)| (m.clone(), self.tick(store, source, m, now_ms)))
            .collect()
    }

    fn active(&self, store: &dyn Store, model: &str) -> Result<RolloutState> {
        match load_state(store, model)? {
            Some(s) if s.phase.is_active() => Ok(s),
            _ => Err(RolloutError::NoRollout(model.to_string())),
        }
    }

    /// Make the candidate champion now, whatever phase it is in. For a model that bakes
    /// (declared with `auto` and `bake.enabled`) this starts the bake; during the bake
    /// it ends the bake, and the promotion is final.
    pub fn promote(&self, store: &dyn Store, model: &str, now_ms: i64) -> Result<RolloutState> {
        self.promote_as(store, model, now_ms, "cli")
    }

    /// [`promote`](Self::promote) on behalf of `requester` (who asks for the approval
    /// when the model's tier needs one).
    pub fn promote_as(
        &self,
        store: &dyn Store,
        model: &str,
        now_ms: i64,
        requester: &str,
    ) -> Result<RolloutState> {
        let mut state = match load_state(store, model)? {
            Some(s) if s.phase == Phase::Promoted => {
                return Err(invalid(
                    model,
                    format!(
                        "version {} is already promoted; start a new rollout for another version",
                        s.candidate_version
                    ),
                ));
            }
            Some(s) if s.phase.is_active() => s,
            _ => return Err(RolloutError::NoRollout(model.to_string())),
        };
        if !state.phase.is_baking()
            && let Some(t) = self.approval_gate(store, &state, requester, true)?
        {
            self.apply(store, &mut state, t, now_ms, None, true)?;
            return Ok(state);
        }
        self.apply(
            store,
            &mut state,
            Transition::Promote,
            now_ms,
            Some("promoted by hand".into()),
            true,
        )?;
        Ok(state)
    }

    /// Withdraw the candidate and restore the champion recorded at the start. Also
    /// undoes a promotion.
    pub fn rollback(&self, store: &dyn Store, model: &str, now_ms: i64) -> Result<RolloutState> {
        let mut state = match load_state(store, model)? {
            Some(s) if s.phase == Phase::RolledBack => {
                return Err(invalid(
                    model,
                    format!(
                        "the rollout of version {} is already rolled back; use --to-version to pick another champion",
                        s.candidate_version
                    ),
                ));
            }
            Some(s) => s,
            None => return Err(RolloutError::NoRollout(model.to_string())),
        };
        if state.champion_version.is_none() {
            return Err(RolloutError::NoChampion {
                model: model.to_string(),
                why: "recorded to restore",
            });
        }
        self.apply(
            store,
            &mut state,
            Transition::Rollback("rolled back by hand".into()),
            now_ms,
            None,
            true,
        )?;
        Ok(state)
    }

    /// Point `champion` at `version` (any existing version, usually an earlier one) in
    /// one step, ending any rollout in progress. Works without a rollout too; the
    /// decision is recorded either way.
    pub fn rollback_to(
        &self,
        store: &dyn Store,
        model: &str,
        version: i64,
        now_ms: i64,
    ) -> Result<RolloutState> {
        let previous = load_state(store, model)?;
        require_version(store, model, version)?;
        let champion = alias(store, model, CHAMPION)?;
        if champion == Some(version) {
            return Err(invalid(
                model,
                format!("version {version} is already the champion"),
            ));
        }
        let mut state = match previous {
            Some(s) => s,
            // A state for the record: the version that was champion is the one
            // rolled back from.
            None => RolloutState::new(model, champion, champion.unwrap_or(version), now_ms),
        };
        if state.phase.is_active() {
            remove_alias(store, model, CHALLENGER)?;
        }
        store.set_alias(model, CHAMPION, version)?;
        let from = champion.map_or("no champion".to_string(), |v| format!("version {v}"));
        state.champion_version = Some(version);
        state.record(
            Phase::RolledBack,
            now_ms,
            &format!("champion set by hand to version {version} (was {from})"),
            None,
            true,
        );
        save_state(store, &mut state)?;
        Ok(state)
    }

    /// Hold the rollout where it is until a person resumes it; the challenger falls
    /// back to shadow traffic meanwhile.
    pub fn pause(
        &self,
        store: &dyn Store,
        model: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<RolloutState> {
        let mut state = self.active(store, model)?;
        if let Phase::Paused { reason, .. } = &state.phase {
            return Err(invalid(
                model,
                format!("the rollout is already paused ({reason})"),
            ));
        }
        self.apply(
            store,
            &mut state,
            Transition::Pause(reason.to_string()),
            now_ms,
            None,
            true,
        )?;
        Ok(state)
    }

    /// Return a paused rollout to the phase it paused in; that phase holds again from
    /// now, on fresh evidence.
    pub fn resume(&self, store: &dyn Store, model: &str, now_ms: i64) -> Result<RolloutState> {
        let mut state = self.active(store, model)?;
        let Phase::Paused { resume_to, .. } = &state.phase else {
            return Err(invalid(
                model,
                format!("the rollout is not paused (it is in {})", state.phase),
            ));
        };
        let to = (**resume_to).clone();
        state.record(to, now_ms, "resumed by hand", None, true);
        save_state(store, &mut state)?;
        Ok(state)
    }

    /// End a rollout whose candidate the loop knows to be stale (trained before a
    /// drift it did not see), so the retraining can take its place: from shadow,
    /// canary or a pause it is rolled back; during its bake it stays champion and the
    /// bake ends, since both versions it compares predate the drift. `None` when no
    /// rollout is in progress. Taken by the controller, with `reason` recorded.
    pub fn supersede(
        &self,
        store: &dyn Store,
        model: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Option<RolloutState>> {
        let mut state = match load_state(store, model)? {
            Some(s) if s.phase.is_active() => s,
            _ => return Ok(None),
        };
        if state.phase.is_baking() {
            let why = format!("bake cut short: {reason}");
            self.promote_for_good(store, &mut state, &why, None, false, now_ms)?;
        } else {
            self.apply(
                store,
                &mut state,
                Transition::Rollback(reason.to_string()),
                now_ms,
                None,
                false,
            )?;
        }
        Ok(Some(state))
    }

    /// Carry out `t` on the registry and record it.
    fn apply(
        &self,
        store: &dyn Store,
        state: &mut RolloutState,
        t: Transition,
        now_ms: i64,
        evidence: Option<String>,
        manual: bool,
    ) -> Result<()> {
        let model = state.model.clone();
        match t {
            Transition::Stay => return Ok(()),
            Transition::Enter(p) => {
                let spec = self.spec(&model);
                state.step_index = next_phase(spec, &state.phase)
                    .filter(|(n, _)| *n == p)
                    .map_or(0, |(_, i)| i);
                state.record(p, now_ms, "checks passed", evidence, manual);
            }
            Transition::AwaitApproval(request) => {
                let reason = format!(
                    "checks passed; the model's risk tier needs an approval (request {request})"
                );
                state.record(
                    Phase::AwaitingApproval { request },
                    now_ms,
                    &reason,
                    evidence,
                    manual,
                );
            }
            Transition::Promote => {
                if !manual
                    && !state.phase.is_baking()
                    && !matches!(state.phase, Phase::AwaitingApproval { .. })
                    && let Some(t) = self.approval_gate(store, state, "system:loop", false)?
                {
                    return self.apply(store, state, t, now_ms, evidence, manual);
                }
                let evidence = if manual { None } else { evidence };
                if state.phase.is_baking() {
                    let reason = if manual {
                        "promoted by hand during the bake"
                    } else {
                        "bake passed"
                    };
                    return self.promote_for_good(store, state, reason, evidence, manual, now_ms);
                }
                let why = if manual {
                    "promoted by hand"
                } else {
                    "every phase passed its checks"
                };
                // Baking against the previous champion, when there is one to compare.
                let bake_against = state
                    .champion_version
                    .filter(|p| *p != state.candidate_version && self.bakes(&model));
                let Some(previous) = bake_against else {
                    return self.promote_for_good(store, state, why, evidence, manual, now_ms);
                };
                // The candidate answers from now on; the previous champion is shadowed
                // until the bake has compared them on live labels.
                store.set_alias(&model, CHAMPION, state.candidate_version)?;
                store.set_alias(&model, CHALLENGER, previous)?;
                let reason = format!("{why}; baking against version {previous}");
                state.record(Phase::Baking, now_ms, &reason, evidence, manual);
            }
            Transition::Rollback(reason) => {
                remove_alias(store, &model, CHALLENGER)?;
                match state.champion_version {
                    Some(v) => store.set_alias(&model, CHAMPION, v)?,
                    // No champion to restore: at least stop serving the candidate.
                    None => {
                        if alias(store, &model, CHAMPION)? == Some(state.candidate_version) {
                            remove_alias(store, &model, CHAMPION)?;
                        }
                    }
                }
                state.record(Phase::RolledBack, now_ms, &reason, evidence, manual);
            }
            Transition::Pause(reason) => {
                let resume_to = Box::new(state.phase.clone());
                state.record(
                    Phase::Paused {
                        reason: reason.clone(),
                        resume_to,
                    },
                    now_ms,
                    &reason,
                    evidence,
                    manual,
                );
            }
        }
        save_state(store, state)
    }
}

/// The router's [`ModeSource`] backed by the rollout state: the challenger gets the
/// traffic its phase allows. Without a rollout in progress a challenger alias (set by
/// an MLflow client, say) is shadowed, like [`crate::router::ShadowByDefault`]; a
/// state that cannot be read also falls back to shadow, which never changes answers.
#[derive(Debug, Default)]
pub struct RolloutModes;

impl ModeSource for RolloutModes {
    fn mode(&self, store: &dyn Store, model: &str) -> Option<Mode> {
        match load_state(store, model) {
            Ok(Some(s)) if s.phase.is_active() => routing(&s).mode(),
            Ok(_) => Some(Mode::Shadow),
            Err(e) => {
                tracing::warn!(model, error = %e, "rollout state unreadable; challenger shadowed");
                Some(Mode::Shadow)
            }
        }
    }
}
