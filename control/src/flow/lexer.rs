//! Splitting flow text into tokens.
//!
//! `ovs-ofctl` separates tokens with commas or white space; parentheses nest (so the commas in
//! `ct(commit,nat(src=1.2.3.4))` stay inside one token) and so do square brackets
//! (`NXM_NX_REG0[0..15]`). Everything after `actions=` (or `action=`) is the action list and is
//! split the same way by the action parser.

/// One top-level token: `key`, `key=value` or `key:value` (actions), with the text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The whole token as written (used in error messages).
    pub raw: &'a str,
    /// The part before the first `=` / `:` / `(`.
    pub key: &'a str,
    /// The part after the separator (for `key(args)` the text inside the parentheses).
    pub value: Option<&'a str>,
}

fn is_sep(c: char) -> bool {
    c == ',' || c.is_whitespace()
}

/// Split `s` into raw tokens at top-level separators (commas and white space outside
/// parentheses and brackets). Empty tokens are dropped. Unbalanced closers are kept in the
/// token so the caller reports them.
pub fn split_tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth: i32 = 0;
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            _ => {}
        }
        if depth <= 0 && is_sep(c) {
            if let Some(st) = start.take() {
                out.push(&s[st..i]);
            }
            if depth < 0 {
                depth = 0;
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

/// Split one raw token into key and value. `seps` lists the characters that end the key
/// (`=` for match fields; `=`, `:` for actions). A `(` ends the key too, and then the value is
/// the text inside the outer parentheses (an error string is returned when they don't close
/// at the end of the token).
pub fn split_kv<'a>(raw: &'a str, seps: &[char]) -> Result<Token<'a>, &'static str> {
    // Brackets belong to a subfield key (`reg3[0..15]=5`): separators inside them don't count.
    let mut brackets: i32 = 0;
    for (i, c) in raw.char_indices() {
        match c {
            '[' => brackets += 1,
            ']' => brackets -= 1,
            '(' => {
                let inner = &raw[i + 1..];
                let Some(stripped) = inner.strip_suffix(')') else {
                    return Err("unbalanced parentheses");
                };
                if !balanced(stripped) {
                    return Err("unbalanced parentheses");
                }
                return Ok(Token {
                    raw,
                    key: &raw[..i],
                    value: Some(stripped),
                });
            }
            c if brackets <= 0 && seps.contains(&c) => {
                return Ok(Token {
                    raw,
                    key: &raw[..i],
                    value: Some(&raw[i + 1..]),
                });
            }
            _ => {}
        }
    }
    Ok(Token {
        raw,
        key: raw,
        value: None,
    })
}

/// True if parentheses in `s` balance and never go negative.
pub fn balanced(s: &str) -> bool {
    let mut d: i32 = 0;
    for c in s.chars() {
        match c {
            '(' => d += 1,
            ')' => {
                d -= 1;
                if d < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    d == 0
}

/// Find where the action list starts: returns (text before, actions text) if the flow has an
/// `actions=` / `action=` token at top level.
pub fn split_actions(s: &str) -> Option<(&str, &str)> {
    let mut depth: i32 = 0;
    let mut prev_sep = true;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            _ => {}
        }
        if depth == 0 && prev_sep {
            let rest = &s[i..];
            for kw in ["actions=", "action="] {
                if rest
                    .get(..kw.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(kw))
                {
                    return Some((&s[..i], &rest[kw.len()..]));
                }
            }
        }
        prev_sep = is_sep(c);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_commas_and_spaces_outside_parens() {
        assert_eq!(
            split_tokens("table=20, priority=5,ip ct(commit,nat(src=1.1.1.1)),x"),
            vec![
                "table=20",
                "priority=5",
                "ip",
                "ct(commit,nat(src=1.1.1.1))",
                "x"
            ]
        );
        assert_eq!(split_tokens(" , ,"), Vec::<&str>::new());
    }

    #[test]
    fn key_value() {
        let t = split_kv("nw_dst=1.2.3.4", &['=']).unwrap();
        assert_eq!((t.key, t.value), ("nw_dst", Some("1.2.3.4")));
        let t = split_kv("resubmit(,20)", &['=', ':']).unwrap();
        assert_eq!((t.key, t.value), ("resubmit", Some(",20")));
        let t = split_kv("reg3[0..15]=5", &['=']).unwrap();
        assert_eq!((t.key, t.value), ("reg3[0..15]", Some("5")));
        assert!(split_kv("ct(commit", &['=']).is_err());
        let t = split_kv("ip", &['=']).unwrap();
        assert_eq!((t.key, t.value), ("ip", None));
    }

    #[test]
    fn finds_actions() {
        assert_eq!(split_actions("ip actions=drop"), Some(("ip ", "drop")));
        assert_eq!(split_actions("ip,action=1"), Some(("ip,", "1")));
        assert_eq!(split_actions("ip,xactions=1"), None);
    }
}
