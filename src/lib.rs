//! Umbrella package: owns the end-to-end tests and the benchmarks.
pub use ledger;
