//! The `scorenmf` command line: parses the arguments, runs the command ([`cli`]), and turns an
//! error into one line on stderr and an exit code: 2 for bad input (a file, a parameter), 1 for
//! anything else (a failed write, say).

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_input_error() { 2 } else { 1 })
        }
    }
}
