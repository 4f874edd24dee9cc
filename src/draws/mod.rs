//! Random draws that every layer may use: Walker's alias tables for discrete distributions and
//! Gumbel-top-k keys for draws without replacement. Ground floor: imports nothing of the crate.

pub mod alias;
pub mod gumbel;

pub use alias::AliasTable;
