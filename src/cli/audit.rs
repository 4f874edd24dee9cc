//! `nsbench audit`: check the evaluation itself: a constant, a random and an oracle scorer run through each domain's

use anyhow::Result;
use std::path::PathBuf;

use crate::{store, suite};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Suite files whose data to audit [default: the embedded data sets of every domain].
    suites: Vec<PathBuf>,
    /// Also write the Markdown verdict to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn execute(args: Args) -> Result<()> {
    let Args { suites, out } = args;
    let audits = if suites.is_empty() {
        let mut audits = Vec::new();
        for data in crate::data::embedded()? {
            audits.push(crate::audit::audit(&data, &[10, 20], Default::default())?);
        }
        audits
    } else {
        let mut audits = Vec::new();
        for path in &suites {
            audits.extend(crate::audit::of_suite(&suite::load(path)?)?);
        }
        audits
    };
    let text = crate::audit::markdown(&audits);
    print!("{text}");
    if let Some(out) = out {
        store::atomic::write_bytes(&out, text.as_bytes())?;
    }
    if audits.iter().any(|a| !a.passed()) {
        eprintln!("the audit found a deviation");
        std::process::exit(1);
    }
    Ok(())
}
