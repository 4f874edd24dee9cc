use std::process::exit;

fn main() {
    passive_openmp();
    steady_heap();
    if let Err(e) = nsbench::cli::run() {
        eprintln!("Error: {e:#}");
        exit(if nsbench::error::is_user_error(&e) {
            2
        } else {
            1
        });
    }
}

/// libtorch's OpenMP threads spin while waiting by default, which on small shared machines costs more
/// than it gains. libgomp reads OMP_WAIT_POLICY when it is loaded, before `main`, so if the user has not
/// chosen a policy, run again with PASSIVE set. A user's own setting is kept.
fn passive_openmp() {
    if std::env::var_os("OMP_WAIT_POLICY").is_some() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let (Some(arg0), Ok(exe)) = (args.next(), std::env::current_exe()) else {
        return;
    };
    // `exec` only returns if it failed; then carry on with the default policy.
    let _ = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .exec();
}

/// libtorch allocates each step's tensors (a few MB for a batch of a few thousand) through glibc's
/// malloc. Left to its dynamic thresholds, the allocator maps such blocks fresh and returns them to the
/// kernel as soon as a larger block (an evaluation's score block) has raised and lowered them: every
/// step then pays page faults on zeroed pages, which cost MF-BPR on ML-100K a quarter of its training
/// throughput (perf: page faults and unmapping tripled). Fixed thresholds keep blocks up to 32 MB on
/// the heap and return its top to the kernel only beyond 128 MB free, as the allocator's own tuning
/// settles once it has seen the run's largest block. A user's GLIBC_TUNABLES is kept.
fn steady_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
        }
    }
}
