//! Language codes and names as the APIs spell them: LibreTranslate's lowercase ISO 639-1
//! (`fr`), DeepL's uppercase with target variants (`EN-US`), English names from ISO 639, and
//! language identification restricted to the languages the loaded models read.

use isolang::Language;

/// The English name of an ISO 639-1 (or 639-3) code, or the code itself.
pub fn name(code: &str) -> String {
    let lang = match code.len() {
        2 => Language::from_639_1(code),
        _ => Language::from_639_3(code),
    };
    lang.map_or_else(|| code.to_string(), |l| l.to_name().to_string())
}

/// A DeepL language code (`FR`, `EN-US`, `PT-BR`) as the models' code (`fr`, `en`, `pt`).
pub fn from_deepl(code: &str) -> String {
    code.split('-').next().unwrap_or(code).trim().to_lowercase()
}

/// A model's code as DeepL spells a source language (`FR`).
pub fn to_deepl(code: &str) -> String {
    code.to_uppercase()
}

/// DeepL's target variants of a language: `en` is offered as `EN-US` and `EN-GB` (and `EN`),
/// `pt` as `PT-PT` and `PT-BR`.
pub fn deepl_targets(code: &str) -> Vec<(String, String)> {
    let base = name(code);
    match code {
        "en" => vec![
            ("EN".into(), base.clone()),
            ("EN-GB".into(), format!("{base} (British)")),
            ("EN-US".into(), format!("{base} (American)")),
        ],
        "pt" => vec![("PT-BR".into(), format!("{base} (Brazilian)")), ("PT-PT".into(), format!("{base} (European)"))],
        _ => vec![(to_deepl(code), base)],
    }
}

/// Identifies the language of texts among `allowed` (ISO 639-1 codes of the loaded models).
pub struct Detector {
    /// The allowed codes that whatlang knows, with its name for them.
    known: Vec<(String, whatlang::Lang)>,
}

/// One candidate language with LibreTranslate's confidence (0–100).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Detection {
    pub confidence: f64,
    pub language: String,
}

impl Detector {
    pub fn new(allowed: &[String]) -> Self {
        let known = allowed
            .iter()
            .filter_map(|code| {
                let lang = match code.len() {
                    2 => Language::from_639_1(code),
                    _ => Language::from_639_3(code),
                }?;
                Some((code.clone(), whatlang::Lang::from_code(lang.to_639_3())?))
            })
            .collect();
        Detector { known }
    }

    /// Candidates for `text`, most likely first (empty when nothing is known or the text has no
    /// letters).
    pub fn detect(&self, text: &str) -> Vec<Detection> {
        match self.known.len() {
            0 => return Vec::new(),
            // nothing to choose between
            1 => return vec![Detection { confidence: 100.0, language: self.known[0].0.clone() }],
            _ => {}
        }
        let detector = whatlang::Detector::with_allowlist(self.known.iter().map(|(_, l)| *l).collect());
        let Some(info) = detector.detect(text) else {
            return Vec::new();
        };
        let Some((code, _)) = self.known.iter().find(|(_, l)| *l == info.lang()) else {
            return Vec::new();
        };
        let confidence = (info.confidence() * 100.0).round();
        vec![Detection { confidence, language: code.clone() }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_deepl_codes() {
        assert_eq!(name("fr"), "French");
        assert_eq!(name("xx"), "xx");
        assert_eq!(from_deepl("EN-US"), "en");
        assert_eq!(from_deepl("de"), "de");
        assert_eq!(to_deepl("fr"), "FR");
        assert_eq!(deepl_targets("en").len(), 3);
    }

    #[test]
    fn detects_among_the_allowed_languages_only() {
        let d = Detector::new(&["fr".into(), "en".into(), "de".into()]);
        assert_eq!(d.detect("Une femme promène son chien dans le parc.")[0].language, "fr");
        assert_eq!(d.detect("A woman walks her dog in the park.")[0].language, "en");
        assert_eq!(d.detect("Eine Frau geht mit ihrem Hund im Park spazieren.")[0].language, "de");
        // Spanish is not loaded: the answer is one of the allowed three
        let es = d.detect("Una mujer pasea a su perro por el parque.");
        assert!(es.iter().all(|c| ["fr", "en", "de"].contains(&c.language.as_str())));
        assert!(d.detect("1234 !!!").is_empty());
    }
}
