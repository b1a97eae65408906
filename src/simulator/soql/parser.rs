//! SOQL syntax: `SELECT items FROM object [WHERE cond] [ORDER BY ...]
//! [LIMIT n] [OFFSET n]` parsed into an AST that still names fields as
//! typed. Like Salesforce, AND and OR may not be mixed without parentheses,
//! and NOT may only open a condition (at the start or after `(`).

use super::SoqlError;
use super::ast::{Cond, DateLiteral, Literal, OrderItem, PathRef, Query, SelectItem};
use super::lexer::{Tok, Token, tokenize};

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    at: usize,
}

/// Parses one SOQL statement.
pub fn parse(src: &str) -> Result<Query, SoqlError> {
    let mut p = Parser {
        src,
        toks: tokenize(src)?,
        at: 0,
    };
    p.query()
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.at < self.toks.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn unexpected(&self) -> SoqlError {
        let t = self.peek();
        let end = self.toks.get(self.at + 1).map_or(self.src.len(), |n| n.pos);
        let text = t.describe(self.src, end);
        let text = text.trim_end();
        let shown = if t.tok == Tok::Eof {
            text.to_string()
        } else {
            format!("'{text}'")
        };
        SoqlError::malformed(self.src, t.pos, &format!("unexpected token: {shown}"))
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), SoqlError> {
        if &self.peek().tok == tok {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn query(&mut self) -> Result<Query, SoqlError> {
        self.expect_kw("SELECT")?;
        let mut select = vec![self.select_item()?];
        while self.peek().tok == Tok::Comma {
            self.next();
            select.push(self.select_item()?);
        }
        self.expect_kw("FROM")?;
        let from_tok = self.peek().clone();
        let Tok::Ident(from) = from_tok.tok else {
            return Err(self.unexpected());
        };
        self.next();
        let filter = if self.eat_kw("WHERE") {
            Some(self.condition()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                order_by.push(self.order_item()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.next();
            }
        }
        let limit = if self.eat_kw("LIMIT") {
            Some(self.count()?.0)
        } else {
            None
        };
        let offset = if self.eat_kw("OFFSET") {
            Some(self.count()?)
        } else {
            None
        };
        if self.peek().tok != Tok::Eof {
            return Err(self.unexpected());
        }
        Ok(Query {
            select,
            from,
            from_pos: from_tok.pos,
            filter,
            order_by,
            limit,
            offset,
        })
    }

    fn count(&mut self) -> Result<(u64, usize), SoqlError> {
        let pos = self.peek().pos;
        match self.peek().tok {
            Tok::Num(n) if n >= 0.0 && n.fract() == 0.0 => {
                self.next();
                Ok((n as u64, pos))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn select_item(&mut self) -> Result<SelectItem, SoqlError> {
        let pos = self.peek().pos;
        if self.is_kw("COUNT") && self.toks.get(self.at + 1).map(|t| &t.tok) == Some(&Tok::LParen) {
            self.next();
            self.next();
            if self.peek().tok != Tok::RParen {
                return Err(SoqlError::malformed(
                    self.src,
                    self.peek().pos,
                    "the simulator supports only COUNT() among aggregate functions",
                ));
            }
            self.next();
            return Ok(SelectItem::Count { pos });
        }
        if self.peek().tok == Tok::LParen {
            return Err(SoqlError::malformed(
                self.src,
                pos,
                "the simulator does not support subqueries",
            ));
        }
        Ok(SelectItem::Field(self.path()?))
    }

    fn path(&mut self) -> Result<PathRef, SoqlError> {
        let pos = self.peek().pos;
        let mut parts = Vec::new();
        loop {
            match self.peek().tok.clone() {
                Tok::Ident(name) => {
                    self.next();
                    parts.push(name);
                }
                _ => return Err(self.unexpected()),
            }
            if self.peek().tok != Tok::Dot {
                break;
            }
            self.next();
        }
        Ok(PathRef { parts, pos })
    }

    fn order_item(&mut self) -> Result<OrderItem, SoqlError> {
        let path = self.path()?;
        let descending = if self.eat_kw("DESC") {
            true
        } else {
            self.eat_kw("ASC");
            false
        };
        let mut nulls_last = false;
        if self.eat_kw("NULLS") {
            if self.eat_kw("LAST") {
                nulls_last = true;
            } else {
                self.expect_kw("FIRST")?;
            }
        }
        Ok(OrderItem {
            path,
            descending,
            nulls_last,
        })
    }

    /// A condition at the start of WHERE or inside parentheses: an optional
    /// NOT, then terms joined by one kind of logical operator.
    fn condition(&mut self) -> Result<Cond, SoqlError> {
        let first = if self.eat_kw("NOT") {
            Cond::Not(Box::new(self.term()?))
        } else {
            self.term()?
        };
        let joiner = if self.is_kw("AND") {
            "AND"
        } else if self.is_kw("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut terms = vec![first];
        while self.eat_kw(joiner) {
            terms.push(self.term()?);
        }
        if self.is_kw("AND") || self.is_kw("OR") {
            return Err(self.unexpected());
        }
        Ok(if joiner == "AND" {
            Cond::And(terms)
        } else {
            Cond::Or(terms)
        })
    }

    fn term(&mut self) -> Result<Cond, SoqlError> {
        if self.peek().tok == Tok::LParen {
            self.next();
            let inner = self.condition()?;
            self.expect(&Tok::RParen)?;
            return Ok(inner);
        }
        let path = self.path()?;
        if self.eat_kw("LIKE") {
            let value_pos = self.peek().pos;
            let Tok::Str(pattern) = self.peek().tok.clone() else {
                return Err(self.unexpected());
            };
            self.next();
            return Ok(Cond::Like {
                path,
                pattern,
                value_pos,
            });
        }
        let negated = self.eat_kw("NOT");
        if negated || self.is_kw("IN") {
            self.expect_kw("IN")?;
            self.expect(&Tok::LParen)?;
            if self.is_kw("SELECT") {
                return Err(SoqlError::malformed(
                    self.src,
                    self.peek().pos,
                    "the simulator does not support semi-join subqueries",
                ));
            }
            let mut values = vec![self.literal()?];
            while self.peek().tok == Tok::Comma {
                self.next();
                values.push(self.literal()?);
            }
            self.expect(&Tok::RParen)?;
            return Ok(Cond::In {
                path,
                negated,
                values,
            });
        }
        let op = match self.peek().tok {
            Tok::Op(op) => op,
            _ => return Err(self.unexpected()),
        };
        self.next();
        let (value, value_pos) = self.literal()?;
        Ok(Cond::Cmp {
            path,
            op,
            value,
            value_pos,
        })
    }

    fn literal(&mut self) -> Result<(Literal, usize), SoqlError> {
        let t = self.peek().clone();
        let lit = match t.tok {
            Tok::Str(s) => Literal::Str(s),
            Tok::Num(n) => Literal::Num(n),
            Tok::Date(d) => Literal::Date(d),
            Tok::DateTime(d) => Literal::DateTime(d),
            Tok::Time(t) => Literal::Time(t),
            Tok::Ident(word) => match word.to_ascii_uppercase().as_str() {
                "NULL" => Literal::Null,
                "TRUE" => Literal::Bool(true),
                "FALSE" => Literal::Bool(false),
                "TODAY" => Literal::Relative(DateLiteral::Today),
                "YESTERDAY" => Literal::Relative(DateLiteral::Yesterday),
                "TOMORROW" => Literal::Relative(DateLiteral::Tomorrow),
                "THIS_MONTH" => Literal::Relative(DateLiteral::ThisMonth),
                "LAST_MONTH" => Literal::Relative(DateLiteral::LastMonth),
                "THIS_YEAR" => Literal::Relative(DateLiteral::ThisYear),
                "LAST_YEAR" => Literal::Relative(DateLiteral::LastYear),
                upper @ ("LAST_N_DAYS" | "NEXT_N_DAYS") => {
                    let last = upper == "LAST_N_DAYS";
                    self.next();
                    self.expect(&Tok::Colon)?;
                    let n = u32::try_from(self.count()?.0).unwrap_or(u32::MAX);
                    let lit = if last {
                        DateLiteral::LastNDays(n)
                    } else {
                        DateLiteral::NextNDays(n)
                    };
                    return Ok((Literal::Relative(lit), t.pos));
                }
                _ => return Err(self.unexpected()),
            },
            _ => return Err(self.unexpected()),
        };
        self.next();
        Ok((lit, t.pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_code(src: &str) -> &'static str {
        parse(src).err().map_or("ok", |e| e.code())
    }

    #[test]
    fn parses_a_full_statement() {
        let q = parse(
            "select Id, Account.Name, COUNT() from Contact where (Email = 'a' or Email = null) \
             and NOT_A_KEYWORD__c != 3 order by LastName desc nulls last, Id limit 10 offset 5",
        );
        let q = q.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.select.len(), 3);
        assert_eq!(q.from, "Contact");
        assert!(matches!(q.filter, Some(Cond::And(ref v)) if v.len() == 2));
        assert_eq!(q.order_by.len(), 2);
        assert!(q.order_by[0].descending && q.order_by[0].nulls_last);
        assert_eq!(q.limit, Some(10));
        assert_eq!(q.offset.map(|o| o.0), Some(5));
    }

    #[test]
    fn in_and_not_in() {
        let q = parse("SELECT Id FROM Contact WHERE Email NOT IN ('a', 'b') AND Id IN ('x')");
        let Some(Cond::And(terms)) = q.map(|q| q.filter).unwrap_or(None) else {
            panic!("not an AND")
        };
        assert!(matches!(&terms[0], Cond::In { negated: true, values, .. } if values.len() == 2));
        assert!(matches!(&terms[1], Cond::In { negated: false, .. }));
    }

    #[test]
    fn mixing_and_or_needs_parentheses() {
        assert_eq!(
            err_code("SELECT Id FROM Contact WHERE Email = 'a' AND Phone = 'b' OR Title = 'c'"),
            "MALFORMED_QUERY"
        );
        assert_eq!(
            err_code("SELECT Id FROM Contact WHERE Email = 'a' AND (Phone = 'b' OR Title = 'c')"),
            "ok"
        );
    }

    #[test]
    fn not_only_opens_a_condition() {
        assert_eq!(
            err_code("SELECT Id FROM Contact WHERE NOT Email = 'a'"),
            "ok"
        );
        assert_eq!(
            err_code("SELECT Id FROM Contact WHERE Phone = 'b' AND (NOT Email = 'a')"),
            "ok"
        );
        assert_eq!(
            err_code("SELECT Id FROM Contact WHERE Phone = 'b' AND NOT Email = 'a'"),
            "MALFORMED_QUERY"
        );
    }

    #[test]
    fn syntax_errors_are_malformed() {
        for src in [
            "SELECT FROM Contact",
            "SELECT Id Contact",
            "SELECT Id FROM Contact WHERE",
            "SELECT Id FROM Contact WHERE Email = ",
            "SELECT Id FROM Contact LIMIT x",
            "SELECT Id FROM Contact WHERE Id IN (SELECT Id FROM Contact)",
        ] {
            assert_eq!(err_code(src), "MALFORMED_QUERY", "{src}");
        }
        let msg = parse("SELECT Id FROM Contact WHERE")
            .err()
            .map(|e| e.to_string());
        assert!(msg.unwrap_or_default().ends_with("unexpected token: <EOF>"));
    }

    #[test]
    fn relative_dates() {
        let q = parse("SELECT Id FROM Contact WHERE CreatedDate = LAST_N_DAYS:30");
        assert!(matches!(
            q.map(|q| q.filter),
            Ok(Some(Cond::Cmp {
                value: Literal::Relative(DateLiteral::LastNDays(30)),
                ..
            }))
        ));
    }
}
