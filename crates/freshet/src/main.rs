//! The `freshet` binary: continuous MLOps in one process.

use clap::Parser;
use freshet::{cli, commands};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Return freed pages to the OS within a second (jemalloc's default keeps them ten
/// seconds), so that peak RSS follows the records actually in flight.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000\0";

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(&cli);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(cli: &cli::Cli) {
    use tracing_subscriber::EnvFilter;
    // The Delta kernel logs expected conditions (a table not created yet) as errors;
    // Freshet reports its own errors, so the kernel only speaks when asked to.
    let default = if matches!(cli.command, cli::Command::Up(_)) {
        "info,buoyant_kernel=off,deltalake_core=warn"
    } else {
        "warn,buoyant_kernel=off,deltalake_core=error"
    };
    let filter = EnvFilter::try_from_env("FRESHET_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}
