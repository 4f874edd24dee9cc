//! What every result row records about where it came from.

/// The git revision nsbench was built from (`-dirty` when the tree had uncommitted changes).
pub const GIT_REV: &str = env!("NSBENCH_GIT_REV");
pub const NSBENCH_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The libtorch version nsbench was built against.
pub const LIBTORCH_VERSION: &str = env!("NSBENCH_LIBTORCH_VERSION");

/// The process's peak resident memory in MiB (Linux `VmHWM`); NaN where it cannot be read.
pub fn peak_rss_mib() -> f64 {
    proc_kib("/proc/self/status", "VmHWM:").map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

/// A `KEY: N kB` line of a Linux /proc file, in KiB.
pub fn proc_kib(file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(file).ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    })
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
