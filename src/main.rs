use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match relay::cli::run(relay::cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
