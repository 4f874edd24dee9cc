//! `nsbench slurm`: the sbatch scripts that run a suite as a Slurm job array (one shard per task, each
//! taking its shard from `SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT`) and a merge job that runs
//! after every task succeeded (`--dependency=afterok`). No scheduler of our own: Slurm places the
//! tasks, the results directory's claims keep two tasks off one cell, and rerunning the array finishes
//! what a killed task left.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Everything the scripts say.
#[derive(Debug, Clone)]
pub struct ArrayJob {
    pub suite_name: String,
    /// Absolute paths: the tasks run wherever Slurm puts them.
    pub suite: PathBuf,
    pub out: PathBuf,
    pub nsbench: PathBuf,
    pub shards: usize,
    pub cpus_per_task: usize,
    pub time: Option<String>,
    pub mem: Option<String>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub max_running: Option<usize>,
}

/// A path quoted for bash.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

impl ArrayJob {
    fn directives(&self, name: &str, output: &str) -> String {
        let mut d = format!(
            "#SBATCH --job-name={name}\n#SBATCH --output={}\n#SBATCH --ntasks=1\n",
            self.out.join("slurm").join(output).display()
        );
        for (flag, value) in [
            ("time", &self.time),
            ("mem", &self.mem),
            ("partition", &self.partition),
            ("account", &self.account),
        ] {
            if let Some(v) = value {
                d.push_str(&format!("#SBATCH --{flag}={v}\n"));
            }
        }
        d
    }

    pub fn array_script(&self) -> String {
        let throttle = self.max_running.map_or(String::new(), |m| format!("%{m}"));
        format!(
            "#!/bin/bash\n# nsbench: suite {suite} in {n} shards, one per array task (written by `nsbench slurm`).\n\
             #SBATCH --array=0-{last}{throttle}\n#SBATCH --cpus-per-task={cpus}\n{directives}\
             set -euo pipefail\n\
             # libtorch's OpenMP threads wait passively (set here, nsbench need not start itself again).\n\
             export OMP_WAIT_POLICY=\"${{OMP_WAIT_POLICY:-PASSIVE}}\"\n\
             # The shard comes from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT; each task trains its cells\n\
             # ({cpus} at a time, one libtorch thread each) and the last to finish merges.\n\
             exec {exe} run {suite_path} --out {out} --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\" --threads 1 --no-plots\n",
            suite = self.suite_name,
            n = self.shards,
            last = self.shards - 1,
            cpus = self.cpus_per_task,
            directives = self.directives(
                &format!("nsbench-{}", self.suite_name),
                "shard-%A_%a.out"
            ),
            exe = quoted(&self.nsbench),
            suite_path = quoted(&self.suite),
            out = quoted(&self.out),
        )
    }

    pub fn merge_script(&self) -> String {
        format!(
            "#!/bin/bash\n# nsbench: merge the shards of suite {suite} (written by `nsbench slurm`; submitted with\n\
             # --dependency=afterok on the array).\n#SBATCH --cpus-per-task=1\n{directives}\
             set -euo pipefail\nexec {exe} merge {out}\n",
            suite = self.suite_name,
            directives = self.directives(
                &format!("nsbench-{}-merge", self.suite_name),
                "merge-%j.out"
            ),
            exe = quoted(&self.nsbench),
            out = quoted(&self.out),
        )
    }

    /// Writes both scripts under `out/slurm/`; returns their paths.
    pub fn write(&self) -> Result<(PathBuf, PathBuf)> {
        let dir = self.out.join("slurm");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let array = dir.join("nsbench-array.sbatch");
        let merge = dir.join("nsbench-merge.sbatch");
        crate::store::atomic::write_bytes(&array, self.array_script().as_bytes())?;
        crate::store::atomic::write_bytes(&merge, self.merge_script().as_bytes())?;
        Ok((array, merge))
    }

    /// Submits the array, then the merge job after it; returns both job ids.
    pub fn submit(&self, array: &Path, merge: &Path) -> Result<(String, String)> {
        let array_id = sbatch(&[], array)?;
        let merge_id = sbatch(&[format!("--dependency=afterok:{array_id}")], merge)?;
        Ok((array_id, merge_id))
    }
}

/// `sbatch --parsable [args] script`: the job id.
fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let output = std::process::Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .context("running sbatch (is Slurm's client installed and SLURM_CONF set?)")?;
    if !output.status.success() {
        bail!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // `--parsable` prints "id" or "id;cluster".
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id: {text:?}");
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_name_every_knob_and_quote_paths() {
        let job = ArrayJob {
            suite_name: "rec".into(),
            suite: "/x/it's/rec.toml".into(),
            out: "/r/rec".into(),
            nsbench: "/bin/nsbench".into(),
            shards: 4,
            cpus_per_task: 2,
            time: Some("01:00:00".into()),
            mem: Some("4G".into()),
            partition: None,
            account: Some("lab".into()),
            max_running: Some(2),
        };
        let a = job.array_script();
        for line in [
            "#SBATCH --array=0-3%2",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --time=01:00:00",
            "#SBATCH --mem=4G",
            "#SBATCH --account=lab",
            "#SBATCH --output=/r/rec/slurm/shard-%A_%a.out",
            "exec '/bin/nsbench' run '/x/it'\\''s/rec.toml' --out '/r/rec'",
        ] {
            assert!(a.contains(line), "{line}\n{a}");
        }
        assert!(!a.contains("--partition"));
        let m = job.merge_script();
        assert!(
            m.contains("exec '/bin/nsbench' merge '/r/rec'") && m.contains("merge-%j.out"),
            "{m}"
        );
    }
}
