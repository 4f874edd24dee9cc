//! The results store: one parquet file per finished cell (`runs/<id>.parquet`, tidy rows of
//! (metric, value) with full provenance), its per-epoch curves (`curves/<id>.parquet`), one file per
//! failed cell (`failures/<id>.parquet`), each written atomically and durably the moment the cell ends,
//! plus the merged `results.parquet`, `curves.parquet` and `failures.parquet` of the current plan.
//!
//! Layout of a results directory:
//! ```text
//! <dir>/.nsbench.lock             held by the one process writing here (see `lock`)
//! <dir>/suite.resolved.toml       the validated suite, defaults filled in
//! <dir>/runs/<run_id>.parquet     one finished cell: one row per metric
//! <dir>/curves/<run_id>.parquet   one finished cell: one row per (epoch, split, metric)
//! <dir>/failures/<run_id>.parquet one failed cell: where and why it failed
//! <dir>/per_query/<run_id>.parquet one finished cell: a few test metrics of every query (for tests
//!                                 paired by query; never merged: `report` reads the ones it needs)
//! <dir>/results.parquet           every finished cell of the plan, merged
//! <dir>/curves.parquet            their curves, merged
//! <dir>/failures.parquet          every failed cell of the plan (absent when none failed)
//! <dir>/plots/                    figures (SVG and PNG)
//! ```
//! A stored cell counts only while its configuration hash equals the plan's: cells of another
//! configuration stay on disk (until `nsbench run --prune`) but are never merged, summarised or plotted.

pub mod atomic;
mod columns;
mod lock;

pub use columns::{
    CellInfo, ComparisonRow, CurveRow, Failure, FailureRecord, GroupStats, MetricRow, ResultRow,
};
pub use lock::{claim_cell, lock_dir, lock_dir_shared, CellClaim, DirLock, CLAIMS_DIR, LOCK_FILE};

use polars::prelude::*;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::metrics::PerQuery;

pub const RUNS_DIR: &str = "runs";
pub const CURVES_DIR: &str = "curves";
pub const FAILURES_DIR: &str = "failures";
pub const PER_QUERY_DIR: &str = "per_query";
pub const RESULTS_FILE: &str = "results.parquet";
pub const CURVES_FILE: &str = "curves.parquet";
pub const FAILURES_FILE: &str = "failures.parquet";

pub fn run_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(RUNS_DIR).join(format!("{run_id}.parquet"))
}

pub fn curve_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(CURVES_DIR).join(format!("{run_id}.parquet"))
}

pub fn per_query_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(PER_QUERY_DIR).join(format!("{run_id}.parquet"))
}

pub fn failure_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(FAILURES_DIR).join(format!("{run_id}.parquet"))
}

/// Writes one finished cell: per-query metrics and curves first, then the run file, whose presence marks
/// the cell finished; then removes a failure recorded for it earlier.
pub fn write_cell(
    dir: &Path,
    info: &CellInfo,
    metrics: &[MetricRow],
    curves: &[CurveRow],
    per_query: &PerQuery,
) -> Result<(), StoreError> {
    write_parquet(
        &per_query_path(dir, &info.run_id),
        columns::per_query_frame(info, per_query),
    )?;
    write_parquet(
        &curve_path(dir, &info.run_id),
        columns::curve_frame(info, curves),
    )?;
    write_parquet(
        &run_path(dir, &info.run_id),
        columns::metric_frame(info, metrics),
    )?;
    remove_file(&failure_path(dir, &info.run_id))
}

/// Records a failed cell. A finished cell's files of another configuration are left alone (they are
/// not merged while their hash differs from the plan's).
pub fn write_failure(dir: &Path, info: &CellInfo, failure: &Failure) -> Result<(), StoreError> {
    write_parquet(
        &failure_path(dir, &info.run_id),
        columns::failure_frame(info, failure),
    )
}

/// What is stored for one cell id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    /// Hash of the finished cell (run file and curve file both present and readable).
    pub finished: Option<String>,
    /// Hash of the recorded failure.
    pub failed: Option<String>,
}

impl Stored {
    /// Whether its finished and its failed file belong to another configuration than `wanted` (the
    /// plan's hash for this id, None when the plan has no such cell).
    fn of_another_configuration(&self, wanted: Option<&str>) -> (bool, bool) {
        let other = |h: &Option<String>| h.as_deref().is_some_and(|h| Some(h) != wanted);
        (other(&self.finished), other(&self.failed))
    }
}

/// The plan as run id → configuration hash.
fn plan_by_id(planned: &[(String, String)]) -> HashMap<&str, &str> {
    planned
        .iter()
        .map(|(id, h)| (id.as_str(), h.as_str()))
        .collect()
}

/// Every cell stored in `dir`, by id. Unreadable files count as absent (the cell runs again): the run
/// file and the curve file of a finished cell are both read back.
pub fn scan(dir: &Path) -> HashMap<String, Stored> {
    let mut out: HashMap<String, Stored> = HashMap::new();
    for (sub, is_failure) in [(RUNS_DIR, false), (FAILURES_DIR, true)] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_suffix(".parquet")
                .filter(|_| !atomic::is_temp_name(&name))
            else {
                continue;
            };
            let Some(hash) = read_parquet(&entry.path())
                .ok()
                .and_then(|df| columns::first_string(&df, "config_hash"))
            else {
                continue;
            };
            let slot = out.entry(id.to_string()).or_default();
            if is_failure {
                slot.failed = Some(hash);
            } else if read_parquet(&curve_path(dir, id))
                .ok()
                .and_then(|df| columns::first_string(&df, "config_hash"))
                .is_some_and(|curves| curves == hash)
            {
                // Finished only when its curves read back too, of the same configuration: a damaged
                // file, or curves a later run of another configuration wrote before it was killed, mean
                // the cell runs again.
                slot.finished = Some(hash);
            }
        }
    }
    out
}

/// Takes the results directory for writing: its lock, then removes the temporary files killed runs
/// left (safe only under the lock: every writer holds it).
pub fn open_for_writing(dir: &Path, purpose: &str) -> Result<DirLock, StoreError> {
    let lock = lock_dir(dir, purpose)?;
    atomic::clean(&[
        dir.to_path_buf(),
        dir.join(RUNS_DIR),
        dir.join(CURVES_DIR),
        dir.join(FAILURES_DIR),
        dir.join(PER_QUERY_DIR),
        dir.join("plots"),
    ]);
    Ok(lock)
}

/// Takes the results directory shared, as one shard of several (see `lock::lock_dir_shared`). Temporary
/// files are left alone: another shard may be writing them.
pub fn open_for_sharing(dir: &Path, purpose: &str) -> Result<DirLock, StoreError> {
    lock::lock_dir_shared(dir, purpose)
}

/// What is stored for one cell id (see `scan`).
pub fn stored(dir: &Path, id: &str) -> Stored {
    let hash = |path: PathBuf| {
        read_parquet(&path)
            .ok()
            .and_then(|df| columns::first_string(&df, "config_hash"))
    };
    Stored {
        finished: hash(run_path(dir, id)).filter(|_| read_parquet(&curve_path(dir, id)).is_ok()),
        failed: hash(failure_path(dir, id)),
    }
}

/// How many cells of the plan are stored as finished or failed with the plan's hash.
pub fn settled(dir: &Path, planned: &[(String, String)]) -> usize {
    let stored = scan(dir);
    planned
        .iter()
        .filter(|(id, hash)| {
            stored.get(id).is_some_and(|s| {
                s.finished.as_deref() == Some(hash.as_str())
                    || s.failed.as_deref() == Some(hash.as_str())
            })
        })
        .count()
}

/// What `merge` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeReport {
    /// Finished cells of the plan merged into `results.parquet`.
    pub merged: usize,
    /// Failed cells of the plan listed in `failures.parquet`.
    pub failed: usize,
    /// Stored cells of another configuration (an id the plan does not have, or another hash).
    pub foreign: Vec<String>,
}

/// Merges the plan's finished cells (`planned`: run id → configuration hash) into `results.parquet` and
/// `curves.parquet`, and its failed cells into `failures.parquet`. A stored cell whose hash differs from
/// the plan's is never merged; it is reported in `foreign`. A merged file with nothing to hold is removed,
/// so no stale table outlives its cells; but a plan that matches none of the stored cells is an error
/// that leaves every merged file alone.
pub fn merge(dir: &Path, planned: &[(String, String)]) -> Result<MergeReport, StoreError> {
    let stored = scan(dir);
    let plan = plan_by_id(planned);
    let mut report = MergeReport::default();
    let (mut finished, mut failed) = (Vec::new(), Vec::new());
    for (id, hash) in planned {
        let Some(s) = stored.get(id) else { continue };
        if s.finished.as_deref() == Some(hash.as_str()) {
            finished.push(id.as_str());
        } else if s.failed.as_deref() == Some(hash.as_str()) {
            failed.push(id.as_str());
        }
    }
    for (id, s) in &stored {
        let (finished, failed) = s.of_another_configuration(plan.get(id.as_str()).copied());
        if finished || failed {
            report.foreign.push(id.clone());
        }
    }
    report.foreign.sort();
    report.merged = finished.len();
    report.failed = failed.len();
    if finished.is_empty() && failed.is_empty() && !report.foreign.is_empty() {
        // A plan that matches none of the stored cells is the wrong plan (another device, another
        // configuration), not an empty grid: its merge would delete every merged table.
        return Err(StoreError::Invalid {
            path: dir.to_path_buf(),
            message: format!(
                "none of the {} stored cells is of this plan (another device or configuration: e.g. {}); \
                 the merged tables are left as they are",
                report.foreign.len(),
                report.foreign[0]
            ),
        });
    }
    concat_into(dir, RESULTS_FILE, &finished, run_path)?;
    concat_into(dir, CURVES_FILE, &finished, curve_path)?;
    concat_into(dir, FAILURES_FILE, &failed, failure_path)?;
    Ok(report)
}

/// Removes the stored cells (run, curve and failure files) whose id or hash is not the plan's; returns
/// the ids removed.
pub fn prune(dir: &Path, planned: &[(String, String)]) -> Result<Vec<String>, StoreError> {
    let plan = plan_by_id(planned);
    let mut removed = Vec::new();
    for (id, s) in scan(dir) {
        let (finished, failed) = s.of_another_configuration(plan.get(id.as_str()).copied());
        if finished {
            remove_file(&run_path(dir, &id))?;
            remove_file(&curve_path(dir, &id))?;
            remove_file(&per_query_path(dir, &id))?;
        }
        if failed {
            remove_file(&failure_path(dir, &id))?;
        }
        if finished || failed {
            removed.push(id);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Concatenates the one-cell files of `ids` into `dir/out`, or removes `dir/out` when there are none.
fn concat_into(
    dir: &Path,
    out: &str,
    ids: &[&str],
    path_of: fn(&Path, &str) -> PathBuf,
) -> Result<(), StoreError> {
    let mut all: Option<DataFrame> = None;
    for id in ids {
        let path = path_of(dir, id);
        let df = columns::upgrade(read_parquet(&path)?).map_err(|source| StoreError::Polars {
            path: path.clone(),
            source,
        })?;
        match &mut all {
            None => all = Some(df),
            Some(a) => {
                a.vstack_mut_owned(df)
                    .map_err(|source| StoreError::Polars {
                        path: path.clone(),
                        source,
                    })?;
            }
        }
    }
    match all {
        Some(mut df) => {
            df.rechunk_mut();
            write_parquet(&dir.join(out), Ok(df))
        }
        None => remove_file(&dir.join(out)),
    }
}

fn remove_file(path: &Path) -> Result<(), StoreError> {
    atomic::remove(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the failed cells of a results directory (empty when none failed).
pub fn read_failures(dir: &Path) -> Result<Vec<FailureRecord>, StoreError> {
    let path = dir.join(FAILURES_FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    columns::failure_records(&read_parquet(&path)?)
        .map_err(|source| StoreError::Polars { path, source })
}

/// Reads the merged result rows of a results directory.
pub fn read_results(dir: &Path) -> Result<Vec<ResultRow>, StoreError> {
    let path = dir.join(RESULTS_FILE);
    if !path.is_file() {
        return Err(StoreError::Invalid {
            path,
            message: "no results here: run `nsbench run SUITE --out DIR` first".into(),
        });
    }
    columns::result_rows(&read_parquet(&path)?)
        .map_err(|source| StoreError::Polars { path, source })
}

/// Every (domain, dataset, model, loss, sampler, ratio, category, metric) of the merged results with
/// its values over seeds.
#[allow(clippy::type_complexity)]
pub fn read_grouped_values(
    dir: &Path,
) -> Result<
    Vec<(
        (String, String, String, String, String, u32, String, String),
        Vec<f64>,
    )>,
    StoreError,
> {
    let path = dir.join(RESULTS_FILE);
    columns::grouped_values(&read_parquet(&path)?)
        .map_err(|source| StoreError::Polars { path, source })
}

pub fn write_statistics(path: &Path, rows: &[GroupStats]) -> Result<(), StoreError> {
    write_parquet(path, columns::statistics_frame(rows))
}

pub fn write_comparisons(path: &Path, rows: &[ComparisonRow]) -> Result<(), StoreError> {
    write_parquet(path, columns::comparisons_frame(rows))
}

/// The configuration hash of every merged cell, by run id.
pub fn read_run_hashes(dir: &Path) -> Result<HashMap<String, String>, StoreError> {
    let path = dir.join(RESULTS_FILE);
    let df = read_parquet(&path)?;
    let strings = |name: &str| -> Result<Vec<String>, StoreError> {
        Ok(df
            .column(name)
            .and_then(|c| c.str().cloned())
            .map_err(|source| StoreError::Polars {
                path: path.clone(),
                source,
            })?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    Ok(strings("run_id")?
        .into_iter()
        .zip(strings("config_hash")?)
        .collect())
}

/// The distinct values of the provenance columns of the merged results (suite, versions, machine).
pub fn read_provenance(dir: &Path) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let path = dir.join(RESULTS_FILE);
    let df = read_parquet(&path)?;
    let mut out = Vec::new();
    for name in [
        "suite",
        "nsbench_version",
        "git_rev",
        "libtorch_version",
        "device",
        "threads",
        "behaviour",
    ] {
        let Ok(column) = df.column(name) else {
            continue;
        };
        let Ok(unique) = column.as_materialized_series().unique_stable() else {
            continue;
        };
        let values: Vec<String> = (0..unique.len())
            .filter_map(|i| unique.get(i).ok())
            .map(|v| v.to_string().trim_matches('"').to_string())
            .collect();
        out.push((name.to_string(), values));
    }
    Ok(out)
}

/// Reads the merged curves of a results directory (empty if there are none).
pub fn read_curves(dir: &Path) -> Result<Vec<(ResultRow, CurveRow)>, StoreError> {
    let path = dir.join(CURVES_FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    columns::curve_rows(&read_parquet(&path)?).map_err(|source| StoreError::Polars { path, source })
}

/// One finished cell's per-query values of `metric`, as (query, value) sorted by query; `None` when the
/// cell has no per-query file, or one of another configuration, or without that metric.
pub fn read_per_query(
    dir: &Path,
    run_id: &str,
    config_hash: &str,
    metric: &str,
) -> Option<Vec<(u32, f32)>> {
    let df = read_parquet(&per_query_path(dir, run_id)).ok()?;
    if columns::first_string(&df, "config_hash").as_deref() != Some(config_hash) {
        return None;
    }
    let queries = df.column("query").ok()?.u32().ok()?.clone();
    let values = df.column(metric).ok()?.f32().ok()?.clone();
    let mut out: Vec<(u32, f32)> = queries
        .iter()
        .zip(values.iter())
        .filter_map(|(q, v)| Some((q?, v?)))
        .collect();
    out.sort_unstable_by_key(|p| p.0);
    Some(out)
}

pub fn read_parquet(path: &Path) -> Result<DataFrame, StoreError> {
    let file = File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    ParquetReader::new(file)
        .finish()
        .map_err(|source| StoreError::Polars {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes `df` to `path` atomically and durably (see `atomic`): a reader, a crash or SIGKILL never
/// sees a half-written file.
pub fn write_parquet(path: &Path, df: PolarsResult<DataFrame>) -> Result<(), StoreError> {
    let mut df = df.map_err(|source| StoreError::Polars {
        path: path.to_path_buf(),
        source,
    })?;
    let mut failure = None;
    atomic::replace_with(path, |file| {
        ParquetWriter::new(&mut *file)
            .finish(&mut df)
            .map(|_| ())
            .map_err(|e| {
                failure = Some(e);
                std::io::Error::other("parquet")
            })
    })
    .map_err(|source| match failure.take() {
        Some(source) => StoreError::Polars {
            path: path.to_path_buf(),
            source,
        },
        None => StoreError::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_whose_curves_are_of_another_configuration_is_not_finished() {
        let dir = tempfile::tempdir().unwrap();
        let info = columns::tests::info("rec");
        let rows = [MetricRow {
            category: "effectiveness",
            metric: "mrr".into(),
            value: 0.5,
        }];
        let curve = [CurveRow {
            epoch: 1,
            split: "test".into(),
            metric: "mrr".into(),
            value: 0.5,
        }];
        write_cell(dir.path(), &info, &rows, &curve, &PerQuery::default()).unwrap();
        let id = info.run_id.clone();
        assert_eq!(scan(dir.path())[&id].finished.as_deref(), Some("h"));
        // A run of another configuration wrote its curves and was killed before its run file.
        let other = CellInfo {
            config_hash: "other".into(),
            ..info
        };
        write_parquet(
            &curve_path(dir.path(), &id),
            columns::curve_frame(&other, &curve),
        )
        .unwrap();
        assert_eq!(scan(dir.path())[&id].finished, None);
    }
}
