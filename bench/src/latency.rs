//! Latency distributions for the benchmarks.

use std::time::Duration;

use serde::Serialize;

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// The distribution of `samples` (nearest rank).
pub fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let rank = ((samples.len() as f64 - 1.0) * q).round() as usize;
        ms(samples[rank.min(samples.len() - 1)])
    };
    Latency { count: samples.len(), p50: at(0.50), p99: at(0.99), max: samples.last().map_or(0.0, |d| ms(*d)) }
}
