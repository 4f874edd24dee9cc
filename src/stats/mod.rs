//! Statistics over stored results: a pure module (plain slices in, numbers out; no tch, no polars), so
//! it is property-tested on its own. Descriptive statistics and bootstrap intervals (`descriptive`);
//! verdicts over seeds, the unit of replication: t intervals, paired comparisons with four outcomes,
//! power and the seeds a question needs (`verdict`); paired comparisons as IR evaluation makes them with multiple-comparison correction
//! (`paired`), comparisons across data sets by ranks (`ranks`: Friedman, Nemenyi, Kendall's W), and
//! statistics of training curves (`curves`: roughness after the peak, quality at an equal budget,
//! time to a target).

pub mod curves;
pub mod descriptive;
pub mod paired;
pub mod ranks;
pub mod verdict;

pub use curves::{roughness_after_peak, time_to_target, value_at};
pub use descriptive::{bootstrap_mean_ci, Interval, Summary};
pub use paired::{fisher_randomization, holm, paired_t, wilcoxon_signed_rank, PairedTest};
pub use ranks::{
    average_ranks, cd_groups, friedman, kendall_tau, kendalls_w, nemenyi_cd, rank_ascending,
    spearman, Friedman,
};
pub use verdict::{
    compare, decide, detectable_difference, seeds_needed, t_interval, Comparison, Verdict,
};
