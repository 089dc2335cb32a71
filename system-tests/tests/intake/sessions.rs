//! Other sessions, and waiting for them: a lock held in a transaction of another session, and polling until a
//! condition holds.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use shared_models::store::PgPool;

/// Another session's transaction that holds the locks `statement` takes until it is released.
pub(crate) struct HeldLock {
    release: mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl HeldLock {
    /// Runs `statement` in a transaction of its own and returns once it holds its locks.
    pub(crate) fn take(pool: &PgPool, statement: &'static str) -> HeldLock {
        let (locked, is_locked) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let pool = pool.clone();
        let holder = std::thread::spawn(move || {
            let mut conn = pool.get().expect("connection");
            conn.transaction(|conn| {
                diesel::sql_query(statement).execute(conn)?;
                locked.send(()).expect("the test waits");
                released.recv().ok();
                Ok::<_, diesel::result::Error>(())
            })
            .expect("the holding transaction");
        });
        is_locked.recv().expect("the lock is held");
        HeldLock { release, holder }
    }

    /// Waits until a session waits for a lock in a statement like `pattern` (SQL `LIKE`), or fails with `what`.
    pub(crate) async fn until_waited_for(&self, pool: &PgPool, pattern: &str, what: &str) {
        eventually(what, || {
            let mut conn = pool.get().expect("connection");
            diesel::sql_query(
                "SELECT count(*) AS sessions FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
            )
            .bind::<diesel::sql_types::Text, _>(pattern)
            .get_result::<Sessions>(&mut conn)
            .expect("the sessions")
            .sessions
                > 0
        })
        .await;
    }

    pub(crate) fn release(self) {
        self.release.send(()).expect("the holder waits");
        self.holder.join().expect("the holder");
    }
}

#[derive(QueryableByName)]
struct Sessions {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    sessions: i64,
}

/// Waits until `done` holds, or fails with `what` after 30 s.
pub(crate) async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
