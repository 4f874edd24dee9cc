//! What every result row records about where it came from.

/// The git revision nsbench was built from (`-dirty` when the tree had uncommitted changes).
pub const GIT_REV: &str = env!("NSBENCH_GIT_REV");
pub const NSBENCH_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The libtorch version nsbench was built against.
pub const LIBTORCH_VERSION: &str = env!("NSBENCH_LIBTORCH_VERSION");

/// The process's peak resident memory in MiB (Linux `VmHWM`); NaN where it cannot be read.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
