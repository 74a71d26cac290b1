//! Learning-rate schedules.

use serde::{Deserialize, Serialize};

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

/// The learning rate of each update.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate throughout (the benchmarks, torch_ref.py's optimiser).
    Constant {
        lr: f64,
    },
    InverseSqrt(InverseSqrt),
}

impl LrSchedule {
    /// Learning rate for update `step` (1-based).
    pub fn lr(&self, step: usize) -> f64 {
        match self {
            LrSchedule::Constant { lr } => *lr,
            LrSchedule::InverseSqrt(s) => s.lr(step),
        }
    }
}

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
}
