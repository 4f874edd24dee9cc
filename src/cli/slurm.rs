//! `nsbench slurm`: write (and with --submit, submit) a Slurm job array that runs a suite in shards, and a merge job

use anyhow::Result;
use std::path::PathBuf;

use crate::suite;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The suite file (TOML).
    suite: PathBuf,
    /// Results directory, shared by every shard [default: results/<suite name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Array tasks (shards).
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// CPUs per task: the cells a shard trains at once (one libtorch thread each).
    #[arg(long, default_value_t = 1)]
    cpus_per_task: usize,
    /// Wall-clock limit per task (sbatch --time), e.g. 04:00:00.
    #[arg(long)]
    time: Option<String>,
    /// Memory per task (sbatch --mem), e.g. 8G.
    #[arg(long)]
    mem: Option<String>,
    /// Partition (sbatch --partition).
    #[arg(long)]
    partition: Option<String>,
    /// Account to charge (sbatch --account).
    #[arg(long)]
    account: Option<String>,
    /// At most this many tasks at once (the array's %M throttle).
    #[arg(long)]
    max_running: Option<usize>,
    /// Submit with sbatch and print the job ids.
    #[arg(long)]
    submit: bool,
}

pub fn execute(args: Args) -> Result<()> {
    let Args {
        suite,
        out,
        shards,
        cpus_per_task,
        time,
        mem,
        partition,
        account,
        max_running,
        submit,
    } = args;
    let path = suite.clone();
    let suite = suite::load(&suite)?;
    if shards == 0 || cpus_per_task == 0 {
        return Err(crate::error::SuiteError::Invalid {
            path,
            key: if shards == 0 {
                "--shards"
            } else {
                "--cpus-per-task"
            }
            .into(),
            message: "must be at least 1".into(),
        }
        .into());
    }
    let out = out.unwrap_or_else(|| PathBuf::from("results").join(&suite.name));
    let job = crate::slurm::ArrayJob {
        suite_name: suite.name.clone(),
        suite: std::path::absolute(&path)?,
        out: std::path::absolute(&out)?,
        nsbench: std::env::current_exe()?,
        shards,
        cpus_per_task,
        time,
        mem,
        partition,
        account,
        max_running,
    };
    let (array, merge) = job.write()?;
    println!("wrote {} and {}", array.display(), merge.display());
    if submit {
        let (array_id, merge_id) = job.submit(&array, &merge)?;
        println!(
            "submitted array job {array_id} ({shards} shards) and merge job {merge_id} (afterok)"
        );
        println!(
            "watch: squeue -j {array_id},{merge_id}    logs: {}",
            job.out.join("slurm").display()
        );
    } else {
        println!(
            "submit: sbatch {}  then  sbatch --dependency=afterok:<array id> {}",
            array.display(),
            merge.display()
        );
    }
    Ok(())
}
