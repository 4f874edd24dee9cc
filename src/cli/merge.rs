//! `nsbench merge`: merge a results directory's cells (as a sharded run leaves them) into results.parquet, the

use anyhow::Result;
use std::path::{Path, PathBuf};

use super::draw_figures;
use crate::{runner, store, suite};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A results directory written by `nsbench run` (its suite.resolved.toml names the grid).
    dir: PathBuf,
    #[arg(long)]
    no_plots: bool,
}

pub fn execute(args: Args) -> Result<()> {
    let Args { dir, no_plots } = args;
    let resolved = dir.join("suite.resolved.toml");
    if !resolved.is_file() {
        return Err(crate::error::StoreError::Invalid {
            path: dir,
            message: "no suite.resolved.toml here: not a results directory of `nsbench run`".into(),
        }
        .into());
    }
    let suite = suite::load(&resolved)?;
    let lock = store::open_for_writing(&dir, "merging")?;
    let outcome = merge_and_plot(&runner::plan_hashes(&suite, &suite.device)?, &dir, no_plots)?;
    drop(lock);
    outcome.conclude()
}

/// What a merge found.
pub(super) struct MergeOutcome {
    cells: usize,
    merge: store::MergeReport,
    out: PathBuf,
}

impl MergeOutcome {
    pub(super) fn report(&self) {
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
pub(super) fn merge_and_plot(
    planned: &[(String, String)],
    out: &Path,
    no_plots: bool,
) -> Result<MergeOutcome> {
    let merge = store::merge(out, planned)?;
    if !no_plots && merge.merged > 0 {
        draw_figures(out)?;
    }
    Ok(MergeOutcome {
        cells: planned.len(),
        merge,
        out: out.to_path_buf(),
    })
}
