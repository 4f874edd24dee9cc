//! Statistics over stored results: a pure module (plain slices in, numbers out; no tch, no polars), so
//! it is property-tested on its own. Descriptive statistics and bootstrap intervals over seeds
//! (`descriptive`), paired comparisons as IR evaluation makes them with multiple-comparison correction
//! (`paired`), and comparisons across data sets by ranks (`ranks`: Friedman, Nemenyi, Kendall's W).

pub mod descriptive;
pub mod paired;
pub mod ranks;

pub use descriptive::{bootstrap_mean_ci, Interval, Summary};
pub use paired::{fisher_randomization, holm, paired_t, wilcoxon_signed_rank, PairedTest};
pub use ranks::{average_ranks, friedman, kendalls_w, nemenyi_cd, Friedman};
