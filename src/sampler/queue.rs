//! A FIFO queue of negatives from past batches (He et al., "Momentum Contrast for Unsupervised Visual
//! Representation Learning", CVPR 2020): the item embeddings of every batch's positives are enqueued,
//! detached, after the batch has drawn its negatives, and the oldest leave once `size` entries are held.
//! Under the `softmax` loss (MoCo's InfoNCE) every row takes the *whole* queue as its negatives, one
//! shared score matrix (`negatives = "auto"`, or `"all"` under any loss); otherwise (or with
//! `negatives = "draws"`) k entries drawn uniformly from the queue. Either way with the embeddings they had when enqueued:
//! stale by construction, up to size / batch steps old (MoCo's momentum encoder keeps them consistent;
//! with a plain MF model the staleness is what this sampler measures). An entry that is the row's positive
//! or a known positive of the query is masked out. The first batch, with the queue empty, is enqueued
//! first and draws from itself.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use crate::loss::LossConfig;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{
    shared_mask, Batch, KnownPositives, NegativeItems, Negatives, SampleContext, Sampler,
    WholeOrDraws,
};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Entries held (MoCo uses 65536 image keys; 4096 positives are a few batches here).
    pub size: usize,
    /// `auto`: the whole queue under `softmax`, k draws otherwise; `all`; `draws`.
    pub negatives: WholeOrDraws,
    pub exclude_positives: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            size: 4096,
            negatives: WholeOrDraws::Auto,
            exclude_positives: true,
        }
    }
}

impl QueueConfig {
    /// Takes the whole queue under `loss` (ratio-free).
    pub fn takes_everything(&self, loss: &crate::loss::LossConfig) -> bool {
        self.negatives.takes_everything(loss)
    }
}

impl DeclaredSampler for QueueConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "queue",
            family: "efficient",
            needs: "embeddings of earlier batches (a FIFO queue)",
            description: "FIFO queue of past batches' positive embeddings (MoCo): stale by construction, or with an image encoder's momentum the keys of MoCo's key encoder; under softmax the whole queue, else k draws; size = 4096, negatives = auto|all|draws, exclude_positives = true",
            version: 3,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: false,
            cost: Cost {
                at_k1: 1.0,
                per_extra_negative: 0.15,
            },
    };

    fn tag(&self) -> String {
        format!("queue-{}{}", self.size, self.negatives.tag())
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        if self.size == 0 {
            return vec![("size", "must be >= 1".into())];
        }
        Vec::new()
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Queue::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        let mut parts = vec![("queue of embeddings".into(), self.size as f64 * s.dim * 4.0)];
        if s.whole {
            parts.push((
                format!(
                    "{} × {} queue scores (mask, scores, gradients)",
                    s.batch, self.size
                ),
                s.batch * self.size as f64 * 13.0,
            ));
        }
        parts
    }

    fn ratio_free_under(&self, loss: &LossConfig) -> bool {
        self.takes_everything(loss)
    }
}

pub struct Queue {
    size: usize,
    negatives: WholeOrDraws,
    known: Option<KnownPositives>,
    /// (size, D) embeddings, allocated on the first batch (when D and the device are known).
    embeddings: Option<Tensor>,
    ids: Vec<i64>,
    /// Next slot to overwrite; `len` slots are filled.
    head: usize,
    len: usize,
    /// The batch that filled the empty queue is in it already: its keys from the step are not stored again.
    seeded_by_this_batch: bool,
}

impl Queue {
    pub fn new(c: &QueueConfig, data: &Dataset) -> Queue {
        Queue {
            size: c.size,
            negatives: c.negatives,
            known: c.exclude_positives.then(|| KnownPositives::new(data)),
            embeddings: None,
            ids: vec![0; c.size],
            head: 0,
            len: 0,
            seeded_by_this_batch: false,
        }
    }

    /// The queued ids, oldest first.
    pub fn ids(&self) -> Vec<i64> {
        let start = (self.head + self.size - self.len) % self.size;
        (0..self.len)
            .map(|j| self.ids[(start + j) % self.size])
            .collect()
    }

    /// Appends the batch's positives (their current embeddings, detached), dropping the oldest.
    /// Stores `keys` (B, D), the embeddings of `batch`'s positives, as the newest entries.
    fn enqueue(&mut self, batch: &Batch, keys: &Tensor) {
        let mut fresh = keys.detach();
        let device = fresh.device();
        let mut positives = batch.positives;
        if positives.len() > self.size {
            // Only the newest `size` fit.
            let skip = positives.len() - self.size;
            fresh = fresh.narrow(0, skip as i64, self.size as i64);
            positives = &positives[skip..];
        }
        let store = self.embeddings.get_or_insert_with(|| {
            Tensor::zeros([self.size as i64, fresh.size()[1]], (Kind::Float, device))
        });
        let slots: Vec<i64> = (0..positives.len())
            .map(|j| ((self.head + j) % self.size) as i64)
            .collect();
        let slots_t = Tensor::from_slice(&slots).to_device(device);
        let _ = store.index_copy_(0, &slots_t, &fresh);
        for (&slot, &p) in slots.iter().zip(positives) {
            self.ids[slot as usize] = p;
        }
        self.head = (self.head + positives.len()) % self.size;
        self.len = (self.len + positives.len()).min(self.size);
    }
}

impl Queue {
    /// Every row against every queued entry, oldest first: shared stored embeddings, a (B, len) mask.
    fn whole_queue(&self, batch: &Batch, cx: &SampleContext) -> Negatives {
        let start = (self.head + self.size - self.len) % self.size;
        let slots: Vec<i64> = (0..self.len)
            .map(|j| ((start + j) % self.size) as i64)
            .collect();
        let ids: Vec<i64> = slots.iter().map(|&s| self.ids[s as usize]).collect();
        let valid = shared_mask(self.known.as_ref(), batch.queries, batch.positives, &ids);
        let store = self.embeddings.as_ref().expect("filled before");
        let embeddings = store.index_select(0, &Tensor::from_slice(&slots).to_device(cx.device));
        let valid = Tensor::from_slice(&valid)
            .view([batch.len() as i64, ids.len() as i64])
            .to_kind(Kind::Bool)
            .to_device(cx.device);
        Negatives {
            items: NegativeItems::Shared {
                ids: Tensor::from_slice(&ids).to_device(cx.device),
                embeddings: Some(embeddings),
            },
            ..Negatives::ids(Tensor::new()).with_valid(valid)
        }
    }
}

impl Sampler for Queue {
    fn name(&self) -> &'static str {
        "queue"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        // An empty queue is filled with the batch's own keys first (masked as its positives); after
        // that, each step's positive keys join it (`observe_positives`): MoCo's enqueue of k.
        if self.len == 0 {
            let keys = tch::no_grad(|| cx.model.items(batch.positives_t));
            self.enqueue(batch, &keys);
            self.seeded_by_this_batch = true;
        }
        if self.negatives.takes_everything(cx.loss) {
            return Ok(self.whole_queue(batch, cx));
        }
        let (b, start) = (batch.len(), (self.head + self.size - self.len) % self.size);
        let mut slots = Vec::with_capacity(b * k);
        let mut ids = Vec::with_capacity(b * k);
        let mut valid = Vec::with_capacity(b * k);
        for (&q, &p) in batch.queries.iter().zip(batch.positives) {
            for _ in 0..k {
                let slot = (start + cx.rng.random_range(0..self.len)) % self.size;
                let item = self.ids[slot];
                let known = self
                    .known
                    .as_ref()
                    .is_some_and(|kn| kn.contains(q as usize, item as u32));
                slots.push(slot as i64);
                ids.push(item);
                valid.push(item != p && !known);
            }
        }
        let shape = [b as i64, k as i64];
        let store = self.embeddings.as_ref().expect("filled above");
        let embeddings = store
            .index_select(0, &Tensor::from_slice(&slots).to_device(cx.device))
            .view([shape[0], shape[1], -1]);
        let to_device = |t: Tensor| t.view(shape).to_device(cx.device);
        Ok(Negatives {
            items: NegativeItems::Embeddings(embeddings),
            origin: Some(to_device(Tensor::from_slice(&ids))),
            ..Negatives::ids(Tensor::new())
                .with_valid(to_device(Tensor::from_slice(&valid)).to_kind(Kind::Bool))
        })
    }

    fn wants_positives(&self) -> bool {
        true
    }

    /// The keys the loss used for the batch's positives (for an image encoder with a momentum encoder,
    /// MoCo's k from the key encoder) join the queue after the step, as MoCo enqueues them.
    fn observe_positives(&mut self, batch: &Batch, embeddings: &Tensor) {
        if std::mem::take(&mut self.seeded_by_this_batch) {
            return;
        }
        self.enqueue(batch, embeddings);
    }
}

/// The queue's stored embedding of every queued entry, oldest first (tests).
#[cfg(test)]
fn stored(q: &Queue) -> Vec<Vec<f32>> {
    let start = (q.head + q.size - q.len) % q.size;
    let slots: Vec<i64> = (0..q.len).map(|j| ((start + j) % q.size) as i64).collect();
    let t = q
        .embeddings
        .as_ref()
        .unwrap()
        .index_select(0, &Tensor::from_slice(&slots))
        .to_device(tch::Device::Cpu);
    Vec::<Vec<f32>>::try_from(t).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{tiny_data, Harness};

    #[test]
    fn is_fifo_and_keeps_the_embeddings_of_enqueue_time() {
        let data = tiny_data();
        let mut h = Harness::new(&data, 1);
        let mut s = Queue::new(
            &QueueConfig {
                size: 5,
                exclude_positives: false,
                ..Default::default()
            },
            &data,
        );
        let item = |h: &Harness, i: i64| {
            Vec::<f32>::try_from(h.model.items(&Tensor::from_slice(&[i])).squeeze_dim(0)).unwrap()
        };
        h.sample(&mut s, &data, &[0, 1], Some(&[1, 2]), 3);
        // The first batch is enqueued before drawing, so it is not enqueued twice.
        assert_eq!(s.ids(), vec![1, 2]);
        h.perturb(1.0);
        let n = h.sample(&mut s, &data, &[0, 1, 2], Some(&[3, 4, 5]), 4);
        let origin = Vec::<Vec<i64>>::try_from(n.origin.unwrap()).unwrap();
        assert!(
            origin.iter().flatten().all(|i| [1, 2].contains(i)),
            "drawn before enqueueing"
        );
        assert_eq!(s.ids(), vec![1, 2, 3, 4, 5]);
        h.sample(&mut s, &data, &[2, 2], Some(&[6, 7]), 1);
        assert_eq!(s.ids(), vec![3, 4, 5, 6, 7], "the oldest left first");
        h.sample(
            &mut s,
            &data,
            &[0, 1, 2, 0, 1, 2, 0],
            Some(&[0, 1, 2, 3, 4, 5, 6]),
            1,
        );
        assert_eq!(
            s.ids(),
            vec![2, 3, 4, 5, 6],
            "a batch larger than the queue keeps its newest"
        );

        // Staleness: item 2 went in before the model moved, the queue still holds its old embedding.
        let mut q = Queue::new(
            &QueueConfig {
                size: 4,
                exclude_positives: false,
                ..Default::default()
            },
            &data,
        );
        let mut h = Harness::new(&data, 1);
        h.sample(&mut q, &data, &[1], Some(&[2]), 1);
        let old2 = item(&h, 2);
        h.perturb(1.0);
        h.sample(&mut q, &data, &[1], Some(&[3]), 1);
        let kept = stored(&q);
        assert_eq!(kept[0], old2, "enqueued embedding, not the current one");
        assert_ne!(kept[0], item(&h, 2));
        assert_eq!(kept[1], item(&h, 3));
    }
}
