//! The command line: `run`, `list`, `plot`. Parsing and dispatch only; the work lives in the library.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

use crate::{report, resources, runner, sampler, store, suite};

const EXAMPLES: &str = "\
Examples:
  nsbench run suites/rec.toml                 train the grid, write results/rec/, plot it
  nsbench run suites/rec.toml --dry-run       print the grid and which cells are already finished
  nsbench run suites/ml100k.toml --jobs 1 --threads 2
  nsbench list suites/rec.toml                print the grid's run ids in order
  nsbench list samplers                       every sampler with its parameters and domains
  nsbench list losses                         every loss with its parameters
  nsbench report results/rec                  statistics: bootstrap CIs, paired comparisons with uniform
  nsbench plot results/rec                    redraw figures and summary.md from stored results

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
        /// Remove stored cells of another configuration (never merged or plotted) before running.
        #[arg(long)]
        prune: bool,
        /// Memory a cell (or the cells running at once) may plan to use, e.g. 16GiB [default: the
        /// machine's memory]. Cells estimated above it are refused before anything trains.
        #[arg(long, value_parser = resources::parse_bytes)]
        max_memory: Option<u64>,
    },
    /// Print a suite's grid in run order, or `nsbench list samplers` for every sampler.
    List {
        /// A suite file, or the word `samplers` or `losses`.
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
    /// The report of one or more results directories (their data sets side by side): statistics
    /// tables (report.md), LaTeX tables (tables/<domain>.tex), figures (plots/) and one self-contained
    /// report.html, written into the first directory or --out.
    Report {
        /// Results directories written by `nsbench run`.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the report goes [default: the first directory].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Time to target: the share of the reference's best value a curve must reach.
        #[arg(long, default_value_t = 0.95)]
        target: f64,
        /// The sampler every other one is compared with.
        #[arg(long, default_value = "uniform")]
        reference: String,
        /// Confidence level of the intervals (1 − level is the significance level).
        #[arg(long, default_value_t = 0.95)]
        level: f64,
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
            prune,
            max_memory,
        } => {
            let suite = suite::load(&suite)?;
            let mut opts = runner::RunOptions::resolve(&suite, out, threads, jobs, device);
            opts.max_memory = max_memory;
            if dry_run {
                return print_grid(&suite, &opts.out, &opts.device, Some(&opts));
            }
            let lock = store::open_for_writing(&opts.out, "running")?;
            if prune {
                let cells = runner::plan(&suite, &opts.out, &opts.device)?;
                let removed = store::prune(&opts.out, &runner::planned_hashes(&cells))?;
                eprintln!(
                    "pruned {} stored cells of another configuration",
                    removed.len()
                );
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
            let summary = runner::run(&suite, &opts, &lock)?;
            eprintln!(
                "trained {} cells, skipped {} already finished, {} cells in {} ({:.1}s)",
                summary.trained,
                summary.skipped,
                summary.merge.merged,
                opts.out.join(store::RESULTS_FILE).display(),
                summary.seconds
            );
            if !summary.merge.foreign.is_empty() {
                eprintln!(
                    "{} stored cells belong to another configuration (not merged, summarised or plotted): \
                     `nsbench run {} --prune` removes them",
                    summary.merge.foreign.len(),
                    suite.path.display()
                );
            }
            if !no_plots && summary.merge.merged > 0 {
                plot(&opts.out)?;
            }
            drop(lock);
            if !summary.failures.is_empty() {
                let list: Vec<String> = summary
                    .failures
                    .iter()
                    .map(|f| format!("  {}: {}", f.run_id, report::describe_failure(f)))
                    .collect();
                anyhow::bail!(
                    "{} of {} cells failed (recorded in {}; the other cells are kept; running again \
                     retries them):\n{}",
                    summary.failures.len(),
                    summary.cells,
                    opts.out.join(store::FAILURES_FILE).display(),
                    list.join("\n")
                );
            }
            Ok(())
        }
        Command::List { what, out } => {
            if what == "samplers" && !Path::new(&what).is_file() {
                let width = sampler::REGISTRY
                    .iter()
                    .map(|s| s.kind.len())
                    .max()
                    .unwrap_or(0);
                for s in sampler::REGISTRY {
                    let same = s
                        .same_at_k1
                        .map(|other| format!(" [at k = 1 this is {other}]"))
                        .unwrap_or_default();
                    let domains = format!(" [domains: {}]", s.domains.join(", "));
                    println!(
                        "{:<width$}  {}{same}{domains} [needs: {}]",
                        s.kind, s.description, s.needs
                    );
                }
                return Ok(());
            }
            if what == "losses" && !Path::new(&what).is_file() {
                for (kind, description) in crate::train::loss::LOSSES {
                    println!("{kind:<8}  {description}");
                }
                return Ok(());
            }
            let suite = suite::load(Path::new(&what))?;
            let out = out.unwrap_or_else(|| PathBuf::from("results").join(&suite.name));
            print_grid(&suite, &out, &suite.device, None)
        }
        Command::Report {
            dirs,
            out,
            target,
            reference,
            level,
        } => {
            let first = dirs[0].clone();
            for (key, value, ok, allowed) in [
                (
                    "--level",
                    level,
                    level > 0.5 && level < 1.0,
                    "in (0.5, 1), e.g. 0.95",
                ),
                (
                    "--target",
                    target,
                    target > 0.0 && target <= 1.0,
                    "in (0, 1], e.g. 0.95",
                ),
            ] {
                if !ok {
                    return Err(crate::error::SuiteError::Invalid {
                        path: first,
                        key: key.into(),
                        message: format!("must be {allowed} (got {value})"),
                    }
                    .into());
                }
            }
            for dir in &dirs {
                if !dir.join(store::RESULTS_FILE).is_file() {
                    return Err(crate::error::StoreError::Invalid {
                        path: dir.clone(),
                        message: "no results here: run `nsbench run SUITE --out DIR` first".into(),
                    }
                    .into());
                }
            }
            let settings = crate::report::significance::Settings {
                reference,
                level,
                target,
                ..Default::default()
            };
            let out = out.unwrap_or(first);
            std::fs::create_dir_all(&out)?;
            let _lock = store::open_for_writing(&out, "reporting")?;
            let inputs = crate::report::Inputs::read(&dirs)?;
            let (text, files) = crate::report::statistics_report(&inputs, &out, &settings)?;
            print!("{text}");
            eprintln!(
                "wrote {}, {}, {} LaTeX table file(s) under {} and {} figure files under {}",
                files.markdown.display(),
                files.html.display(),
                files.latex.len(),
                out.join("tables").display(),
                files.figures.len(),
                out.join("plots").display()
            );
            Ok(())
        }
        Command::Plot { dir } => {
            if !dir.join(store::RESULTS_FILE).is_file() {
                return Err(crate::error::StoreError::Invalid {
                    path: dir,
                    message: "no results here: run `nsbench run SUITE --out DIR` first".into(),
                }
                .into());
            }
            let _lock = store::open_for_writing(&dir, "plotting")?;
            plot(&dir)
        }
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
