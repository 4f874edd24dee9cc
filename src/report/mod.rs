//! Reports from stored results: a summary table (mean ± std over seeds) and the figures.

mod plots;
mod summary;

pub use summary::{summarize, Summary, SummaryRow};

use anyhow::Result;
use std::path::{Path, PathBuf};

use crate::store;

/// Reads `dir`'s merged results, writes `dir/summary.md` and the figures under `dir/plots/`, and returns
/// the summary table as text and the files written.
pub fn render(dir: &Path) -> Result<(String, Vec<PathBuf>)> {
    let rows = store::read_results(dir)?;
    let curves = store::read_curves(dir)?;
    let summary = summarize(&rows);
    let table = summary.markdown_table();
    let mut files = vec![dir.join("summary.md")];
    std::fs::write(
        &files[0],
        format!("# Results of {}\n\n{table}", dir.display()),
    )?;
    files.extend(plots::render_all(&summary, &curves, &dir.join("plots"))?);
    Ok((table, files))
}
