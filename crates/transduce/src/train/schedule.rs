//! Learning-rate schedules.

use serde::{Deserialize, Serialize};

use crate::choices;

/// Linear warm-up to `peak_lr` over `warmup` updates, then decay with the inverse square root
/// of the update number (Vaswani et al.; fairseq `inverse_sqrt`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InverseSqrt {
    pub peak_lr: f64,
    pub warmup: usize,
}

impl InverseSqrt {
    /// Learning rate for update `step` (1-based).
    pub fn lr(&self, step: usize) -> f64 {
        let step = step.max(1) as f64;
        let warmup = self.warmup.max(1) as f64;
        if step < warmup {
            self.peak_lr * step / warmup
        } else {
            self.peak_lr * (warmup / step).sqrt()
        }
    }
}

/// What a run may spend: the cosine schedule decays over whichever runs out first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub updates: Option<usize>,
    pub seconds: Option<f64>,
}

impl Budget {
    /// The fraction of the budget spent at update `step` (1-based), made `elapsed_s` seconds
    /// into the run, counting updates after the first `from` (a schedule's warm-up): the
    /// updates' fraction or the time's, whichever is further on, within [0, 1]; 0 with no budget.
    pub fn spent(&self, step: usize, from: usize, elapsed_s: f64) -> f64 {
        let by_updates = self.updates.map_or(0.0, |n| {
            let after = step.saturating_sub(from) as f64;
            after / n.saturating_sub(from).max(1) as f64
        });
        let by_time = self.seconds.map_or(0.0, |s| elapsed_s / s);
        by_updates.max(by_time).clamp(0.0, 1.0)
    }

    /// Whether the run has a budget of updates or of time.
    pub fn is_set(&self) -> bool {
        self.updates.is_some() || self.seconds.is_some()
    }
}

/// Linear warm-up to `peak_lr` over `warmup` updates, then a half cosine down to
/// `floor × peak_lr` at the end of the budget (the updates after warm-up, or the wall time,
/// whichever is nearer its end), flat after it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cosine {
    pub peak_lr: f64,
    pub warmup: usize,
    /// The last rate as a fraction of the peak.
    pub floor: f64,
    pub budget: Budget,
}

impl Cosine {
    /// Learning rate for update `step` (1-based) made `elapsed_s` seconds into the run.
    pub fn lr(&self, step: usize, elapsed_s: f64) -> f64 {
        if step < self.warmup {
            return self.peak_lr * step.max(1) as f64 / self.warmup as f64;
        }
        let progress = self.budget.spent(step, self.warmup, elapsed_s);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.peak_lr * (self.floor + (1.0 - self.floor) * cosine)
    }
}

/// The learning rate of each update.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate throughout (the benchmarks, torch_ref.py's optimiser).
    Constant {
        lr: f64,
    },
    InverseSqrt(InverseSqrt),
    Cosine(Cosine),
}

impl LrSchedule {
    /// Learning rate for update `step` (1-based), made `elapsed_s` seconds into the run (only a
    /// time-budgeted cosine reads it).
    pub fn lr(&self, step: usize, elapsed_s: f64) -> f64 {
        match self {
            LrSchedule::Constant { lr } => *lr,
            LrSchedule::InverseSqrt(s) => s.lr(step),
            LrSchedule::Cosine(s) => s.lr(step, elapsed_s),
        }
    }
}

/// Which schedule `transduce train` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Cosine over the run's budget (`max_updates` or `max_time`; a run without either is refused).
    Cosine,
    InverseSqrt,
    Constant,
}

choices!(ScheduleKind, "learning-rate schedule", {
    Cosine => "cosine", InverseSqrt => "inverse-sqrt", Constant => "constant"
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_as_inverse_sqrt() {
        let s = InverseSqrt { peak_lr: 1e-3, warmup: 100 };
        assert!((s.lr(50) - 5e-4).abs() < 1e-15);
        assert!((s.lr(100) - 1e-3).abs() < 1e-15);
        assert!((s.lr(400) - 5e-4).abs() < 1e-15);
        assert!(s.lr(1) > 0.0);
    }

    #[test]
    fn cosine_reaches_its_floor_at_the_end_of_the_update_budget() {
        let budget = Budget { updates: Some(1100), seconds: None };
        let s = Cosine { peak_lr: 1e-3, warmup: 100, floor: 0.05, budget };
        assert!((s.lr(50, 0.0) - 5e-4).abs() < 1e-15);
        assert!((s.lr(100, 0.0) - 1e-3).abs() < 1e-15);
        // halfway through the decay: the mean of peak and floor
        assert!((s.lr(600, 0.0) - 1e-3 * (0.05 + 0.95 * 0.5)).abs() < 1e-12);
        assert!((s.lr(1100, 0.0) - 5e-5).abs() < 1e-15);
        assert!((s.lr(5000, 0.0) - 5e-5).abs() < 1e-15, "flat after the budget");
        let rates: Vec<f64> = (100..=1100).map(|u| s.lr(u, 0.0)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]), "never rises after warm-up");
    }

    #[test]
    fn a_time_budget_decays_by_the_clock_and_the_nearer_end_wins() {
        let budget = Budget { updates: Some(100_000), seconds: Some(600.0) };
        let s = Cosine { peak_lr: 1e-3, warmup: 10, floor: 0.05, budget };
        // 300 s of 600 in, few updates made: the clock decides
        assert!((s.lr(20, 300.0) - 1e-3 * (0.05 + 0.95 * 0.5)).abs() < 1e-12);
        assert!((s.lr(20, 600.0) - 5e-5).abs() < 1e-15);
        // the updates nearer their end than the clock
        assert!((s.lr(100_000, 1.0) - 5e-5).abs() < 1e-15);
    }
}
