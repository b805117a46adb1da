//! The `tollgate` command: what people and CI use to publish triggers and wait for the
//! verdict, generate and push data, and list runs and models. See `tollgate --help`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tollgate_cli::Cli::parse();
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
    // Inside the runtime: the OTLP exporter's channel lives on it. The guard is dropped
    // (spans flushed) before the runtime.
    let telemetry = {
        let _entered = runtime.enter();
        tollgate_telemetry::init_with_level("tollgate", "warn")
    };
    let code = runtime.block_on(tollgate_cli::run(cli));
    drop(telemetry);
    std::process::ExitCode::from(code)
}
