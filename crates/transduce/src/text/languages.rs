//! Language codes of multilingual models, and how a model is told which to translate between.
//!
//! M2M-100 and NLLB-200 mark languages with tokens: the source language's token starts the
//! source (`[src] X </s>`) and the target language's token is forced as the first output token.
//! MADLAD-400 marks only the target, with a token before the source (`<2de> X </s>`).
//! A code is accepted as users write it for the family (`fr` or `__fr__` for M2M-100,
//! `fra_Latn` for NLLB-200, `de` or `<2de>` for MADLAD-400).

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Where a model's language tokens go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LanguageMarking {
    /// The source language's token before the source, the target language's forced as the
    /// first output token (M2M-100, NLLB-200).
    #[default]
    SourceAndTarget,
    /// The target language's token before the source; the source language is not given
    /// (MADLAD-400's `<2xx>`).
    TargetPrefix,
}

/// The language tokens of a model: code (as users write it) -> token id, in the model's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageTokens {
    codes: Vec<(String, u32)>,
    /// Every accepted spelling (the code and its token string) -> id.
    lookup: HashMap<String, u32>,
    marking: LanguageMarking,
}

impl LanguageTokens {
    /// `entries`: (code, token string, id) of each language.
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str, u32)>) -> Self {
        let mut codes = Vec::new();
        let mut lookup = HashMap::new();
        for (code, token, id) in entries {
            codes.push((code.to_string(), id));
            lookup.insert(code.to_string(), id);
            lookup.insert(token.to_string(), id);
        }
        LanguageTokens { codes, lookup, marking: LanguageMarking::SourceAndTarget }
    }

    /// These tokens, placed as `marking` says.
    pub fn with_marking(mut self, marking: LanguageMarking) -> Self {
        self.marking = marking;
        self
    }

    pub fn marking(&self) -> LanguageMarking {
        self.marking
    }

    /// The codes, in the model's order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().map(|(c, _)| c.as_str())
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Whether `id` is a language token.
    pub fn contains_id(&self, id: u32) -> bool {
        self.codes.iter().any(|&(_, i)| i == id)
    }

    /// The token id of `code`; an unknown code is an error naming `option` and a few codes
    /// the model has.
    pub fn id(&self, code: &str, option: &'static str) -> Result<u32> {
        self.lookup.get(code.trim()).copied().ok_or_else(|| {
            let some: Vec<&str> = self.codes().take(6).collect();
            Error::option(
                option,
                format!(
                    "{code:?} is not one of this model's {} language codes (e.g. {}, ...)",
                    self.len(),
                    some.join(", ")
                ),
            )
        })
    }
}

/// The language tokens that lead a sentence pair: before the source, and before the target
/// (forced first when translating, learned when training).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    pub source: Vec<u32>,
    pub target: Vec<u32>,
}

impl LanguageTokens {
    /// The tags of `direction` as this model places them; an unknown or missing code is an
    /// error naming `options` (source, target) as the caller calls them.
    pub fn tags(&self, direction: Direction, options: (&'static str, &'static str)) -> Result<Tags> {
        Ok(match self.marking {
            LanguageMarking::SourceAndTarget => {
                if direction.source.trim().is_empty() {
                    return Err(Error::option(options.0, "this model needs the source language too"));
                }
                Tags {
                    source: vec![self.id(direction.source, options.0)?],
                    target: vec![self.id(direction.target, options.1)?],
                }
            }
            // the source language is not told (any code, or none, is accepted)
            LanguageMarking::TargetPrefix => {
                Tags { source: vec![self.id(direction.target, options.1)?], target: Vec::new() }
            }
        })
    }

    /// The error of a missing direction, naming `option` and a few codes.
    pub fn direction_needed(&self, option: &'static str) -> Error {
        Error::option(
            option,
            format!(
                "this model translates between {} languages: give the source and target language (codes such as {})",
                self.len(),
                self.codes().take(3).collect::<Vec<_>>().join(", ")
            ),
        )
    }
}

/// The source and target language of one translation, as codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Direction<'a> {
    pub source: &'a str,
    pub target: &'a str,
}

/// `de` of MADLAD-400's `<2de>` (`<2zh_Latn>`, `<2pt_PT>`, ...).
pub fn target_code(token: &str) -> Option<&str> {
    let code = token.strip_prefix("<2")?.strip_suffix('>')?;
    let ok = !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then_some(code)
}

/// NLLB-200's 202 codes (`transformers`' `FAIRSEQ_LANGUAGE_CODES`), tokens after the pieces.
pub const NLLB_CODES: [&str; 202] = [
    "ace_Arab", "ace_Latn", "acm_Arab", "acq_Arab", "aeb_Arab", "afr_Latn", "ajp_Arab", "aka_Latn", "amh_Ethi",
    "apc_Arab", "arb_Arab", "ars_Arab", "ary_Arab", "arz_Arab", "asm_Beng", "ast_Latn", "awa_Deva", "ayr_Latn",
    "azb_Arab", "azj_Latn", "bak_Cyrl", "bam_Latn", "ban_Latn", "bel_Cyrl", "bem_Latn", "ben_Beng", "bho_Deva",
    "bjn_Arab", "bjn_Latn", "bod_Tibt", "bos_Latn", "bug_Latn", "bul_Cyrl", "cat_Latn", "ceb_Latn", "ces_Latn",
    "cjk_Latn", "ckb_Arab", "crh_Latn", "cym_Latn", "dan_Latn", "deu_Latn", "dik_Latn", "dyu_Latn", "dzo_Tibt",
    "ell_Grek", "eng_Latn", "epo_Latn", "est_Latn", "eus_Latn", "ewe_Latn", "fao_Latn", "pes_Arab", "fij_Latn",
    "fin_Latn", "fon_Latn", "fra_Latn", "fur_Latn", "fuv_Latn", "gla_Latn", "gle_Latn", "glg_Latn", "grn_Latn",
    "guj_Gujr", "hat_Latn", "hau_Latn", "heb_Hebr", "hin_Deva", "hne_Deva", "hrv_Latn", "hun_Latn", "hye_Armn",
    "ibo_Latn", "ilo_Latn", "ind_Latn", "isl_Latn", "ita_Latn", "jav_Latn", "jpn_Jpan", "kab_Latn", "kac_Latn",
    "kam_Latn", "kan_Knda", "kas_Arab", "kas_Deva", "kat_Geor", "knc_Arab", "knc_Latn", "kaz_Cyrl", "kbp_Latn",
    "kea_Latn", "khm_Khmr", "kik_Latn", "kin_Latn", "kir_Cyrl", "kmb_Latn", "kon_Latn", "kor_Hang", "kmr_Latn",
    "lao_Laoo", "lvs_Latn", "lij_Latn", "lim_Latn", "lin_Latn", "lit_Latn", "lmo_Latn", "ltg_Latn", "ltz_Latn",
    "lua_Latn", "lug_Latn", "luo_Latn", "lus_Latn", "mag_Deva", "mai_Deva", "mal_Mlym", "mar_Deva", "min_Latn",
    "mkd_Cyrl", "plt_Latn", "mlt_Latn", "mni_Beng", "khk_Cyrl", "mos_Latn", "mri_Latn", "zsm_Latn", "mya_Mymr",
    "nld_Latn", "nno_Latn", "nob_Latn", "npi_Deva", "nso_Latn", "nus_Latn", "nya_Latn", "oci_Latn", "gaz_Latn",
    "ory_Orya", "pag_Latn", "pan_Guru", "pap_Latn", "pol_Latn", "por_Latn", "prs_Arab", "pbt_Arab", "quy_Latn",
    "ron_Latn", "run_Latn", "rus_Cyrl", "sag_Latn", "san_Deva", "sat_Beng", "scn_Latn", "shn_Mymr", "sin_Sinh",
    "slk_Latn", "slv_Latn", "smo_Latn", "sna_Latn", "snd_Arab", "som_Latn", "sot_Latn", "spa_Latn", "als_Latn",
    "srd_Latn", "srp_Cyrl", "ssw_Latn", "sun_Latn", "swe_Latn", "swh_Latn", "szl_Latn", "tam_Taml", "tat_Cyrl",
    "tel_Telu", "tgk_Cyrl", "tgl_Latn", "tha_Thai", "tir_Ethi", "taq_Latn", "taq_Tfng", "tpi_Latn", "tsn_Latn",
    "tso_Latn", "tuk_Latn", "tum_Latn", "tur_Latn", "twi_Latn", "tzm_Tfng", "uig_Arab", "ukr_Cyrl", "umb_Latn",
    "urd_Arab", "uzn_Latn", "vec_Latn", "vie_Latn", "war_Latn", "wol_Latn", "xho_Latn", "ydd_Hebr", "yor_Latn",
    "yue_Hant", "zho_Hans", "zho_Hant", "zul_Latn",
];
/// M2M-100's 100 codes (tokens `__xx__` after `vocab.json`).
pub const M2M100_CODES: [&str; 100] = [
    "af", "am", "ar", "ast", "az", "ba", "be", "bg", "bn", "br", "bs", "ca", "ceb", "cs", "cy", "da", "de", "el", "en",
    "es", "et", "fa", "ff", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha", "he", "hi", "hr", "ht", "hu", "hy", "id",
    "ig", "ilo", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "lb", "lg", "ln", "lo", "lt", "lv", "mg", "mk",
    "ml", "mn", "mr", "ms", "my", "ne", "nl", "no", "ns", "oc", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sd", "si",
    "sk", "sl", "so", "sq", "sr", "ss", "su", "sv", "sw", "ta", "th", "tl", "tn", "tr", "uk", "ur", "uz", "vi", "wo",
    "xh", "yi", "yo", "zh", "zu",
];
/// The codes of `facebook/wmt21-dense-24-wide-*` (`language_codes: "wmt21"`).
pub const WMT21_CODES: [&str; 8] = ["en", "ha", "is", "ja", "cs", "ru", "zh", "de"];
