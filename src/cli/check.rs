//! `nsbench check`: the regression gate: compare a run with a saved baseline per (data set, sampler, k, metric);

use anyhow::Result;
use std::path::{Path, PathBuf};

use super::{check_flags, require_results};
use crate::{store, suite};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A results directory written by `nsbench run`.
    dir: PathBuf,
    /// The baseline: a name saved in DIR/baselines/, or a baseline directory.
    #[arg(long, required_unless_present = "expect")]
    baseline: Option<String>,
    /// Also check the suite's published values (`[[expect]]` in DIR/suite.resolved.toml): fail when
    /// a seed mean falls outside its band.
    #[arg(long)]
    expect: bool,
    /// Pass when the baseline or some of its groups are missing (strict mode, the default, fails).
    #[arg(long)]
    lenient: bool,
    /// Relative change of an effectiveness mean that counts (below it: noise).
    #[arg(long, default_value_t = 0.01)]
    noise: f64,
    /// Slower than this ratio of seconds per epoch is a regression.
    #[arg(long, default_value_t = 1.5)]
    time_ratio: f64,
    /// Differences in seconds per epoch below this never count (a scheduler time slice).
    #[arg(long, default_value_t = 0.005)]
    time_floor: f64,
    /// Judge each group's epoch time alone, not relative to the run's other groups (a dedicated
    /// runner, where a run-wide slowdown is the code's).
    #[arg(long)]
    absolute_time: bool,
    /// Effectiveness metrics to compare (repeatable) [default: each data set's headline metric].
    #[arg(long)]
    metric: Vec<String>,
    /// Confidence level of the paired t-test over seeds (1 − level: the gate's false-alarm rate).
    #[arg(long, default_value_t = 0.95)]
    level: f64,
}

pub fn execute(args: Args) -> Result<()> {
    let Args {
        dir,
        baseline,
        expect,
        lenient,
        noise,
        time_ratio,
        time_floor,
        absolute_time,
        metric,
        level,
    } = args;
    check_flags(
        &dir,
        &[
            (
                "--noise",
                noise,
                (0.0..1.0).contains(&noise),
                "in [0, 1), e.g. 0.01",
            ),
            (
                "--time-ratio",
                time_ratio,
                time_ratio > 1.0,
                "above 1, e.g. 1.5",
            ),
            (
                "--time-floor",
                time_floor,
                time_floor >= 0.0,
                "0 or more seconds",
            ),
            (
                "--level",
                level,
                level > 0.5 && level < 1.0,
                "in (0.5, 1), e.g. 0.95",
            ),
        ],
    )?;
    require_results(&dir)?;
    let summary_file = std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from);
    let mut failed = false;
    if let Some(baseline) = baseline {
        let thresholds = crate::gate::Thresholds {
            noise,
            level,
            time_ratio,
            time_floor,
            absolute_time,
            strict: !lenient,
            metrics: metric,
        };
        failed |= check_baseline(&dir, &baseline, &thresholds, summary_file.as_deref())?;
    }
    if expect {
        let suite = suite::load(&dir.join("suite.resolved.toml"))?;
        let outcomes = crate::expect::evaluate(&suite.expects, &store::read_results(&dir)?);
        let text = crate::expect::markdown(&outcomes);
        print!("{text}");
        append_summary(summary_file.as_deref(), &text)?;
        failed |= outcomes.iter().any(|o| !o.inside());
    }
    if failed {
        eprintln!("the check failed");
        std::process::exit(1);
    }
    Ok(())
}

/// The regression gate against `baseline`; true when it fails.
fn check_baseline(
    dir: &Path,
    baseline: &str,
    thresholds: &crate::gate::Thresholds,
    summary_file: Option<&Path>,
) -> Result<bool> {
    let named = crate::gate::baseline_dir(dir, baseline);
    let base_dir = if named.join(store::RESULTS_FILE).is_file() {
        named.clone()
    } else {
        PathBuf::from(baseline)
    };
    if !base_dir.join(store::RESULTS_FILE).is_file() {
        let message = format!(
            "no baseline {baseline:?}: neither {} nor {baseline} holds results (save one with \
             `nsbench baseline save {baseline} DIR`)",
            named.display()
        );
        if !thresholds.strict {
            let text = format!(
                "## nsbench regression check: skipped\n\n{message} (lenient mode: passing).\n"
            );
            print!("{text}");
            append_summary(summary_file, &text)?;
            return Ok(false);
        }
        return Err(crate::error::StoreError::Invalid {
            path: dir.to_path_buf(),
            message,
        }
        .into());
    }
    let outcome = crate::gate::compare(
        &store::read_results(&base_dir)?,
        &store::read_results(dir)?,
        &store::read_failures(dir)?,
        thresholds,
    );
    let text = outcome.markdown(baseline, dir);
    print!("{text}");
    append_summary(summary_file, &text)?;
    Ok(outcome.fails())
}

/// Appends `text` to GitHub's job summary file, when there is one.
fn append_summary(path: Option<&Path>, text: &str) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("appending to {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
