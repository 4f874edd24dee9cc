//! Sharding a grid over N processes (a Slurm job array, a Kubernetes indexed job, or N terminals):
//! every shard computes the same deterministic assignment of the plan's cells, balanced by expected
//! cost (longest-processing-time first: the costliest cells are spread first, each to the least-loaded
//! shard), and trains only its own. The assignment covers every cell of the plan, whatever is already
//! stored, so a rerun of the array gives each shard the same cells and it finishes what is left.

use crate::suite::{RunSpec, ALL};

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `I/N` with 0 ≤ I < N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("{text:?} is not a shard: write I/N with 0 ≤ I < N, e.g. 0/4");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard the scheduler gave this process: a Slurm array task (`SLURM_ARRAY_TASK_ID` from
    /// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`) or a Kubernetes indexed job
    /// (`JOB_COMPLETION_INDEX` of `NSBENCH_SHARDS`, which the job spec sets to its completions). `None`
    /// outside both.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Option<Result<Shard, String>> {
        let number = |name: &str| -> Option<Result<usize, String>> {
            var(name).map(|v| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("{name}={v:?} is not a number"))
            })
        };
        let make = |index: usize, count: usize, from: &str| {
            if count == 0 || index >= count {
                Err(format!("{from}: shard {index} of {count} does not exist"))
            } else {
                Ok(Shard { index, count })
            }
        };
        if let Some(id) = number("SLURM_ARRAY_TASK_ID") {
            return Some((|| {
                let id = id?;
                let min = number("SLURM_ARRAY_TASK_MIN").transpose()?.unwrap_or(0);
                let count = number("SLURM_ARRAY_TASK_COUNT")
                    .ok_or("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")??;
                make(
                    id.checked_sub(min).ok_or("SLURM_ARRAY_TASK_ID < MIN")?,
                    count,
                    "Slurm",
                )
            })());
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX") {
            return Some((|| {
                let count = number("NSBENCH_SHARDS").ok_or(
                    "JOB_COMPLETION_INDEX is set but NSBENCH_SHARDS (the job's completions) is not",
                )??;
                make(index?, count, "Kubernetes")
            })());
        }
        None
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Expected cost of a cell in units of one uniform epoch at k = 1 on its data.
pub fn expected_cost(spec: &RunSpec) -> f64 {
    let cost = spec.sampler.config.info().cost;
    let (base, growth) = (cost.at_k1, cost.per_extra_negative);
    let k = if spec.ratio == ALL {
        1.0
    } else {
        spec.ratio as f64
    };
    spec.train.epochs.max(1) as f64 * base * (1.0 + growth * (k - 1.0))
}

/// The shard of every cell (`costs[i]` = (id, cost)): LPT greedy, ties broken by id, so every shard
/// computes the same assignment.
pub fn assign(costs: &[(String, f64)], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| {
        costs[b]
            .1
            .total_cmp(&costs[a].1)
            .then_with(|| costs[a].0.cmp(&costs[b].0))
    });
    let mut load = vec![0.0f64; count.max(1)];
    let mut shard = vec![0; costs.len()];
    for i in order {
        let lightest = (0..load.len())
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .expect("at least one shard");
        shard[i] = lightest;
        load[lightest] += costs[i].1;
    }
    shard
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn shards_parse_and_refuse_what_does_not_exist() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "a/2", "3", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_scheduler_names_the_shard() {
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |k: &str| m.get(k).cloned()
        };
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_env(&slurm),
            Some(Ok(Shard { index: 2, count: 4 }))
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "0"), ("NSBENCH_SHARDS", "3")]);
        assert_eq!(
            Shard::from_env(&k8s),
            Some(Ok(Shard { index: 0, count: 3 }))
        );
        assert!(matches!(
            Shard::from_env(&env(&[("JOB_COMPLETION_INDEX", "0")])),
            Some(Err(_))
        ));
        assert_eq!(Shard::from_env(&env(&[])), None);
    }

    #[test]
    fn assignment_balances_cost_not_count_and_is_deterministic() {
        // One cell 40× the others: it gets a shard of its own.
        let mut costs: Vec<(String, f64)> = (0..12).map(|i| (format!("c{i:02}"), 1.0)).collect();
        costs.push(("full".into(), 40.0));
        let shards = assign(&costs, 4);
        let full_shard = shards[12];
        assert!(shards[..12].iter().all(|&s| s != full_shard));
        let mut loads = [0.0; 4];
        for (c, s) in costs.iter().zip(&shards) {
            loads[*s] += c.1;
        }
        assert_eq!(loads.iter().filter(|&&l| l == 4.0).count(), 3, "{loads:?}");
        assert_eq!(assign(&costs, 4), shards, "same input, same assignment");
        // Every cell is somewhere; one shard takes everything.
        assert!(assign(&costs, 1).iter().all(|&s| s == 0));
    }
}
