//! The models a server loads: one directory per direction or per multilingual model, each with
//! its languages and its scheduler, and the routes between languages (direct, or through English).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use transduce::model_dir::Languages;
use transduce::translate::scheduler::{Scheduler, SchedulerOptions};
use transduce::{LoadOptions, ModelDir, Translator};

/// A loaded model and the scheduler that batches its requests.
pub struct Model {
    pub dir: PathBuf,
    pub languages: ModelLanguages,
    pub scheduler: Scheduler,
}

/// What a model translates, in the server's codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelLanguages {
    /// One direction (a bilingual model: its `tokenizer_config.json` names it).
    Pair { source: String, target: String },
    /// Any of its languages into any other (M2M-100, NLLB-200): server code (ISO 639-1 where
    /// the language has one, as LibreTranslate's) -> the model's code (`fr`, `fra_Latn`).
    Many(BTreeMap<String, String>),
}

impl Model {
    /// Whether the model translates `source` into `target` (server codes) by itself.
    pub fn translates(&self, source: &str, target: &str) -> bool {
        match &self.languages {
            ModelLanguages::Pair { source: s, target: t } => s == source && t == target,
            ModelLanguages::Many(codes) => source != target && codes.contains_key(source) && codes.contains_key(target),
        }
    }

    /// The model's own codes for `source` → `target`, for a multilingual model.
    pub fn direction(&self, source: &str, target: &str) -> Option<Languages> {
        match &self.languages {
            ModelLanguages::Pair { .. } => None,
            ModelLanguages::Many(codes) => {
                Some(Languages { source: codes.get(source)?.clone(), target: codes.get(target)?.clone() })
            }
        }
    }

    /// The server codes the model reads and writes.
    fn codes(&self) -> Vec<String> {
        match &self.languages {
            ModelLanguages::Pair { source, target } => vec![source.clone(), target.clone()],
            ModelLanguages::Many(codes) => codes.keys().cloned().collect(),
        }
    }

    /// The `source` and `target` labels of the model's metrics (`*` for a multilingual model).
    pub fn labels(&self) -> (&str, &str) {
        match &self.languages {
            ModelLanguages::Pair { source, target } => (source, target),
            ModelLanguages::Many(_) => ("*", "*"),
        }
    }

    /// A language the model writes, English where it can (the page's default target).
    pub fn default_target(&self) -> String {
        match &self.languages {
            ModelLanguages::Pair { target, .. } => target.clone(),
            ModelLanguages::Many(codes) if codes.contains_key(PIVOT) => PIVOT.to_string(),
            ModelLanguages::Many(codes) => codes.keys().next().cloned().unwrap_or_default(),
        }
    }

    /// `fr → en`, or `multilingual (202 languages)`, for logs, labels and pages.
    pub fn describe(&self) -> String {
        match &self.languages {
            ModelLanguages::Pair { source, target } => format!("{source} → {target}"),
            ModelLanguages::Many(codes) => format!("multilingual ({} languages)", codes.len()),
        }
    }
}

/// One model's part of a route: `source` → `target` in the server's codes.
#[derive(Clone, Copy)]
pub struct Hop<'a> {
    pub model: &'a Model,
    pub source: &'a str,
    pub target: &'a str,
}

/// The server's code of a multilingual model's language code: ISO 639-1 where the language has
/// one (`fra_Latn` → `fr`, `ast` stays `ast`), else the model's code.
pub fn server_code(model_code: &str) -> String {
    let base = model_code.split('_').next().unwrap_or(model_code);
    let language = match base.len() {
        2 => isolang::Language::from_639_1(base),
        3 => isolang::Language::from_639_3(base),
        _ => None,
    };
    match language.and_then(|l| l.to_639_1()) {
        Some(code) => code.to_string(),
        None => model_code.to_string(),
    }
}

/// Every model, by direction.
pub struct Models {
    models: Vec<Model>,
}

/// The language pivot translations go through when there is no direct model.
pub const PIVOT: &str = "en";

impl Models {
    /// Loads every model directory directly under `dir` (a directory holding a model itself
    /// counts too). A model whose languages are not recorded is refused, naming it. A model
    /// directory holding a file named `shortlist` decodes over that vocabulary shortlist.
    pub fn load(
        dir: &Path,
        load: &LoadOptions,
        scheduling: SchedulerOptions,
        shortlist: Option<&str>,
    ) -> anyhow::Result<Models> {
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
            let mut translator = Translator::load_with(&path, load.clone())?;
            let list = shortlist.map(|name| path.join(name)).filter(|file| file.is_file());
            if let Some(file) = &list {
                translator.set_shortlist(Some(translator.read_shortlist(file)?));
            }
            let languages = match translator.languages() {
                // the first model code of each server code wins (NLLB's zho_Hans before zho_Hant)
                Some(codes) => {
                    let mut map = BTreeMap::new();
                    for code in codes.codes() {
                        map.entry(server_code(code)).or_insert_with(|| code.to_string());
                    }
                    ModelLanguages::Many(map)
                }
                None => {
                    let languages = ModelDir::open(&path)?.languages()?.with_context(|| {
                        format!(
                            "{}: the model does not say which languages it translates: add \"source_lang\" and \
                             \"target_lang\" to its tokenizer_config.json (transduce train --src-lang/--tgt-lang writes \
                             them)",
                            path.display()
                        )
                    })?;
                    ModelLanguages::Pair { source: languages.source, target: languages.target }
                }
            };
            if let ModelLanguages::Pair { source, target } = &languages {
                if let Some(other) = models.iter().find(|m| m.languages == languages) {
                    bail!(
                        "{} and {} both translate {source} → {target}: keep one",
                        other.dir.display(),
                        path.display()
                    );
                }
            }
            let scheduler = Scheduler::start(Arc::new(translator), scheduling)?;
            let model = Model { dir: path, languages, scheduler };
            let shortlist = list.map_or_else(|| "none".to_string(), |f| f.display().to_string());
            tracing::info!(model = %model.dir.display(), languages = %model.describe(), %shortlist, "loaded");
            models.push(model);
        }
        Ok(Models { models })
    }

    pub fn all(&self) -> &[Model] {
        &self.models
    }

    /// Languages models read, sorted.
    pub fn sources(&self) -> Vec<String> {
        let all = self.languages();
        all.iter().filter(|s| all.iter().any(|t| self.direct(s, t).is_some())).cloned().collect()
    }

    /// Every language a model reads or writes, sorted.
    pub fn languages(&self) -> Vec<String> {
        self.models.iter().flat_map(Model::codes).collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// The first model that translates `source` into `target` by itself (bilingual models
    /// first: they were made for the pair).
    fn direct(&self, source: &str, target: &str) -> Option<&Model> {
        let pair = |m: &&Model| matches!(m.languages, ModelLanguages::Pair { .. });
        let mut able = self.models.iter().filter(|m| m.translates(source, target));
        let (pairs, many): (Vec<&Model>, Vec<&Model>) = able.by_ref().partition(pair);
        pairs.into_iter().chain(many).next()
    }

    /// The hops that take `source` to `target`: one model, or two through English.
    pub fn route<'a>(&'a self, source: &'a str, target: &'a str) -> Option<Vec<Hop<'a>>> {
        if let Some(model) = self.direct(source, target) {
            return Some(vec![Hop { model, source, target }]);
        }
        if source == PIVOT || target == PIVOT {
            return None;
        }
        Some(vec![
            Hop { model: self.direct(source, PIVOT)?, source, target: PIVOT },
            Hop { model: self.direct(PIVOT, target)?, source: PIVOT, target },
        ])
    }

    /// The languages `source` translates into, sorted.
    pub fn targets(&self, source: &str) -> Vec<String> {
        self.languages().into_iter().filter(|t| t != source && self.route(source, t).is_some()).collect()
    }
}
