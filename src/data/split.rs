//! Train / validation / test splits: a random per-user holdout, leave-last-out by timestamp, or the files
//! as given. Every split is per user, so each user with enough interactions is evaluated.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::loaders::{RawData, RawSplit, Record};
use super::{Dataset, Interactions};
use crate::error::DataError;

/// `[domain].split`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SplitConfig {
    /// For each user, round(test · n) random items to test, round(valid · n) to validation.
    Random(RandomSplit),
    /// For each user, the last interaction by timestamp to test (and the one before to validation).
    LeaveLastOut(LeaveLastOut),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSplit {
    #[serde(default = "default_test")]
    pub test: f64,
    #[serde(default)]
    pub valid: f64,
}

fn default_test() -> f64 {
    0.2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveLastOut {
    #[serde(default)]
    pub valid: bool,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig::Random(RandomSplit {
            test: default_test(),
            valid: 0.0,
        })
    }
}

impl SplitConfig {
    /// Whether the split sets a validation part aside.
    pub fn has_validation(&self) -> bool {
        match self {
            SplitConfig::Random(r) => r.valid > 0.0,
            SplitConfig::LeaveLastOut(l) => l.valid,
        }
    }
}

/// Splits raw records (or keeps a given split) into a `Dataset`.
pub fn apply(
    name: &str,
    raw: RawData,
    split: Option<&SplitConfig>,
    seed: u64,
) -> Result<Dataset, DataError> {
    let pairs = |recs: &[Record]| {
        let mut x = Interactions::default();
        for r in recs {
            x.push(r.user, r.item);
        }
        x
    };
    let mut notes = Vec::new();
    let (train, valid, test) = match raw.split {
        RawSplit::Given { train, valid, test } => {
            given_split(name, pairs(&train), pairs(&valid), pairs(&test), &mut notes)?
        }
        RawSplit::Single(records) => {
            let by_user = group_by_user(raw.n_queries, records);
            let split = split.cloned().unwrap_or_default();
            let parts = match &split {
                SplitConfig::Random(r) => random_holdout(&by_user, r.test, r.valid, seed),
                SplitConfig::LeaveLastOut(l) => leave_last_out(name, &by_user, l.valid)?,
            };
            if parts.2.is_empty() {
                let most = by_user.iter().map(Vec::len).max().unwrap_or(0);
                return Err(DataError::Invalid {
                    what: format!("domain {name}"),
                    message: format!(
                        "the split ({}) leaves no user with a test item: the users have at most \
                         {most} interaction(s) each, and every user keeps one for training; use a \
                         larger `test` share or data with more interactions per user",
                        split_name(&split)
                    ),
                });
            }
            parts
        }
    };
    let mut data = Dataset::new(
        name.to_string(),
        raw.n_queries,
        raw.n_items,
        train,
        valid,
        test,
        None,
    );
    data.notes = notes;
    Ok(data)
}

fn split_name(s: &SplitConfig) -> String {
    match s {
        SplitConfig::Random(r) => format!("random, test = {}, valid = {}", r.test, r.valid),
        SplitConfig::LeaveLastOut(l) => format!("leave-last-out, valid = {}", l.valid),
    }
}

/// Given train / valid / test files: duplicates within a file are dropped, and so are held-out pairs
/// that are also training pairs (the evaluation excludes training items from the ranking, so such a
/// pair could never be found) and validation pairs that are also test pairs; all are reported. A test
/// file that is all training pairs is refused.
fn given_split(
    name: &str,
    train: Interactions,
    valid: Interactions,
    test: Interactions,
    notes: &mut Vec<String>,
) -> Result<(Interactions, Interactions, Interactions), DataError> {
    let dedup = |x: Interactions, what: &str, notes: &mut Vec<String>| {
        let mut seen = std::collections::HashSet::with_capacity(x.len());
        let mut out = Interactions::default();
        for (&u, &i) in x.queries.iter().zip(&x.items) {
            if seen.insert((u, i)) {
                out.push(u, i);
            }
        }
        if out.len() < x.len() {
            notes.push(format!(
                "domain {name}: dropped {} duplicate pair(s) of the {what} file ({} kept)",
                x.len() - out.len(),
                out.len()
            ));
        }
        (out, seen)
    };
    let (train, in_train) = dedup(train, "train", notes);
    let (valid, _) = dedup(valid, "valid", notes);
    let (test, _) = dedup(test, "test", notes);
    let not_in_train = |x: Interactions, what: &str, notes: &mut Vec<String>| {
        let mut out = Interactions::default();
        for (&u, &i) in x.queries.iter().zip(&x.items) {
            if !in_train.contains(&(u, i)) {
                out.push(u, i);
            }
        }
        let overlap = x.len() - out.len();
        if overlap > 0 && !out.is_empty() {
            notes.push(format!(
                "domain {name}: dropped {overlap} {what} pair(s) that are also training pairs ({} kept)",
                out.len()
            ));
        }
        (out, overlap)
    };
    let (valid, _) = not_in_train(valid, "validation", notes);
    let (test_kept, overlap) = not_in_train(test, "test", notes);
    let valid = not_in_test(name, valid, &test_kept, notes);
    if test_kept.is_empty() {
        return Err(DataError::Invalid {
            what: format!("domain {name}"),
            message: if overlap > 0 {
                format!(
                    "all {overlap} test pairs are also training pairs: the test file must hold \
                     interactions held out of the train file"
                )
            } else {
                "the test file has no interactions".into()
            },
        });
    }
    Ok((train, valid, test_kept))
}

/// `valid` without the pairs that are also test pairs, reported: the test ranking excludes validation
/// items, so such a test pair could never be found, and selecting epochs on it would peek at the test.
fn not_in_test(
    name: &str,
    valid: Interactions,
    test: &Interactions,
    notes: &mut Vec<String>,
) -> Interactions {
    let in_test: std::collections::HashSet<(u32, u32)> = test
        .queries
        .iter()
        .copied()
        .zip(test.items.iter().copied())
        .collect();
    let mut out = Interactions::default();
    for (&u, &i) in valid.queries.iter().zip(&valid.items) {
        if !in_test.contains(&(u, i)) {
            out.push(u, i);
        }
    }
    let dropped = valid.len() - out.len();
    if dropped > 0 {
        notes.push(format!(
            "domain {name}: dropped {dropped} validation pair(s) that are also test pairs ({} kept)",
            out.len()
        ));
    }
    out
}

/// Each user's records, duplicates of an item collapsed to the latest interaction.
fn group_by_user(n_queries: usize, records: Vec<Record>) -> Vec<Vec<Record>> {
    let mut by_user: Vec<Vec<Record>> = vec![Vec::new(); n_queries];
    for r in records {
        by_user[r.user as usize].push(r);
    }
    for recs in &mut by_user {
        recs.sort_by_key(|r| (r.item, std::cmp::Reverse(r.timestamp)));
        recs.dedup_by_key(|r| r.item);
    }
    by_user
}

/// Per-user random holdout. Users keep at least one training item.
pub fn random_holdout(
    by_user: &[Vec<Record>],
    test: f64,
    valid: f64,
    seed: u64,
) -> (Interactions, Interactions, Interactions) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let (mut tr, mut va, mut te) = Default::default();
    for recs in by_user {
        let mut items: Vec<(u32, u32)> = recs.iter().map(|r| (r.user, r.item)).collect();
        items.shuffle(&mut rng);
        let n = items.len();
        let n_test = ((test * n as f64).round() as usize).min(n.saturating_sub(1));
        let n_valid = ((valid * n as f64).round() as usize).min(n.saturating_sub(1 + n_test));
        for (j, &(u, i)) in items.iter().enumerate() {
            let part: &mut Interactions = if j < n_test {
                &mut te
            } else if j < n_test + n_valid {
                &mut va
            } else {
                &mut tr
            };
            part.push(u, i);
        }
    }
    (tr, va, te)
}

fn leave_last_out(
    name: &str,
    by_user: &[Vec<Record>],
    with_valid: bool,
) -> Result<(Interactions, Interactions, Interactions), DataError> {
    let (mut tr, mut va, mut te) = (
        Interactions::default(),
        Interactions::default(),
        Interactions::default(),
    );
    let held = 1 + usize::from(with_valid);
    for recs in by_user {
        let mut recs = recs.clone();
        if recs.iter().any(|r| r.timestamp.is_none()) {
            return Err(DataError::Invalid {
                what: format!("domain {name}"),
                message:
                    "split `leave-last-out` needs a timestamp column (user,item,rating,timestamp); \
                          use `random` for data without timestamps"
                        .into(),
            });
        }
        recs.sort_by_key(|r| (r.timestamp, r.item));
        let n = recs.len();
        // A user needs one training item besides those held out.
        let keep = if n > held { n - held } else { n };
        for (j, r) in recs.iter().enumerate() {
            if j < keep {
                tr.push(r.user, r.item)
            } else if j == n - 1 {
                te.push(r.user, r.item)
            } else {
                va.push(r.user, r.item)
            }
        }
    }
    Ok((tr, va, te))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(n_queries: u32, per_user: u32) -> Vec<Vec<Record>> {
        (0..n_queries)
            .map(|u| {
                (0..per_user)
                    .map(|i| Record {
                        user: u,
                        item: i,
                        timestamp: Some(i as i64 * 10),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn random_holdout_takes_the_fraction_of_every_user_and_is_seeded() {
        let by_user = recs(5, 10);
        let (tr, va, te) = random_holdout(&by_user, 0.2, 0.1, 7);
        assert_eq!((tr.len(), va.len(), te.len()), (35, 5, 10));
        let again = random_holdout(&by_user, 0.2, 0.1, 7);
        assert_eq!(te, again.2);
        assert_ne!(te, random_holdout(&by_user, 0.2, 0.1, 8).2);
    }

    #[test]
    fn leave_last_out_holds_out_the_latest_items() {
        let (tr, va, te) = leave_last_out("t", &recs(2, 4), true).unwrap();
        assert_eq!(te.items, vec![3, 3]);
        assert_eq!(va.items, vec![2, 2]);
        assert_eq!(tr.len(), 4);
    }

    #[test]
    fn a_user_with_one_item_keeps_it_for_training() {
        let (tr, _, te) = random_holdout(&recs(1, 1), 0.5, 0.0, 0);
        assert_eq!((tr.len(), te.len()), (1, 0));
    }
}
