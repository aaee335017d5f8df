//! Scoring request and response formats.
