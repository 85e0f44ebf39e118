//! A parser for the SOQL subset the sandbox answers:
//!
//! ```text
//! SELECT field[, field...] FROM Object
//!   [WHERE condition]
//!   [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST][, ...]]
//!   [LIMIT n] [OFFSET n]
//! condition := condition AND condition | condition OR condition | NOT condition
//!            | ( condition )
//!            | field (= | != | <> | < | <= | > | >=) literal
//!            | field [NOT] IN ( literal, ... )
//!            | field INCLUDES|EXCLUDES ( 'a', 'b;c' )
//!            | field LIKE 'pattern%'
//! literal   := 'string' (with SOQL escapes) | 2026-01-01T00:00:00Z (unquoted dateTime)
//!            | 2026-01-01 | number | TRUE | FALSE | NULL
//! ```
//!
//! Anything else is a `MALFORMED_QUERY` with the position of the problem, as
//! Salesforce reports it.

use chrono::{DateTime, FixedOffset, NaiveDate};

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Query {
    /// Selected fields, as written.
    pub fields: Vec<String>,
    /// The sObject.
    pub object: String,
    /// The WHERE clause.
    pub filter: Option<Expr>,
    /// ORDER BY terms.
    pub order_by: Vec<OrderBy>,
    /// LIMIT.
    pub limit: Option<usize>,
    /// OFFSET.
    pub offset: Option<usize>,
}

/// One ORDER BY term.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrderBy {
    /// Field.
    pub field: String,
    /// Descending.
    pub descending: bool,
    /// NULLS LAST (the default for ASC is NULLS FIRST).
    pub nulls_last: bool,
}

/// A WHERE condition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expr {
    /// Both hold.
    And(Box<Expr>, Box<Expr>),
    /// Either holds.
    Or(Box<Expr>, Box<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// `field op literal`.
    Compare {
        /// Field.
        field: String,
        /// Operator.
        op: CmpOp,
        /// Right-hand side.
        value: Literal,
    },
    /// `field [NOT] IN (...)`.
    In {
        /// Field.
        field: String,
        /// Candidates.
        values: Vec<Literal>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `field INCLUDES (...)` / `EXCLUDES (...)` on a multi-select picklist; each value
    /// may itself be `a;b` (all of them).
    Includes {
        /// Field.
        field: String,
        /// Candidates.
        values: Vec<String>,
        /// `EXCLUDES`.
        negated: bool,
    },
    /// `field LIKE 'pattern'` (`%` any run, `_` one character; case-insensitive).
    Like {
        /// Field.
        field: String,
        /// Pattern.
        pattern: String,
    },
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Literal {
    /// A quoted string, escapes decoded.
    String(String),
    /// An unquoted dateTime.
    DateTime(DateTime<FixedOffset>),
    /// An unquoted date.
    Date(NaiveDate),
    /// A number.
    Number(f64),
    /// TRUE / FALSE.
    Bool(bool),
    /// NULL.
    Null,
}

/// A parse error: what was wrong and where (0-based character offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct SoqlError {
    /// Description.
    pub message: String,
    /// Character offset.
    pub position: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Lit(Literal),
    Comma,
    LParen,
    RParen,
    Op(CmpOp),
}

fn err<T>(message: impl Into<String>, position: usize) -> Result<T, SoqlError> {
    Err(SoqlError {
        message: message.into(),
        position,
    })
}

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, SoqlError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if let Some((tok, len)) = punctuation(&chars, i) {
            out.push((tok, start));
            i += len;
            continue;
        }
        let (tok, next) = match c {
            '\'' => string_literal(&chars, i)?,
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let j = scan(&chars, i + 1, |ch| {
                    ch.is_ascii_alphanumeric() || matches!(ch, ':' | '+' | '-' | '.')
                });
                let text: String = chars[i..j].iter().collect();
                (Tok::Lit(literal(&text, start)?), j)
            }
            c if c.is_alphabetic() || c == '_' => {
                let j = scan(&chars, i + 1, |ch| {
                    ch.is_alphanumeric() || matches!(ch, '_' | '.')
                });
                (Tok::Ident(chars[i..j].iter().collect()), j)
            }
            other => return err(format!("unexpected character '{other}'"), start),
        };
        out.push((tok, start));
        i = next;
    }
    Ok(out)
}

/// The index of the first character from `from` that `keep` rejects.
fn scan(chars: &[char], from: usize, keep: impl Fn(char) -> bool) -> usize {
    let mut j = from;
    while j < chars.len() && keep(chars[j]) {
        j += 1;
    }
    j
}

/// Punctuation and comparison operators at `i`, with their length in characters.
fn punctuation(chars: &[char], i: usize) -> Option<(Tok, usize)> {
    let next = chars.get(i + 1).copied();
    Some(match (chars[i], next) {
        (',', _) => (Tok::Comma, 1),
        ('(', _) => (Tok::LParen, 1),
        (')', _) => (Tok::RParen, 1),
        ('=', _) => (Tok::Op(CmpOp::Eq), 1),
        ('!', Some('=')) => (Tok::Op(CmpOp::Ne), 2),
        ('<', Some('=')) => (Tok::Op(CmpOp::Le), 2),
        ('<', Some('>')) => (Tok::Op(CmpOp::Ne), 2),
        ('<', _) => (Tok::Op(CmpOp::Lt), 1),
        ('>', Some('=')) => (Tok::Op(CmpOp::Ge), 2),
        ('>', _) => (Tok::Op(CmpOp::Gt), 1),
        _ => return None,
    })
}

/// A quoted string literal starting at `start` (the opening quote), decoded, and the index
/// after its closing quote.
fn string_literal(chars: &[char], start: usize) -> Result<(Tok, usize), SoqlError> {
    let mut i = start + 1;
    let mut s = String::new();
    loop {
        match chars.get(i) {
            None => return err("unterminated string literal", start),
            Some('\'') => return Ok((Tok::Str(s), i + 1)),
            Some('\\') => {
                let decoded = match chars.get(i + 1) {
                    Some('\'') => '\'',
                    Some('"') => '"',
                    Some('\\') => '\\',
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('b') => '\u{8}',
                    Some('f') => '\u{c}',
                    // LIKE wildcards escaped: keep the escape for the matcher.
                    Some(w @ ('_' | '%')) => {
                        s.push('\\');
                        *w
                    }
                    Some(other) => {
                        return err(format!("invalid escape sequence \\{other}"), i);
                    }
                    None => return err("unterminated string literal", start),
                };
                s.push(decoded);
                i += 2;
            }
            Some(ch) => {
                s.push(*ch);
                i += 1;
            }
        }
    }
}

fn literal(text: &str, position: usize) -> Result<Literal, SoqlError> {
    if text.contains('T') && text.len() >= 20 {
        return DateTime::parse_from_rfc3339(text)
            .map(Literal::DateTime)
            .or_else(|_| {
                // SOQL also allows +hhmm offsets without a colon.
                DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z").map(Literal::DateTime)
            })
            .or_else(|_| err(format!("invalid dateTime literal {text}"), position));
    }
    if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        return NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Literal::Date)
            .or_else(|_| err(format!("invalid date literal {text}"), position));
    }
    text.parse::<f64>()
        .map(Literal::Number)
        .or_else(|_| err(format!("unexpected token: '{text}'"), position))
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(_, p)| *p)
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if let Some(Tok::Ident(s)) = self.peek()
            && s.eq_ignore_ascii_case(kw)
        {
            self.pos += 1;
            return true;
        }
        false
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.keyword(kw) {
            Ok(())
        } else {
            err(format!("expected {kw}"), self.at())
        }
    }

    fn ident(&mut self) -> Result<String, SoqlError> {
        match self.peek().cloned() {
            Some(Tok::Ident(s)) if !is_reserved(&s) => {
                self.pos += 1;
                Ok(s)
            }
            _ => err("expected a field or object name", self.at()),
        }
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Literal, SoqlError> {
        let at = self.at();
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Literal::String(s))
            }
            Some(Tok::Lit(l)) => {
                self.pos += 1;
                Ok(l)
            }
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => {
                self.pos += 1;
                Ok(Literal::Bool(true))
            }
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => {
                self.pos += 1;
                Ok(Literal::Bool(false))
            }
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => {
                self.pos += 1;
                Ok(Literal::Null)
            }
            _ => err("expected a literal value", at),
        }
    }

    fn list(&mut self) -> Result<Vec<Literal>, SoqlError> {
        if !self.eat(&Tok::LParen) {
            return err("expected (", self.at());
        }
        let mut values = vec![self.value()?];
        while self.eat(&Tok::Comma) {
            values.push(self.value()?);
        }
        if !self.eat(&Tok::RParen) {
            return err("expected )", self.at());
        }
        Ok(values)
    }

    fn or(&mut self) -> Result<Expr, SoqlError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SoqlError> {
        let mut left = self.unary()?;
        while self.keyword("AND") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SoqlError> {
        if self.keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat(&Tok::LParen) {
            let e = self.or()?;
            if !self.eat(&Tok::RParen) {
                return err("expected )", self.at());
            }
            return Ok(e);
        }
        let field = self.ident()?;
        let at = self.at();
        if let Some(Tok::Op(op)) = self.peek().cloned() {
            self.pos += 1;
            return Ok(Expr::Compare {
                field,
                op,
                value: self.value()?,
            });
        }
        if self.keyword("IN") {
            return Ok(Expr::In {
                field,
                values: self.list()?,
                negated: false,
            });
        }
        if self.keyword("NOT") {
            self.expect_keyword("IN")?;
            return Ok(Expr::In {
                field,
                values: self.list()?,
                negated: true,
            });
        }
        let includes = self.keyword("INCLUDES");
        if includes || self.keyword("EXCLUDES") {
            let values = self
                .list()?
                .into_iter()
                .map(|v| match v {
                    Literal::String(s) => Ok(s),
                    _ => err("INCLUDES and EXCLUDES take string literals", at),
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Expr::Includes {
                field,
                values,
                negated: !includes,
            });
        }
        if self.keyword("LIKE") {
            return match self.value()? {
                Literal::String(pattern) => Ok(Expr::Like { field, pattern }),
                _ => err("LIKE takes a string literal", at),
            };
        }
        err("expected an operator", at)
    }

    fn number(&mut self) -> Result<usize, SoqlError> {
        let at = self.at();
        match self.peek().cloned() {
            Some(Tok::Lit(Literal::Number(n))) if n >= 0.0 && n.fract() == 0.0 => {
                self.pos += 1;
                Ok(n as usize)
            }
            _ => err("expected a non-negative integer", at),
        }
    }
}

const RESERVED: [&str; 22] = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "INCLUDES", "EXCLUDES", "LIKE", "ORDER",
    "BY", "ASC", "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL",
];

fn is_reserved(s: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
}

/// Parses a query.
///
/// ```
/// use sync_sandbox::soql::{parse, Expr, Literal};
///
/// let q = parse("SELECT Id, Email FROM Contact WHERE Email = 'o\\'brien@example.com' LIMIT 5").unwrap();
/// assert_eq!(q.object, "Contact");
/// assert_eq!(q.limit, Some(5));
/// assert!(matches!(q.filter, Some(Expr::Compare { value: Literal::String(ref s), .. }) if s == "o'brien@example.com"));
/// assert!(parse("SELECT FROM Contact").is_err());
/// ```
pub fn parse(input: &str) -> Result<Query, SoqlError> {
    let toks = lex(input)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: input.chars().count(),
    };
    p.expect_keyword("SELECT")?;
    let mut fields = vec![p.ident()?];
    while p.eat(&Tok::Comma) {
        fields.push(p.ident()?);
    }
    p.expect_keyword("FROM")?;
    let object = p.ident()?;
    let filter = if p.keyword("WHERE") {
        Some(p.or()?)
    } else {
        None
    };
    let mut order_by = Vec::new();
    if p.keyword("ORDER") {
        p.expect_keyword("BY")?;
        loop {
            let field = p.ident()?;
            let descending = if p.keyword("DESC") {
                true
            } else {
                p.keyword("ASC");
                false
            };
            let nulls_last = if p.keyword("NULLS") {
                if p.keyword("LAST") {
                    true
                } else {
                    p.expect_keyword("FIRST")?;
                    false
                }
            } else {
                descending
            };
            order_by.push(OrderBy {
                field,
                descending,
                nulls_last,
            });
            if !p.eat(&Tok::Comma) {
                break;
            }
        }
    }
    let limit = if p.keyword("LIMIT") {
        Some(p.number()?)
    } else {
        None
    };
    let offset = if p.keyword("OFFSET") {
        Some(p.number()?)
    } else {
        None
    };
    if p.pos < p.toks.len() {
        return err("unexpected token after the end of the query", p.at());
    }
    Ok(Query {
        fields,
        object,
        filter,
        order_by,
        limit,
        offset,
    })
}

/// SQL LIKE with `%` and `_`, case-insensitive; `\%` and `\_` are literal.
pub(crate) fn like(pattern: &str, value: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Ch(char),
    }
    let mut pat = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        pat.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Ch(it.next().unwrap_or('\\')),
            c => P::Ch(c),
        });
    }
    let v: Vec<char> = value.to_lowercase().chars().collect();
    // Dynamic programming over (pattern position, value position).
    let mut dp = vec![vec![false; v.len() + 1]; pat.len() + 1];
    dp[0][0] = true;
    for i in 1..=pat.len() {
        if pat[i - 1] == P::Any {
            dp[i][0] = dp[i - 1][0];
        }
        for j in 1..=v.len() {
            dp[i][j] = match pat[i - 1] {
                P::Any => dp[i - 1][j] || dp[i][j - 1],
                P::One => dp[i - 1][j - 1],
                P::Ch(c) => dp[i - 1][j - 1] && c.to_lowercase().eq(v[j - 1].to_lowercase()),
            };
        }
    }
    dp[pat.len()][v.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_delta_query() {
        let q = parse(
            "SELECT Id, Email, SystemModstamp FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00Z ORDER BY SystemModstamp, Id LIMIT 2000",
        )
        .unwrap();
        assert_eq!(q.fields, vec!["Id", "Email", "SystemModstamp"]);
        assert_eq!(q.order_by.len(), 2);
        assert!(!q.order_by[0].descending);
        assert_eq!(q.limit, Some(2000));
        match q.filter {
            Some(Expr::Compare {
                op: CmpOp::Gt,
                value: Literal::DateTime(d),
                ..
            }) => {
                assert_eq!(d.timestamp(), 1_767_225_600);
            }
            other => panic!("unexpected filter {other:?}"),
        }
    }

    #[test]
    fn boolean_logic_in_lists_and_escapes() {
        let q = parse(
            "select Id from Lead where (Email = 'a\\\\b\\'c' or Id IN ('00Q1','00Q2')) and not IsDeleted = true and Tags__c includes ('VIP;Beta') and LastName like 'O\\_%'",
        )
        .unwrap();
        let Some(Expr::And(left, _)) = q.filter else {
            panic!("and expected")
        };
        let Expr::And(left, _) = *left else { panic!() };
        let Expr::And(left, not) = *left else {
            panic!()
        };
        assert!(matches!(*not, Expr::Not(_)));
        let Expr::Or(email, ids) = *left else {
            panic!()
        };
        assert_eq!(
            *email,
            Expr::Compare {
                field: "Email".into(),
                op: CmpOp::Eq,
                value: Literal::String("a\\b'c".into())
            }
        );
        assert!(matches!(*ids, Expr::In { ref values, negated: false, .. } if values.len() == 2));
    }

    #[test]
    fn errors_carry_positions() {
        for bad in [
            "SELECT Id FROM",
            "SELECT Id Contact",
            "SELECT Id FROM Contact WHERE Email = 'unterminated",
            "SELECT Id FROM Contact WHERE Email = 'bad \\q escape'",
            "SELECT Id FROM Contact WHERE Email 'x'",
            "SELECT Id FROM Contact LIMIT -1",
            "SELECT Id FROM Contact WHERE SystemModstamp > 2026-13-01T00:00:00Z",
            "SELECT Id FROM Contact extra",
            "DELETE FROM Contact",
            "SELECT Id FROM Contact WHERE Email = 'x' OR",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.position <= bad.chars().count(), "{bad}: {e}");
        }
        let e = parse("SELECT Id FROM Contact WHERE Email = 'x' junk").unwrap_err();
        assert_eq!(e.position, 41);
    }

    #[test]
    fn like_matching() {
        assert!(like("jo%", "John"));
        assert!(like("%@example.com", "a@EXAMPLE.com"));
        assert!(like("J_hn", "john"));
        assert!(!like("J_hn", "joohn"));
        assert!(like("100\\%", "100%"));
        assert!(!like("100\\%", "1000"));
    }
}
