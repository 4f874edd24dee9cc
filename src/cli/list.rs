//! `nsbench list`: print a suite's grid in run order, or `nsbench list samplers` for every sampler.

use anyhow::Result;
use std::path::{Path, PathBuf};

use super::print_grid;
use crate::{sampler, suite};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A suite file, or the word `samplers` or `losses`.
    what: String,
    /// Results directory to report finished cells from [default: results/<suite name>].
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn execute(args: Args) -> Result<()> {
    let Args { what, out } = args;
    if what == "samplers" && !Path::new(&what).is_file() {
        let width = sampler::REGISTRY
            .iter()
            .map(|s| s.kind.len())
            .max()
            .unwrap_or(0);
        for s in sampler::REGISTRY {
            let same = s
                .same_at_k1
                .map(|other| format!(" [at k = 1 this is {other}]"))
                .unwrap_or_default();
            let domains = format!(" [domains: {}]", s.domains.join(", "));
            let per_pair = if s.per_pair {
                " [also under optimizer = \"word2vec\" (text)]"
            } else {
                ""
            };
            println!(
                "{:<width$}  {}{same}{domains}{per_pair} [needs: {}]",
                s.kind, s.description, s.needs
            );
        }
        return Ok(());
    }
    if what == "losses" && !Path::new(&what).is_file() {
        for (kind, description) in crate::loss::LOSSES {
            println!("{kind:<8}  {description}");
        }
        return Ok(());
    }
    let suite = suite::load(Path::new(&what))?;
    let out = out.unwrap_or_else(|| PathBuf::from("results").join(&suite.name));
    print_grid(&suite, &out, &device_used(&suite, &out), None)
}

/// The device the cells in `out` were trained on: the one its resolved suite records (a run's
/// `--device` wins over the suite file), else the suite's own.
fn device_used(suite: &suite::Suite, out: &Path) -> String {
    suite::load(&out.join("suite.resolved.toml"))
        .ok()
        .filter(|resolved| resolved.name == suite.name)
        .map_or_else(|| suite.device.clone(), |resolved| resolved.device)
}
