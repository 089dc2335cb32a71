//! Statements of fixed text that each connection prepares once. Diesel never keeps a `sql_query` prepared
//! (its text may be built at run time), so PostgreSQL parsed, analysed and planned every execution of the
//! pipeline's set-based statements anew: about a sixth of its time at intake (`perf` on the backends, in
//! docs/performance.md). A [`Statement`]'s text is a `&'static str`, so it is one of a fixed set, and diesel
//! keeps it prepared on each connection, keyed by its text and bind types, as it does its own queries.
//!
//! The text uses `$1`, `$2`, ... as `sql_query` does, in any order and as often as needed; the binds follow
//! in that numbering. Each occurrence is sent as a parameter of its own. The text is not parsed as SQL: a `$`
//! followed by digits is a parameter even inside a string literal, so the statements keep such text out.

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::Error;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// A statement of fixed text and its binds; run it with [`RunQueryDsl`] like a `sql_query`.
#[must_use = "a statement does nothing until it is run"]
pub struct Statement<Binds = ()> {
    sql: &'static str,
    binds: Binds,
}

/// A statement without binds yet: `statement("... $1 ...").bind::<Text, _>(value)`.
pub fn statement(sql: &'static str) -> Statement {
    Statement { sql, binds: () }
}

/// One bound value of SQL type `T`, after the binds `Earlier`.
pub struct Bind<Earlier, T, U> {
    earlier: Earlier,
    value: U,
    sql_type: PhantomData<T>,
}

/// The binds of a statement, pushed by their number as the text names them.
pub trait Binds {
    /// How many binds there are.
    fn count(&self) -> usize;

    /// Pushes bind `index` (from 0) as the next parameter.
    fn push<'b>(&'b self, index: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

impl Binds for () {
    fn count(&self) -> usize {
        0
    }

    fn push<'b>(&'b self, index: usize, _: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        Err(Error::QueryBuilderError(
            format!("the statement names ${} but has no such bind", index + 1).into(),
        ))
    }
}

impl<Earlier: Binds, T, U> Binds for Bind<Earlier, T, U>
where
    Pg: HasSqlType<T>,
    U: ToSql<T, Pg>,
{
    fn count(&self) -> usize {
        self.earlier.count() + 1
    }

    fn push<'b>(&'b self, index: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if index + 1 == self.count() {
            out.push_bind_param::<T, U>(&self.value)
        } else {
            self.earlier.push(index, out)
        }
    }
}

impl<B> Statement<B> {
    /// Binds the next parameter (`$1` first).
    pub fn bind<T, U>(self, value: U) -> Statement<Bind<B, T, U>> {
        Statement {
            sql: self.sql,
            binds: Bind {
                earlier: self.binds,
                value,
                sql_type: PhantomData,
            },
        }
    }
}

impl<B: Binds> QueryFragment<Pg> for Statement<B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest = self.sql;
        while let Some(dollar) = rest.find('$') {
            let digits = rest[dollar + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - dollar - 1);
            out.push_sql(&rest[..dollar]);
            if digits == 0 {
                out.push_sql("$");
            } else {
                let number: usize = rest[dollar + 1..dollar + 1 + digits]
                    .parse()
                    .map_err(|_| Error::QueryBuilderError("a parameter number too large".into()))?;
                if number == 0 || number > self.binds.count() {
                    return Err(Error::QueryBuilderError(
                        format!(
                            "the statement names ${number} but has {} binds",
                            self.binds.count()
                        )
                        .into(),
                    ));
                }
                self.binds.push(number - 1, &mut out)?;
            }
            rest = &rest[dollar + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

impl<B> QueryId for Statement<B> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<B> Query for Statement<B> {
    type SqlType = Untyped;
}

impl<B, Conn> RunQueryDsl<Conn> for Statement<B> {}

#[cfg(test)]
mod tests {
    use diesel::debug_query;
    use diesel::pg::PgQueryBuilder;
    use diesel::sql_types::{Array, Int8, Text};

    use super::*;

    #[test]
    fn parameters_are_sent_in_the_order_the_text_names_them() {
        let query = statement("SELECT $2::int8 + 1 FROM t WHERE a = ANY($1) AND b = $2 AND c = '$'")
            .bind::<Array<Text>, _>(vec!["x"])
            .bind::<Int8, _>(7_i64);
        assert_eq!(
            debug_query::<Pg, _>(&query).to_string(),
            r#"SELECT $1::int8 + 1 FROM t WHERE a = ANY($2) AND b = $3 AND c = '$' -- binds: [7, ["x"], 7]"#
        );
    }

    #[test]
    fn a_parameter_without_its_bind_is_an_error() {
        let query = statement("SELECT $1, $2").bind::<Int8, _>(1_i64);
        let built = QueryFragment::<Pg>::to_sql(&query, &mut PgQueryBuilder::default(), &Pg);
        assert!(built.is_err());
    }
}
