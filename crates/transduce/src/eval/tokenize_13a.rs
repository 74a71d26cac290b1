//! The `13a` tokenizer of mteval-v13a.pl, exactly as sacrebleu implements it
//! (`tokenizers/tokenizer_13a.py` and `tokenizer_re.py`).

use super::py_split;

/// `[\{-\~\[-\` -\&\(-\+\:-\@\/]`: the symbols that become tokens of their own.
fn is_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

/// Applies a two-character rewrite rule left to right over non-overlapping matches, like
/// Python's `re.sub` with a pattern of two single-character groups.
fn rewrite_pairs(
    chars: &[char],
    matches: impl Fn(char, char) -> bool,
    emit: impl Fn(&mut Vec<char>, char, char),
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        if i + 1 < chars.len() && matches(chars[i], chars[i + 1]) {
            emit(&mut out, chars[i], chars[i + 1]);
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Tokenizes one segment.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line.replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
    if line.contains('&') {
        line = line.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    }
    let padded: Vec<char> = format!(" {line} ").chars().collect();
    // symbols become separate tokens
    let mut chars = Vec::with_capacity(padded.len() * 2);
    for c in padded {
        if is_symbol(c) {
            chars.extend([' ', c, ' ']);
        } else {
            chars.push(c);
        }
    }
    // period and comma unless preceded by a digit
    let chars =
        rewrite_pairs(&chars, |a, b| !is_digit(a) && matches!(b, '.' | ','), |o, a, b| o.extend([a, ' ', b, ' ']));
    // period and comma unless followed by a digit
    let chars =
        rewrite_pairs(&chars, |a, b| matches!(a, '.' | ',') && !is_digit(b), |o, a, b| o.extend([' ', a, ' ', b]));
    // dash when preceded by a digit
    let chars = rewrite_pairs(&chars, |a, b| is_digit(a) && b == '-', |o, a, b| o.extend([a, ' ', b, ' ']));
    let s: String = chars.into_iter().collect();
    py_split(&s).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_punctuation_but_not_numbers() {
        assert_eq!(
            tokenize_13a("Hello, world! It costs $3.50 (approx.)."),
            "Hello , world ! It costs $ 3.50 ( approx . ) ."
        );
        assert_eq!(tokenize_13a("1,000-2,000 items"), "1,000 - 2,000 items");
        assert_eq!(tokenize_13a("a &amp; b &lt;c&gt;"), "a & b < c >");
        assert_eq!(tokenize_13a("  "), "");
    }
}
