//! Runs the shared repositories' statements (PostgreSQL's flavour) on MySQL.
//!
//! The repositories call [`query`] and [`Builder`] as they would sqlx's; here
//! each statement is rewritten just before it runs:
//!
//! - `$N` -> `?`, each value bound again wherever its number appears; the
//!   column `key` (reserved in MySQL) is quoted;
//! - `INSERT ... ON CONFLICT (k) DO UPDATE SET c = excluded.c` ->
//!   `ON DUPLICATE KEY UPDATE c = VALUES(c)`; `ON CONFLICT DO NOTHING` -> one
//!   `INSERT` per row, a duplicate key skipping that row (and only for that
//!   reason; any other error still fails);
//! - `INSERT ... RETURNING cols` -> the insert, then the rows read back by
//!   their `LAST_INSERT_ID()`;
//! - `UPDATE t SET s WHERE w RETURNING cols` -> in one transaction (a savepoint
//!   inside the caller's): `SELECT id FROM t WHERE w FOR UPDATE`, `UPDATE t SET
//!   s WHERE id IN (those)`, `SELECT cols FROM t WHERE id IN (those)`. A claim
//!   (`WHERE id IN (SELECT id FROM (due ... FOR UPDATE SKIP LOCKED) AS ids_)
//!   AND free`) first runs its `due` select, which locks the batch and skips
//!   rows other claimants hold; the update then touches exactly those rows.
//!
//! Ids read from the database are the only values written into SQL text;
//! every other value is a bound parameter.

use std::fmt::Write as _;
use std::marker::PhantomData;

use chrono::{DateTime, NaiveDate, Utc};
use futures::stream::{self, BoxStream, StreamExt as _, TryStreamExt as _};
use sqlx::mysql::{MySqlArguments, MySqlConnection, MySqlPool, MySqlRow};
use sqlx::{Arguments as _, Row as _};

/// A value bound to a statement (owned, so that it can be bound again).
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I64(Option<i64>),
    Str(Option<String>),
    Bool(Option<bool>),
    Ts(Option<DateTime<Utc>>),
    Date(Option<NaiveDate>),
}

impl Arg {
    fn add_to(&self, args: &mut MySqlArguments) -> Result<(), sqlx::Error> {
        match self {
            Arg::I64(v) => args.add(*v),
            Arg::Str(v) => args.add(v.clone()),
            Arg::Bool(v) => args.add(*v),
            // As DATETIME: a TIMESTAMP parameter ends in 2038.
            Arg::Ts(v) => args.add(v.map(|t| t.naive_utc())),
            Arg::Date(v) => args.add(*v),
        }
        .map_err(sqlx::Error::Encode)
    }
}

/// What a repository binds.
pub(crate) trait IntoArg {
    /// The value, owned.
    fn into_arg(self) -> Arg;
}

macro_rules! into_arg {
    ($variant:ident: $($t:ty => $conv:expr),* $(,)?) => {
        $(impl IntoArg for $t {
            fn into_arg(self) -> Arg {
                #[allow(clippy::redundant_closure_call)]
                Arg::$variant(($conv)(self))
            }
        })*
    };
}

into_arg!(I64: i64 => Some, Option<i64> => |v| v);
into_arg!(Str: &str => |v: &str| Some(v.to_owned()), String => Some, &String => |v: &String| Some(v.clone()),
    Option<&str> => |v: Option<&str>| v.map(str::to_owned), Option<String> => |v| v);
into_arg!(Bool: bool => Some, Option<bool> => |v| v);
into_arg!(Ts: DateTime<Utc> => Some, Option<DateTime<Utc>> => |v| v);
into_arg!(Date: NaiveDate => Some, Option<NaiveDate> => |v| v);

/// A statement and its values, as `sqlx::query(sql).bind(..)` would hold them.
#[derive(Debug)]
pub(crate) struct Query {
    sql: String,
    args: Vec<Arg>,
}

/// A statement, in PostgreSQL's flavour (`$N` parameters).
pub(crate) fn query(sql: &str) -> Query {
    Query {
        sql: sql.to_owned(),
        args: Vec::new(),
    }
}

/// What `execute` reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    rows_affected: u64,
}

impl Done {
    /// Rows matched by an `UPDATE` or `DELETE`, inserted by an `INSERT`.
    pub(crate) fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

impl Query {
    /// Binds the next `$N`.
    pub(crate) fn bind(mut self, value: impl IntoArg) -> Self {
        self.args.push(value.into_arg());
        self
    }

    /// Runs it; the rows it changed.
    pub(crate) async fn execute<'c>(self, on: impl Into<On<'c>>) -> Result<Done, sqlx::Error> {
        let (_, rows_affected) = self.run(on.into(), false).await?;
        Ok(Done { rows_affected })
    }

    /// Runs it; every row it returns.
    pub(crate) async fn fetch_all<'c>(self, on: impl Into<On<'c>>) -> Result<Vec<MySqlRow>, sqlx::Error> {
        Ok(self.run(on.into(), true).await?.0)
    }

    /// Runs it; its first row, if any.
    pub(crate) async fn fetch_optional<'c>(
        self,
        on: impl Into<On<'c>>,
    ) -> Result<Option<MySqlRow>, sqlx::Error> {
        Ok(self.fetch_all(on).await?.into_iter().next())
    }

    /// Runs it; its first row, or `RowNotFound`.
    pub(crate) async fn fetch_one<'c>(self, on: impl Into<On<'c>>) -> Result<MySqlRow, sqlx::Error> {
        self.fetch_optional(on).await?.ok_or(sqlx::Error::RowNotFound)
    }

    /// Runs it; its rows as a stream.
    pub(crate) fn fetch<'c>(self, on: impl Into<On<'c>>) -> BoxStream<'c, Result<MySqlRow, sqlx::Error>> {
        let on = on.into();
        stream::once(async move { self.fetch_all(on).await })
            .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    async fn run(&self, on: On<'_>, rows: bool) -> Result<(Vec<MySqlRow>, u64), sqlx::Error> {
        match on {
            On::Pool(pool) => {
                let mut conn = pool.acquire().await?;
                run(&mut conn, &self.sql, &self.args, rows).await
            }
            On::Conn(conn) => run(conn, &self.sql, &self.args, rows).await,
        }
    }
}

/// Where a statement runs: a pooled connection, or the caller's (in a transaction).
pub(crate) enum On<'c> {
    Pool(&'c MySqlPool),
    Conn(&'c mut MySqlConnection),
}

impl<'c> From<&'c MySqlPool> for On<'c> {
    fn from(pool: &'c MySqlPool) -> Self {
        On::Pool(pool)
    }
}

impl<'c> From<&'c mut MySqlConnection> for On<'c> {
    fn from(conn: &'c mut MySqlConnection) -> Self {
        On::Conn(conn)
    }
}

/// `sqlx::QueryBuilder`'s calls the repositories use, writing `$N` parameters.
#[derive(Debug)]
pub(crate) struct Builder<'a> {
    sql: String,
    args: Vec<Arg>,
    _values: PhantomData<&'a ()>,
}

impl<'a> Builder<'a> {
    /// A statement that starts with `init`.
    pub(crate) fn new(init: impl Into<String>) -> Self {
        Builder {
            sql: init.into(),
            args: Vec::new(),
            _values: PhantomData,
        }
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, sql: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.sql, "{sql}");
        self
    }

    /// Appends a parameter bound to `value`.
    pub(crate) fn push_bind(&mut self, value: impl IntoArg + 'a) -> &mut Self {
        self.args.push(value.into_arg());
        let _ = write!(self.sql, "${}", self.args.len());
        self
    }

    /// Appends items separated by `separator`.
    pub(crate) fn separated(&mut self, separator: &'static str) -> Separated<'_, 'a> {
        Separated {
            builder: self,
            separator,
            first: true,
        }
    }

    /// Appends `VALUES (..), (..)`, one tuple per item, filled by `f`.
    pub(crate) fn push_values<I, F>(&mut self, items: I, mut f: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(Separated<'_, 'a>, I::Item),
    {
        self.sql.push_str("VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push('(');
            f(self.separated(", "), item);
            self.sql.push(')');
        }
        self
    }

    /// The statement built so far (the builder is left empty).
    pub(crate) fn build(&mut self) -> Query {
        Query {
            sql: std::mem::take(&mut self.sql),
            args: std::mem::take(&mut self.args),
        }
    }
}

/// Items of a [`Builder`] with a separator between them.
pub(crate) struct Separated<'b, 'a> {
    builder: &'b mut Builder<'a>,
    separator: &'static str,
    first: bool,
}

impl<'a> Separated<'_, 'a> {
    fn next(&mut self) {
        if !self.first {
            self.builder.sql.push_str(self.separator);
        }
        self.first = false;
    }

    /// Appends SQL text as the next item (as sqlx's `Separated::push`).
    #[allow(dead_code)]
    pub(crate) fn push(&mut self, sql: impl std::fmt::Display) -> &mut Self {
        self.next();
        self.builder.push(sql);
        self
    }

    /// Appends a parameter as the next item.
    pub(crate) fn push_bind(&mut self, value: impl IntoArg + 'a) -> &mut Self {
        self.next();
        self.builder.push_bind(value);
        self
    }
}

// ------------------------------------------------------------------ running

/// Runs one statement: its rows (when `rows`) and the rows it affected.
async fn run(
    conn: &mut MySqlConnection,
    sql: &str,
    args: &[Arg],
    rows: bool,
) -> Result<(Vec<MySqlRow>, u64), sqlx::Error> {
    if let Some(inner) = sql.strip_prefix("EXPLAIN ") {
        let target = match parse_update(inner).and_then(|u| u.claim) {
            Some(claim) => format!("EXPLAIN {}", claim.due),
            None => sql.to_owned(),
        };
        return Ok((plain(conn, &target, args, true).await?.rows, 0));
    }
    if sql.starts_with("INSERT ") {
        return insert(conn, sql, args, rows).await;
    }
    if sql.starts_with("UPDATE ") {
        if let Some(update) = parse_update(sql) {
            return update_returning(conn, update, args).await;
        }
    }
    let out = plain(conn, sql, args, rows).await?;
    Ok((out.rows, out.affected))
}

struct Plain {
    rows: Vec<MySqlRow>,
    affected: u64,
    last_insert_id: u64,
}

/// One statement as it is, `$N` rewritten.
async fn plain(
    conn: &mut MySqlConnection,
    sql: &str,
    args: &[Arg],
    rows: bool,
) -> Result<Plain, sqlx::Error> {
    let (text, order) = positional(sql);
    let mut bound = MySqlArguments::default();
    for n in order {
        let arg = args.get(n.wrapping_sub(1)).ok_or_else(|| {
            sqlx::Error::Protocol(format!("statement uses ${n} but {} values are bound", args.len()))
        })?;
        arg.add_to(&mut bound)?;
    }
    let q = sqlx::query_with(&text, bound);
    if rows {
        let rows = q.fetch_all(&mut *conn).await?;
        Ok(Plain {
            affected: rows.len() as u64,
            rows,
            last_insert_id: 0,
        })
    } else {
        let done = q.execute(&mut *conn).await?;
        Ok(Plain {
            rows: Vec::new(),
            affected: done.rows_affected(),
            last_insert_id: done.last_insert_id(),
        })
    }
}

/// `INSERT`, with its `ON CONFLICT` and `RETURNING` rewritten.
async fn insert(
    conn: &mut MySqlConnection,
    sql: &str,
    args: &[Arg],
    rows: bool,
) -> Result<(Vec<MySqlRow>, u64), sqlx::Error> {
    let (body, returning) = match rfind_top(sql, " RETURNING ") {
        Some(i) => (&sql[..i], Some(&sql[i + " RETURNING ".len()..])),
        None => (sql, None),
    };
    let mut skip_duplicates = false;
    let mut body = body.to_owned();
    if let Some(i) = body.find(" ON CONFLICT DO NOTHING") {
        body.replace_range(i..i + " ON CONFLICT DO NOTHING".len(), "");
        skip_duplicates = true;
    } else if let Some(i) = body.find(" ON CONFLICT (") {
        let set_at = body[i..]
            .find(" DO UPDATE SET ")
            .map(|j| i + j + " DO UPDATE SET ".len())
            .ok_or_else(|| sqlx::Error::Protocol(format!("unsupported ON CONFLICT in: {sql}")))?;
        let assignments = excluded_to_values(&body[set_at..]);
        let mut rewritten = format!("{} ON DUPLICATE KEY UPDATE {assignments}", &body[..i]);
        if returning.is_some() {
            rewritten.push_str(", id = LAST_INSERT_ID(id)");
        }
        body = rewritten;
    }
    let table = body
        .strip_prefix("INSERT INTO ")
        .and_then(|rest| rest.split([' ', '(']).next())
        .unwrap_or_default()
        .to_owned();
    // One statement per row when rows may be skipped or must be read back by id.
    let statements = match (skip_duplicates || returning.is_some(), split_values(&body)) {
        (true, Some((head, tuples, tail))) => {
            tuples.into_iter().map(|t| format!("{head}{t}{tail}")).collect()
        }
        _ => vec![body.clone()],
    };
    let per_row = skip_duplicates || returning.is_some();
    let mut ids = Vec::new();
    let mut affected = 0;
    for statement in &statements {
        match plain(conn, statement, args, false).await {
            Ok(done) => {
                // An upsert reports 2 for a changed row; a row is one.
                affected += if per_row {
                    done.affected.min(1)
                } else {
                    done.affected
                };
                ids.push(done.last_insert_id);
            }
            Err(sqlx::Error::Database(e)) if skip_duplicates && e.is_unique_violation() => {}
            Err(e) => return Err(e),
        }
    }
    match returning {
        Some(cols) if rows || !ids.is_empty() => {
            if ids.is_empty() {
                return Ok((Vec::new(), 0));
            }
            let select = format!(
                "SELECT {cols} FROM {table} WHERE id IN ({}) ORDER BY id",
                id_list(&ids)
            );
            let out = plain(conn, &select, args, true).await?;
            Ok((out.rows, affected))
        }
        _ => Ok((Vec::new(), affected)),
    }
}

/// `UPDATE t SET s WHERE w RETURNING cols`, taken apart.
struct Update<'s> {
    table: &'s str,
    set: &'s str,
    filter: &'s str,
    cols: &'s str,
    claim: Option<Claim<'s>>,
}

/// A claim's `WHERE id IN (SELECT id FROM (due) AS ids_) AND rest`.
struct Claim<'s> {
    due: &'s str,
    rest: &'s str,
}

fn parse_update(sql: &str) -> Option<Update<'_>> {
    let rest = sql.strip_prefix("UPDATE ")?;
    let (table, rest) = rest.split_once(" SET ")?;
    let returning = rfind_top(rest, " RETURNING ")?;
    let cols = &rest[returning + " RETURNING ".len()..];
    let rest = &rest[..returning];
    let where_at = find_top(rest, " WHERE ")?;
    let set = &rest[..where_at];
    let filter = &rest[where_at + " WHERE ".len()..];
    let claim = filter
        .strip_prefix("id IN (")
        .and_then(|_| matching_paren(filter, "id IN ".len()))
        .and_then(|close| {
            let inner = filter["id IN (".len()..close].strip_prefix("SELECT id FROM (")?;
            let due = inner.strip_suffix(") AS ids_")?;
            let rest = filter[close + 1..].trim_start().strip_prefix("AND ")?;
            due.ends_with(super::CLAIM_LOCK).then_some(Claim { due, rest })
        });
    Some(Update {
        table,
        set,
        filter,
        cols,
        claim,
    })
}

async fn update_returning(
    conn: &mut MySqlConnection,
    u: Update<'_>,
    args: &[Arg],
) -> Result<(Vec<MySqlRow>, u64), sqlx::Error> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let filter = match &u.claim {
        Some(claim) => {
            let due = plain(&mut tx, claim.due, args, true).await?;
            let ids = ids_of(&due.rows)?;
            if ids.is_empty() {
                tx.commit().await?;
                return Ok((Vec::new(), 0));
            }
            format!("id IN ({}) AND {}", id_list(&ids), claim.rest)
        }
        None => u.filter.to_owned(),
    };
    let locked = plain(
        &mut tx,
        &format!("SELECT id FROM {} WHERE {filter} FOR UPDATE", u.table),
        args,
        true,
    )
    .await?;
    let ids = ids_of(&locked.rows)?;
    if ids.is_empty() {
        tx.commit().await?;
        return Ok((Vec::new(), 0));
    }
    let list = id_list(&ids);
    plain(
        &mut tx,
        &format!("UPDATE {} SET {} WHERE id IN ({list})", u.table, u.set),
        args,
        false,
    )
    .await?;
    let out = plain(
        &mut tx,
        &format!("SELECT {} FROM {} WHERE id IN ({list})", u.cols, u.table),
        args,
        true,
    )
    .await?;
    tx.commit().await?;
    Ok((out.rows, ids.len() as u64))
}

fn ids_of(rows: &[MySqlRow]) -> Result<Vec<u64>, sqlx::Error> {
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get(0)?;
            u64::try_from(id).map_err(|_| sqlx::Error::Protocol(format!("negative id {id}")))
        })
        .collect()
}

fn id_list(ids: &[u64]) -> String {
    let mut out = String::new();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{id}");
    }
    out
}

// ------------------------------------------------------------------ text

/// `$N` -> `?` (and the numbers in order of use), `key` -> `` `key` ``; string
/// literals are left alone.
fn positional(sql: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::new();
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => {
                out.push(c);
                for (_, c) in chars.by_ref() {
                    out.push(c);
                    if c == '\'' {
                        break;
                    }
                }
            }
            '$' if chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) => {
                let mut n = 0usize;
                while let Some((_, d)) = chars.peek().copied() {
                    match d.to_digit(10) {
                        Some(v) => {
                            n = n * 10 + v as usize;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push('?');
                order.push(n);
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = i + c.len_utf8();
                while let Some((j, d)) = chars.peek().copied() {
                    if d.is_ascii_alphanumeric() || d == '_' {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = &sql[i..end];
                let quoted = word == "key" && !out.ends_with('.');
                if quoted {
                    out.push('`');
                }
                out.push_str(word);
                if quoted {
                    out.push('`');
                }
            }
            c => out.push(c),
        }
    }
    (out, order)
}

/// `c = excluded.c` -> `c = VALUES(c)`.
fn excluded_to_values(assignments: &str) -> String {
    let mut out = String::new();
    let mut rest = assignments;
    while let Some(i) = rest.find("excluded.") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "excluded.".len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let _ = write!(out, "VALUES({})", &after[..end]);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `INSERT ... VALUES (a), (b) tail` -> (`INSERT ... VALUES `, [`(a)`, `(b)`], ` tail`).
fn split_values(sql: &str) -> Option<(&str, Vec<&str>, &str)> {
    let at = sql.find(" VALUES ")? + " VALUES ".len();
    let mut tuples = Vec::new();
    let mut pos = at;
    loop {
        let open = pos + sql[pos..].find('(')?;
        let close = matching_paren(sql, open)?;
        tuples.push(&sql[open..=close]);
        pos = close + 1;
        let next = sql[pos..].trim_start();
        match next.strip_prefix(',') {
            Some(after) if after.trim_start().starts_with('(') => {
                pos = sql.len() - after.len();
            }
            _ => break,
        }
    }
    Some((&sql[..at], tuples, &sql[pos..]))
}

/// The index of the `)` that closes the `(` at `open`.
fn matching_paren(sql: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    for (i, c) in sql[open..].char_indices() {
        match c {
            '\'' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Byte offsets of `needle` outside parentheses and string literals.
fn top_level(sql: &str, needle: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut depth = 0i32;
    let mut in_string = false;
    for (i, c) in sql.char_indices() {
        match c {
            '\'' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => depth -= 1,
            _ if depth == 0 && !in_string && sql[i..].starts_with(needle) => found.push(i),
            _ => {}
        }
    }
    found
}

fn find_top(sql: &str, needle: &str) -> Option<usize> {
    top_level(sql, needle).first().copied()
}

fn rfind_top(sql: &str, needle: &str) -> Option<usize> {
    top_level(sql, needle).last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_positional_in_order_of_use() {
        let (sql, order) = positional("UPDATE t SET a = $2, key = 'x$1' WHERE id = $1 AND b <= $2");
        assert_eq!(sql, "UPDATE t SET a = ?, `key` = 'x$1' WHERE id = ? AND b <= ?");
        assert_eq!(order, vec![2, 1, 2]);
    }

    #[test]
    fn upserts_and_values_are_rewritten() {
        assert_eq!(
            excluded_to_values("a = excluded.a, b = TRUE"),
            "a = VALUES(a), b = TRUE"
        );
        let (head, tuples, tail) =
            split_values("INSERT INTO n (a, b) VALUES ($1, 'x,(y'), ($2, f($3)) ON X").expect("split");
        assert_eq!(head, "INSERT INTO n (a, b) VALUES ");
        assert_eq!(tuples, vec!["($1, 'x,(y')", "($2, f($3))"]);
        assert_eq!(tail, " ON X");
    }

    #[test]
    fn a_claim_is_recognised() {
        let sql = format!(
            "UPDATE s SET h = $1 WHERE id {} AND (u IS NULL) RETURNING id, h",
            super::super::id_in("SELECT id FROM s WHERE a AND (b) LIMIT $4 FOR UPDATE SKIP LOCKED")
        );
        let u = parse_update(&sql).expect("an update with RETURNING");
        assert_eq!((u.table, u.set, u.cols), ("s", "h = $1", "id, h"));
        let claim = u.claim.expect("a claim");
        assert_eq!(
            claim.due,
            "SELECT id FROM s WHERE a AND (b) LIMIT $4 FOR UPDATE SKIP LOCKED"
        );
        assert_eq!(claim.rest, "(u IS NULL)");
        assert!(parse_update("UPDATE s SET a = 1 WHERE id = $1").is_none());
    }
}
