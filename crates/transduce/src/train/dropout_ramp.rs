//! A dropout that rises during training: from a low start at the first update to the model's
//! own by a point of the run's budget, level after it. A long run on a small corpus needs much
//! dropout by its end, but high dropout slows its first hours (on Multi30k in 120 minutes,
//! dropout 0.4 trails 0.3 on greedy `val` for the first third of the run and leads at the end);
//! the ramp learns fast early and is held back late, as the "late dropout" of Liu et al.
//! (2023, "Dropout Reduces Underfitting") and the curriculum dropout of Morerio et al. (2017).

use serde::{Deserialize, Serialize};

use super::schedule::Budget;

/// Where the dropout starts and by when it reaches the model's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutRamp {
    /// The sub-layer dropout of the first update (at most the model's).
    pub start: f32,
    /// The fraction of the budget (its updates or its time, whichever is further on) by which
    /// the dropout has risen linearly to the model's: 1 at the end of the run.
    #[serde(default = "default_until")]
    pub until: f64,
}

/// Half the budget: the second half of the run trains at the model's dropout.
pub fn default_until() -> f64 {
    0.5
}

impl DropoutRamp {
    /// The sub-layer dropout of a model whose own is `residual`, once `spent` of the budget is
    /// spent (see [`Budget::spent`]).
    pub fn dropout(&self, residual: f32, spent: f64) -> f32 {
        let risen = (spent / self.until).clamp(0.0, 1.0) as f32;
        self.start + (residual - self.start) * risen
    }

    /// The factor on each of the model's dropout probabilities (sub-layers, embeddings,
    /// attention, activation and source words alike; [`crate::model::Ctx::with_dropout_scale`])
    /// for the update after the first `made`, made `elapsed_s` seconds into a run with `budget`
    /// (the first update: `made` 0, at the start): the ramp's dropout over the model's
    /// `residual`; 1 for a model that drops nothing.
    pub fn scale(&self, residual: f32, budget: &Budget, made: usize, elapsed_s: f64) -> f32 {
        if residual <= 0.0 {
            return 1.0;
        }
        self.dropout(residual, budget.spent(made, 0, elapsed_s)) / residual
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn rises_linearly_to_the_models_dropout_then_stays() {
        let ramp = DropoutRamp { start: 0.1, until: 0.5 };
        assert!(close(ramp.dropout(0.5, 0.0), 0.1));
        assert!(close(ramp.dropout(0.5, 0.25), 0.3));
        for spent in [0.5, 0.9, 1.0] {
            assert!(close(ramp.dropout(0.5, spent), 0.5), "{spent}");
        }
        let to_the_end = DropoutRamp { start: 0.0, until: 1.0 };
        assert!(close(to_the_end.dropout(0.4, 0.5), 0.2));
        let doses: Vec<f32> = (0..=100).map(|i| ramp.dropout(0.4, i as f64 / 100.0)).collect();
        assert!(doses.windows(2).all(|w| w[1] >= w[0]), "never falls");
    }

    #[test]
    fn the_scale_follows_the_budget_by_updates_or_by_the_clock() {
        let ramp = DropoutRamp { start: 0.1, until: 1.0 };
        let updates = Budget { updates: Some(1000), seconds: None };
        assert!(close(ramp.scale(0.4, &updates, 0, 0.0), 0.25));
        assert!(close(ramp.scale(0.4, &updates, 500, 0.0), 0.625));
        assert!(close(ramp.scale(0.4, &updates, 1000, 0.0), 1.0));
        let time = Budget { updates: None, seconds: Some(600.0) };
        assert!(close(ramp.scale(0.4, &time, 10, 300.0), 0.625));
        assert!(close(ramp.scale(0.4, &time, 10, 900.0), 1.0));
        assert_eq!(ramp.scale(0.0, &time, 10, 0.0), 1.0, "nothing to scale");
    }
}
