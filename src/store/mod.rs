//! The results store: one parquet file per finished cell (`runs/<id>.parquet`, tidy rows of
//! (metric, value) with full provenance) and its per-epoch curves (`curves/<id>.parquet`), each written
//! atomically the moment the cell finishes, plus the merged `results.parquet` and `curves.parquet`.
//!
//! Layout of a results directory:
//! ```text
//! <dir>/suite.resolved.toml     the validated suite, defaults filled in
//! <dir>/runs/<run_id>.parquet   one finished cell: one row per metric
//! <dir>/curves/<run_id>.parquet one finished cell: one row per (epoch, split, metric)
//! <dir>/results.parquet         every finished cell of the grid, merged
//! <dir>/curves.parquet          every curve of the grid, merged
//! <dir>/plots/                  figures (SVG and PNG)
//! ```

mod columns;

pub use columns::{CellInfo, CurveRow, MetricRow, ResultRow};

use polars::prelude::*;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

pub const RUNS_DIR: &str = "runs";
pub const CURVES_DIR: &str = "curves";
pub const RESULTS_FILE: &str = "results.parquet";
pub const CURVES_FILE: &str = "curves.parquet";

pub fn run_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(RUNS_DIR).join(format!("{run_id}.parquet"))
}

pub fn curve_path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(CURVES_DIR).join(format!("{run_id}.parquet"))
}

/// Writes one finished cell: curves first, then the run file, whose presence marks the cell finished.
pub fn write_cell(
    dir: &Path,
    info: &CellInfo,
    metrics: &[MetricRow],
    curves: &[CurveRow],
) -> Result<(), StoreError> {
    write_parquet(
        &curve_path(dir, &info.run_id),
        columns::curve_frame(info, curves),
    )?;
    write_parquet(
        &run_path(dir, &info.run_id),
        columns::metric_frame(info, metrics),
    )
}

/// The config hash a finished cell was recorded with, or None if the cell has not finished (or its file
/// cannot be read, in which case it is run again).
pub fn finished_hash(dir: &Path, run_id: &str) -> Option<String> {
    let path = run_path(dir, run_id);
    if !path.is_file() {
        return None;
    }
    let df = read_parquet(&path).ok()?;
    let hash = df
        .column("config_hash")
        .ok()?
        .str()
        .ok()?
        .get(0)?
        .to_string();
    curve_path(dir, run_id).is_file().then_some(hash)
}

/// Removes temporary files a killed run left behind in `dir/runs` and `dir/curves` (never a finished
/// cell's file, which is only ever created by renaming a complete temporary file).
pub fn remove_stale_temp_files(dir: &Path) {
    for sub in [RUNS_DIR, CURVES_DIR] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().contains(".parquet.tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Merges the cells `run_ids` (those finished) into `results.parquet` and `curves.parquet`; returns the
/// number of cells merged.
pub fn merge(dir: &Path, run_ids: &[String]) -> Result<usize, StoreError> {
    let finished: Vec<&String> = run_ids
        .iter()
        .filter(|id| run_path(dir, id).is_file())
        .collect();
    for (out, path_of) in [
        (RESULTS_FILE, run_path as fn(&Path, &str) -> PathBuf),
        (CURVES_FILE, curve_path),
    ] {
        let mut all: Option<DataFrame> = None;
        for id in &finished {
            let path = path_of(dir, id);
            if !path.is_file() {
                continue;
            }
            let df = read_parquet(&path)?;
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
        if let Some(mut df) = all {
            df.rechunk_mut();
            write_parquet(&dir.join(out), Ok(df))?;
        }
    }
    Ok(finished.len())
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

/// Reads the merged curves of a results directory (empty if there are none).
pub fn read_curves(dir: &Path) -> Result<Vec<(ResultRow, CurveRow)>, StoreError> {
    let path = dir.join(CURVES_FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    columns::curve_rows(&read_parquet(&path)?).map_err(|source| StoreError::Polars { path, source })
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

/// Writes `df` to `path` through a temporary file and a rename, so a reader (or a crash) never sees a
/// half-written file.
pub fn write_parquet(path: &Path, df: PolarsResult<DataFrame>) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut df = df.map_err(|source| StoreError::Polars {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension(format!("parquet.tmp{}", std::process::id()));
    let file = File::create(&tmp).map_err(io)?;
    ParquetWriter::new(&file)
        .finish(&mut df)
        .map_err(|source| StoreError::Polars {
            path: path.to_path_buf(),
            source,
        })?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
