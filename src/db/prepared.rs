//! Keeps hot statements prepared: diesel refuses to cache every UPDATE, every INSERT of a struct with
//! optional fields and every raw `sql_query`, so each run of one costs an extra round trip to prepare it
//! (and PostgreSQL parses and plans it again). [`Prepared`] lets the connection's statement cache keep
//! such a statement, keyed by its SQL text and bind types.
//!
//! Diesel is cautious because the SQL of those statements may vary from one call to the next (a
//! changeset skips `None` fields, an insert writes `DEFAULT`). Keyed by text, each variant is its own
//! cache entry, so caching stays correct; what must hold is that a call site produces a bounded
//! number of variants, which is why only fixed-shape statements are marked, one call site at a time,
//! and never a statement whose text grows with its input (`eq_any` over a list, a batch insert).

use diesel::{
    QueryResult,
    backend::Backend,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
};

/// A statement the connection's cache may keep, keyed by its SQL text and bind types.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(Q);

/// Marks a fixed-shape statement as cacheable: `diesel::update(…).set(…).prepared().execute(c)`.
pub trait PreparedExt: Sized {
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q> PreparedExt for Q {}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

/// No static id: the cache keys the statement by its SQL text, so each text variant is its own entry.
impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: Backend, Q: QueryFragment<DB>> QueryFragment<DB> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use diesel::{ExpressionMethods, QueryDsl, sql_types::BigInt};

    use super::*;

    diesel::table! {
        items (id) {
            id -> BigInt,
            n -> BigInt,
        }
    }

    #[test]
    fn an_update_is_cacheable_only_when_marked_and_keeps_its_text() {
        let update =
            diesel::update(items::table.filter(items::id.eq(1_i64))).set(items::n.eq(items::n + 1_i64));
        let sqlite = diesel::sqlite::Sqlite;
        assert!(!update.is_safe_to_cache_prepared(&sqlite).unwrap());
        let text = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&update).to_string();
        let marked = update.prepared();
        assert!(marked.is_safe_to_cache_prepared(&sqlite).unwrap());
        assert_eq!(
            diesel::debug_query::<diesel::sqlite::Sqlite, _>(&marked).to_string(),
            text
        );
        assert!(<Prepared<diesel::query_builder::SqlQuery> as QueryId>::query_id().is_none());
    }

    /// How many times the UPDATE is added to the statement cache of a SQLite connection, used as the
    /// server uses it (through diesel-async), over three runs.
    async fn cached_after_three_runs(mark: bool) -> usize {
        use std::sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        };

        use diesel::connection::{Instrumentation, InstrumentationEvent};
        use diesel_async::{AsyncConnection, RunQueryDsl};

        let mut conn = crate::db::SqliteConn::establish(":memory:").await.unwrap();
        diesel::sql_query("CREATE TABLE items (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        diesel::sql_query("INSERT INTO items VALUES (1, 0)")
            .execute(&mut conn)
            .await
            .unwrap();
        let cached = Arc::new(AtomicUsize::new(0));
        let counter = cached.clone();
        let instrumentation = move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event
                && sql.starts_with("UPDATE")
            {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        };
        conn.set_instrumentation(Box::new(instrumentation) as Box<dyn Instrumentation>);
        for _ in 0..3 {
            let update =
                diesel::sql_query("UPDATE items SET n = n + ?1 WHERE id = 1").bind::<BigInt, _>(2_i64);
            if mark {
                update.prepared().execute(&mut conn).await.unwrap();
            } else {
                update.execute(&mut conn).await.unwrap();
            }
        }
        let n: i64 = items::table.select(items::n).first(&mut conn).await.unwrap();
        assert_eq!(n, 6);
        AtomicUsize::load(&cached, Ordering::Relaxed)
    }

    #[tokio::test]
    async fn a_marked_statement_is_prepared_once_and_reused() {
        assert_eq!(cached_after_three_runs(false).await, 0);
        assert_eq!(cached_after_three_runs(true).await, 1);
    }
}
