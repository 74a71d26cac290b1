//! The models a server loads: one directory per direction, each with its languages and its
//! scheduler, and the routes between languages (direct, or through English).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use transduce::translate::scheduler::{Scheduler, SchedulerOptions};
use transduce::{LoadOptions, ModelDir, Translator};

/// A loaded model and the scheduler that batches its requests.
pub struct Model {
    pub dir: PathBuf,
    pub source: String,
    pub target: String,
    pub scheduler: Scheduler,
}

/// Every model, by direction.
pub struct Models {
    models: Vec<Model>,
}

/// The language pivot translations go through when there is no direct model.
pub const PIVOT: &str = "en";

impl Models {
    /// Loads every model directory directly under `dir` (a directory holding a model itself
    /// counts too). A model whose languages are not recorded is refused, naming it.
    pub fn load(dir: &Path, load: &LoadOptions, scheduling: SchedulerOptions) -> anyhow::Result<Models> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        if dir.join(transduce::model_dir::CONFIG).is_file() {
            dirs.push(dir.to_path_buf());
        } else {
            let entries = std::fs::read_dir(dir).with_context(|| format!("--models {}", dir.display()))?;
            for entry in entries {
                let path = entry.with_context(|| format!("--models {}", dir.display()))?.path();
                if path.join(transduce::model_dir::CONFIG).is_file() {
                    dirs.push(path);
                }
            }
            dirs.sort();
        }
        if dirs.is_empty() {
            bail!("--models {}: no model directory (with a config.json) in it", dir.display());
        }
        let mut models: Vec<Model> = Vec::new();
        for path in dirs {
            let languages = ModelDir::open(&path)?.languages()?.with_context(|| {
                format!(
                    "{}: the model does not say which languages it translates: add \"source_lang\" and \
                     \"target_lang\" to its tokenizer_config.json (transduce train --src-lang/--tgt-lang writes them)",
                    path.display()
                )
            })?;
            if let Some(other) = models.iter().find(|m| m.source == languages.source && m.target == languages.target) {
                bail!(
                    "{} and {} both translate {} → {}: keep one",
                    other.dir.display(),
                    path.display(),
                    languages.source,
                    languages.target
                );
            }
            let translator = Translator::load_with(&path, load.clone())?;
            let scheduler = Scheduler::start(Arc::new(translator), scheduling)?;
            tracing::info!(model = %path.display(), source = %languages.source, target = %languages.target, "loaded");
            models.push(Model { dir: path, source: languages.source, target: languages.target, scheduler });
        }
        Ok(Models { models })
    }

    pub fn all(&self) -> &[Model] {
        &self.models
    }

    /// Languages models read, sorted.
    pub fn sources(&self) -> Vec<String> {
        self.models.iter().map(|m| m.source.clone()).collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// Every language a model reads or writes, sorted.
    pub fn languages(&self) -> Vec<String> {
        self.models
            .iter()
            .flat_map(|m| [m.source.clone(), m.target.clone()])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn direct(&self, source: &str, target: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.source == source && m.target == target)
    }

    /// The models that take `source` to `target`: the direct one, or two through English.
    pub fn route(&self, source: &str, target: &str) -> Option<Vec<&Model>> {
        if let Some(m) = self.direct(source, target) {
            return Some(vec![m]);
        }
        if source == PIVOT || target == PIVOT {
            return None;
        }
        Some(vec![self.direct(source, PIVOT)?, self.direct(PIVOT, target)?])
    }

    /// The languages `source` translates into, sorted.
    pub fn targets(&self, source: &str) -> Vec<String> {
        self.languages().into_iter().filter(|t| t != source && self.route(source, t).is_some()).collect()
    }
}
