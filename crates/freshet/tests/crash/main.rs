//! Subprocess tests: the real `freshet` binary as a child process. Most are crash
//! tests, killing it with SIGKILL at random moments. They check the promises of the
//! foundation: an acknowledged record is in the lake exactly once, a file ingest resumes without loss or duplicates, the
//! tables stay readable after every crash, and no raw PII value reaches any file.
//!
//! Randomised; each test prints its seed (replay with `FRESHET_CRASH_SEED=<seed>`).

mod crash_safety;
mod demo_loop;
mod file_exactly_once;
mod follow;
mod harness;
mod pii_in_logs;
mod recovery;
mod rollout_cli;
mod soak_cli;
mod train_cli;
