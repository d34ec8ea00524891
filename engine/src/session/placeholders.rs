//! `?` placeholders, as ADBC's DB-API cursors, JDBC and ODBC write them, numbered in order as
//! DataFusion's `$1`, `$2`, ... (`?3` as `$3`). sqlparser's tokenizer finds them, so a `?` in
//! a string literal, a quoted name or a comment stays as it is.

use std::borrow::Cow;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{EngineError, Result};

/// `query` with its `?` placeholders written as `$N`. A query mixing `?` with `$N` is refused
/// (which `?` would `$1` be?); one the tokenizer cannot read is returned as it is, for the
/// planner to report.
pub fn numbered_placeholders(query: &str) -> Result<Cow<'_, str>> {
    if !query.contains('?') {
        return Ok(Cow::Borrowed(query));
    }
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, query).tokenize_with_location() else {
        return Ok(Cow::Borrowed(query));
    };
    // Byte offset of each line's start (the tokenizer counts lines and columns from 1, the
    // columns in characters).
    let mut lines = vec![0];
    lines.extend(query.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: u64, column: u64| -> Option<usize> {
        let start = *lines.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let skip = usize::try_from(column).ok()?.checked_sub(1)?;
        query[start..]
            .char_indices()
            .nth(skip)
            .map(|(i, _)| start + i)
    };
    let mut out = String::with_capacity(query.len() + 8);
    let (mut copied, mut next, mut dollars) = (0, 0, false);
    for t in &tokens {
        let Token::Placeholder(text) = &t.token else {
            continue;
        };
        let Some(number) = text.strip_prefix('?') else {
            dollars |= text.starts_with('$');
            continue;
        };
        let at = offset(t.span.start.line, t.span.start.column)
            .filter(|&at| query[at..].starts_with(text.as_str()))
            .ok_or_else(|| {
                EngineError::InvalidArgument(format!("placeholder {text} not found in the query"))
            })?;
        let number = if number.is_empty() {
            next += 1;
            next.to_string()
        } else {
            number.to_string()
        };
        out.push_str(&query[copied..at]);
        out.push('$');
        out.push_str(&number);
        copied = at + text.len();
    }
    if copied == 0 {
        return Ok(Cow::Borrowed(query));
    }
    if dollars {
        return Err(EngineError::InvalidArgument(
            "the query mixes ? and $N placeholders: use one kind".into(),
        ));
    }
    out.push_str(&query[copied..]);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_marks_are_numbered_outside_strings_and_comments() {
        let cases = [
            ("SELECT 1", "SELECT 1"),
            (
                "SELECT * FROM t WHERE a > ?",
                "SELECT * FROM t WHERE a > $1",
            ),
            (
                "SELECT '?', \"a?\" FROM t -- why?\nWHERE a = ? AND b IN (?, ?)",
                "SELECT '?', \"a?\" FROM t -- why?\nWHERE a = $1 AND b IN ($2, $3)",
            ),
            (
                "SELECT 'é''?' /* ? */, x FROM t\n  WHERE é = ?2 OR f = ?1",
                "SELECT 'é''?' /* ? */, x FROM t\n  WHERE é = $2 OR f = $1",
            ),
            ("SELECT $1, '?'", "SELECT $1, '?'"),
        ];
        for (query, want) in cases {
            assert_eq!(numbered_placeholders(query).unwrap(), want, "{query}");
        }
        assert!(numbered_placeholders("SELECT ? + $1").is_err());
    }
}
