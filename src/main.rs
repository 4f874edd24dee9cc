use std::process::exit;

fn main() {
    passive_openmp();
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
