//! `nsbench run --until-decided`: seeds in rounds to the comparisons still undecided, until each is
//! decided (better, worse or equivalent against the reference, as the report decides them) or has the
//! most seeds allowed. The verdicts are looked at after every round, so the error rate is controlled
//! over the looks: α is spent evenly over the most looks the settings allow (a Bonferroni bound over
//! looks, the simplest alpha-spending rule: Lan & DeMets 1983 with a linear spending function of the
//! look count), and the report of such a run decides at that α / looks too.

use anyhow::Result;

use crate::report::significance::{self, Settings};
use crate::report::Inputs;
use crate::runner::{self, RunOptions};
use crate::stats::Verdict;
use crate::store::DirLock;
use crate::suite::{ExtraSeeds, Suite, UntilDecided};

/// What a sequential run did.
#[derive(Debug, Clone, Default)]
pub struct Rounds {
    /// Looks at the verdicts (the first after the suite's own seeds).
    pub looks: usize,
    /// Cells trained over all rounds.
    pub trained: usize,
    /// Comparisons still undecided when it stopped (at the seed cap).
    pub undecided: usize,
    /// Comparisons decided.
    pub decided: usize,
    /// Seeds each comparison ended with, summed (its sampler's cells, not the reference's).
    pub seeds_spent: usize,
}

/// The settings of `suite`'s sequential run (its `until_decided`, else the defaults), and the
/// significance level of each look.
pub fn settings(suite: &Suite) -> (UntilDecided, f64) {
    let u = suite.until_decided.clone().unwrap_or_default();
    let alpha = (1.0 - u.level) / u.looks(suite.seeds.len()) as f64;
    (u, 1.0 - alpha)
}

/// Runs `suite` into `opts.out`, then adds seeds until every comparison is decided or capped.
pub fn run_until_decided(suite: &Suite, opts: &RunOptions, lock: &DirLock) -> Result<Rounds> {
    let (u, level) = settings(suite);
    let mut current = suite.clone();
    let mut rounds = Rounds::default();
    loop {
        let summary = runner::run(&current, opts, lock)?;
        rounds.trained += summary.trained;
        rounds.looks += 1;
        let inputs = Inputs::read(std::slice::from_ref(&opts.out))?;
        let verdicts = look(&inputs, &u, level);
        rounds.decided = verdicts
            .iter()
            .filter(|v| v.verdict != Verdict::Undecided)
            .count();
        rounds.undecided = verdicts.len() - rounds.decided;
        rounds.seeds_spent = verdicts.iter().map(|v| v.seeds).sum();
        eprintln!(
            "look {}: {} comparisons decided, {} undecided (α per look {:.4})",
            rounds.looks,
            rounds.decided,
            rounds.undecided,
            1.0 - level
        );
        let more: Vec<&Looked> = verdicts
            .iter()
            .filter(|v| v.verdict == Verdict::Undecided && v.seeds < u.max_seeds)
            .collect();
        if more.is_empty() {
            return Ok(rounds);
        }
        add_seeds(&mut current, &more, u.round);
    }
}

/// One comparison at a look.
#[derive(Debug, Clone)]
struct Looked {
    domain: String,
    /// The compared entry and the reference entry: (sampler label, loss label, ratio).
    entries: [(String, Option<String>, u32); 2],
    seeds: usize,
    verdict: Verdict,
}

/// The verdicts of every comparison of the stored results, as the report makes them at `level`.
fn look(inputs: &Inputs, u: &UntilDecided, level: f64) -> Vec<Looked> {
    let settings = Settings {
        reference: u.reference.clone(),
        level,
        margin: u.margin,
        ..Default::default()
    };
    let mut out = Vec::new();
    for view in crate::report::views::dataset_views(&inputs.rows, &inputs.failures) {
        let e = significance::effectiveness(&view, &settings, &|_: &str, _: &str| None);
        let entry = |label: &str, ratio: u32| {
            let suffix = view.loss_suffixes.get(label).filter(|s| !s.is_empty());
            let sampler = match suffix {
                Some(s) => label
                    .strip_suffix(&format!("-{s}"))
                    .unwrap_or(label)
                    .to_string(),
                None => label.to_string(),
            };
            (sampler, suffix.cloned(), ratio)
        };
        for key in &view.order {
            let reference_label = view.reference_for(&key.0, &u.reference);
            if view.is_reference(&key.0, &u.reference) {
                continue;
            }
            let Some(reference) = significance::reference_key(&view, &reference_label, key.1)
            else {
                continue;
            };
            // Fewer than two paired seeds: no comparison yet, undecided.
            let (seeds, verdict) = match e.verdicts.get(key) {
                Some(d) => (d.comparison.n, d.verdict),
                None => (
                    view.values[key]
                        .keys()
                        .filter(|s| view.values[&reference].contains_key(s))
                        .count(),
                    Verdict::Undecided,
                ),
            };
            out.push(Looked {
                domain: view.name.clone(),
                entries: [entry(&key.0, key.1), entry(&reference.0, reference.1)],
                seeds,
                verdict,
            });
        }
    }
    out
}

/// `round` more seeds for every entry of `more` and its reference, the same ones for all: the next
/// seeds after the largest the suite uses anywhere.
fn add_seeds(suite: &mut Suite, more: &[&Looked], round: usize) {
    let largest = suite
        .seeds
        .iter()
        .chain(suite.extra_seeds.iter().flat_map(|e| e.seeds.iter()))
        .copied()
        .max()
        .unwrap_or(0);
    let new: Vec<u64> = (largest + 1..=largest + round as u64).collect();
    for v in more {
        for (sampler, loss, ratio) in &v.entries {
            let slot = match suite.extra_seeds.iter_mut().find(|e| {
                e.domain == v.domain
                    && e.sampler == *sampler
                    && e.loss == *loss
                    && e.ratio == *ratio
            }) {
                Some(slot) => slot,
                None => {
                    suite.extra_seeds.push(ExtraSeeds {
                        domain: v.domain.clone(),
                        sampler: sampler.clone(),
                        loss: loss.clone(),
                        ratio: *ratio,
                        seeds: Vec::new(),
                    });
                    suite.extra_seeds.last_mut().expect("just pushed")
                }
            };
            // Every entry of this round gets the same new seeds, so the reference stays paired.
            for seed in &new {
                if !slot.seeds.contains(seed) {
                    slot.seeds.push(*seed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{compare, decide};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    /// The rule run by `run_until_decided` on one comparison of simulated seed differences: look after
    /// 3, 5, … up to `cap` seeds at α / looks; the first decision stops it.
    fn sequential(d: &[f64], cap: usize, margin: f64) -> (Verdict, usize) {
        let u = UntilDecided {
            max_seeds: cap,
            round: 2,
            margin,
            ..Default::default()
        };
        let alpha = (1.0 - u.level) / u.looks(3) as f64;
        let mut n = 3;
        loop {
            let verdict = decide(&[compare(&d[..n], 1.0 - alpha, margin)], alpha)[0].1;
            if verdict != Verdict::Undecided || n >= cap {
                return (verdict, n);
            }
            n = (n + 2).min(cap);
        }
    }

    #[test]
    fn adding_seeds_until_decided_keeps_the_false_positive_rate_over_its_looks() {
        let normal = Normal::new(0.0, 1.0).unwrap();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(5);
        let reps = 4_000;
        let (mut wrong, mut seeds) = (0, 0);
        for _ in 0..reps {
            let d: Vec<f64> = (0..11).map(|_| normal.sample(&mut rng)).collect();
            let (verdict, n) = sequential(&d, 11, 0.5);
            wrong += usize::from(matches!(verdict, Verdict::Better | Verdict::Worse));
            seeds += n;
        }
        let rate = wrong as f64 / reps as f64;
        // Five looks at α / 5 each: at most α over all of them (within binomial noise).
        assert!(
            rate < 0.05 + 4.0 * (0.05f64 * 0.95 / reps as f64).sqrt(),
            "{rate}"
        );
        // Looking at 3, 5, 7, 9 and 11 seeds at α each would not hold it: the reason for the spending.
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(6);
        let naive = (0..reps)
            .filter(|_| {
                let d: Vec<f64> = (0..11).map(|_| normal.sample(&mut rng)).collect();
                [3, 5, 7, 9, 11]
                    .iter()
                    .any(|&n| compare(&d[..n], 0.95, 0.5).p < 0.05)
            })
            .count() as f64
            / reps as f64;
        assert!(naive > 0.08, "naive repeated looks {naive}");
        eprintln!(
            "sequential A/A: {rate} wrong, {:.2} seeds on average; naive looks {naive}",
            seeds as f64 / reps as f64
        );
    }
}
