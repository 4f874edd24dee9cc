//! Runs a suite's grid: skips cells already finished with the same configuration, trains the rest
//! (`jobs` at a time), writes each cell's parquet the moment it ends, then merges the plan's cells.
//!
//! Every cell runs behind an unwind boundary: an error, a divergence or a libtorch panic in one cell is
//! recorded as that cell's failure (`failures/<id>.parquet`) and the rest of the grid goes on. A crash,
//! Ctrl-C or SIGKILL loses at most the cells in flight; running the suite again finishes the grid.

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use crate::cell::{cell_info, run_cell};
use crate::data::{self, Dataset};
use crate::error::{SuiteError, TrainError};
use crate::resources;
use crate::store::{self, DirLock, Failure, FailureRecord};
use crate::suite::{self, RunSpec, Suite};
use crate::train::EpochProgress;

/// How to run a suite; command-line flags already merged over the suite's values.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out: PathBuf,
    pub threads: usize,
    pub jobs: usize,
    pub device: String,
    pub progress: bool,
    /// Memory a cell may plan to use (bytes); default: the machine's memory.
    pub max_memory: Option<u64>,
    /// Train only this shard's cells, each under a claim, and leave merging to `merge_if_settled`.
    pub shard: Option<crate::shard::Shard>,
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
            max_memory: None,
            shard: None,
        }
    }
}

/// What is stored for a cell of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellState {
    /// Not stored with this configuration: it will run.
    Pending,
    /// Finished with this configuration: skipped.
    Finished,
    /// Failed with this configuration: it runs again (the failure is replaced by what happens then).
    Failed,
}

impl CellState {
    pub fn as_str(self) -> &'static str {
        match self {
            CellState::Pending => "pending",
            CellState::Finished => "finished",
            CellState::Failed => "failed",
        }
    }
}

/// A cell of the grid with what the runner decided about it.
pub struct PlannedCell {
    pub spec: RunSpec,
    pub id: String,
    pub config_hash: String,
    pub state: CellState,
}

impl PlannedCell {
    pub fn finished(&self) -> bool {
        self.state == CellState::Finished
    }
}

/// Expands the grid on `device` and marks what `out` already holds with the same configuration.
pub fn plan(suite: &Suite, out: &Path, device: &str) -> Result<Vec<PlannedCell>> {
    let fingerprints = data_fingerprints(suite)?;
    let stored = store::scan(out);
    Ok(suite::expand_on(suite, device)
        .into_iter()
        .map(|spec| {
            let id = spec.id();
            let config_hash = spec.config_hash(&fingerprints[&spec.domain.name]);
            let s = stored.get(&id).cloned().unwrap_or_default();
            let state = if s.finished.as_deref() == Some(config_hash.as_str()) {
                CellState::Finished
            } else if s.failed.as_deref() == Some(config_hash.as_str()) {
                CellState::Failed
            } else {
                CellState::Pending
            };
            PlannedCell {
                spec,
                id,
                config_hash,
                state,
            }
        })
        .collect())
}

/// Each domain's data fingerprint (enters the cells' configuration hashes).
fn data_fingerprints(suite: &Suite) -> Result<HashMap<String, String>> {
    suite
        .domains
        .iter()
        .map(|d| Ok((d.name.clone(), data::fingerprint(&d.config.data)?)))
        .collect()
}

/// (run id, configuration hash) of every cell of the grid on `device`, without looking at what is
/// stored: what `store::merge` and `store::settled` need.
pub fn plan_hashes(suite: &Suite, device: &str) -> Result<Vec<(String, String)>> {
    let fingerprints = data_fingerprints(suite)?;
    Ok(suite::expand_on(suite, device)
        .into_iter()
        .map(|spec| {
            let hash = spec.config_hash(&fingerprints[&spec.domain.name]);
            (spec.id(), hash)
        })
        .collect())
}

/// (run id, configuration hash) of every planned cell: what `store::merge` keeps.
pub fn planned_hashes(cells: &[PlannedCell]) -> Vec<(String, String)> {
    cells
        .iter()
        .map(|c| (c.id.clone(), c.config_hash.clone()))
        .collect()
}

pub struct RunSummary {
    pub cells: usize,
    pub trained: usize,
    pub skipped: usize,
    /// Cells of another shard (sharded runs only).
    pub elsewhere: usize,
    /// What the merge did (sharded runs leave merging to `merge_if_settled`: default).
    pub merge: store::MergeReport,
    /// Cells that failed in this run.
    pub failures: Vec<FailureRecord>,
    pub seconds: f64,
}

/// Runs the grid in `opts.out`, which the caller has locked (`store::open_for_writing`): prepare
/// (plan, check, load), work (train the pending cells), finish (merge).
pub fn run(suite: &Suite, opts: &RunOptions, _lock: &DirLock) -> Result<RunSummary> {
    let started = Instant::now();
    let prepared = prepare(suite, opts)?;
    let worked = work(&prepared, opts)?;
    finish(prepared, worked, opts, started)
}

/// The plan, this process's pending cells and their data, checked before anything is written.
struct Prepared {
    device: tch::Device,
    cells: Vec<PlannedCell>,
    /// Indices into `cells` of the cells to train, in grid order.
    pending: Vec<usize>,
    skipped: usize,
    /// Cells of another shard.
    elsewhere: usize,
    datasets: HashMap<(String, u64), Arc<Dataset>>,
}

impl Prepared {
    fn data_of(&self, c: &PlannedCell) -> Arc<Dataset> {
        self.datasets[&(c.spec.domain.name.clone(), c.spec.seed)].clone()
    }
}

/// Plans the grid, takes this shard's unfinished cells, refuses what cannot fit and loads every data
/// set the pending cells need, so bad data and impossible sizes fail before any training; only then
/// writes the resolved suite.
fn prepare(suite: &Suite, opts: &RunOptions) -> Result<Prepared> {
    let device = suite::check_device(&opts.device).map_err(|message| SuiteError::Invalid {
        path: suite.path.clone(),
        key: "suite.device".into(),
        message,
    })?;
    let cells = plan(suite, &opts.out, &opts.device)?;
    let mine = shard_cells(&cells, opts.shard);
    let elsewhere = mine.iter().filter(|m| !**m).count();
    let pending: Vec<usize> = (0..cells.len())
        .filter(|&i| mine[i] && !cells[i].finished())
        .collect();
    let skipped = cells.len() - elsewhere - pending.len();
    let limit = opts.max_memory.unwrap_or_else(resources::machine_memory);
    for d in &suite.domains {
        resources::check_generator(d, limit)?;
    }
    check_python_samplers(suite, pending.iter().map(|&i| &cells[i].spec))?;
    let datasets = load_data(pending.iter().map(|&i| &cells[i]))?;
    let prepared = Prepared {
        device,
        cells,
        pending,
        skipped,
        elsewhere,
        datasets,
    };
    let estimates: Vec<(String, resources::Estimate)> = prepared
        .pending
        .iter()
        .map(|&i| {
            let c = &prepared.cells[i];
            (
                c.id.clone(),
                resources::cell_estimate(&c.spec, &prepared.data_of(c)),
            )
        })
        .collect();
    resources::check_cells(
        &estimates,
        opts.jobs.min(prepared.pending.len().max(1)),
        limit,
    )?;
    // Only now, with the input known to be good, is anything written. The resolved suite names the
    // device the cells train on (after `--device`), so `merge` and `list` plan the same cells.
    write_resolved_suite(
        &Suite {
            device: opts.device.clone(),
            ..suite.clone()
        },
        &opts.out,
    )?;
    Ok(prepared)
}

/// Which cells are this process's: a shard takes its own cells of the whole plan (stored or not), so
/// reruns keep the assignment; an unsharded run all of them.
fn shard_cells(cells: &[PlannedCell], shard: Option<crate::shard::Shard>) -> Vec<bool> {
    match shard {
        Some(shard) => {
            let costs: Vec<(String, f64)> = cells
                .iter()
                .map(|c| (c.id.clone(), crate::shard::expected_cost(&c.spec)))
                .collect();
            crate::shard::assign(&costs, shard.count)
                .into_iter()
                .map(|s| s == shard.index)
                .collect()
        }
        None => vec![true; cells.len()],
    }
}

/// A sampler written in Python enters the grid only if it keeps the sampler contract (what `nsbench
/// check-sampler` checks, at its default k) in each domain it is to train in here; otherwise the run
/// stops before training anything (exit 2), naming the broken promise.
fn check_python_samplers<'a>(
    suite: &Suite,
    pending: impl Iterator<Item = &'a RunSpec>,
) -> Result<()> {
    let pending: Vec<&RunSpec> = pending.collect();
    for (n, entry) in suite.samplers.iter().enumerate() {
        let crate::sampler::SamplerConfig::Python(python) = &entry.config else {
            continue;
        };
        let mut domains: Vec<&str> = pending
            .iter()
            .filter(|s| s.sampler.label == entry.label)
            .map(|s| s.domain.config.kind.as_str())
            .collect();
        domains.sort_unstable();
        domains.dedup();
        let promises = crate::sampler::contract::check_embedded(&entry.config, &domains, 8)?;
        if let Some((domain, p)) = promises.iter().find(|(_, p)| p.broken.is_some()) {
            return Err(SuiteError::Invalid {
                path: suite.path.clone(),
                key: format!("sampler[{n}]"),
                message: format!(
                    "{} (class {}) breaks the sampler contract on nsbench's embedded {domain} data, so it \
                     cannot enter a grid: {}: {}\n(`nsbench check-sampler {} --class {}` shows every promise)",
                    python.path.display(),
                    python.class,
                    p.name,
                    p.broken.as_deref().unwrap_or_default(),
                    python.path.display(),
                    python.class,
                ),
            }
            .into());
        }
    }
    Ok(())
}

/// Each (domain, seed) data set the cells need, loaded once (its split may depend on the seed); what
/// loading found is said once per domain.
fn load_data<'a>(
    cells: impl Iterator<Item = &'a PlannedCell>,
) -> Result<HashMap<(String, u64), Arc<Dataset>>> {
    let mut datasets = HashMap::new();
    let mut said: std::collections::HashSet<(String, String)> = Default::default();
    for c in cells {
        let key = (c.spec.domain.name.clone(), c.spec.seed);
        if let std::collections::hash_map::Entry::Vacant(slot) = datasets.entry(key) {
            let d = &c.spec.domain;
            let loaded = data::load(
                &d.name,
                &d.config.data,
                d.config.split.as_ref(),
                c.spec.stream_seed("data"),
            )?;
            for note in &loaded.notes {
                if said.insert((d.name.clone(), note.clone())) {
                    eprintln!("note: {}: {note}", d.name);
                }
            }
            slot.insert(Arc::new(loaded));
        }
    }
    Ok(datasets)
}

/// What the workers leave: the failed cells, and whether the disk filled up.
struct Worked {
    failures: Vec<FailureRecord>,
    disk_full: bool,
}

/// The shared state of the workers of one run.
struct Workers<'a> {
    prepared: &'a Prepared,
    opts: &'a RunOptions,
    progress: Progress,
    failures: Mutex<Vec<FailureRecord>>,
    disk_full: std::sync::atomic::AtomicBool,
    done: AtomicUsize,
}

/// Trains the pending cells, `opts.jobs` at a time. Each worker takes the next cell in grid order, so
/// an interrupted run has finished a prefix of the grid (plus what was in flight).
fn work(prepared: &Prepared, opts: &RunOptions) -> Result<Worked> {
    let workers = Workers {
        prepared,
        opts,
        progress: Progress::new(prepared.pending.len() as u64, opts.jobs, opts.progress),
        failures: Mutex::new(Vec::new()),
        disk_full: std::sync::atomic::AtomicBool::new(false),
        done: AtomicUsize::new(0),
    };
    if prepared.skipped > 0 {
        workers.progress.println(format!(
            "{} of {} cells already finished in {}: skipped",
            prepared.skipped,
            prepared.cells.len(),
            opts.out.display()
        ));
    }
    let next = AtomicUsize::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()?;
    install_cell_panic_hook();
    pool.broadcast(|ctx| {
        while let Some(&i) = prepared
            .pending
            .get(next.fetch_add(1, Ordering::SeqCst))
            .filter(|_| !workers.disk_full.load(Ordering::SeqCst))
        {
            workers.cell(ctx.index(), &prepared.cells[i]);
            workers.progress.inc();
        }
    });
    workers.progress.clear();
    Ok(Worked {
        failures: workers.failures.into_inner().expect("no poisoned lock"),
        disk_full: workers.disk_full.load(Ordering::SeqCst),
    })
}

impl Workers<'_> {
    /// Trains one cell on worker `line` and stores its rows, or its failure.
    fn cell(&self, line: usize, cell: &PlannedCell) {
        let (opts, progress) = (self.opts, &self.progress);
        // A shard trains a cell only under its claim, and only if no one finished it meanwhile
        // (two arrays over one directory, or a rerun while the first still runs).
        let _claim = if opts.shard.is_some() {
            match store::claim_cell(&opts.out, &cell.id) {
                Ok(Some(claim))
                    if store::stored(&opts.out, &cell.id).finished.as_deref()
                        != Some(cell.config_hash.as_str()) =>
                {
                    Some(claim)
                }
                Ok(_) => {
                    progress.println(format!("{}: trained by another process", cell.id));
                    return;
                }
                Err(e) => {
                    progress.println(format!(
                        "{}: cannot claim it ({e}); left for a rerun",
                        cell.id
                    ));
                    return;
                }
            }
        } else {
            None
        };
        let data = self.prepared.data_of(cell);
        let t = Instant::now();
        progress.start(line, &cell.id);
        let outcome = train_one(cell, &data, opts.threads, self.prepared.device, &mut |p| {
            progress.epoch(line, &cell.id, p)
        });
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let total = self.prepared.pending.len();
        // A cell whose rows cannot be written is a failed cell too; on a full disk the run stops
        // taking cells (nothing more can be stored) and says so at the end.
        let outcome = outcome.and_then(|o| {
            store::write_cell(&opts.out, &o.info, &o.metrics, &o.curves, &o.per_query).map_err(
                |e| {
                    if store::atomic::disk_full(&opts.out, &e) {
                        self.disk_full.store(true, Ordering::SeqCst);
                    }
                    failure("error", o.info.epochs_trained, format!("{e:#}"))
                },
            )?;
            Ok(headline(&o.metrics))
        });
        if self.disk_full.load(Ordering::SeqCst) && outcome.is_err() {
            progress.finished(line, String::new());
            progress.println(format!(
                "[{n}/{total}] {} not stored: the disk holding {} is full",
                cell.id,
                opts.out.display()
            ));
            return;
        }
        match outcome {
            Ok(headline) => progress.finished(
                line,
                format!(
                    "[{n}/{total}] {} {headline} ({:.1}s)",
                    cell.id,
                    t.elapsed().as_secs_f64()
                ),
            ),
            Err(f) => {
                progress.finished(line, String::new());
                self.record_failure(cell, &data, f, format!("[{n}/{total}]"));
            }
        }
    }

    /// Says why `cell` failed and stores its failure row.
    fn record_failure(&self, cell: &PlannedCell, data: &Dataset, f: Failure, counter: String) {
        let record = FailureRecord {
            run_id: cell.id.clone(),
            domain: cell.spec.domain.config.kind.as_str().into(),
            sampler: cell.spec.sampler.label.clone(),
            ratio: cell.spec.ratio,
            seed: cell.spec.seed,
            stage: f.stage.into(),
            epoch: f.epoch,
            reason: f.reason.clone(),
        };
        self.progress.println(format!(
            "{counter} {} {}",
            cell.id,
            crate::report::describe_failure(&record)
        ));
        let stored =
            cell_info(&cell.spec, data, &cell.config_hash, self.opts.threads).and_then(|info| {
                store::write_failure(&self.opts.out, &info, &f)?;
                Ok(())
            });
        if let Err(e) = stored {
            self.progress.println(format!(
                "could not record the failure of {}: {e:#}",
                cell.id
            ));
        }
        self.failures.lock().expect("no poisoned lock").push(record);
    }
}

/// Merges the plan's stored cells (unless sharded: `merge_if_settled` does) and sums the run up; a full
/// disk is an error that says what is kept.
fn finish(
    prepared: Prepared,
    worked: Worked,
    opts: &RunOptions,
    started: Instant,
) -> Result<RunSummary> {
    let cells = &prepared.cells;
    let full = || {
        let stored = store::settled(&opts.out, &planned_hashes(cells));
        anyhow::anyhow!(
            "the disk holding {} is full ({} bytes free): the run stopped; {stored} of {} cells are stored \
             whole and kept, nothing was merged; free space (or give another --out) and run again to finish \
             the grid",
            opts.out.display(),
            store::atomic::free_bytes(&opts.out).unwrap_or(0),
            cells.len()
        )
    };
    if worked.disk_full {
        return Err(full());
    }
    let merge = if opts.shard.is_some() {
        store::MergeReport::default()
    } else {
        match store::merge(&opts.out, &planned_hashes(cells)) {
            Ok(m) => m,
            Err(e) if store::atomic::disk_full(&opts.out, &e) => return Err(full()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut failures = worked.failures;
    failures.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    Ok(RunSummary {
        cells: cells.len(),
        trained: prepared.pending.len(),
        skipped: prepared.skipped,
        elsewhere: prepared.elsewhere,
        merge,
        failures,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn failure(stage: &'static str, epoch: u32, reason: String) -> Failure {
    Failure {
        stage,
        epoch,
        reason,
    }
}

thread_local! {
    /// Set while this thread runs a cell: its panics are caught and recorded, not printed.
    static IN_CELL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics inside a cell are caught at its boundary and recorded with their message and location;
/// elsewhere the default hook prints them as usual.
fn install_cell_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_cell = IN_CELL.with(|c| {
                let mut c = c.borrow_mut();
                if c.is_some() {
                    *c = Some(info.location().map_or(String::new(), |l| l.to_string()));
                    true
                } else {
                    false
                }
            });
            if !in_cell {
                default(info);
            }
        }));
    });
}

/// Trains one cell behind an unwind boundary: every way it can fail becomes a `Failure` with the epoch.
fn train_one(
    cell: &PlannedCell,
    data: &Dataset,
    threads: usize,
    device: tch::Device,
    progress: &mut dyn FnMut(EpochProgress),
) -> Result<crate::cell::CellOutput, Failure> {
    let (mut training, mut epochs_done) = (false, 0u32);
    IN_CELL.with(|c| *c.borrow_mut() = Some(String::new()));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_cell(
            &cell.spec,
            data,
            &cell.config_hash,
            threads,
            device,
            &mut |p| {
                training = true;
                epochs_done = p.epoch;
                if p.epoch > 0 {
                    progress(p)
                }
            },
        )
    }));
    let location = IN_CELL.with(|c| c.borrow_mut().take()).unwrap_or_default();
    // The epoch under way when it failed; 0 before training started (building the model or sampler).
    let in_progress = if training { epochs_done + 1 } else { 0 };
    match outcome {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(match e.downcast_ref::<TrainError>() {
            Some(TrainError::Diverged { epoch, what }) => failure("diverged", *epoch, what.clone()),
            Some(TrainError::NonFiniteMetric { epoch, .. }) => {
                failure("error", *epoch, format!("{e:#}"))
            }
            None => failure("error", in_progress, format!("{e:#}")),
        }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("a panic without a message");
            let at = if location.is_empty() {
                String::new()
            } else {
                format!(" (at {location})")
            };
            Err(failure(
                "panic",
                in_progress,
                format!("{}{at}", panic_reason(message)),
            ))
        }
    }
}

/// The informative part of a panic message: a libtorch error without its C++ stack frames, and
/// without the `unwrap` wrapping tch puts around it.
fn panic_reason(message: &str) -> String {
    let mut m = message.trim();
    for frames in ["\\nframe #", "\nframe #", "\nException raised from"] {
        if let Some(at) = m.find(frames) {
            m = &m[..at];
        }
    }
    let m = m
        .strip_prefix("called `Result::unwrap()` on an `Err` value: ")
        .unwrap_or(m);
    match m.strip_prefix("Torch(\"") {
        Some(inner) => format!("libtorch: {}", inner.trim_end_matches("\")")),
        None => m.to_string(),
    }
}

/// `recall@K ndcg@K` at the largest K, for progress lines.
/// A finished cell's line: recall and NDCG at the largest cut-off (rec), else AUC, AP, MRR and Hits@10
/// where the domain reports them (graph, kg), word similarity and analogies (text), kNN and
/// linear-probe accuracy (vision).
fn headline(rows: &[store::MetricRow]) -> String {
    let at_largest_k: Vec<String> = ["recall@", "ndcg@"]
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
        .collect();
    if !at_largest_k.is_empty() {
        return at_largest_k.join(" ");
    }
    let text = rows.iter().filter(|r| {
        r.metric.ends_with("-spearman")
            || ["analogy-accuracy", "knn-accuracy", "linear-accuracy"].contains(&r.metric.as_str())
    });
    ["auc", "ap", "mrr", "hits@10"]
        .iter()
        .filter_map(|name| {
            rows.iter()
                .find(|r| r.category == "effectiveness" && r.metric == *name)
        })
        .chain(text)
        .map(|r| format!("{}={:.4}", r.metric, r.value))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Progress: on a terminal a bar of cells plus one line per worker with its cell's epoch, loss and
/// ETA; otherwise a line per finished cell and, inside a long cell, a line at most every 30 seconds.
struct Progress {
    multi: MultiProgress,
    bar: ProgressBar,
    lines: Vec<ProgressBar>,
    terminal: bool,
    /// Per worker: when its cell started, and when it last printed (plain output).
    clocks: Mutex<Vec<(Instant, Instant)>>,
}

const QUIET_LINE_EVERY: Duration = Duration::from_secs(30);

impl Progress {
    fn new(cells: u64, workers: usize, terminal: bool) -> Progress {
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let bar = multi.add(ProgressBar::new(cells));
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} cells  {elapsed_precise}  {wide_msg}",
            )
            .expect("valid template"),
        );
        let lines = (0..workers)
            .map(|_| {
                let line = multi.add(ProgressBar::new_spinner());
                line.set_style(ProgressStyle::with_template("  {msg}").expect("valid template"));
                line
            })
            .collect();
        if terminal {
            // Keeps the elapsed time and ETA moving while long cells train.
            bar.enable_steady_tick(Duration::from_millis(500));
        }
        let now = Instant::now();
        Progress {
            multi,
            bar,
            lines,
            terminal,
            clocks: Mutex::new(vec![(now, now); workers]),
        }
    }

    fn println(&self, line: String) {
        if self.terminal {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    fn start(&self, worker: usize, id: &str) {
        let now = Instant::now();
        self.clocks.lock().expect("no poisoned lock")[worker] = (now, now);
        self.lines[worker].set_message(format!("{id}: starting"));
    }

    fn epoch(&self, worker: usize, id: &str, p: EpochProgress) {
        let per_epoch = p.elapsed_seconds / p.epoch.max(1) as f64;
        let eta = per_epoch * (p.epochs - p.epoch) as f64;
        let text = format!(
            "{id}: epoch {}/{} loss {:.4} eta {}",
            p.epoch,
            p.epochs,
            p.loss,
            indicatif::HumanDuration(Duration::from_secs_f64(eta.max(0.0)))
        );
        if self.terminal {
            self.lines[worker].set_message(text);
            return;
        }
        let mut clocks = self.clocks.lock().expect("no poisoned lock");
        let now = Instant::now();
        if now - clocks[worker].1 >= QUIET_LINE_EVERY {
            clocks[worker].1 = now;
            eprintln!("  {text}");
        }
    }

    fn finished(&self, worker: usize, line: String) {
        self.lines[worker].set_message("");
        if self.terminal {
            self.bar.set_message(line);
        } else if !line.is_empty() {
            eprintln!("{line}");
        }
    }

    fn inc(&self) {
        self.bar.inc(1);
    }

    fn clear(&self) {
        for line in &self.lines {
            line.finish_and_clear();
        }
        self.bar.finish_and_clear();
    }
}

/// Saves the validated suite, defaults filled in, beside the results.
fn write_resolved_suite(suite: &Suite, out: &Path) -> Result<()> {
    let text =
        toml::to_string_pretty(&suite.to_file()).context("serialising the resolved suite")?;
    let path = out.join("suite.resolved.toml");
    let header = format!(
        "# {} as validated by nsbench {}: every default filled in, every path resolved.\n\
         # It is itself a suite file: `nsbench run` on it repeats this grid.\n",
        suite.path.display(),
        crate::provenance::NSBENCH_VERSION
    );
    store::atomic::write_bytes(&path, (header + &text).as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{headline, panic_reason};
    use crate::store::MetricRow;

    fn row(metric: &str, value: f64) -> MetricRow {
        MetricRow {
            category: "effectiveness",
            metric: metric.into(),
            value,
        }
    }

    #[test]
    fn a_finished_cell_shows_its_domains_headline_metrics() {
        let rec = [
            row("recall@10", 0.1),
            row("recall@20", 0.2),
            row("ndcg@20", 0.3),
        ];
        assert_eq!(headline(&rec), "recall@20=0.2000 ndcg@20=0.3000");
        let graph = [row("mrr", 0.25), row("auc", 0.9), row("ap", 0.875)];
        assert_eq!(headline(&graph), "auc=0.9000 ap=0.8750 mrr=0.2500");
        let kg = [row("hits@10", 0.5), row("mrr", 0.25)];
        assert_eq!(headline(&kg), "mrr=0.2500 hits@10=0.5000");
        let text = [
            row("wordsim353-spearman", 0.5),
            row("wordsim353-coverage", 0.9),
            row("analogy-accuracy", 0.25),
        ];
        assert_eq!(
            headline(&text),
            "wordsim353-spearman=0.5000 analogy-accuracy=0.2500"
        );
    }

    #[test]
    fn a_libtorch_panic_keeps_its_message_and_drops_its_stack_frames() {
        let raw = "called `Result::unwrap()` on an `Err` value: Torch(\"[enforce fail at alloc_cpu.cpp:127] \
                   can't allocate memory: you tried to allocate 4096 bytes.\\nframe #0: c10::Throw\\nframe #1\")";
        assert_eq!(
            panic_reason(raw),
            "libtorch: [enforce fail at alloc_cpu.cpp:127] can't allocate memory: you tried to \
             allocate 4096 bytes."
        );
        assert_eq!(panic_reason("index out of bounds "), "index out of bounds");
    }
}
