//! `fastrefund-serve`: the eligibility service alone, built without polars (minutes on
//! 2 cores, not the batch side's ~20). Takes the options of `fastrefund serve`.

use clap::Parser;
use fastrefund_service::cli::{ServeArgs, init_logging, run};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fastrefund-serve",
    version,
    about = "The fastrefund eligibility service (the options of `fastrefund serve`)"
)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> anyhow::Result<()> {
    // `fastrefund-serve serve …` is `fastrefund-serve …`: a drop-in for `fastrefund
    // serve` in scripts and checks that run the service alone.
    let cli = Cli::parse_from(
        std::env::args_os()
            .enumerate()
            .filter(|(i, a)| !(*i == 1 && a == "serve"))
            .map(|(_, a)| a),
    );
    init_logging(false)?;
    run(cli.serve)
}
