//! Refuse what cannot fit, before anything trains: an estimate of the largest allocations of each cell
//! (and of the synthetic generator), compared with the machine's memory (or `--max-memory`). A ratio of
//! 10^8 or a 10^8 × 10^8 synthetic data set is refused in milliseconds with the estimate, instead of
//! panicking in libtorch's allocator or running until killed.
//!
//! The estimates are deliberately coarse (the dominant tensors, with their gradients and optimiser
//! state); they decide only what is clearly impossible.

use crate::data::{DataConfig, Dataset};
use crate::error::ResourceError;
use crate::metrics;
use crate::sampler::Shape;
use crate::suite::{Domain, RunSpec};
use crate::train::OptimizerKind;

/// The parts of an estimate: (what, bytes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Estimate {
    pub parts: Vec<(String, f64)>,
}

impl Estimate {
    pub fn total(&self) -> f64 {
        self.parts.iter().map(|(_, b)| b).sum()
    }

    fn add(&mut self, what: impl Into<String>, bytes: f64) {
        if bytes > 0.0 {
            self.parts.push((what.into(), bytes));
        }
    }

    /// The largest parts, for the error message.
    fn largest(&self, n: usize) -> String {
        let mut parts = self.parts.clone();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts
            .iter()
            .take(n)
            .map(|(what, b)| format!("{what}: {}", human(*b)))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The machine's memory in bytes (Linux `MemTotal`; 8 GiB where it cannot be read).
pub fn machine_memory() -> u64 {
    crate::provenance::proc_kib("/proc/meminfo", "MemTotal:").map_or(8 << 30, |kib| kib * 1024)
}

/// `512MiB`, `8GiB`, `2G`, `1.5TB`, or plain bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size: use e.g. 512MiB, 16GiB or 2TB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}: use B, KiB, MiB, GiB or TiB"
            ))
        }
    };
    Ok((number * scale as f64) as u64)
}

/// Bytes for people: `3.2 GiB`.
pub fn human(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The synthetic generator's memory, from its configuration alone (before it runs).
pub fn generator_estimate(domain: &Domain) -> Estimate {
    let mut e = Estimate::default();
    if let DataConfig::Synthetic(c) = &domain.config.data {
        let (users, items, dim) = (c.users as f64, c.items as f64, c.dim as f64);
        let relevant = (c.relevant_fraction * items).ceil().max(1.0);
        e.add("latent factors", (users + items) * dim * 4.0);
        e.add(
            "ground-truth relevant sets",
            users * relevant * 8.0 + users * relevant * 4.0,
        );
        e.add(
            "interactions",
            users * c.interactions_per_user.min(relevant) * 32.0,
        );
        e.add("per-user affinity and order", items * 8.0);
    }
    if let DataConfig::SyntheticKg(c) = &domain.config.data {
        let truth = c.triples as f64 / c.observed;
        e.add(
            "latent vectors",
            (c.entities + c.relations) as f64 * c.dim as f64 * 4.0,
        );
        e.add(
            "a block of anchor distances (f64, with temporaries)",
            3.0 * (16u64 << 20) as f64 * 8.0,
        );
        // Triples, their pairs, query index, known answers, ground truth.
        e.add(
            "triples, queries and answers",
            truth * 12.0 + c.triples as f64 * 120.0,
        );
    }
    e
}

/// Refuses a synthetic data set whose generation cannot fit in `limit` bytes.
pub fn check_generator(domain: &Domain, limit: u64) -> Result<(), ResourceError> {
    let e = generator_estimate(domain);
    if e.total() > limit as f64 {
        return Err(ResourceError {
            message: format!(
                "domain {:?}: generating its synthetic data needs about {}, more than the {} allowed \
                 ({}); lower `users`, `items` or `relevant_fraction`, or raise the limit with \
                 --max-memory",
                domain.name,
                human(e.total()),
                human(limit as f64),
                e.largest(3)
            ),
        });
    }
    Ok(())
}

/// The dominant allocations of one cell on `data`.
pub fn cell_estimate(spec: &RunSpec, data: &Dataset) -> Estimate {
    let mut e = Estimate::default();
    let dim = spec.model().dim() as f64;
    let (users, items) = (data.n_queries as f64, data.n_items as f64);
    // Trainable rows: users and items, or entities and relations (a KG query is composed, not stored).
    let rows = match &data.kg {
        Some(kg) => items + kg.queries.n_relations as f64,
        None => users + items,
    };
    let batch = (spec.train.batch_size as f64).min(data.train.len().max(1) as f64);
    let k = spec.ratio.max(1) as f64;
    let copies = match spec.train.optimizer {
        OptimizerKind::Adam => 4.0, // value, gradient, two moments
        OptimizerKind::Sgd => 2.0,
        OptimizerKind::Word2vec => 1.0, // updated in place, no gradient tensors
    };
    e.add(
        "embedding tables with gradients and optimiser state",
        rows * dim * 4.0 * copies,
    );
    // Text draws an epoch's pairs a piece at a time.
    let held = match &data.text {
        Some(_) => data.n_examples().min(crate::data::text::PIECE_PAIRS),
        None => data.train.len(),
    };
    e.add("training order and batch ids", held as f64 * 24.0);
    // Per batch: k negatives' ids, gathered embeddings, their gradient and the product's intermediates.
    e.add(
        format!(
            "{} × {k} negatives per batch (ids, embeddings, gradients)",
            batch
        ),
        batch * k * (16.0 + 3.0 * dim * 4.0),
    );
    let block = metrics::block_users(data.n_items) as f64;
    e.add(
        "evaluation score block",
        block.min(users) * items * metrics::BYTES_PER_SCORE as f64,
    );
    e.add(
        "evaluation exclusion and target index",
        (data.train.len() + data.valid.len() + data.test.len()) as f64 * 16.0 * 2.0,
    );
    e.add(
        "known-positive bitset",
        (users * items / 8.0).min((1u64 << 26) as f64),
    );
    e.add("diagnostics", items * 16.0 + 16e6 * 5.0_f64.min(items));
    // In-batch and queue under softmax score every row against the whole batch or queue.
    let shape = Shape {
        queries: users,
        items,
        batch,
        k,
        dim,
        whole: spec.sampler.config.ratio_free_under(&spec.loss),
    };
    for (what, bytes) in spec.sampler.config.memory(&shape) {
        e.add(what, bytes);
    }
    e
}

/// Refuses cells that cannot fit in `limit` bytes, alone or `jobs` at a time.
pub fn check_cells(
    estimates: &[(String, Estimate)],
    jobs: usize,
    limit: u64,
) -> Result<(), ResourceError> {
    let limit_f = limit as f64;
    let Some((id, worst)) = estimates
        .iter()
        .max_by(|a, b| a.1.total().total_cmp(&b.1.total()))
    else {
        return Ok(());
    };
    if worst.total() > limit_f {
        return Err(ResourceError {
            message: format!(
                "cell {id} needs about {}, more than the {} allowed (largest parts: {}); lower the \
                 ratio, batch size or model size, or raise the limit with --max-memory",
                human(worst.total()),
                human(limit_f),
                worst.largest(3)
            ),
        });
    }
    let mut totals: Vec<f64> = estimates.iter().map(|(_, e)| e.total()).collect();
    totals.sort_by(|a, b| b.total_cmp(a));
    let together: f64 = totals.iter().take(jobs).sum();
    if together > limit_f {
        return Err(ResourceError {
            message: format!(
                "{jobs} cells at once need about {}, more than the {} allowed: run fewer at once \
                 (--jobs), or raise the limit with --max-memory",
                human(together),
                human(limit_f)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("2G").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("1.5 TiB").unwrap(), 3 << 39);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("lots").is_err() && parse_bytes("3 parsecs").is_err());
        assert_eq!(human(3.0 * (1u64 << 30) as f64), "3.0 GiB");
    }

    #[test]
    fn the_largest_cell_and_the_jobs_together_must_fit() {
        let e = |gib: f64| Estimate {
            parts: vec![("x".into(), gib * (1u64 << 30) as f64)],
        };
        let cells = vec![("a".to_string(), e(3.0)), ("b".to_string(), e(2.0))];
        assert!(check_cells(&cells, 2, 6 << 30).is_ok());
        let err = check_cells(&cells, 2, 4 << 30).unwrap_err().message;
        assert!(err.contains("--jobs"), "{err}");
        let err = check_cells(&cells, 1, 2 << 30).unwrap_err().message;
        assert!(err.contains("cell a needs about 3.0 GiB"), "{err}");
    }
}
