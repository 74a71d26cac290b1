//! An exponential moving average of the weights (Polyak averaging), kept beside training:
//! validation, the best model and the final model read the average, and checkpoints keep it,
//! so a resumed run continues it exactly. On short runs it smooths the last updates' noise as
//! checkpoint averaging does on long ones.

use candle_core::{Result, Tensor, Var};

use crate::kernels::ema::ema_update;
use crate::kernels::Kernels;

/// The average of one parameter: a host copy for the fused CPU update, or a tensor for the
/// reference composition.
enum Average {
    Host(Vec<f32>),
    Tensor(Tensor),
}

/// The moving averages of a fixed, ordered list of variables (the optimizer's order).
pub struct WeightAverage {
    /// The decay once warmed up (e.g. 0.999: about the last thousand updates).
    pub decay: f64,
    params: Vec<(Var, Average)>,
}

impl WeightAverage {
    /// Averages starting at the variables' present values.
    pub fn new(vars: Vec<Var>, decay: f64, kernels: Kernels) -> Result<Self> {
        let params = vars
            .into_iter()
            .map(|var| {
                let average = if kernels.fused_for(var.as_tensor()) {
                    Average::Host(var.as_tensor().flatten_all()?.to_vec1::<f32>()?)
                } else {
                    Average::Tensor(var.as_tensor().copy()?)
                };
                Ok((var, average))
            })
            .collect::<Result<_>>()?;
        Ok(WeightAverage { decay, params })
    }

    /// The decay after update `update` (1-based): `min(decay, (1 + u) / (10 + u))`, so the
    /// first updates are not averaged with the random start (TensorFlow's `num_updates`).
    pub fn decay_at(&self, update: usize) -> f64 {
        let u = update as f64;
        self.decay.min((1.0 + u) / (10.0 + u))
    }

    /// Moves every average towards its variable after update `update`.
    pub fn update(&mut self, update: usize) -> Result<()> {
        let decay = self.decay_at(update);
        for (var, average) in &mut self.params {
            match average {
                Average::Host(values) => ema_update(values, var.as_tensor(), decay as f32)?,
                Average::Tensor(t) => *t = ((&*t * decay)? + (var.as_tensor() * (1.0 - decay))?)?,
            }
        }
        Ok(())
    }

    /// The averages, in the variables' order and shapes.
    pub fn averages(&self) -> Result<Vec<Tensor>> {
        self.params
            .iter()
            .map(|(var, average)| match average {
                Average::Host(values) => Tensor::from_slice(values, var.shape(), var.device()),
                Average::Tensor(t) => Ok(t.clone()),
            })
            .collect()
    }

    /// Puts back averages that [`WeightAverage::averages`] gave (a checkpoint's).
    pub fn restore(&mut self, averages: Vec<Tensor>) -> Result<()> {
        if averages.len() != self.params.len() {
            candle_core::bail!("ema: {} averages for {} parameters", averages.len(), self.params.len());
        }
        for ((var, average), restored) in self.params.iter_mut().zip(averages) {
            if restored.shape() != var.shape() {
                candle_core::bail!(
                    "ema: an average of shape {:?} for a parameter of {:?}",
                    restored.shape(),
                    var.shape()
                );
            }
            *average = match average {
                Average::Host(_) => Average::Host(restored.flatten_all()?.to_vec1::<f32>()?),
                Average::Tensor(_) => Average::Tensor(restored.to_dtype(var.dtype())?),
            };
        }
        Ok(())
    }

    /// Runs `f` with the averages in the variables, then puts the trained values back (also
    /// when `f` fails).
    pub fn with_averaged<T, E: From<candle_core::Error>>(
        &self,
        f: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let trained: Vec<Tensor> = self.params.iter().map(|(var, _)| var.as_tensor().copy()).collect::<Result<_>>()?;
        for ((var, _), average) in self.params.iter().zip(self.averages()?) {
            var.set(&average)?;
        }
        let outcome = f();
        for ((var, _), trained) in self.params.iter().zip(&trained) {
            var.set(trained)?;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn vars() -> Vec<Var> {
        let a = Var::from_tensor(&Tensor::arange(0f32, 40_000.0, &Device::Cpu).unwrap().reshape((200, 200)).unwrap());
        vec![a.unwrap(), Var::new(&[1f32, -2.0, 3.0], &Device::Cpu).unwrap()]
    }

    #[test]
    fn the_fused_average_tracks_the_reference_and_warms_up() {
        let (fused_vars, reference_vars) = (vars(), vars());
        let mut fused = WeightAverage::new(fused_vars.clone(), 0.99, Kernels::Fused).unwrap();
        let mut reference = WeightAverage::new(reference_vars.clone(), 0.99, Kernels::Reference).unwrap();
        assert!((fused.decay_at(1) - 2.0 / 11.0).abs() < 1e-12 && fused.decay_at(100_000) == 0.99);
        for update in 1..=20 {
            for vars in [&fused_vars, &reference_vars] {
                for v in vars {
                    v.set(&((v.as_tensor() * 0.5).unwrap() + update as f64).unwrap()).unwrap();
                }
            }
            fused.update(update).unwrap();
            reference.update(update).unwrap();
        }
        for (f, r) in fused.averages().unwrap().iter().zip(reference.averages().unwrap()) {
            let diff = (f - r).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-3, "fused and reference averages differ by {diff}");
        }
        // by hand for the small parameter's first element over the first two updates
        let mut one = WeightAverage::new(vars(), 0.99, Kernels::Reference).unwrap();
        let v = one.params[1].0.clone();
        v.set(&Tensor::new(&[3f32, 0.0, 0.0], &Device::Cpu).unwrap()).unwrap();
        one.update(1).unwrap();
        let d = 2.0 / 11.0;
        let got = one.averages().unwrap()[1].to_vec1::<f32>().unwrap()[0] as f64;
        assert!((got - (d * 1.0 + (1.0 - d) * 3.0)).abs() < 1e-6, "{got}");
    }

    #[test]
    fn the_averages_are_lent_to_the_variables_and_taken_back() {
        let vars = vars();
        let mut average = WeightAverage::new(vars.clone(), 0.5, Kernels::Fused).unwrap();
        vars[1].set(&Tensor::new(&[5f32, 5.0, 5.0], &Device::Cpu).unwrap()).unwrap();
        average.update(1_000).unwrap();
        let seen = average
            .with_averaged(|| -> candle_core::Result<Vec<f32>> { vars[1].as_tensor().to_vec1::<f32>() })
            .unwrap();
        assert_eq!(seen, vec![3.0, 1.5, 4.0]);
        assert_eq!(vars[1].as_tensor().to_vec1::<f32>().unwrap(), vec![5.0, 5.0, 5.0]);
        // a checkpoint's averages come back exactly
        let saved = average.averages().unwrap();
        let mut again = WeightAverage::new(vars.clone(), 0.5, Kernels::Fused).unwrap();
        again.restore(saved.clone()).unwrap();
        for (a, b) in again.averages().unwrap().iter().zip(&saved) {
            assert_eq!(
                a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            );
        }
    }
}
