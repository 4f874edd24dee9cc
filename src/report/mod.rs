//! Reports from stored results: a summary table (mean ± std over seeds) and the figures.

mod plots;
pub mod significance;
mod summary;

pub use summary::{summarize, Summary, SummaryRow};

use anyhow::Result;
use std::path::{Path, PathBuf};

use crate::store::{self, FailureRecord};
use crate::suite::ratio_label;

/// Reads `dir`'s merged results (only cells of the current plan: `store::merge` keeps nothing else),
/// writes `dir/summary.md` (with the failed cells, if any) and the figures under `dir/plots/`, and returns
/// the summary table as text and the files written.
pub fn render(dir: &Path) -> Result<(String, Vec<PathBuf>)> {
    let rows = store::read_results(dir)?;
    let curves = store::read_curves(dir)?;
    let failures = store::read_failures(dir)?;
    let summary = summarize(&rows);
    let mut table = summary.markdown_table();
    table.push_str(&failures_section(&failures));
    let mut files = vec![dir.join("summary.md")];
    store::atomic::write_bytes(
        &files[0],
        format!("# Results of {}\n\n{table}", dir.display()).as_bytes(),
    )?;
    files.extend(plots::render_all(&summary, &curves, &dir.join("plots"))?);
    Ok((table, files))
}

/// Writes `dir/report.md`: per data set, the statistics tables of `significance` (seed summaries,
/// bootstrap intervals, paired comparisons with a reference after Holm's correction), then the failed
/// cells. Returns the text.
pub fn statistics_report(dir: &Path, settings: &significance::Settings) -> Result<String> {
    let rows = store::read_results(dir)?;
    let failures = store::read_failures(dir)?;
    let mut text = format!(
        "# Statistics of {}

",
        dir.display()
    );
    text.push_str(&significance::tables(&rows, settings));
    text.push_str(&significance::across_datasets(&rows, settings));
    text.push_str(&failures_section(&failures));
    store::atomic::write_bytes(&dir.join("report.md"), text.as_bytes())?;
    Ok(text)
}

/// `at epoch 3 (diverged): the training loss is NaN`.
pub fn describe_failure(f: &FailureRecord) -> String {
    let at = if f.epoch == 0 {
        "before training".to_string()
    } else {
        format!("at epoch {}", f.epoch)
    };
    format!("failed {at} ({}): {}", f.stage, f.reason)
}

/// The failed cells as a markdown list (empty when none failed): they have no rows in the tables above.
fn failures_section(failures: &[FailureRecord]) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "## Failed cells ({})\n\nThese cells have no results above (a seed count below the suite's \
         shows where); `failures.parquet` has them.\n\n| cell | sampler | k | seed | why |\n|---|---|---:|---:|---|\n",
        failures.len()
    );
    for f in failures {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            f.run_id,
            f.sampler,
            ratio_label(f.ratio),
            f.seed,
            describe_failure(f).replace('|', "\\|").replace('\n', " ")
        ));
    }
    out.push('\n');
    out
}
