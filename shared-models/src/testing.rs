//! Test support: every test gets its own database (migrated with the real migrations), topics and queue,
//! on the services that `scripts/test.sh` starts and announces in `TEST_*` variables.

use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::db::{self, PgPool};

/// The variable's value; a clear failure when the test run was not started through `make test`.
pub fn service_url(variable: &str) -> String {
    std::env::var(variable)
        .unwrap_or_else(|_| panic!("{variable} is not set: run the tests with `make test`"))
}

/// A unique lower-case name with the given prefix.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh, migrated database; returns its URL and a pool on it.
pub fn fresh_database() -> (String, PgPool) {
    let admin_url = service_url("TEST_DATABASE_URL");
    let name = unique_name("test");
    let mut admin = PgConnection::establish(&admin_url).expect("connect to the test PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .expect("create the test database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("a database URL ends with /<database>");
    let url = format!("{base}/{name}");
    let pool = db::build_pool(&url, 8);
    db::run_migrations(&pool).expect("migrate the test database");
    (url, pool)
}

#[derive(clap::Parser)]
struct Defaults<T: clap::Args> {
    #[command(flatten)]
    inner: T,
}

/// A configuration section with every value at its default (as a service started with no variables set).
pub fn defaults<T: clap::Args>() -> T {
    <Defaults<T> as clap::Parser>::parse_from(["test"]).inner
}
