//! SentencePiece model files (`*.spm`, `*.model`) read and written natively, with the
//! encoder reproducing `sentencepiece`'s own: the normaliser (precompiled character map,
//! whitespace rules, `▁` escaping, dummy prefix), unigram Viterbi segmentation with its
//! unknown-piece penalty, byte fallback, and decoding back to text.
//!
//! Only the unigram model type is segmented here (every OPUS-MT model uses it); a BPE
//! model file is read but refused with a clear error when asked to encode.

use std::collections::HashMap;
use std::path::Path;

use super::protobuf::{Fields, Writer};
use crate::error::{Error, Result};

/// The whitespace symbol, U+2581.
pub const SPACE: &str = "\u{2581}";

/// `sentencepiece`'s penalty below the lowest piece score for an unknown character.
const UNK_PENALTY: f32 = 10.0;

/// What a vocabulary entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    /// Never produced by segmentation, invisible in decoding (`</s>`, `<pad>`).
    Control,
    /// Always kept whole, even inside words.
    UserDefined,
    Unused,
    /// `<0xAB>`: one byte, for byte fallback.
    Byte,
}

impl PieceType {
    fn from_proto(v: u64) -> std::result::Result<Self, String> {
        Ok(match v {
            1 => PieceType::Normal,
            2 => PieceType::Unknown,
            3 => PieceType::Control,
            4 => PieceType::UserDefined,
            5 => PieceType::Unused,
            6 => PieceType::Byte,
            other => return Err(format!("unknown piece type {other}")),
        })
    }

    fn to_proto(self) -> u64 {
        match self {
            PieceType::Normal => 1,
            PieceType::Unknown => 2,
            PieceType::Control => 3,
            PieceType::UserDefined => 4,
            PieceType::Unused => 5,
            PieceType::Byte => 6,
        }
    }
}

/// One vocabulary entry: its id is its position in [`SentencePieceModel::pieces`].
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub piece: String,
    /// Log probability (unigram) or merge rank (BPE).
    pub score: f32,
    pub kind: PieceType,
}

/// The segmentation algorithm a model file was trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    Unigram,
    Bpe,
    Word,
    Char,
}

/// The parts of `TrainerSpec` that matter for encoding and decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerSpec {
    pub model_type: ModelType,
    pub vocab_size: i32,
    pub byte_fallback: bool,
    pub treat_whitespace_as_suffix: bool,
    pub unk_id: i32,
    pub bos_id: i32,
    pub eos_id: i32,
    pub pad_id: i32,
    pub unk_piece: String,
    pub bos_piece: String,
    pub eos_piece: String,
    pub pad_piece: String,
    /// What an unknown piece decodes to (default `" ⁇ "`).
    pub unk_surface: String,
}

impl Default for TrainerSpec {
    fn default() -> Self {
        TrainerSpec {
            model_type: ModelType::Unigram,
            vocab_size: 8000,
            byte_fallback: false,
            treat_whitespace_as_suffix: false,
            unk_id: 0,
            bos_id: 1,
            eos_id: 2,
            pad_id: -1,
            unk_piece: "<unk>".into(),
            bos_piece: "<s>".into(),
            eos_piece: "</s>".into(),
            pad_piece: "<pad>".into(),
            unk_surface: " \u{2047} ".into(),
        }
    }
}

/// `NormalizerSpec`: how raw text becomes the string that is segmented.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizerSpec {
    /// `nmt_nfkc`, `identity`, ... (informational: the rules are in the character map).
    pub name: String,
    /// A serialised double-array trie plus replacement strings; empty for identity.
    pub precompiled_charsmap: Vec<u8>,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
}

impl Default for NormalizerSpec {
    fn default() -> Self {
        NormalizerSpec {
            name: "identity".into(),
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        }
    }
}

/// The double-array trie of a precompiled character map (darts-clone layout) and the
/// NUL-terminated replacement strings it points into.
#[derive(Debug, Clone)]
struct CharsMap {
    units: Vec<u32>,
    normalized: Vec<u8>,
}

impl CharsMap {
    fn parse(blob: &[u8]) -> std::result::Result<Self, String> {
        if blob.len() <= 4 {
            return Err("precompiled_charsmap: too short".into());
        }
        let trie_size = u32::from_le_bytes(blob[..4].try_into().expect("4 bytes")) as usize;
        if trie_size >= blob.len() - 4 || !trie_size.is_multiple_of(4) {
            return Err(format!("precompiled_charsmap: trie of {trie_size} bytes in a blob of {}", blob.len()));
        }
        let units =
            blob[4..4 + trie_size].chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4"))).collect();
        Ok(CharsMap { units, normalized: blob[4 + trie_size..].to_vec() })
    }

    /// The longest rule matching a prefix of `input`: (bytes consumed, replacement).
    fn longest_match(&self, input: &[u8]) -> Option<(usize, &[u8])> {
        let unit = |pos: usize| self.units.get(pos).copied();
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let has_leaf = |u: u32| (u >> 8) & 1 == 1;
        let label = |u: u32| u & ((1 << 31) | 0xff);
        let mut best = None;
        let mut pos = offset(unit(0)?);
        for (i, &byte) in input.iter().enumerate() {
            pos ^= byte as usize;
            let u = unit(pos)?;
            if label(u) != byte as u32 {
                break;
            }
            pos ^= offset(u);
            if has_leaf(u) {
                let value = (unit(pos)? & 0x7fff_ffff) as usize;
                best = Some((i + 1, value));
            }
        }
        let (len, value) = best?;
        let rest = self.normalized.get(value..)?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Some((len, &rest[..end]))
    }
}

/// A loaded SentencePiece model.
#[derive(Debug, Clone)]
pub struct SentencePieceModel {
    pub pieces: Vec<Piece>,
    pub trainer: TrainerSpec,
    pub normalizer: NormalizerSpec,
    ids: HashMap<String, u32>,
    charsmap: Option<CharsMap>,
    /// User-defined pieces, longest first: matched whole before normalisation.
    user_defined: Vec<String>,
    max_piece_bytes: usize,
    min_score: f32,
    max_score: f32,
}

fn spm_err(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Input(format!("{}: not a readable SentencePiece model: {why}", path.display()))
}

impl SentencePieceModel {
    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes).map_err(|why| spm_err(path, why))
    }

    /// Parses a serialised `ModelProto`.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        let mut pieces = Vec::new();
        let mut trainer = TrainerSpec::default();
        let mut normalizer = NormalizerSpec::default();
        for field in Fields::new(bytes) {
            let (number, value) = field?;
            match number {
                1 => pieces
                    .push(parse_piece(value.as_bytes("pieces")?).map_err(|e| format!("piece {}: {e}", pieces.len()))?),
                2 => trainer = parse_trainer(value.as_bytes("trainer_spec")?)?,
                3 => normalizer = parse_normalizer(value.as_bytes("normalizer_spec")?)?,
                _ => {}
            }
        }
        Self::new(pieces, trainer, normalizer)
    }

    /// A model from its parts (checks them and builds the lookup tables).
    pub fn new(
        pieces: Vec<Piece>,
        trainer: TrainerSpec,
        normalizer: NormalizerSpec,
    ) -> std::result::Result<Self, String> {
        if pieces.is_empty() {
            return Err("no pieces".into());
        }
        let mut ids = HashMap::with_capacity(pieces.len());
        for (i, p) in pieces.iter().enumerate() {
            if ids.insert(p.piece.clone(), i as u32).is_some() {
                return Err(format!("piece {:?} appears twice", p.piece));
            }
        }
        let unk = usize::try_from(trainer.unk_id).ok().filter(|&u| u < pieces.len());
        match unk {
            Some(u) if pieces[u].kind == PieceType::Unknown => {}
            _ => return Err(format!("unk_id {} is not an UNKNOWN piece", trainer.unk_id)),
        }
        let charsmap = if normalizer.precompiled_charsmap.is_empty() {
            None
        } else {
            Some(CharsMap::parse(&normalizer.precompiled_charsmap)?)
        };
        let normal = pieces.iter().filter(|p| p.kind == PieceType::Normal).map(|p| p.score);
        let min_score = normal.clone().fold(f32::MAX, f32::min);
        let max_score = normal.fold(f32::MIN, f32::max);
        let mut user_defined: Vec<String> =
            pieces.iter().filter(|p| p.kind == PieceType::UserDefined).map(|p| p.piece.clone()).collect();
        user_defined.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let max_piece_bytes = pieces.iter().map(|p| p.piece.len()).max().unwrap_or(1);
        Ok(SentencePieceModel {
            pieces,
            trainer,
            normalizer,
            ids,
            charsmap,
            user_defined,
            max_piece_bytes,
            min_score,
            max_score,
        })
    }

    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    pub fn piece_to_id(&self, piece: &str) -> Option<u32> {
        self.ids.get(piece).copied()
    }

    pub fn unk_id(&self) -> u32 {
        self.trainer.unk_id as u32
    }

    /// The normalised string that is segmented: character map applied, whitespace runs
    /// collapsed and trimmed, spaces escaped to `▁`, dummy prefix added (all as the spec says).
    pub fn normalize(&self, text: &str) -> String {
        let spec = &self.normalizer;
        let space = if spec.escape_whitespaces { SPACE } else { " " };
        let mut input = text.as_bytes();
        if spec.remove_extra_whitespaces {
            while let Some((len, _)) = self.normalize_prefix(input).filter(|(_, out)| out == b" ") {
                input = &input[len..];
            }
        }
        let mut normalized = String::with_capacity(text.len() + 8);
        if input.is_empty() {
            return normalized;
        }
        let suffix = self.trainer.treat_whitespace_as_suffix;
        if !suffix && spec.add_dummy_prefix {
            normalized.push_str(space);
        }
        let mut prev_space = spec.remove_extra_whitespaces;
        while let Some((len, out)) = self.normalize_prefix(input) {
            let mut sp: &[u8] = &out;
            if prev_space {
                while let Some(rest) = sp.strip_prefix(b" ") {
                    sp = rest;
                }
            }
            if !sp.is_empty() {
                let s = String::from_utf8_lossy(sp);
                if spec.escape_whitespaces {
                    normalized.push_str(&s.replace(' ', SPACE));
                } else {
                    normalized.push_str(&s);
                }
                prev_space = sp.ends_with(b" ");
            }
            input = &input[len..];
            if !spec.remove_extra_whitespaces {
                prev_space = false;
            }
        }
        if spec.remove_extra_whitespaces {
            while normalized.ends_with(space) {
                normalized.truncate(normalized.len() - space.len());
            }
        }
        if suffix && spec.add_dummy_prefix {
            normalized.push_str(space);
        }
        normalized
    }

    /// Normalises the longest rule at the start of `input`: (bytes consumed, output).
    /// `None` at the end of the input.
    fn normalize_prefix(&self, input: &[u8]) -> Option<(usize, Vec<u8>)> {
        if input.is_empty() {
            return None;
        }
        for user in &self.user_defined {
            if input.starts_with(user.as_bytes()) {
                return Some((user.len(), user.as_bytes().to_vec()));
            }
        }
        if let Some((len, out)) = self.charsmap.as_ref().and_then(|m| m.longest_match(input)) {
            return Some((len, out.to_vec()));
        }
        match utf8_char_len(input) {
            Some(len) => Some((len, input[..len].to_vec())),
            // A malformed byte becomes U+FFFD, one byte consumed.
            None => Some((1, "\u{fffd}".as_bytes().to_vec())),
        }
    }

    /// Pieces and ids of `text`, as `SentencePieceProcessor.encode(text, out_type=str)`, with
    /// the algorithm the file was trained for (unigram or BPE).
    pub fn encode(&self, text: &str) -> Result<Vec<(String, u32)>> {
        let normalized = self.normalize(text);
        let pieces = match self.trainer.model_type {
            ModelType::Unigram => self.viterbi(&normalized),
            ModelType::Bpe => self.bpe(&normalized),
            other => {
                return Err(Error::Input(format!(
                    "SentencePiece model type {other:?} is not supported for encoding (unigram and BPE are)"
                )))
            }
        };
        Ok(match self.trainer.byte_fallback {
            true => pieces.into_iter().flat_map(|(p, id)| self.byte_fallback(p, id)).collect(),
            false => pieces,
        })
    }

    /// The pieces a BPE merge may produce: normal, user-defined and unused ones
    /// (`sentencepiece`'s `pieces_`; control and unknown pieces are never merged into).
    fn mergeable(&self, piece: &str) -> Option<(u32, &Piece)> {
        let id = self.piece_to_id(piece)?;
        let p = &self.pieces[id as usize];
        matches!(p.kind, PieceType::Normal | PieceType::UserDefined | PieceType::Unused).then_some((id, p))
    }

    /// BPE segmentation of a normalised string, as `sentencepiece`'s `bpe::Model::Encode`:
    /// characters (user-defined pieces whole and frozen), then repeatedly the adjacent pair
    /// whose merged piece has the highest score (leftmost on ties); merged pieces that are
    /// `UNUSED` are split back into the pieces they were merged from. A run of characters the
    /// vocabulary lacks is one `<unk>`.
    fn bpe(&self, s: &str) -> Vec<(String, u32)> {
        #[derive(Clone, Copy)]
        struct Symbol {
            start: usize,
            end: usize,
            prev: Option<usize>,
            next: Option<usize>,
            frozen: bool,
        }
        /// A candidate merge: ordered by score, then leftmost first.
        #[derive(PartialEq)]
        struct Pair {
            score: f32,
            left: usize,
            right: usize,
            len: usize,
        }
        impl Eq for Pair {}
        impl Ord for Pair {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.score.total_cmp(&other.score).then(other.left.cmp(&self.left))
            }
        }
        impl PartialOrd for Pair {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        let mut symbols: Vec<Symbol> = Vec::new();
        let mut at = 0;
        while at < s.len() {
            let rest = &s[at..];
            let user = self.user_defined.iter().find(|u| rest.starts_with(u.as_str()));
            let len = user.map_or_else(|| rest.chars().next().map_or(1, char::len_utf8), |u| u.len());
            let index = symbols.len();
            symbols.push(Symbol {
                start: at,
                end: at + len,
                prev: index.checked_sub(1),
                next: (at + len < s.len()).then_some(index + 1),
                frozen: user.is_some(),
            });
            at += len;
        }
        // merged piece -> the two pieces it was made of, for unused pieces
        let mut unmerge: HashMap<&str, (&str, &str)> = HashMap::new();
        let mut agenda = std::collections::BinaryHeap::new();
        let mut consider = |symbols: &[Symbol],
                            left: Option<usize>,
                            right: Option<usize>,
                            agenda: &mut std::collections::BinaryHeap<Pair>| {
            let (Some(l), Some(r)) = (left, right) else { return };
            let (a, b) = (symbols[l], symbols[r]);
            if a.frozen || b.frozen {
                return;
            }
            let merged = &s[a.start..b.end];
            let Some((_, piece)) = self.mergeable(merged) else { return };
            agenda.push(Pair { score: piece.score, left: l, right: r, len: merged.len() });
            if piece.kind == PieceType::Unused {
                unmerge.insert(merged, (&s[a.start..a.end], &s[b.start..b.end]));
            }
        };
        for i in 1..symbols.len() {
            consider(&symbols, Some(i - 1), Some(i), &mut agenda);
        }
        while let Some(top) = agenda.pop() {
            let (l, r) = (symbols[top.left], symbols[top.right]);
            // stale: one side was merged away or grew since the pair was queued
            if l.start == l.end || r.start == r.end || l.next != Some(top.right) || r.end - l.start != top.len {
                continue;
            }
            symbols[top.left].end = r.end;
            symbols[top.left].next = r.next;
            if let Some(n) = r.next {
                symbols[n].prev = Some(top.left);
            }
            symbols[top.right].end = symbols[top.right].start;
            consider(&symbols, symbols[top.left].prev, Some(top.left), &mut agenda);
            consider(&symbols, Some(top.left), symbols[top.left].next, &mut agenda);
        }
        let mut pieces = Vec::new();
        let mut next = (!symbols.is_empty()).then_some(0);
        while let Some(i) = next {
            self.resegment(&s[symbols[i].start..symbols[i].end], &unmerge, &mut pieces);
            next = symbols[i].next;
        }
        // a run of unknown characters is one unknown piece, as in the unigram model
        let unk = self.unk_id();
        let mut out: Vec<(String, u32)> = Vec::with_capacity(pieces.len());
        for (piece, id) in pieces {
            match out.last_mut() {
                Some((prev, last)) if id == unk && *last == unk => prev.push_str(&piece),
                _ => out.push((piece, id)),
            }
        }
        out
    }

    /// `piece` and its id, or, for an unused piece, the pieces it was merged from.
    fn resegment(&self, piece: &str, unmerge: &HashMap<&str, (&str, &str)>, out: &mut Vec<(String, u32)>) {
        let id = self.piece_to_id(piece);
        match (id.map(|i| self.pieces[i as usize].kind), unmerge.get(piece)) {
            (Some(PieceType::Unused), Some(&(a, b))) => {
                self.resegment(a, unmerge, out);
                self.resegment(b, unmerge, out);
            }
            _ => out.push((piece.to_string(), id.unwrap_or_else(|| self.unk_id()))),
        }
    }

    /// Best segmentation of a normalised string under the unigram scores (f32 arithmetic and
    /// tie-breaking as in `sentencepiece`'s `EncodeOptimized`); consecutive unknown
    /// characters merge into one unknown piece.
    fn viterbi(&self, s: &str) -> Vec<(String, u32)> {
        #[derive(Clone, Copy)]
        struct Best {
            id: u32,
            score: f32,
            start: Option<usize>,
        }
        let n = s.len();
        let unk = self.unk_id();
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best = vec![Best { id: 0, score: 0.0, start: None }; n + 1];
        let boundaries: Vec<usize> = s.char_indices().map(|(i, _)| i).chain(std::iter::once(n)).collect();
        for (k, &start) in boundaries[..boundaries.len() - 1].iter().enumerate() {
            let here = best[start].score;
            let char_len = boundaries[k + 1] - start;
            let mut single = false;
            for &end in &boundaries[k + 1..] {
                if end - start > self.max_piece_bytes {
                    break;
                }
                let Some(id) = self.piece_to_id(&s[start..end]) else { continue };
                let piece = &self.pieces[id as usize];
                let score = match piece.kind {
                    PieceType::Normal => piece.score,
                    PieceType::UserDefined => (end - start) as f32 * self.max_score - 0.1,
                    _ => continue,
                };
                let candidate = here + score;
                if best[end].start.is_none() || candidate > best[end].score {
                    best[end] = Best { id, score: candidate, start: Some(start) };
                }
                single |= end - start == char_len;
            }
            if !single {
                let end = start + char_len;
                let candidate = here + unk_score;
                if best[end].start.is_none() || candidate > best[end].score {
                    best[end] = Best { id: unk, score: candidate, start: Some(start) };
                }
            }
        }
        let mut out: Vec<(String, u32)> = Vec::new();
        let mut end = n;
        while end > 0 {
            let node = best[end];
            let start = node.start.expect("every character boundary is reachable");
            let text = &s[start..end];
            match out.last_mut() {
                Some((prev, id)) if node.id == unk && *id == unk => prev.insert_str(0, text),
                _ => out.push((text.to_string(), node.id)),
            }
            end = start;
        }
        out.reverse();
        out
    }

    /// An unknown piece spelled as `<0xAB>` byte pieces, when the model has them.
    fn byte_fallback(&self, piece: String, id: u32) -> Vec<(String, u32)> {
        if id != self.unk_id() {
            return vec![(piece, id)];
        }
        let bytes: Option<Vec<(String, u32)>> = piece
            .bytes()
            .map(|b| {
                let name = format!("<0x{b:02X}>");
                self.piece_to_id(&name).map(|i| (name, i))
            })
            .collect();
        bytes.unwrap_or_else(|| vec![(piece, id)])
    }

    /// Text of a piece sequence, as `SentencePieceProcessor.decode_pieces`: control pieces
    /// vanish, unknown ones read as `unk_surface`, byte pieces join into UTF-8, `▁` becomes a
    /// space and the leading one is dropped.
    pub fn decode_pieces<S: AsRef<str>>(&self, pieces: &[S]) -> String {
        let mut out = String::new();
        let mut bytes: Vec<u8> = Vec::new();
        let flush = |bytes: &mut Vec<u8>, out: &mut String| {
            out.push_str(&String::from_utf8_lossy(bytes));
            bytes.clear();
        };
        // only the first visible piece loses its leading `▁` (the dummy prefix)
        let mut first = !self.trainer.treat_whitespace_as_suffix;
        for piece in pieces {
            let piece = piece.as_ref();
            let id = self.piece_to_id(piece).unwrap_or(self.unk_id());
            let kind = self.pieces[id as usize].kind;
            if kind == PieceType::Byte {
                if let Some(b) = parse_byte_piece(piece) {
                    bytes.push(b);
                    first = false;
                    continue;
                }
            }
            flush(&mut bytes, &mut out);
            let surface = match kind {
                PieceType::Control => continue,
                PieceType::Unknown if piece == self.pieces[id as usize].piece => self.trainer.unk_surface.as_str(),
                _ => piece,
            };
            let surface = if first { surface.strip_prefix(SPACE).unwrap_or(surface) } else { surface };
            first = false;
            out.push_str(&surface.replace(SPACE, " "));
        }
        flush(&mut bytes, &mut out);
        out
    }

    /// Serialises the model as a `ModelProto`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut model = Writer::default();
        for p in &self.pieces {
            let mut w = Writer::default();
            w.bytes(1, p.piece.as_bytes());
            w.f32(2, p.score);
            w.uint(3, p.kind.to_proto());
            model.bytes(1, &w.buf);
        }
        let t = &self.trainer;
        let mut w = Writer::default();
        w.uint(
            3,
            match t.model_type {
                ModelType::Unigram => 1,
                ModelType::Bpe => 2,
                ModelType::Word => 3,
                ModelType::Char => 4,
            },
        );
        w.int32(4, t.vocab_size);
        w.bool(24, t.treat_whitespace_as_suffix);
        w.bool(35, t.byte_fallback);
        w.int32(40, t.unk_id);
        w.int32(41, t.bos_id);
        w.int32(42, t.eos_id);
        w.int32(43, t.pad_id);
        w.bytes(44, t.unk_surface.as_bytes());
        w.bytes(45, t.unk_piece.as_bytes());
        w.bytes(46, t.bos_piece.as_bytes());
        w.bytes(47, t.eos_piece.as_bytes());
        w.bytes(48, t.pad_piece.as_bytes());
        model.bytes(2, &w.buf);
        let n = &self.normalizer;
        let mut w = Writer::default();
        w.bytes(1, n.name.as_bytes());
        if !n.precompiled_charsmap.is_empty() {
            w.bytes(2, &n.precompiled_charsmap);
        }
        w.bool(3, n.add_dummy_prefix);
        w.bool(4, n.remove_extra_whitespaces);
        w.bool(5, n.escape_whitespaces);
        model.bytes(3, &w.buf);
        model.buf
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()).map_err(|e| Error::io(path, e))
    }
}

/// Length of the UTF-8 character at the start of `b`, `None` if malformed.
fn utf8_char_len(b: &[u8]) -> Option<usize> {
    let len = match b[0] {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let ch = b.get(..len)?;
    std::str::from_utf8(ch).ok().map(|_| len)
}

fn parse_byte_piece(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok()).flatten()
}

fn parse_piece(bytes: &[u8]) -> std::result::Result<Piece, String> {
    let mut piece = Piece { piece: String::new(), score: 0.0, kind: PieceType::Normal };
    for field in Fields::new(bytes) {
        match field? {
            (1, v) => piece.piece = v.as_str("piece")?.to_string(),
            (2, v) => piece.score = v.as_f32("score")?,
            (3, v) => piece.kind = PieceType::from_proto(v.as_u64("type")?)?,
            _ => {}
        }
    }
    Ok(piece)
}

fn parse_trainer(bytes: &[u8]) -> std::result::Result<TrainerSpec, String> {
    let mut t = TrainerSpec::default();
    for field in Fields::new(bytes) {
        let (number, v) = field?;
        match number {
            3 => {
                t.model_type = match v.as_u64("trainer_spec.model_type")? {
                    1 => ModelType::Unigram,
                    2 => ModelType::Bpe,
                    3 => ModelType::Word,
                    4 => ModelType::Char,
                    other => return Err(format!("trainer_spec.model_type: unknown value {other}")),
                }
            }
            4 => t.vocab_size = v.as_i32("trainer_spec.vocab_size")?,
            24 => t.treat_whitespace_as_suffix = v.as_bool("trainer_spec.treat_whitespace_as_suffix")?,
            35 => t.byte_fallback = v.as_bool("trainer_spec.byte_fallback")?,
            40 => t.unk_id = v.as_i32("trainer_spec.unk_id")?,
            41 => t.bos_id = v.as_i32("trainer_spec.bos_id")?,
            42 => t.eos_id = v.as_i32("trainer_spec.eos_id")?,
            43 => t.pad_id = v.as_i32("trainer_spec.pad_id")?,
            44 => t.unk_surface = v.as_str("trainer_spec.unk_surface")?.to_string(),
            45 => t.unk_piece = v.as_str("trainer_spec.unk_piece")?.to_string(),
            46 => t.bos_piece = v.as_str("trainer_spec.bos_piece")?.to_string(),
            47 => t.eos_piece = v.as_str("trainer_spec.eos_piece")?.to_string(),
            48 => t.pad_piece = v.as_str("trainer_spec.pad_piece")?.to_string(),
            _ => {}
        }
    }
    Ok(t)
}

fn parse_normalizer(bytes: &[u8]) -> std::result::Result<NormalizerSpec, String> {
    let mut n = NormalizerSpec { name: String::new(), ..NormalizerSpec::default() };
    for field in Fields::new(bytes) {
        let (number, v) = field?;
        match number {
            1 => n.name = v.as_str("normalizer_spec.name")?.to_string(),
            2 => n.precompiled_charsmap = v.as_bytes("normalizer_spec.precompiled_charsmap")?.to_vec(),
            3 => n.add_dummy_prefix = v.as_bool("normalizer_spec.add_dummy_prefix")?,
            4 => n.remove_extra_whitespaces = v.as_bool("normalizer_spec.remove_extra_whitespaces")?,
            5 => n.escape_whitespaces = v.as_bool("normalizer_spec.escape_whitespaces")?,
            _ => {}
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> SentencePieceModel {
        let p = |s: &str, score: f32, kind| Piece { piece: s.into(), score, kind };
        let pieces = vec![
            p("<unk>", 0.0, PieceType::Unknown),
            p("</s>", 0.0, PieceType::Control),
            p("▁a", -1.0, PieceType::Normal),
            p("b", -2.0, PieceType::Normal),
            p("▁ab", -2.5, PieceType::Normal),
            p("▁", -3.0, PieceType::Normal),
            p("a", -3.0, PieceType::Normal),
        ];
        let trainer = TrainerSpec { unk_id: 0, eos_id: 1, bos_id: -1, vocab_size: 7, ..TrainerSpec::default() };
        SentencePieceModel::new(pieces, trainer, NormalizerSpec::default()).unwrap()
    }

    #[test]
    fn whitespace_rules_of_the_default_normalizer() {
        let m = toy();
        assert_eq!(m.normalize("  a   b "), "▁a▁b");
        assert_eq!(m.normalize("   "), "");
    }

    #[test]
    fn viterbi_prefers_the_best_total_score_and_merges_unknowns() {
        let m = toy();
        let pieces: Vec<String> = m.encode("ab a").unwrap().into_iter().map(|p| p.0).collect();
        assert_eq!(pieces, ["▁ab", "▁a"]);
        let enc = m.encode("axyb").unwrap();
        assert_eq!(enc, vec![("▁a".into(), 2), ("xy".into(), 0), ("b".into(), 3)]);
        assert_eq!(m.decode_pieces(&["▁a", "xy", "b"]), "axyb");
        assert_eq!(m.decode_pieces(&["▁a", "<unk>", "</s>", "▁ab"]), "a ⁇  ab");
    }

    #[test]
    fn model_bytes_round_trip() {
        let m = toy();
        let back = SentencePieceModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back.pieces, m.pieces);
        assert_eq!(back.trainer, m.trainer);
        assert_eq!(back.normalizer, m.normalizer);
    }

    #[test]
    fn malformed_files_are_errors() {
        assert!(SentencePieceModel::from_bytes(b"\x0a\x05ab").unwrap_err().contains("past the end"));
        assert!(SentencePieceModel::from_bytes(b"").unwrap_err().contains("no pieces"));
    }
}
