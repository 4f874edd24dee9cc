//! The command line: `run`, `list`, `plot`. Parsing and dispatch only; the work lives in the library.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

use crate::{report, runner, sampler, suite};

const EXAMPLES: &str = "\
Examples:
  nsbench run suites/rec.toml                 train the grid, write results/rec/, plot it
  nsbench run suites/rec.toml --dry-run       print the grid and which cells are already finished
  nsbench run suites/ml100k.toml --jobs 1 --threads 2
  nsbench list suites/rec.toml                print the grid's run ids in order
  nsbench list samplers                       every sampler with its parameters
  nsbench plot results/rec                    redraw figures and summary.md from stored results

Running a suite again skips the cells already finished with the same configuration and data, so an
interrupted run resumes where it stopped.";

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
    /// Train every cell of a suite's grid not yet finished, then merge and plot the results.
    #[command(after_help = EXAMPLES)]
    Run {
        /// The suite file (TOML).
        suite: PathBuf,
        /// Results directory [default: results/<suite name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the grid and what would run, train nothing.
        #[arg(long)]
        dry_run: bool,
        /// libtorch threads per cell (overrides [suite].threads; default 1).
        #[arg(long)]
        threads: Option<usize>,
        /// Cells trained at once (overrides [suite].jobs; default cores / threads).
        #[arg(long)]
        jobs: Option<usize>,
        /// cpu, cuda or cuda:N (overrides [suite].device).
        #[arg(long)]
        device: Option<String>,
        /// Skip drawing figures after the run.
        #[arg(long)]
        no_plots: bool,
    },
    /// Print a suite's grid in run order, or `nsbench list samplers` for every sampler.
    List {
        /// A suite file, or the word `samplers`.
        what: String,
        /// Results directory to report finished cells from [default: results/<suite name>].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Draw the figures and summary table of a results directory.
    Plot {
        /// A results directory written by `nsbench run`.
        dir: PathBuf,
    },
}

pub fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Run {
            suite,
            out,
            dry_run,
            threads,
            jobs,
            device,
            no_plots,
        } => {
            let suite = suite::load(&suite)?;
            let opts = runner::RunOptions::resolve(&suite, out, threads, jobs, device);
            if dry_run {
                return print_grid(&suite, &opts.out, Some(&opts));
            }
            eprintln!(
                "suite {}: {} cells, {} at a time with {} thread(s) each on {}, results in {}",
                suite.name,
                suite::expand(&suite).len(),
                opts.jobs,
                opts.threads,
                opts.device,
                opts.out.display()
            );
            let summary = runner::run(&suite, &opts)?;
            eprintln!(
                "trained {} cells, skipped {} already finished, {} cells in {} ({:.1}s)",
                summary.trained,
                summary.skipped,
                summary.merged,
                opts.out.join(crate::store::RESULTS_FILE).display(),
                summary.seconds
            );
            if !no_plots {
                plot(&opts.out)?;
            }
            Ok(())
        }
        Command::List { what, out } => {
            if what == "samplers" && !Path::new(&what).is_file() {
                let width = sampler::REGISTRY
                    .iter()
                    .map(|(n, _)| n.len())
                    .max()
                    .unwrap_or(0);
                for (name, description) in sampler::REGISTRY {
                    println!("{name:<width$}  {description}");
                }
                return Ok(());
            }
            let suite = suite::load(Path::new(&what))?;
            let out = out.unwrap_or_else(|| PathBuf::from("results").join(&suite.name));
            print_grid(&suite, &out, None)
        }
        Command::Plot { dir } => plot(&dir),
    }
}

fn print_grid(suite: &suite::Suite, out: &Path, opts: Option<&runner::RunOptions>) -> Result<()> {
    let cells = runner::plan(suite, out)?;
    for c in &cells {
        println!(
            "{}\t{}",
            c.id,
            if c.finished { "finished" } else { "pending" }
        );
    }
    let pending = cells.iter().filter(|c| !c.finished).count();
    eprintln!(
        "{} cells ({} domains × {} samplers × {} ratios × {} seeds): {pending} to run, {} finished in {}",
        cells.len(),
        suite.domains.len(),
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

fn plot(dir: &Path) -> Result<()> {
    let (table, files) = report::render(dir)?;
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
