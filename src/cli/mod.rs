//! The command line: parsing and dispatch, one file per command; the work lives in the library.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::Path;

mod audit;
mod baseline;
mod check;
mod check_sampler;
mod list;
mod merge;
mod plot;
mod report;
mod run;
mod slurm;

use crate::{runner, store, suite};

const EXAMPLES: &str = "\
Examples:
  nsbench run suites/rec.toml                 train the grid, write results/rec/, plot it
  nsbench run suites/rec.toml --dry-run       print the grid and which cells are already finished
  nsbench run suites/ml100k.toml --jobs 1 --threads 2
  nsbench list suites/rec.toml                print the grid's run ids in order
  nsbench list samplers                       every sampler with its parameters and domains
  nsbench list losses                         every loss with its parameters
  nsbench report results/rec                  statistics: t intervals over seeds, verdicts against uniform
  nsbench plot results/rec                    redraw figures and summary.md from stored results
  nsbench report results/a results/b --out results/ab   one report over several runs' data sets
  nsbench baseline save main results/rec      keep this run's results as the baseline `main`
  nsbench check results/rec --baseline main   regression gate: exit 1 if a sampler got worse or slower
  nsbench check-sampler dns                   the sampler contract on one sampler, in each of its domains
  nsbench audit                               check the evaluation itself with sentinel scorers
  nsbench audit suites/ml100k.toml            the same on a suite's data

Running a suite again skips the cells already finished with the same configuration and data, so an
interrupted run resumes where it stopped; failed cells run again. Exit codes: 0 every cell finished,
1 a cell failed (the others are kept; the summary lists why), 2 bad input (nothing recorded).";

#[derive(Parser, Debug)]
#[command(
    name = "nsbench",
    version,
    about = "Reproducible benchmarks of negative samplers: a suite of domains × samplers × ratios × seeds, \
             trained with libtorch, recorded in parquet, plotted.",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check the evaluation itself: a constant, a random and an oracle scorer run through each domain's
    /// test evaluation, on the embedded data sets (no SUITE) or each SUITE's data, and must score what
    /// the tie rule, the chance level and 1 say; the protocol facts of each data set. Exit 1 on any
    /// deviation, 2 on bad input.
    Audit(audit::Args),
    /// Manage baselines for `nsbench check`.
    Baseline {
        #[command(subcommand)]
        action: baseline::Action,
    },
    /// The regression gate: compare a run with a saved baseline per (data set, sampler, k, metric);
    /// a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set); exit 1 on a regression, 0
    /// otherwise, 2 on bad input.
    Check(check::Args),
    /// The sampler contract every built-in passes (shapes, ids in the pool, no known positive when it
    /// excludes them, the same seed the same draws, another seed others, finite weights), run on one
    /// sampler in each domain it runs in. Exit 1 on a broken promise, 2 on bad input.
    CheckSampler(check_sampler::Args),
    /// Train every cell of a suite's grid not yet finished, then merge and plot the results.
    #[command(after_help = EXAMPLES)]
    Run(run::Args),
    /// Merge a results directory's cells (as a sharded run leaves them) into results.parquet, the
    /// summary and the figures; exit 1 when cells failed or are missing.
    Merge(merge::Args),
    /// Write (and with --submit, submit) a Slurm job array that runs a suite in shards, and a merge job
    /// that runs after all of them succeed.
    Slurm(slurm::Args),
    /// Print a suite's grid in run order, or `nsbench list samplers` for every sampler.
    List(list::Args),
    /// Draw the figures and summary table of a results directory.
    Plot(plot::Args),
    /// The report of one or more results directories (their data sets side by side): statistics
    /// tables (report.md), LaTeX tables (tables/<domain>.tex), figures (plots/) and one self-contained
    /// report.html, written into the first directory or --out.
    Report(report::Args),
}

/// Refuses the first flag whose value is not allowed: (flag, value, allowed?, what is allowed).
fn check_flags(path: &Path, flags: &[(&str, f64, bool, &str)]) -> Result<()> {
    match flags.iter().find(|f| !f.2) {
        Some((key, value, _, allowed)) => Err(crate::error::SuiteError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message: format!("must be {allowed} (got {value})"),
        }
        .into()),
        None => Ok(()),
    }
}

fn require_results(dir: &Path) -> Result<()> {
    if dir.join(store::RESULTS_FILE).is_file() {
        return Ok(());
    }
    Err(crate::error::StoreError::Invalid {
        path: dir.to_path_buf(),
        message: "no results here: run `nsbench run SUITE --out DIR` first".into(),
    }
    .into())
}

pub fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Audit(args) => audit::execute(args),
        Command::Baseline { action } => baseline::execute(action),
        Command::Check(args) => check::execute(args),
        Command::CheckSampler(args) => check_sampler::execute(args),
        Command::Run(args) => run::execute(args),
        Command::Merge(args) => merge::execute(args),
        Command::Slurm(args) => slurm::execute(args),
        Command::List(args) => list::execute(args),
        Command::Plot(args) => plot::execute(args),
        Command::Report(args) => report::execute(args),
    }
}

fn print_grid(
    suite: &suite::Suite,
    out: &Path,
    device: &str,
    opts: Option<&runner::RunOptions>,
) -> Result<()> {
    let cells = runner::plan(suite, out, device)?;
    for c in &cells {
        println!("{}\t{}", c.id, c.state.as_str());
    }
    let pending = cells.iter().filter(|c| !c.finished()).count();
    let failed = cells
        .iter()
        .filter(|c| c.state == runner::CellState::Failed)
        .count();
    let ratio_free = suite
        .samplers
        .iter()
        .filter(|s| s.config.info().ratio_free)
        .count();
    let note = if ratio_free > 0 {
        " (ratio-free samplers once per seed, ratio `all`)"
    } else {
        ""
    };
    let failed = if failed > 0 {
        format!(" ({failed} of them failed before)")
    } else {
        String::new()
    };
    let losses: usize = suite.domains.iter().map(|d| d.losses.len()).sum();
    let domains = if losses > suite.domains.len() {
        format!("{losses} (domain, loss) pairs")
    } else {
        format!("{} domains", suite.domains.len())
    };
    eprintln!(
        "{} cells ({domains} × {} samplers × {} ratios × {} seeds{note}): {pending} to run{failed}, \
         {} finished in {}",
        cells.len(),
        suite.samplers.len(),
        suite.ratios.len(),
        suite.seeds.len(),
        cells.len() - pending,
        out.display()
    );
    if let Some(o) = opts {
        eprintln!(
            "would run {} at a time with {} thread(s) each on {}",
            o.jobs, o.threads, o.device
        );
    }
    Ok(())
}

fn draw_figures(dir: &Path) -> Result<()> {
    let (table, files) = crate::report::render(dir)?;
    println!("{table}");
    let figures = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .count();
    eprintln!(
        "wrote {} and {figures} figures (SVG + PNG) in {}",
        files[0].display(),
        dir.join("plots").display()
    );
    Ok(())
}
