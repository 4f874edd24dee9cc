//! Runs a suite's grid: skips cells already finished with the same configuration, trains the rest
//! (`jobs` at a time), writes each cell's parquet the moment it finishes, then merges and plots.
//! A crash or Ctrl-C loses at most the cells in flight; running the suite again finishes the grid.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cell::run_cell;
use crate::data::{self, Dataset};
use crate::error::SuiteError;
use crate::store;
use crate::suite::{self, RunSpec, Suite};

/// How to run a suite; command-line flags already merged over the suite's values.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out: PathBuf,
    pub threads: usize,
    pub jobs: usize,
    pub device: String,
    pub progress: bool,
}

impl RunOptions {
    /// Flags win over the suite, the suite over defaults (1 thread per cell, as many cells as cores).
    pub fn resolve(
        suite: &Suite,
        out: Option<PathBuf>,
        threads: Option<usize>,
        jobs: Option<usize>,
        device: Option<String>,
    ) -> RunOptions {
        let threads = threads.or(suite.threads).unwrap_or(1).max(1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let jobs = jobs
            .or(suite.jobs)
            .unwrap_or((cores / threads).max(1))
            .max(1);
        RunOptions {
            out: out.unwrap_or_else(|| PathBuf::from("results").join(&suite.name)),
            threads,
            jobs,
            device: device.unwrap_or_else(|| suite.device.clone()),
            progress: std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
        }
    }
}

/// A cell of the grid with what the runner decided about it.
pub struct PlannedCell {
    pub spec: RunSpec,
    pub id: String,
    pub config_hash: String,
    pub finished: bool,
}

/// Expands the grid and marks the cells already finished in `out` with the same configuration.
pub fn plan(suite: &Suite, out: &Path) -> Result<Vec<PlannedCell>> {
    let mut fingerprints = HashMap::new();
    for d in &suite.domains {
        fingerprints.insert(d.name.clone(), data::fingerprint(&d.config.data)?);
    }
    Ok(suite::expand(suite)
        .into_iter()
        .map(|spec| {
            let id = spec.id();
            let config_hash = spec.config_hash(&fingerprints[&spec.domain.name]);
            let finished = store::finished_hash(out, &id).as_deref() == Some(config_hash.as_str());
            PlannedCell {
                spec,
                id,
                config_hash,
                finished,
            }
        })
        .collect())
}

pub struct RunSummary {
    pub trained: usize,
    pub skipped: usize,
    pub merged: usize,
    pub seconds: f64,
}

pub fn run(suite: &Suite, opts: &RunOptions) -> Result<RunSummary> {
    let device = suite::check_device(&opts.device).map_err(|message| SuiteError::Invalid {
        path: suite.path.clone(),
        key: "suite.device".into(),
        message,
    })?;
    let started = Instant::now();
    let cells = plan(suite, &opts.out)?;
    let pending: Vec<&PlannedCell> = cells.iter().filter(|c| !c.finished).collect();
    let skipped = cells.len() - pending.len();
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    store::remove_stale_temp_files(&opts.out);
    write_resolved_suite(suite, &opts.out)?;

    // Load every data set the pending cells need up front, so bad data fails before any training.
    let mut datasets: HashMap<(String, u64), Arc<Dataset>> = HashMap::new();
    for c in &pending {
        let key = (c.spec.domain.name.clone(), c.spec.seed);
        if let std::collections::hash_map::Entry::Vacant(slot) = datasets.entry(key) {
            let d = &c.spec.domain;
            let loaded = data::load(
                &d.name,
                &d.config.data,
                d.config.split.as_ref(),
                c.spec.stream_seed("data"),
            )?;
            slot.insert(Arc::new(loaded));
        }
    }

    let bar = progress_bar(pending.len() as u64, opts.progress);
    if skipped > 0 {
        bar.println(format!(
            "{skipped} of {} cells already finished in {}: skipped",
            cells.len(),
            opts.out.display()
        ));
    }
    // Each worker takes the next cell in grid order, so an interrupted run has finished a prefix of the
    // grid (plus what was in flight).
    let failures = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let total = pending.len();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()?;
    pool.broadcast(|_| {
        while let Some(&cell) = pending.get(next.fetch_add(1, Ordering::SeqCst)) {
            let data = &datasets[&(cell.spec.domain.name.clone(), cell.spec.seed)];
            let t = Instant::now();
            let result = run_cell(&cell.spec, data, &cell.config_hash, opts.threads, device)
                .and_then(|o| {
                    store::write_cell(&opts.out, &o.info, &o.metrics, &o.curves)?;
                    Ok(o)
                });
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            match result {
                Ok(o) => {
                    let headline = headline(&o.metrics);
                    bar.set_message(format!("{} {headline}", cell.id));
                    if !opts.progress {
                        eprintln!(
                            "[{n}/{total}] {} {headline} ({:.1}s)",
                            cell.id,
                            t.elapsed().as_secs_f64()
                        );
                    }
                }
                Err(e) => {
                    bar.println(format!("cell {} failed: {e:#}", cell.id));
                    failures
                        .lock()
                        .expect("no poisoned lock")
                        .push((cell.id.clone(), e));
                }
            }
            bar.inc(1);
        }
    });
    bar.finish_and_clear();

    let ids: Vec<String> = cells.iter().map(|c| c.id.clone()).collect();
    let merged = store::merge(&opts.out, &ids)?;
    let failures = failures.into_inner().expect("no poisoned lock");
    if let Some((id, first)) = failures.into_iter().next() {
        bail!("cell {id} failed (finished cells are kept; run again to retry): {first:#}");
    }
    Ok(RunSummary {
        trained: pending.len(),
        skipped,
        merged,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `recall@K ndcg@K` at the largest K, for progress lines.
fn headline(rows: &[store::MetricRow]) -> String {
    ["recall@", "ndcg@"]
        .iter()
        .filter_map(|prefix| {
            rows.iter()
                .filter_map(|r| {
                    r.metric
                        .strip_prefix(prefix)?
                        .parse::<usize>()
                        .ok()
                        .map(|k| (k, r))
                })
                .max_by_key(|(k, _)| *k)
                .map(|(_, r)| format!("{}={:.4}", r.metric, r.value))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn progress_bar(len: u64, visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if visible {
        // Keeps the elapsed time and ETA moving while long cells train.
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} cells  {elapsed_precise} eta {eta}  {wide_msg}",
        )
        .expect("valid template"),
    );
    bar
}

/// Saves the validated suite, defaults filled in, beside the results.
fn write_resolved_suite(suite: &Suite, out: &Path) -> Result<()> {
    let text =
        toml::to_string_pretty(&suite.to_file()).context("serialising the resolved suite")?;
    let path = out.join("suite.resolved.toml");
    let tmp = out.join(".suite.resolved.toml.tmp");
    let header = format!(
        "# {} as validated by nsbench {}: every default filled in, every path resolved.\n\
         # It is itself a suite file: `nsbench run` on it repeats this grid.\n",
        suite.path.display(),
        crate::provenance::NSBENCH_VERSION
    );
    std::fs::write(&tmp, header + &text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}
