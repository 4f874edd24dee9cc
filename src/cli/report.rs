//! `nsbench report`: the report of one or more results directories (their data sets side by side): statistics

use anyhow::Result;
use std::path::PathBuf;

use super::{check_flags, require_results};
use crate::{store, suite};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Results directories written by `nsbench run`.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where the report goes [default: the first directory].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Time to target: the share of the reference's best value a curve must reach.
    #[arg(long, default_value_t = 0.95)]
    target: f64,
    /// The sampler every other one is compared with.
    #[arg(long, default_value = "uniform")]
    reference: String,
    /// Confidence level of the intervals (1 − level is the significance level).
    #[arg(long, default_value_t = 0.95)]
    level: f64,
    /// Equivalence margin relative to the reference's mean (0.02: equivalent within ±2%).
    #[arg(long, default_value_t = 0.02)]
    margin: f64,
}

pub fn execute(args: Args) -> Result<()> {
    let Args {
        dirs,
        out,
        target,
        reference,
        level,
        margin,
    } = args;
    let first = dirs[0].clone();
    check_flags(
        &first,
        &[
            (
                "--level",
                level,
                level > 0.5 && level < 1.0,
                "in (0.5, 1), e.g. 0.95",
            ),
            (
                "--target",
                target,
                target > 0.0 && target <= 1.0,
                "in (0, 1], e.g. 0.95",
            ),
            (
                "--margin",
                margin,
                margin > 0.0 && margin < 1.0,
                "in (0, 1), e.g. 0.02",
            ),
        ],
    )?;
    for dir in &dirs {
        require_results(dir)?;
    }
    // A run that added seeds until decided looked at its verdicts several times: decide at α
    // spread over those looks, as it did.
    let looks = dirs
        .iter()
        .filter_map(|d| suite::load(&d.join("suite.resolved.toml")).ok())
        .filter(|s| s.until_decided.is_some())
        .map(|s| {
            s.until_decided
                .clone()
                .unwrap_or_default()
                .looks(s.seeds.len())
        })
        .max()
        .unwrap_or(1);
    if looks > 1 {
        eprintln!(
            "seeds were added until decided over up to {looks} looks: verdicts at α = {:.4}",
            (1.0 - level) / looks as f64
        );
    }
    let settings = crate::report::significance::Settings {
        reference,
        level: 1.0 - (1.0 - level) / looks as f64,
        target,
        margin,
        ..Default::default()
    };
    let out = out.unwrap_or(first);
    std::fs::create_dir_all(&out)?;
    let _lock = store::open_for_writing(&out, "reporting")?;
    let inputs = crate::report::Inputs::read(&dirs)?;
    let (text, files) = crate::report::statistics_report(&inputs, &out, &settings)?;
    print!("{text}");
    eprintln!(
        "wrote {}, {}, {} LaTeX table file(s) under {} and {} figure files under {}",
        files.markdown.display(),
        files.html.display(),
        files.latex.len(),
        out.join("tables").display(),
        files.figures.len(),
        out.join("plots").display()
    );
    Ok(())
}
