//! `nsbench run`: train every cell of a suite's grid not yet finished, then merge and plot the results.

use anyhow::Result;
use std::path::PathBuf;

use super::{draw_figures, merge::merge_and_plot, print_grid};
use crate::{report, resources, runner, store, suite};

#[derive(clap::Args, Debug)]
pub struct Args {
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
}

pub fn execute(args: Args) -> Result<()> {
    let suite = suite::load(&args.suite)?;
    let until_decided = args.until_decided || suite.until_decided.is_some();
    let opts = options(&args, &suite)?;
    if args.dry_run {
        return print_grid(&suite, &opts.out, &opts.device, Some(&opts));
    }
    if let Some(shard) = opts.shard {
        let refuse = |key: &str, message: &str| -> Result<()> {
            Err(crate::error::SuiteError::Invalid {
                path: suite.path.clone(),
                key: key.into(),
                message: message.into(),
            }
            .into())
        };
        if until_decided {
            return refuse(
                "--until-decided",
                "not with --shard: a sequential run decides after each round",
            );
        }
        if args.prune {
            return refuse(
                "--prune",
                "not with --shard: prune once before the array, with a plain run",
            );
        }
        return run_shard(&suite, &opts, shard, args.no_plots);
    }
    let lock = store::open_for_writing(&opts.out, "running")?;
    if args.prune {
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
        run_sequential(&suite, &opts, lock, args.no_plots)
    } else {
        run_grid(&suite, &opts, lock, args.no_plots)
    }
}

/// The run's options: the flags over the suite's values, the Slurm task's memory, the shard.
fn options(args: &Args, suite: &suite::Suite) -> Result<runner::RunOptions> {
    let mut opts = runner::RunOptions::resolve(
        suite,
        args.out.clone(),
        args.threads,
        args.jobs,
        args.device.clone(),
    );
    // Inside a Slurm job the task's memory, not the node's, is what cells may plan to use.
    opts.max_memory = args.max_memory.or_else(slurm_memory);
    opts.shard = match (args.shard, args.no_shard) {
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
    Ok(opts)
}

/// `--until-decided`: rounds of seeds until every comparison is decided or capped.
fn run_sequential(
    suite: &suite::Suite,
    opts: &runner::RunOptions,
    lock: store::DirLock,
    no_plots: bool,
) -> Result<()> {
    let rounds = crate::sequential::run_until_decided(suite, opts, &lock)?;
    eprintln!(
        "until decided: {} looks, {} cells trained, {} comparisons decided, {} undecided at the seed cap; \
         {} seeds over the comparisons",
        rounds.looks, rounds.trained, rounds.decided, rounds.undecided, rounds.seeds_spent
    );
    if !no_plots {
        draw_figures(&opts.out)?;
    }
    drop(lock);
    let failed = store::read_failures(&opts.out)?;
    if !failed.is_empty() {
        anyhow::bail!(
            "{} cells failed (`failures.parquet` says why)",
            failed.len()
        );
    }
    Ok(())
}

/// The whole grid once: train, merge, plot, and an error listing the failed cells.
fn run_grid(
    suite: &suite::Suite,
    opts: &runner::RunOptions,
    lock: store::DirLock,
    no_plots: bool,
) -> Result<()> {
    let summary = runner::run(suite, opts, &lock)?;
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
        draw_figures(&opts.out)?;
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
        eprintln!("  {}: {}", f.run_id, crate::report::describe_failure(f));
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

/// A count of at least 1 (`--jobs 0` trains nothing, `--threads 0` leaves libtorch its default).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}: expected a whole number of at least 1")),
    }
}
