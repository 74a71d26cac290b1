//! A French→English phrase grammar: the demo's corpus, generated, never downloaded.
//!
//! Subjects (pronouns and noun phrases), conjugated verbs, objects with determiners and
//! agreeing adjectives (before or after the noun), object pronouns placed before the verb with
//! elision ("je t'aime"), negation ("ne ... pas" → "do not"), and questions ("est-ce que" →
//! "do ... ?"). Every sentence comes with its gold word alignment: sure links between words that
//! translate each other, possible links for function words with no counterpart ("do").

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A generated sentence pair and its gold alignment over whitespace-separated words.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrammarPair {
    pub french: String,
    pub english: String,
    /// (French word, English word) pairs that surely align.
    pub sure: Vec<(usize, usize)>,
    /// Further pairs that may align (function words); `sure` links are possible too.
    pub possible: Vec<(usize, usize)>,
}

impl GrammarPair {
    /// The alignment as one line: `i-j` for sure links, `ipj` for possible ones.
    pub fn gold_line(&self) -> String {
        let mut links: Vec<String> = self.sure.iter().map(|(i, j)| format!("{i}-{j}")).collect();
        links.extend(self.possible.iter().map(|(i, j)| format!("{i}p{j}")));
        links.join(" ")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Person {
    First,
    Second,
    Third,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Number {
    Singular,
    Plural,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gender {
    Masculine,
    Feminine,
}

/// What a noun names, so that verbs take sensible objects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Food,
    Thing,
    Living,
}

struct Pronoun {
    french: &'static str,
    english: &'static str,
    person: Person,
    number: Number,
}

const SUBJECT_PRONOUNS: [Pronoun; 8] = [
    Pronoun { french: "je", english: "I", person: Person::First, number: Number::Singular },
    Pronoun { french: "tu", english: "you", person: Person::Second, number: Number::Singular },
    Pronoun { french: "il", english: "he", person: Person::Third, number: Number::Singular },
    Pronoun { french: "elle", english: "she", person: Person::Third, number: Number::Singular },
    Pronoun { french: "nous", english: "we", person: Person::First, number: Number::Plural },
    Pronoun { french: "vous", english: "you", person: Person::Second, number: Number::Plural },
    Pronoun { french: "ils", english: "they", person: Person::Third, number: Number::Plural },
    Pronoun { french: "elles", english: "they", person: Person::Third, number: Number::Plural },
];

const OBJECT_PRONOUNS: [Pronoun; 7] = [
    Pronoun { french: "me", english: "me", person: Person::First, number: Number::Singular },
    Pronoun { french: "te", english: "you", person: Person::Second, number: Number::Singular },
    Pronoun { french: "le", english: "him", person: Person::Third, number: Number::Singular },
    Pronoun { french: "la", english: "her", person: Person::Third, number: Number::Singular },
    Pronoun { french: "nous", english: "us", person: Person::First, number: Number::Plural },
    Pronoun { french: "vous", english: "you", person: Person::Second, number: Number::Plural },
    Pronoun { french: "les", english: "them", person: Person::Third, number: Number::Plural },
];

struct Noun {
    french: &'static str,
    english: &'static str,
    gender: Gender,
    number: Number,
    kind: Kind,
}

const fn noun(french: &'static str, english: &'static str, gender: Gender, number: Number, kind: Kind) -> Noun {
    Noun { french, english, gender, number, kind }
}

use Gender::{Feminine as F, Masculine as M};
use Kind::{Food, Living, Thing};
use Number::{Plural as Pl, Singular as Sg};

const NOUNS: [Noun; 22] = [
    noun("pain", "bread", M, Sg, Food),
    noun("pomme", "apple", F, Sg, Food),
    noun("fromage", "cheese", M, Sg, Food),
    noun("soupe", "soup", F, Sg, Food),
    noun("gâteaux", "cakes", M, Pl, Food),
    noun("oranges", "oranges", F, Pl, Food),
    noun("livre", "book", M, Sg, Thing),
    noun("lettre", "letter", F, Sg, Thing),
    noun("voiture", "car", F, Sg, Thing),
    noun("vélo", "bike", M, Sg, Thing),
    noun("fleurs", "flowers", F, Pl, Thing),
    noun("maison", "house", F, Sg, Thing),
    noun("arbre", "tree", M, Sg, Thing),
    noun("chaussures", "shoes", F, Pl, Thing),
    noun("chien", "dog", M, Sg, Living),
    noun("chat", "cat", M, Sg, Living),
    noun("oiseau", "bird", M, Sg, Living),
    noun("fille", "girl", F, Sg, Living),
    noun("garçon", "boy", M, Sg, Living),
    noun("enfants", "children", M, Pl, Living),
    noun("voisine", "neighbour", F, Sg, Living),
    noun("amis", "friends", M, Pl, Living),
];

/// Determiners: French forms (masculine, feminine, plural) and English (singular, plural).
struct Determiner {
    french: [&'static str; 3],
    english: [&'static str; 2],
    /// "un/une/des" become "de" under negation: kept out of negative sentences.
    indefinite: bool,
}

const DETERMINERS: [Determiner; 6] = [
    Determiner { french: ["le", "la", "les"], english: ["the", "the"], indefinite: false },
    Determiner { french: ["un", "une", "des"], english: ["a", "some"], indefinite: true },
    Determiner { french: ["mon", "ma", "mes"], english: ["my", "my"], indefinite: false },
    Determiner { french: ["ton", "ta", "tes"], english: ["your", "your"], indefinite: false },
    Determiner { french: ["notre", "notre", "nos"], english: ["our", "our"], indefinite: false },
    Determiner { french: ["ce", "cette", "ces"], english: ["this", "these"], indefinite: false },
];

/// Adjectives: French (m. sg, f. sg, m. pl, f. pl), English, and whether French puts it first.
struct Adjective {
    french: [&'static str; 4],
    english: &'static str,
    before_noun: bool,
}

const ADJECTIVES: [Adjective; 8] = [
    Adjective { french: ["noir", "noire", "noirs", "noires"], english: "black", before_noun: false },
    Adjective { french: ["rouge", "rouge", "rouges", "rouges"], english: "red", before_noun: false },
    Adjective { french: ["blanc", "blanche", "blancs", "blanches"], english: "white", before_noun: false },
    Adjective { french: ["vert", "verte", "verts", "vertes"], english: "green", before_noun: false },
    Adjective { french: ["chaud", "chaude", "chauds", "chaudes"], english: "hot", before_noun: false },
    Adjective { french: ["petit", "petite", "petits", "petites"], english: "little", before_noun: true },
    Adjective { french: ["grand", "grande", "grands", "grandes"], english: "big", before_noun: true },
    Adjective { french: ["joli", "jolie", "jolis", "jolies"], english: "pretty", before_noun: true },
];

/// A verb: French present tense (je, tu, il, nous, vous, ils), English base and third person
/// singular (words after the first are particles, "look for"), and what it takes as object.
struct Verb {
    french: [&'static str; 6],
    english: (&'static str, &'static str),
    objects: &'static [Kind],
    /// Takes a person as object pronoun ("je t'aime").
    personal: bool,
}

const VERBS: [Verb; 12] = [
    Verb {
        french: ["aime", "aimes", "aime", "aimons", "aimez", "aiment"],
        english: ("love", "loves"),
        objects: &[Food, Thing, Living],
        personal: true,
    },
    Verb {
        french: ["vois", "vois", "voit", "voyons", "voyez", "voient"],
        english: ("see", "sees"),
        objects: &[Food, Thing, Living],
        personal: true,
    },
    Verb {
        french: ["mange", "manges", "mange", "mangeons", "mangez", "mangent"],
        english: ("eat", "eats"),
        objects: &[Food],
        personal: false,
    },
    Verb {
        french: ["regarde", "regardes", "regarde", "regardons", "regardez", "regardent"],
        english: ("watch", "watches"),
        objects: &[Thing, Living],
        personal: true,
    },
    Verb {
        french: ["cherche", "cherches", "cherche", "cherchons", "cherchez", "cherchent"],
        english: ("look for", "looks for"),
        objects: &[Food, Thing, Living],
        personal: true,
    },
    Verb {
        french: ["prends", "prends", "prend", "prenons", "prenez", "prennent"],
        english: ("take", "takes"),
        objects: &[Food, Thing],
        personal: false,
    },
    Verb {
        french: ["veux", "veux", "veut", "voulons", "voulez", "veulent"],
        english: ("want", "wants"),
        objects: &[Food, Thing],
        personal: false,
    },
    Verb {
        french: ["connais", "connais", "connaît", "connaissons", "connaissez", "connaissent"],
        english: ("know", "knows"),
        objects: &[Living],
        personal: true,
    },
    Verb {
        french: ["entends", "entends", "entend", "entendons", "entendez", "entendent"],
        english: ("hear", "hears"),
        objects: &[Living],
        personal: true,
    },
    Verb {
        french: ["aide", "aides", "aide", "aidons", "aidez", "aident"],
        english: ("help", "helps"),
        objects: &[Living],
        personal: true,
    },
    Verb {
        french: ["ai", "as", "a", "avons", "avez", "ont"],
        english: ("have", "has"),
        objects: &[Food, Thing, Living],
        personal: false,
    },
    Verb {
        french: ["attends", "attends", "attend", "attendons", "attendez", "attendent"],
        english: ("wait for", "waits for"),
        objects: &[Living],
        personal: true,
    },
];

/// Sentence types.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mood {
    Statement,
    Negation,
    Question,
}

/// French words with the English words each aligns to, built left to right.
#[derive(Default)]
struct Builder {
    french: Vec<(String, Vec<usize>, Vec<usize>)>,
    english: Vec<String>,
}

impl Builder {
    fn en(&mut self, words: &str) -> Vec<usize> {
        words
            .split(' ')
            .map(|w| {
                self.english.push(w.to_string());
                self.english.len() - 1
            })
            .collect()
    }

    fn fr(&mut self, word: &str, sure: Vec<usize>) -> usize {
        self.french.push((word.to_string(), sure, Vec::new()));
        self.french.len() - 1
    }

    fn possible(&mut self, french: usize, english: &[usize]) {
        self.french[french].2.extend_from_slice(english);
    }

    /// Elides "je te me le la ne que" before a vowel ("je aime" → "j'aime") merging their
    /// links, capitalises both sentences' first letters, and numbers the links.
    fn finish(self) -> GrammarPair {
        let mut words: Vec<(String, Vec<usize>, Vec<usize>)> = Vec::new();
        for (w, sure, possible) in self.french {
            if let Some(prev) = words.last_mut() {
                let elides = ["je", "te", "me", "le", "la", "ne", "que"].contains(&prev.0.as_str());
                if elides && w.starts_with(['a', 'e', 'i', 'o', 'u', 'é']) {
                    prev.0 = format!("{}'{w}", &prev.0[..prev.0.len() - 1]);
                    prev.1.extend(sure);
                    prev.2.extend(possible);
                    continue;
                }
            }
            words.push((w, sure, possible));
        }
        let capitalise = |s: &str| {
            let mut c = s.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        };
        let mut french: Vec<String> = words.iter().map(|w| w.0.clone()).collect();
        french[0] = capitalise(&french[0]);
        let mut english = self.english;
        english[0] = capitalise(&english[0]);
        let mut sure = Vec::new();
        let mut possible = Vec::new();
        for (i, (_, s, p)) in words.iter().enumerate() {
            sure.extend(s.iter().map(|&j| (i, j)));
            possible.extend(p.iter().filter(|j| !s.contains(j)).map(|&j| (i, j)));
        }
        sure.sort_unstable();
        sure.dedup();
        possible.sort_unstable();
        possible.dedup();
        GrammarPair { french: french.join(" "), english: english.join(" "), sure, possible }
    }
}

/// The French verb-form index of a subject.
fn form(person: Person, number: Number) -> usize {
    let p = match person {
        Person::First => 0,
        Person::Second => 1,
        Person::Third => 2,
    };
    p + if number == Number::Plural { 3 } else { 0 }
}

/// A subject: a pronoun or a determiner + noun (living things only).
enum Subject {
    Pronoun(&'static Pronoun),
    Noun { det: &'static Determiner, noun: &'static Noun },
}

impl Subject {
    fn agreement(&self) -> (Person, Number) {
        match self {
            Subject::Pronoun(p) => (p.person, p.number),
            Subject::Noun { noun, .. } => (Person::Third, noun.number),
        }
    }

    fn write(&self, b: &mut Builder) {
        match self {
            Subject::Pronoun(p) => {
                let e = b.en(p.english);
                b.fr(p.french, e);
            }
            Subject::Noun { det, noun } => write_noun_phrase(b, det, noun, None),
        }
    }
}

/// Writes "det (adj) noun (adj)" / "det adj noun".
fn write_noun_phrase(b: &mut Builder, det: &Determiner, noun: &Noun, adjective: Option<&Adjective>) {
    let slot = match (noun.number, noun.gender) {
        (Number::Plural, _) => 2,
        (_, Gender::Masculine) => 0,
        (_, Gender::Feminine) => 1,
    };
    let adj_slot = usize::from(noun.gender == Gender::Feminine) + if noun.number == Number::Plural { 2 } else { 0 };
    let english_det = det.english[usize::from(noun.number == Number::Plural)];
    // English: det adj noun ("a" becomes "an" before a vowel; plural "some" may go)
    let first_english = adjective.map_or(noun.english, |a| a.english);
    let english_det =
        if english_det == "a" && first_english.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { english_det };
    let e_det = b.en(english_det);
    let e_adj = adjective.map(|a| b.en(a.english));
    let e_noun = b.en(noun.english);
    // French "ma" before a vowel is "mon" (mon amie), "ce" is "cet" (cet arbre)
    let french_det = match det.french[slot] {
        "ma" | "ta" if noun.french.starts_with(['a', 'e', 'i', 'o', 'u', 'é']) => det.french[0],
        "ce" if noun.french.starts_with(['a', 'e', 'i', 'o', 'u', 'é']) => "cet",
        d => d,
    };
    let french_det = if adjective.is_some_and(|a| a.before_noun) && french_det == "cet" { "ce" } else { french_det };
    b.fr(french_det, e_det);
    match adjective {
        Some(a) if a.before_noun => {
            b.fr(a.french[adj_slot], e_adj.expect("adjective written"));
            b.fr(noun.french, e_noun);
        }
        Some(a) => {
            b.fr(noun.french, e_noun);
            b.fr(a.french[adj_slot], e_adj.expect("adjective written"));
        }
        None => {
            b.fr(noun.french, e_noun);
        }
    }
}

/// Draws sentence pairs from the grammar.
pub struct Grammar {
    rng: Xoshiro256PlusPlus,
}

impl Grammar {
    pub fn new(seed: u64) -> Self {
        Grammar { rng: Xoshiro256PlusPlus::seed_from_u64(seed) }
    }

    fn subject(&mut self) -> Subject {
        if self.rng.gen_bool(0.7) {
            Subject::Pronoun(SUBJECT_PRONOUNS.choose(&mut self.rng).expect("non-empty"))
        } else {
            let living: Vec<&'static Noun> = NOUNS.iter().filter(|n| n.kind == Kind::Living).collect();
            let det = DETERMINERS.iter().filter(|d| !d.indefinite).collect::<Vec<_>>();
            Subject::Noun {
                det: det.choose(&mut self.rng).expect("non-empty"),
                noun: living.choose(&mut self.rng).expect("non-empty"),
            }
        }
    }

    /// One sentence pair.
    pub fn sample(&mut self) -> GrammarPair {
        let subject = self.subject();
        let (person, number) = subject.agreement();
        let verb = VERBS.choose(&mut self.rng).expect("non-empty");
        let mood = *[Mood::Statement, Mood::Statement, Mood::Negation, Mood::Question]
            .choose(&mut self.rng)
            .expect("non-empty");
        // an object pronoun, unless it would be reflexive ("je me ...") or ambiguous ("le" and
        // "la" both elide to "l'" before a vowel)
        let verb_form = verb.french[form(person, number)];
        let elided = verb_form.starts_with(['a', 'e', 'i', 'o', 'u', 'é']);
        let pronoun = if verb.personal && self.rng.gen_bool(0.5) {
            let choices: Vec<&Pronoun> = OBJECT_PRONOUNS
                .iter()
                .filter(|o| !(o.person == person && o.number == number && person != Person::Third))
                .filter(|o| !(elided && ["le", "la"].contains(&o.french)))
                .collect();
            Some(*choices.choose(&mut self.rng).expect("non-empty"))
        } else {
            None
        };
        let third_singular = person == Person::Third && number == Number::Singular;
        let (base, third) = verb.english;
        let english_verb = if third_singular && mood == Mood::Statement { third } else { base };
        let do_word = if third_singular { "does" } else { "do" };
        let mut b = Builder::default();
        // French order: [est-ce que] S [ne] [pronoun] V [pas] [object] ./?
        // English order: [do] S [do not] V [pronoun | object] ./?
        let (est_ce, e_do_q) = if mood == Mood::Question {
            let e = b.en(do_word);
            (Some([b.fr("est-ce", vec![]), b.fr("que", vec![])]), Some(e))
        } else {
            (None, None)
        };
        if let (Some(fr), Some(e)) = (est_ce, &e_do_q) {
            for f in fr {
                b.possible(f, e);
            }
        }
        subject.write(&mut b);
        let e_neg = (mood == Mood::Negation).then(|| (b.en(do_word), b.en("not")));
        let e_verb = b.en(english_verb);
        let e_pronoun = pronoun.map(|p| b.en(p.english));
        let ne = e_neg.as_ref().map(|(_, not)| b.fr("ne", not.clone()));
        if let (Some(p), Some(e)) = (pronoun, &e_pronoun) {
            b.fr(p.french, e.clone());
        }
        let v = b.fr(verb_form, e_verb);
        if let Some((e_do, not)) = &e_neg {
            b.possible(v, e_do);
            b.fr("pas", not.clone());
            if let Some(ne) = ne {
                b.possible(ne, e_do);
            }
        }
        if let Some(e) = &e_do_q {
            b.possible(v, e);
        }
        if pronoun.is_none() {
            let fits: Vec<&Noun> = NOUNS.iter().filter(|n| verb.objects.contains(&n.kind)).collect();
            let noun = fits.choose(&mut self.rng).expect("every verb takes some noun");
            let dets: Vec<&Determiner> =
                DETERMINERS.iter().filter(|d| !(d.indefinite && mood == Mood::Negation)).collect();
            let det = dets.choose(&mut self.rng).expect("non-empty");
            let adjective = if self.rng.gen_bool(0.4) { ADJECTIVES.choose(&mut self.rng) } else { None };
            write_noun_phrase(&mut b, det, noun, adjective);
        }
        let mark = if mood == Mood::Question { "?" } else { "." };
        let e = b.en(mark);
        b.fr(mark, e);
        b.finish()
    }
}

/// The sentence every demo shows: "Je t'aime ." → "I love you .".
pub fn je_t_aime() -> GrammarPair {
    let mut b = Builder::default();
    let i = b.en("I");
    let love = b.en("love");
    let you = b.en("you");
    let dot = b.en(".");
    b.fr("je", i);
    b.fr("te", you);
    b.fr("aime", love);
    b.fr(".", dot);
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn je_t_aime_is_elided_and_aligned() {
        let p = je_t_aime();
        assert_eq!(p.french, "Je t'aime .");
        assert_eq!(p.english, "I love you .");
        assert_eq!(p.sure, vec![(0, 0), (1, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn sentences_are_varied_well_formed_and_aligned() {
        let mut g = Grammar::new(3);
        let pairs: Vec<GrammarPair> = (0..2000).map(|_| g.sample()).collect();
        let distinct: std::collections::HashSet<&str> = pairs.iter().map(|p| p.french.as_str()).collect();
        assert!(distinct.len() > 1500, "{} distinct of 2000", distinct.len());
        for p in &pairs {
            let (nf, ne) = (p.french.split(' ').count(), p.english.split(' ').count());
            assert!(p.sure.iter().chain(&p.possible).all(|&(i, j)| i < nf && j < ne), "{p:?}");
            // every English content word is covered by a sure link
            for (j, w) in p.english.split(' ').enumerate() {
                if !["do", "does", "Do", "Does"].contains(&w) {
                    assert!(p.sure.iter().any(|l| l.1 == j), "{w} unaligned in {p:?}");
                }
            }
        }
        let has = |s: &str| pairs.iter().any(|p| p.french.contains(s));
        assert!(has("ne ") && has(" pas") && has("Est-ce que") && has("t'") && has("n'"));
        assert!(pairs.iter().any(|p| p.english.contains("does not")));
        assert!(pairs.iter().any(|p| p.english.starts_with("Do ")));
        assert!(pairs.iter().any(|p| p.english.contains(" an ")));
    }
}
