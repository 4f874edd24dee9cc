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
  nsbench report results/a results/b --out results/ab   one report over several runs' data sets
  nsbench baseline save main results/rec      keep this run's results as the baseline `main`
  nsbench check results/rec --baseline main   regression gate: exit 1 if a sampler got worse or slower
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
    Audit {
        /// Suite files whose data to audit [default: the embedded data sets of every domain].
        suites: Vec<PathBuf>,
        /// Also write the Markdown verdict to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Manage baselines for `nsbench check`.
    Baseline {
        #[command(subcommand)]
        action: BaselineAction,
    },
    /// The regression gate: compare a run with a saved baseline per (data set, sampler, k, metric);
    /// a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set); exit 1 on a regression, 0
    /// otherwise, 2 on bad input.
    Check {
        /// A results directory written by `nsbench run`.
        dir: PathBuf,
        /// The baseline: a name saved in DIR/baselines/, or a baseline directory.
        #[arg(long, required_unless_present = "expect")]
        baseline: Option<String>,
        /// Also check the suite's published values (`[[expect]]` in DIR/suite.resolved.toml): fail when
        /// a seed mean falls outside its band.
        #[arg(long)]
        expect: bool,
        /// Pass when the baseline or some of its groups are missing (strict mode, the default, fails).
        #[arg(long)]
        lenient: bool,
        /// Relative change of an effectiveness mean that counts (below it: noise).
        #[arg(long, default_value_t = 0.01)]
        noise: f64,
        /// Slower than this ratio of seconds per epoch is a regression.
        #[arg(long, default_value_t = 1.5)]
        time_ratio: f64,
        /// Differences in seconds per epoch below this never count (a scheduler time slice).
        #[arg(long, default_value_t = 0.005)]
        time_floor: f64,
        /// Judge each group's epoch time alone, not relative to the run's other groups (a dedicated
        /// runner, where a run-wide slowdown is the code's).
        #[arg(long)]
        absolute_time: bool,
        /// Effectiveness metrics to compare (repeatable) [default: each data set's headline metric].
        #[arg(long)]
        metric: Vec<String>,
        /// Confidence level of the paired t-test over seeds (1 − level: the gate's false-alarm rate).
        #[arg(long, default_value_t = 0.95)]
        level: f64,
    },
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
        #[arg(long, value_parser = at_least_one)]
        threads: Option<usize>,
        /// Cells trained at once (overrides [suite].jobs; default cores / threads).
        #[arg(long, value_parser = at_least_one)]
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
        /// Train only shard I of N (0-based), e.g. 0/4 [default: from SLURM_ARRAY_TASK_ID /
        /// SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX / NSBENCH_SHARDS, when set]. Shards share
        /// the results directory; the last to finish merges.
        #[arg(long, value_parser = crate::shard::Shard::parse)]
        shard: Option<crate::shard::Shard>,
        /// Do not take the shard from the environment (run the whole grid inside a Slurm job).
        #[arg(long)]
        no_shard: bool,
        /// Then add seeds in rounds to the comparisons with the reference still undecided, until each
        /// is decided or capped ([suite.until_decided] sets max_seeds, round, reference, margin, level).
        #[arg(long)]
        until_decided: bool,
    },
    /// Merge a results directory's cells (as a sharded run leaves them) into results.parquet, the
    /// summary and the figures; exit 1 when cells failed or are missing.
    Merge {
        /// A results directory written by `nsbench run` (its suite.resolved.toml names the grid).
        dir: PathBuf,
        #[arg(long)]
        no_plots: bool,
    },
    /// Write (and with --submit, submit) a Slurm job array that runs a suite in shards, and a merge job
    /// that runs after all of them succeed.
    Slurm {
        /// The suite file (TOML).
        suite: PathBuf,
        /// Results directory, shared by every shard [default: results/<suite name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Array tasks (shards).
        #[arg(long, default_value_t = 4)]
        shards: usize,
        /// CPUs per task: the cells a shard trains at once (one libtorch thread each).
        #[arg(long, default_value_t = 1)]
        cpus_per_task: usize,
        /// Wall-clock limit per task (sbatch --time), e.g. 04:00:00.
        #[arg(long)]
        time: Option<String>,
        /// Memory per task (sbatch --mem), e.g. 8G.
        #[arg(long)]
        mem: Option<String>,
        /// Partition (sbatch --partition).
        #[arg(long)]
        partition: Option<String>,
        /// Account to charge (sbatch --account).
        #[arg(long)]
        account: Option<String>,
        /// At most this many tasks at once (the array's %M throttle).
        #[arg(long)]
        max_running: Option<usize>,
        /// Submit with sbatch and print the job ids.
        #[arg(long)]
        submit: bool,
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
        /// Equivalence margin relative to the reference's mean (0.02: equivalent within ±2%).
        #[arg(long, default_value_t = 0.02)]
        margin: f64,
    },
}

#[derive(Subcommand, Debug)]
pub enum BaselineAction {
    /// Keep a run's merged results as the baseline NAME (in DIR/baselines/NAME, with its provenance).
    Save {
        name: String,
        /// A results directory [default: the most recently written one under results/].
        dir: Option<PathBuf>,
    },
}

/// The results directory under `results/` written last (its `results.parquet` newest).
fn latest_results_dir() -> Result<PathBuf> {
    let newest = std::fs::read_dir("results")
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let modified = e
                .path()
                .join(store::RESULTS_FILE)
                .metadata()
                .ok()?
                .modified()
                .ok()?;
            Some((modified, e.path()))
        })
        .max();
    newest.map(|(_, p)| p).ok_or_else(|| {
        crate::error::StoreError::Invalid {
            path: PathBuf::from("results"),
            message: "no results directory here: name one (`nsbench baseline save NAME DIR`)"
                .into(),
        }
        .into()
    })
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
        Command::Audit { suites, out } => {
            let audits = if suites.is_empty() {
                let mut audits = Vec::new();
                for data in crate::audit::embedded()? {
                    audits.push(crate::audit::audit(&data, &[10, 20], Default::default())?);
                }
                audits
            } else {
                let mut audits = Vec::new();
                for path in &suites {
                    audits.extend(crate::audit::of_suite(&suite::load(path)?)?);
                }
                audits
            };
            let text = crate::audit::markdown(&audits);
            print!("{text}");
            if let Some(out) = out {
                store::atomic::write_bytes(&out, text.as_bytes())?;
            }
            if audits.iter().any(|a| !a.passed()) {
                eprintln!("the audit found a deviation");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Baseline {
            action: BaselineAction::Save { name, dir },
        } => {
            let dir = match dir {
                Some(d) => d,
                None => latest_results_dir()?,
            };
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(crate::error::SuiteError::Invalid {
                    path: dir,
                    key: "NAME".into(),
                    message: format!(
                        "{name:?} is not a baseline name: letters, digits, '-' and '_'"
                    ),
                }
                .into());
            }
            require_results(&dir)?;
            let _lock = store::open_for_writing(&dir, "saving a baseline")?;
            let to = crate::gate::save(&dir, &name)?;
            println!(
                "saved baseline {name:?} of {} in {}",
                dir.display(),
                to.display()
            );
            Ok(())
        }
        Command::Check {
            dir,
            baseline,
            expect,
            lenient,
            noise,
            time_ratio,
            time_floor,
            absolute_time,
            metric,
            level,
        } => {
            check_flags(
                &dir,
                &[
                    (
                        "--noise",
                        noise,
                        (0.0..1.0).contains(&noise),
                        "in [0, 1), e.g. 0.01",
                    ),
                    (
                        "--time-ratio",
                        time_ratio,
                        time_ratio > 1.0,
                        "above 1, e.g. 1.5",
                    ),
                    (
                        "--time-floor",
                        time_floor,
                        time_floor >= 0.0,
                        "0 or more seconds",
                    ),
                    (
                        "--level",
                        level,
                        level > 0.5 && level < 1.0,
                        "in (0.5, 1), e.g. 0.95",
                    ),
                ],
            )?;
            require_results(&dir)?;
            let summary_file = std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from);
            let mut failed = false;
            if let Some(baseline) = baseline {
                let thresholds = crate::gate::Thresholds {
                    noise,
                    level,
                    time_ratio,
                    time_floor,
                    absolute_time,
                    strict: !lenient,
                    metrics: metric,
                };
                failed |= check_baseline(&dir, &baseline, &thresholds, summary_file.as_deref())?;
            }
            if expect {
                let suite = suite::load(&dir.join("suite.resolved.toml"))?;
                let outcomes = crate::expect::evaluate(&suite.expects, &store::read_results(&dir)?);
                let text = crate::expect::markdown(&outcomes);
                print!("{text}");
                append_summary(summary_file.as_deref(), &text)?;
                failed |= outcomes.iter().any(|o| !o.inside());
            }
            if failed {
                eprintln!("the check failed");
                std::process::exit(1);
            }
            Ok(())
        }
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
            shard,
            no_shard,
            until_decided,
        } => {
            let suite = suite::load(&suite)?;
            let until_decided = until_decided || suite.until_decided.is_some();
            let mut opts = runner::RunOptions::resolve(&suite, out, threads, jobs, device);
            // Inside a Slurm job the task's memory, not the node's, is what cells may plan to use.
            opts.max_memory = max_memory.or_else(slurm_memory);
            opts.shard = match (shard, no_shard) {
                (Some(s), _) => Some(s),
                (None, true) => None,
                (None, false) => crate::shard::Shard::from_env(&|k| std::env::var(k).ok())
                    .transpose()
                    .map_err(|message| crate::error::SuiteError::Invalid {
                        path: suite.path.clone(),
                        key: "--shard".into(),
                        message,
                    })?,
            };
            if dry_run {
                return print_grid(&suite, &opts.out, &opts.device, Some(&opts));
            }
            if let Some(shard) = opts.shard {
                if until_decided {
                    return Err(crate::error::SuiteError::Invalid {
                        path: suite.path.clone(),
                        key: "--until-decided".into(),
                        message: "not with --shard: a sequential run decides after each round"
                            .into(),
                    }
                    .into());
                }
                if prune {
                    return Err(crate::error::SuiteError::Invalid {
                        path: suite.path.clone(),
                        key: "--prune".into(),
                        message: "not with --shard: prune once before the array, with a plain run"
                            .into(),
                    }
                    .into());
                }
                return run_shard(&suite, &opts, shard, no_plots);
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
            if until_decided {
                let rounds = crate::sequential::run_until_decided(&suite, &opts, &lock)?;
                eprintln!(
                    "until decided: {} looks, {} cells trained, {} comparisons decided, {} undecided at the seed cap; \
                     {} seeds over the comparisons",
                    rounds.looks, rounds.trained, rounds.decided, rounds.undecided, rounds.seeds_spent
                );
                if !no_plots {
                    plot(&opts.out)?;
                }
                drop(lock);
                let failed = store::read_failures(&opts.out)?;
                if !failed.is_empty() {
                    anyhow::bail!(
                        "{} cells failed (`failures.parquet` says why)",
                        failed.len()
                    );
                }
                return Ok(());
            }
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
        Command::Merge { dir, no_plots } => {
            let resolved = dir.join("suite.resolved.toml");
            if !resolved.is_file() {
                return Err(crate::error::StoreError::Invalid {
                    path: dir,
                    message:
                        "no suite.resolved.toml here: not a results directory of `nsbench run`"
                            .into(),
                }
                .into());
            }
            let suite = suite::load(&resolved)?;
            let lock = store::open_for_writing(&dir, "merging")?;
            let outcome =
                merge_and_plot(&runner::plan_hashes(&suite, &suite.device)?, &dir, no_plots)?;
            drop(lock);
            outcome.conclude()
        }
        Command::Slurm {
            suite,
            out,
            shards,
            cpus_per_task,
            time,
            mem,
            partition,
            account,
            max_running,
            submit,
        } => {
            let path = suite.clone();
            let suite = suite::load(&suite)?;
            if shards == 0 || cpus_per_task == 0 {
                return Err(crate::error::SuiteError::Invalid {
                    path,
                    key: if shards == 0 {
                        "--shards"
                    } else {
                        "--cpus-per-task"
                    }
                    .into(),
                    message: "must be at least 1".into(),
                }
                .into());
            }
            let out = out.unwrap_or_else(|| PathBuf::from("results").join(&suite.name));
            let job = crate::slurm::ArrayJob {
                suite_name: suite.name.clone(),
                suite: std::path::absolute(&path)?,
                out: std::path::absolute(&out)?,
                nsbench: std::env::current_exe()?,
                shards,
                cpus_per_task,
                time,
                mem,
                partition,
                account,
                max_running,
            };
            let (array, merge) = job.write()?;
            println!("wrote {} and {}", array.display(), merge.display());
            if submit {
                let (array_id, merge_id) = job.submit(&array, &merge)?;
                println!("submitted array job {array_id} ({shards} shards) and merge job {merge_id} (afterok)");
                println!(
                    "watch: squeue -j {array_id},{merge_id}    logs: {}",
                    job.out.join("slurm").display()
                );
            } else {
                println!(
                    "submit: sbatch {}  then  sbatch --dependency=afterok:<array id> {}",
                    array.display(),
                    merge.display()
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
                    let per_pair = if s.per_pair {
                        " [also under optimizer = \"word2vec\" (text)]"
                    } else {
                        ""
                    };
                    println!(
                        "{:<width$}  {}{same}{domains}{per_pair} [needs: {}]",
                        s.kind, s.description, s.needs
                    );
                }
                return Ok(());
            }
            if what == "losses" && !Path::new(&what).is_file() {
                for (kind, description) in crate::loss::LOSSES {
                    println!("{kind:<8}  {description}");
                }
                return Ok(());
            }
            let suite = suite::load(Path::new(&what))?;
            let out = out.unwrap_or_else(|| PathBuf::from("results").join(&suite.name));
            print_grid(&suite, &out, &device_used(&suite, &out), None)
        }
        Command::Report {
            dirs,
            out,
            target,
            reference,
            level,
            margin,
        } => {
            let first = dirs[0].clone();
            check_flags(
                &first,
                &[
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
                    (
                        "--margin",
                        margin,
                        margin > 0.0 && margin < 1.0,
                        "in (0, 1), e.g. 0.02",
                    ),
                ],
            )?;
            for dir in &dirs {
                require_results(dir)?;
            }
            // A run that added seeds until decided looked at its verdicts several times: decide at α
            // spread over those looks, as it did.
            let looks = dirs
                .iter()
                .filter_map(|d| suite::load(&d.join("suite.resolved.toml")).ok())
                .filter(|s| s.until_decided.is_some())
                .map(|s| {
                    s.until_decided
                        .clone()
                        .unwrap_or_default()
                        .looks(s.seeds.len())
                })
                .max()
                .unwrap_or(1);
            if looks > 1 {
                eprintln!(
                    "seeds were added until decided over up to {looks} looks: verdicts at α = {:.4}",
                    (1.0 - level) / looks as f64
                );
            }
            let settings = crate::report::significance::Settings {
                reference,
                level: 1.0 - (1.0 - level) / looks as f64,
                target,
                margin,
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
            require_results(&dir)?;
            let _lock = store::open_for_writing(&dir, "plotting")?;
            plot(&dir)
        }
    }
}

/// Appends `text` to GitHub's job summary file, when there is one.
fn append_summary(path: Option<&Path>, text: &str) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("appending to {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// The device the cells in `out` were trained on: the one its resolved suite records (a run's
/// `--device` wins over the suite file), else the suite's own.
fn device_used(suite: &suite::Suite, out: &Path) -> String {
    suite::load(&out.join("suite.resolved.toml"))
        .ok()
        .filter(|resolved| resolved.name == suite.name)
        .map_or_else(|| suite.device.clone(), |resolved| resolved.device)
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

/// The memory Slurm gave this job (`SLURM_MEM_PER_NODE`, or `SLURM_MEM_PER_CPU` × CPUs, in MiB).
fn slurm_memory() -> Option<u64> {
    let var = |k: &str| std::env::var(k).ok()?.trim().parse::<u64>().ok();
    let mib = var("SLURM_MEM_PER_NODE").or_else(|| {
        Some(var("SLURM_MEM_PER_CPU")? * var("SLURM_CPUS_PER_TASK").or(var("SLURM_CPUS_ON_NODE"))?)
    })?;
    Some(mib << 20)
}

/// One shard of a grid: its cells under claims, then, if it finished the grid, the merge.
fn run_shard(
    suite: &suite::Suite,
    opts: &runner::RunOptions,
    shard: crate::shard::Shard,
    no_plots: bool,
) -> Result<()> {
    let lock = store::open_for_sharing(&opts.out, "running a shard")?;
    eprintln!(
        "suite {}: shard {shard} of {} cells, {} at a time with {} thread(s) each on {}, results in {}",
        suite.name,
        suite::expand(suite).len(),
        opts.jobs,
        opts.threads,
        opts.device,
        opts.out.display()
    );
    let summary = runner::run(suite, opts, &lock)?;
    drop(lock);
    eprintln!(
        "shard {shard}: trained {} cells, skipped {} already finished, {} belong to other shards ({:.1}s)",
        summary.trained, summary.skipped, summary.elsewhere, summary.seconds
    );
    for f in &summary.failures {
        eprintln!("  {}: {}", f.run_id, report::describe_failure(f));
    }
    // The shard that finds the whole plan settled merges; one that cannot take the directory
    // alone leaves it to the one that can (or to `nsbench merge`).
    let planned = runner::plan_hashes(suite, &opts.device)?;
    let settled = store::settled(&opts.out, &planned);
    if settled < planned.len() {
        eprintln!(
            "shard {shard}: {} of {} cells settled; the last shard (or `nsbench merge {}`) merges",
            settled,
            planned.len(),
            opts.out.display()
        );
        return Ok(());
    }
    match store::open_for_writing(&opts.out, "merging") {
        Ok(lock) => {
            // Recorded failures do not fail a shard (its array task succeeds, so a dependent merge job
            // runs); the merge reports them.
            let outcome = merge_and_plot(&planned, &opts.out, no_plots)?;
            drop(lock);
            outcome.report();
            Ok(())
        }
        Err(crate::error::StoreError::Busy { .. }) => {
            eprintln!("shard {shard}: the grid is settled; another process is merging");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// What a merge found.
struct MergeOutcome {
    cells: usize,
    merge: store::MergeReport,
    out: PathBuf,
}

impl MergeOutcome {
    fn report(&self) {
        eprintln!(
            "merged {} of {} cells into {} ({} failed, {} missing)",
            self.merge.merged,
            self.cells,
            self.out.join(store::RESULTS_FILE).display(),
            self.merge.failed,
            self.cells - self.merge.merged - self.merge.failed
        );
    }

    /// Exit 1 when the grid is not complete.
    fn conclude(&self) -> Result<()> {
        self.report();
        let missing = self.cells - self.merge.merged - self.merge.failed;
        let mut problems = Vec::new();
        if self.merge.failed > 0 {
            problems.push(format!(
                "{} cells failed (`failures.parquet` says why)",
                self.merge.failed
            ));
        }
        if missing > 0 {
            problems.push(format!(
                "{missing} cells are missing (not run yet, or their files did not read back)"
            ));
        }
        if !problems.is_empty() {
            anyhow::bail!(
                "{}: running the suite (or the array) again retries them",
                problems.join("; ")
            );
        }
        Ok(())
    }
}

/// Merges the stored cells of `planned` (id, hash) and redraws the summary and figures (the caller
/// holds the lock).
fn merge_and_plot(
    planned: &[(String, String)],
    out: &Path,
    no_plots: bool,
) -> Result<MergeOutcome> {
    let merge = store::merge(out, planned)?;
    if !no_plots && merge.merged > 0 {
        plot(out)?;
    }
    Ok(MergeOutcome {
        cells: planned.len(),
        merge,
        out: out.to_path_buf(),
    })
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

/// A count of at least 1 (`--jobs 0` trains nothing, `--threads 0` leaves libtorch its default).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}: expected a whole number of at least 1")),
    }
}

/// The regression gate against `baseline`; true when it fails.
fn check_baseline(
    dir: &Path,
    baseline: &str,
    thresholds: &crate::gate::Thresholds,
    summary_file: Option<&Path>,
) -> Result<bool> {
    let named = crate::gate::baseline_dir(dir, baseline);
    let base_dir = if named.join(store::RESULTS_FILE).is_file() {
        named.clone()
    } else {
        PathBuf::from(baseline)
    };
    if !base_dir.join(store::RESULTS_FILE).is_file() {
        let message = format!(
            "no baseline {baseline:?}: neither {} nor {baseline} holds results (save one with \
             `nsbench baseline save {baseline} DIR`)",
            named.display()
        );
        if !thresholds.strict {
            let text = format!(
                "## nsbench regression check: skipped\n\n{message} (lenient mode: passing).\n"
            );
            print!("{text}");
            append_summary(summary_file, &text)?;
            return Ok(false);
        }
        return Err(crate::error::StoreError::Invalid {
            path: dir.to_path_buf(),
            message,
        }
        .into());
    }
    let outcome = crate::gate::compare(
        &store::read_results(&base_dir)?,
        &store::read_results(dir)?,
        &store::read_failures(dir)?,
        thresholds,
    );
    let text = outcome.markdown(baseline, dir);
    print!("{text}");
    append_summary(summary_file, &text)?;
    Ok(outcome.fails())
}
