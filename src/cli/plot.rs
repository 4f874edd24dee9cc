//! `nsbench plot`: draw the figures and summary table of a results directory.

use anyhow::Result;
use std::path::PathBuf;

use super::{draw_figures, require_results};
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A results directory written by `nsbench run`.
    dir: PathBuf,
}

pub fn execute(args: Args) -> Result<()> {
    let Args { dir } = args;
    require_results(&dir)?;
    let _lock = store::open_for_writing(&dir, "plotting")?;
    draw_figures(&dir)
}
