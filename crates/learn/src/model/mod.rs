//! A trained model as one self-describing artifact: spec, feature state, learner state, reference profile.
