//! SOQL tokens: identifiers, literals (strings with SOQL's backslash
//! escapes, numbers, dates, datetimes), operators and punctuation, each with
//! its byte position for error messages.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Timelike, Utc};

use super::SoqlError;

/// One element of a LIKE pattern.
#[derive(Clone, Debug, PartialEq)]
pub enum LikeTok {
    /// A literal character, lower-cased (LIKE is case-insensitive).
    Char(char),
    /// `_`
    One,
    /// `%`
    Many,
}

/// A quoted string literal.
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    /// The text with escapes resolved.
    pub value: String,
    /// The same text as a LIKE pattern (`\%` and `\_` stay literal).
    pub pattern: Vec<LikeTok>,
    /// Whether `\%` or `\_` occurred: valid only in a LIKE pattern.
    pub like_escapes: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(StrLit),
    Num(f64),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    /// `08:00:00.000Z` (a zone is required; kept in UTC).
    Time(NaiveTime),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    Dot,
    Colon,
    Eof,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    /// Byte offset in the statement.
    pub pos: usize,
}

impl Token {
    /// How an error message names this token.
    pub fn describe(&self, src: &str, end: usize) -> String {
        match &self.tok {
            Tok::Eof => "<EOF>".to_string(),
            _ => src.get(self.pos..end).unwrap_or("").to_string(),
        }
    }
}

/// Splits a statement into tokens, ending with `Eof`.
pub fn tokenize(src: &str) -> Result<Vec<Token>, SoqlError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => single(&mut i, Tok::LParen),
            b')' => single(&mut i, Tok::RParen),
            b',' => single(&mut i, Tok::Comma),
            b'.' => single(&mut i, Tok::Dot),
            b':' => single(&mut i, Tok::Colon),
            b'=' => single(&mut i, Tok::Op(CmpOp::Eq)),
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Op(CmpOp::Ne)
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'=') => {
                    i += 2;
                    Tok::Op(CmpOp::Le)
                }
                Some(b'>') => {
                    i += 2;
                    Tok::Op(CmpOp::Ne)
                }
                _ => single(&mut i, Tok::Op(CmpOp::Lt)),
            },
            b'>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::Op(CmpOp::Ge)
                } else {
                    single(&mut i, Tok::Op(CmpOp::Gt))
                }
            }
            b'\'' => {
                let (lit, end) = string(src, i)?;
                i = end;
                Tok::Str(lit)
            }
            b'0'..=b'9' => {
                let (tok, end) = number_or_date(src, i)?;
                i = end;
                tok
            }
            b'-' | b'+' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (tok, end) = number_or_date(src, i + 1)?;
                i = end;
                match tok {
                    Tok::Num(n) if c == b'-' => Tok::Num(-n),
                    Tok::Num(n) => Tok::Num(n),
                    _ => return Err(SoqlError::malformed(src, start, "unexpected token: '-'")),
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                Tok::Ident(src[start..i].to_string())
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(SoqlError::malformed(
                    src,
                    start,
                    &format!("line 1:{start} no viable alternative at character '{ch}'"),
                ));
            }
        };
        out.push(Token { tok, pos: start });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
    });
    Ok(out)
}

fn single(i: &mut usize, tok: Tok) -> Tok {
    *i += 1;
    tok
}

/// A quoted string starting at `start` (the opening quote); returns the
/// literal and the offset after the closing quote.
fn string(src: &str, start: usize) -> Result<(StrLit, usize), SoqlError> {
    let mut lit = StrLit {
        value: String::new(),
        pattern: Vec::new(),
        like_escapes: false,
    };
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        let at = start + 1 + off;
        match c {
            '\'' => return Ok((lit, at + 1)),
            '\\' => {
                let Some((_, e)) = chars.next() else {
                    break;
                };
                let resolved = match e {
                    'n' | 'N' => '\n',
                    'r' | 'R' => '\r',
                    't' | 'T' => '\t',
                    'b' | 'B' => '\u{8}',
                    'f' | 'F' => '\u{c}',
                    '"' => '"',
                    '\'' => '\'',
                    '\\' => '\\',
                    '%' | '_' => {
                        lit.like_escapes = true;
                        lit.value.push(e);
                        lit.pattern.push(LikeTok::Char(e));
                        continue;
                    }
                    'u' => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4)
                            .and_then(char::from_u32)
                            .ok_or_else(|| {
                                SoqlError::malformed(src, at, "Invalid unicode escape sequence")
                            })?
                    }
                    _ => {
                        return Err(SoqlError::malformed(
                            src,
                            at,
                            "Invalid string literal: illegal escape sequence",
                        ));
                    }
                };
                lit.value.push(resolved);
                lit.pattern
                    .extend(resolved.to_lowercase().map(LikeTok::Char));
            }
            '%' => {
                lit.value.push(c);
                lit.pattern.push(LikeTok::Many);
            }
            '_' => {
                lit.value.push(c);
                lit.pattern.push(LikeTok::One);
            }
            c => {
                lit.value.push(c);
                lit.pattern.extend(c.to_lowercase().map(LikeTok::Char));
            }
        }
    }
    Err(SoqlError::malformed(
        src,
        start,
        "line 1: unterminated string literal",
    ))
}

/// A number, date (`2021-04-14`) or datetime (`2021-04-14T09:00:00Z`,
/// `+01:00`, `.000+0000`) starting at `start`.
fn number_or_date(src: &str, start: usize) -> Result<(Tok, usize), SoqlError> {
    let bytes = src.as_bytes();
    let digits_at = |from: usize, n: usize| {
        bytes.len() >= from + n && bytes[from..from + n].iter().all(u8::is_ascii_digit)
    };
    if digits_at(start, 4)
        && bytes.get(start + 4) == Some(&b'-')
        && digits_at(start + 5, 2)
        && bytes.get(start + 7) == Some(&b'-')
        && digits_at(start + 8, 2)
    {
        let mut end = start + 10;
        if bytes.get(end) == Some(&b'T') {
            end = literal_end(bytes, end + 1);
            let text = &src[start..end];
            return parse_datetime(text)
                .map(|t| (Tok::DateTime(t), end))
                .ok_or_else(|| no_viable(src, start, text));
        }
        let text = &src[start..end];
        return NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(|d| (Tok::Date(d), end))
            .map_err(|_| SoqlError::malformed(src, start, &format!("invalid date: {text}")));
    }
    if digits_at(start, 2) && bytes.get(start + 2) == Some(&b':') {
        let end = literal_end(bytes, start);
        let text = &src[start..end];
        return parse_time(text)
            .map(|t| (Tok::Time(t), end))
            .ok_or_else(|| no_viable(src, start, text));
    }
    let mut end = start;
    while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
        end += 1;
    }
    let text = &src[start..end];
    text.parse::<f64>()
        .map(|n| (Tok::Num(n), end))
        .map_err(|_| SoqlError::malformed(src, start, &format!("unexpected token: '{text}'")))
}

/// Where the time part of a datetime or time literal that goes on at
/// `from` ends.
fn literal_end(bytes: &[u8], mut from: usize) -> usize {
    while from < bytes.len()
        && (bytes[from].is_ascii_alphanumeric() || matches!(bytes[from], b':' | b'.' | b'+' | b'-'))
    {
        from += 1;
    }
    from
}

fn no_viable(src: &str, start: usize, text: &str) -> SoqlError {
    SoqlError::malformed(
        src,
        start,
        &format!("line 1:{start} no viable alternative at character '{text}'"),
    )
}

/// A SOQL time literal (`08:00:00Z`, `08:00:00.000Z`, `10:00:00+02:00`),
/// in UTC; a zone is required, as for datetimes.
pub fn parse_time(text: &str) -> Option<NaiveTime> {
    let t = parse_datetime(&format!("2000-01-01T{text}"))?;
    NaiveTime::from_num_seconds_from_midnight_opt(t.num_seconds_from_midnight(), t.nanosecond())
}

/// A SOQL datetime literal; a zone (`Z`, `+hh:mm`, `+hhmm`) is required.
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::<FixedOffset>::parse_from_str(text, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let zulu = text.strip_suffix('Z')?;
    DateTime::<FixedOffset>::parse_from_str(&format!("{zulu}+00:00"), "%Y-%m-%dT%H:%M:%S%.f%:z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src)
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn string_escapes() {
        let t = toks(r#"'a\'b\\c\nd\te\"f\u00e9'"#);
        let Tok::Str(lit) = &t[0] else {
            panic!("not a string: {t:?}")
        };
        assert_eq!(lit.value, "a'b\\c\nd\te\"fé");
        assert!(!lit.like_escapes);
    }

    #[test]
    fn like_escapes_stay_literal_in_pattern() {
        let t = toks(r"'50\%_x%'");
        let Tok::Str(lit) = &t[0] else {
            panic!("not a string")
        };
        assert!(lit.like_escapes);
        assert_eq!(
            lit.pattern,
            vec![
                LikeTok::Char('5'),
                LikeTok::Char('0'),
                LikeTok::Char('%'),
                LikeTok::One,
                LikeTok::Char('x'),
                LikeTok::Many
            ]
        );
    }

    #[test]
    fn bad_escape_and_unterminated_string_are_malformed() {
        assert!(tokenize(r"'a\qb'").is_err());
        assert!(tokenize("'abc").is_err());
    }

    #[test]
    fn numbers_dates_and_datetimes() {
        assert_eq!(toks("-1.5")[0], Tok::Num(-1.5));
        assert_eq!(
            toks("2021-04-14")[0],
            Tok::Date(NaiveDate::from_ymd_opt(2021, 4, 14).unwrap_or_default())
        );
        let expected = parse_datetime("2021-04-14T08:00:00Z");
        assert!(expected.is_some());
        for text in [
            "2021-04-14T08:00:00Z",
            "2021-04-14T09:00:00+01:00",
            "2021-04-14T08:00:00.000+0000",
        ] {
            assert_eq!(
                toks(text)[0],
                Tok::DateTime(expected.unwrap_or_default()),
                "{text}"
            );
        }
    }

    #[test]
    fn time_literals_need_a_zone() {
        let at = |h, m, s, ms| NaiveTime::from_hms_milli_opt(h, m, s, ms).unwrap_or_default();
        assert_eq!(toks("08:00:00.000Z")[0], Tok::Time(at(8, 0, 0, 0)));
        assert_eq!(toks("08:30:15Z")[0], Tok::Time(at(8, 30, 15, 0)));
        assert_eq!(toks("10:00:00.250+02:00")[0], Tok::Time(at(8, 0, 0, 250)));
        assert!(tokenize("08:00:00").is_err());
        assert!(tokenize("25:00:00Z").is_err());
    }

    #[test]
    fn operators() {
        assert_eq!(
            toks("= != <> < <= > >="),
            vec![
                Tok::Op(CmpOp::Eq),
                Tok::Op(CmpOp::Ne),
                Tok::Op(CmpOp::Ne),
                Tok::Op(CmpOp::Lt),
                Tok::Op(CmpOp::Le),
                Tok::Op(CmpOp::Gt),
                Tok::Op(CmpOp::Ge),
                Tok::Eof
            ]
        );
    }
}
