//! nsbench: reproducible benchmarks of negative samplers for contrastive and implicit-feedback models.
//!
//! Data flow of `nsbench run SUITE`: `suite::load` (parse + validate) → `suite::expand` (the grid) →
//! `runner::run` (skip finished cells; for each other cell `data::load` → `ModelConfig::build` →
//! `SamplerConfig::build` → `train::fit` → `store::write_cell`) → `store::merge` → `report::render`.

pub mod audit;
pub mod cell;
pub mod cli;
pub mod data;
pub mod domain;
pub mod draws;
pub mod error;
pub mod expect;
pub mod gate;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod provenance;
pub mod report;
pub mod resources;
pub mod runner;
pub mod sampler;
pub mod sequential;
pub mod shard;
pub mod slurm;
pub mod stats;
pub mod store;
pub mod suite;
pub mod train;
