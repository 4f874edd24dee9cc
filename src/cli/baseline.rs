//! `nsbench baseline save`: keep a run's results as a named baseline.

use anyhow::Result;
use std::path::PathBuf;

use super::require_results;
use crate::store;

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Keep a run's merged results as the baseline NAME (in DIR/baselines/NAME, with its provenance).
    Save {
        name: String,
        /// A results directory [default: the most recently written one under results/].
        dir: Option<PathBuf>,
    },
}

pub fn execute(action: Action) -> Result<()> {
    let Action::Save { name, dir } = action;
    let dir = match dir {
        Some(d) => d,
        None => latest_results_dir()?,
    };
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(crate::error::SuiteError::Invalid {
            path: dir,
            key: "NAME".into(),
            message: format!("{name:?} is not a baseline name: letters, digits, '-' and '_'"),
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
