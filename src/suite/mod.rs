//! Suites: the TOML file (`file`), its validation into a `Suite` (`check`), and the grid of cells
//! (`grid`).

mod check;
mod file;
mod grid;

pub use crate::data::DomainKind;
pub use check::{
    check_device, is_safe_name, make_filename_safe, parse_device, Domain, LossEntry, SamplerEntry,
    Suite, DEVICES,
};
pub use file::{DomainConfig, Expect, ExtraSeeds, SuiteFile, SuiteSection, UntilDecided};
pub use grid::{expand, expand_on, ratio_label, RunSpec, ALL};

use std::path::Path;

use crate::error::SuiteError;

/// Loads and validates a suite file.
pub fn load(path: &Path) -> Result<Suite, SuiteError> {
    SuiteFile::load(path)?.check(path)
}
