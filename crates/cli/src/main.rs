//! The `tollgate` command: what people and CI use to publish triggers and wait for the
//! verdict, generate and push data, and list runs and models. See `tollgate --help`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tollgate_cli::Cli::parse();
    let _telemetry = tollgate_telemetry::init_with_level("cli", "warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    std::process::ExitCode::from(runtime.block_on(tollgate_cli::run(cli)))
}
