//! Every migration's `down.sql` reverts its `up.sql` exactly, and `src/db/schema.rs` describes the
//! tables the migrations create, on SQLite and on PostgreSQL.
//!
//! Self-contained on purpose: it embeds the migration folders itself and talks to the databases
//! directly, so a broken migration is caught even when the server code does not build.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, ensure};
use diesel::{
    Connection, QueryableByName, RunQueryDsl,
    backend::Backend,
    connection::SimpleConnection,
    migration::{Migration, MigrationConnection, MigrationSource},
    pg::Pg,
    sql_query,
    sql_types::{Integer, Text},
    sqlite::{Sqlite, SqliteConnection},
};
use diesel_async::{AsyncPgConnection, async_connection_wrapper::AsyncConnectionWrapper};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The Diesel description of every table, read from the source so the test needs no server module.
const SCHEMA_RS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/db/schema.rs"));

/// The demo city, loaded by the seeding code after it creates the demo accounts.
const DEMO_CITY_SQL: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/db/demo_city.sql"));

/// The demo accounts demo_city.sql refers to: (email local part, role).
const DEMO_ACCOUNTS: &[(&str, &str)] = &[
    ("admin", "admin"),
    ("staff", "staff"),
    ("partner", "partner"),
    ("dispatcher", "dispatcher"),
    ("doctor1", "doctor"),
    ("doctor2", "doctor"),
    ("doctor3", "doctor"),
    ("doctor4", "doctor"),
    ("paramedic1", "paramedic"),
    ("paramedic2", "paramedic"),
    ("paramedic3", "paramedic"),
    ("paramedic4", "paramedic"),
    ("paramedic5", "paramedic"),
    ("paramedic6", "paramedic"),
    ("paramedic7", "paramedic"),
    ("paramedic8", "paramedic"),
    ("paramedic9", "paramedic"),
    ("paramedic10", "paramedic"),
    ("paramedic11", "paramedic"),
    ("paramedic12", "paramedic"),
    ("phlebotomist1", "phlebotomist"),
    ("phlebotomist2", "phlebotomist"),
    ("phlebotomist3", "phlebotomist"),
    ("rider1", "rider"),
    ("rider2", "rider"),
    ("rider3", "rider"),
    ("rider4", "rider"),
    ("customer1", "customer"),
    ("customer2", "customer"),
    ("donor1", "customer"),
    ("donor2", "customer"),
    ("donor3", "customer"),
    ("donor4", "customer"),
];

/// Row counts the demo city must produce, whatever the backend.
const DEMO_COUNTS: &str = "\
    SELECT 'hospitals ' || count(*) AS item FROM hospitals \
    UNION ALL SELECT 'ambulances ' || count(*) FROM units WHERE kind IN ('als', 'bls') AND status = 'available' \
    UNION ALL SELECT 'riders ' || count(*) FROM units WHERE kind = 'rider' \
    UNION ALL SELECT 'crewed units ' || count(DISTINCT unit_id) FROM unit_crew \
    UNION ALL SELECT 'phlebotomists ' || count(*) FROM phlebotomists WHERE unit_id IS NOT NULL \
    UNION ALL SELECT 'blood stock ' || count(*) FROM blood_stock \
    UNION ALL SELECT 'medicines ' || count(*) FROM medicines WHERE brand_id IS NOT NULL \
    UNION ALL SELECT 'lab packages ' || count(*) FROM lab_tests WHERE is_package \
    UNION ALL SELECT 'doctors ' || count(*) FROM doctors WHERE hospital_id IS NOT NULL \
    UNION ALL SELECT 'coupons ' || count(*) FROM coupons \
    UNION ALL SELECT 'donors ' || count(*) FROM donor_profiles \
    UNION ALL SELECT 'partnered hospitals ' || count(*) FROM hospitals WHERE partner_user_id IS NOT NULL \
    ORDER BY 1";

/// The line after which a migration's two backends may differ (the rest of the file must match).
const BACKEND_SPECIFIC: &str = "-- Backend-specific from here";

/// A sync Postgres connection without libpq: diesel-async's connection driven by a blocking wrapper.
type PgWrapper = AsyncConnectionWrapper<AsyncPgConnection>;

/// One line of a schema snapshot.
#[derive(QueryableByName)]
struct Item {
    #[diesel(sql_type = Text)]
    item: String,
}

/// One column as the database reports it.
#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    diesel_type: String,
}

/// One column of a SQLite table (`pragma_table_info`).
#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    declared_type: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

/// table name → ordered (column, Diesel type) pairs.
type TableColumns = BTreeMap<String, Vec<(String, String)>>;

const SQLITE_SNAPSHOT: &str = "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') AS item \
     FROM sqlite_master \
     WHERE name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations' \
     ORDER BY type, name";

// Columns are numbered by rank among live columns: PostgreSQL keeps a dropped column's slot, so a column
// dropped by down.sql and added again by up.sql would otherwise show a higher `ordinal_position`.
const POSTGRES_SNAPSHOT: &str = "\
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' nullable=' || is_nullable \
        || ' default=' || coalesce(column_default, '') \
        || ' position=' || row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position) AS item \
      FROM information_schema.columns \
     WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
    UNION ALL \
    SELECT 'index ' || tablename || ' ' || indexname || ' ' || indexdef \
      FROM pg_indexes \
     WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations' \
    UNION ALL \
    SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) \
      FROM pg_constraint \
     WHERE connamespace = 'public'::regnamespace \
       AND conrelid::regclass::text <> '__diesel_schema_migrations' \
    UNION ALL \
    SELECT 'relation ' || relkind::text || ' ' || relname \
      FROM pg_class \
     WHERE relnamespace = 'public'::regnamespace AND relname NOT LIKE '__diesel_schema_migrations%' \
    ORDER BY 1";

fn snapshot<C>(conn: &mut C, query: &str) -> Result<Vec<String>>
where
    C: Connection,
    Item: QueryableByName<C::Backend>,
    diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, Item>,
{
    let rows = sql_query(query)
        .load::<Item>(conn)
        .context("schema snapshot query")?;
    Ok(rows.into_iter().map(|row| row.item).collect())
}

/// Applies each migration in order; before moving on, reverts it and checks the schema is exactly
/// what it was before, then applies it again. Returns how many migrations ran.
fn assert_each_down_reverts_its_up<C, DB>(
    conn: &mut C,
    migrations: Vec<Box<dyn Migration<DB>>>,
    snapshot_query: &str,
) -> Result<usize>
where
    DB: Backend,
    C: MigrationHarness<DB> + MigrationConnection + Connection<Backend = DB>,
    Item: QueryableByName<DB>,
    diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, Item>,
{
    ensure!(!migrations.is_empty(), "no migrations were embedded");
    // The bookkeeping table exists before the first snapshot, so it never shows up as a difference.
    conn.setup().context("create __diesel_schema_migrations")?;
    for migration in &migrations {
        let name = migration.name().to_string();
        let before = snapshot(conn, snapshot_query)?;
        conn.run_migration(migration.as_ref())
            .map_err(|e| anyhow!("{name}: up.sql failed: {e}"))?;
        let applied = snapshot(conn, snapshot_query)?;
        ensure!(before != applied, "{name}: up.sql changed nothing");
        conn.revert_migration(migration.as_ref())
            .map_err(|e| anyhow!("{name}: down.sql failed: {e}"))?;
        assert_schema_eq(&before, &snapshot(conn, snapshot_query)?, &name);
        conn.run_migration(migration.as_ref())
            .map_err(|e| anyhow!("{name}: up.sql failed after a revert: {e}"))?;
        assert_schema_eq(&applied, &snapshot(conn, snapshot_query)?, &name);
    }
    Ok(migrations.len())
}

fn assert_schema_eq(expected: &[String], actual: &[String], migration: &str) {
    if expected == actual {
        return;
    }
    let missing: Vec<_> = expected.iter().filter(|line| !actual.contains(line)).collect();
    let extra: Vec<_> = actual.iter().filter(|line| !expected.contains(line)).collect();
    panic!(
        "{migration}: down.sql did not restore the schema.\nmissing: {missing:#?}\nleft behind: {extra:#?}"
    );
}

/// Parses the `diesel::table!` blocks of schema.rs into table → columns.
fn schema_rs_tables() -> Result<TableColumns> {
    let mut tables = TableColumns::new();
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    for line in SCHEMA_RS.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("diesel::table!") {
            current = None;
            continue;
        }
        match current.as_mut() {
            None if line.starts_with("    ") && trimmed.ends_with('{') && trimmed.contains('(') => {
                let name = trimmed.split([' ', '(']).next().unwrap_or_default();
                current = Some((name.to_string(), Vec::new()));
            }
            Some((_, columns)) => {
                if let Some((column, ty)) = trimmed.trim_end_matches(',').split_once("->") {
                    columns.push((column.trim().to_string(), ty.trim().to_string()));
                } else if trimmed == "}" {
                    let (name, columns) = current.take().context("inside a table! block")?;
                    tables.insert(name, columns);
                }
            }
            None => {}
        }
    }
    ensure!(
        tables.len() > 5,
        "schema.rs parsed to only {} tables",
        tables.len()
    );
    Ok(tables)
}

fn assert_schema_rs_matches(database: &TableColumns, backend: &str) -> Result<()> {
    let described = schema_rs_tables()?;
    let mut problems = Vec::new();
    for (table, columns) in &described {
        match database.get(table) {
            None => problems.push(format!("{table}: in schema.rs but not in the {backend} database")),
            Some(actual) if actual != columns => problems.push(format!(
                "{table}: schema.rs says {columns:?}\n  {backend} has {actual:?}"
            )),
            Some(_) => {}
        }
    }
    for table in database.keys().filter(|t| !described.contains_key(*t)) {
        problems.push(format!(
            "{table}: in the {backend} database but missing from schema.rs"
        ));
    }
    ensure!(
        problems.is_empty(),
        "schema.rs is out of step with the migrations:\n{}",
        problems.join("\n")
    );
    Ok(())
}

fn nullable(ty: &str, not_null: bool) -> String {
    if not_null {
        ty.to_string()
    } else {
        format!("Nullable<{ty}>")
    }
}

fn sqlite_columns(conn: &mut SqliteConnection) -> Result<TableColumns> {
    let names: Vec<String> = snapshot(
        conn,
        "SELECT name AS item FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations'",
    )?;
    let mut tables = TableColumns::new();
    for table in names {
        let columns = sql_query(
            "SELECT name, type AS declared_type, \"notnull\", pk FROM pragma_table_info(?) ORDER BY cid",
        )
        .bind::<Text, _>(&table)
        .load::<SqliteColumn>(conn)?;
        let columns = columns
            .into_iter()
            .map(|c| -> Result<(String, String)> {
                let ty = match c.declared_type.as_str() {
                    // INTEGER PRIMARY KEY is the 64-bit rowid.
                    "INTEGER" if c.pk == 1 => "BigInt",
                    "INTEGER" => "Integer",
                    "BIGINT" => "BigInt",
                    "TEXT" => "Text",
                    "REAL" => "Double",
                    "BOOLEAN" => "Bool",
                    "TIMESTAMP" => "Timestamp",
                    "DATE" => "Date",
                    "BLOB" => "Binary",
                    other => return Err(anyhow!("{table}.{}: unexpected SQLite type {other}", c.name)),
                };
                let not_null = c.notnull == 1 || (c.pk == 1 && c.declared_type == "INTEGER");
                Ok((c.name, nullable(ty, not_null)))
            })
            .collect::<Result<_>>()?;
        tables.insert(table, columns);
    }
    Ok(tables)
}

fn postgres_columns(conn: &mut PgWrapper) -> Result<TableColumns> {
    let rows = sql_query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                CASE data_type \
                    WHEN 'bigint' THEN 'BigInt' WHEN 'integer' THEN 'Integer' WHEN 'text' THEN 'Text' \
                    WHEN 'double precision' THEN 'Double' WHEN 'boolean' THEN 'Bool' \
                    WHEN 'timestamp without time zone' THEN 'Timestamp' WHEN 'date' THEN 'Date' \
                    WHEN 'bytea' THEN 'Binary' ELSE 'unexpected ' || data_type END \
                || CASE is_nullable WHEN 'YES' THEN '?' ELSE '' END AS diesel_type \
           FROM information_schema.columns \
          WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
          ORDER BY table_name, ordinal_position",
    )
    .load::<ColumnRow>(conn)?;
    let mut tables = TableColumns::new();
    for row in rows {
        let ty = match row.diesel_type.strip_suffix('?') {
            Some(inner) => nullable(inner, false),
            None => row.diesel_type,
        };
        tables
            .entry(row.table_name)
            .or_default()
            .push((row.column_name, ty));
    }
    Ok(tables)
}

fn sqlite_file() -> Result<(tempfile::TempDir, SqliteConnection)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("migrations.sqlite");
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
    // As the server runs it: foreign keys enforced, so drop order in down.sql matters.
    conn.batch_execute("PRAGMA foreign_keys = ON")?;
    Ok((dir, conn))
}

#[test]
fn every_sqlite_down_migration_reverts_its_up() -> Result<()> {
    let (_dir, mut conn) = sqlite_file()?;
    let migrations = MigrationSource::<Sqlite>::migrations(&SQLITE_MIGRATIONS).map_err(|e| anyhow!("{e}"))?;
    let count = assert_each_down_reverts_its_up(&mut conn, migrations, SQLITE_SNAPSHOT)?;
    ensure!(
        count >= 2,
        "expected the core migration and the product migrations, found {count}"
    );

    let tables = sqlite_columns(&mut conn)?;
    ensure!(
        tables.len() >= schema_rs_tables()?.len(),
        "some schema.rs tables were not created"
    );
    let violations = snapshot(
        &mut conn,
        "SELECT \"table\" || ' ' || \"parent\" AS item FROM pragma_foreign_key_check",
    )?;
    ensure!(violations.is_empty(), "foreign key violations: {violations:?}");
    Ok(())
}

#[test]
fn schema_rs_describes_every_sqlite_column_exactly() -> Result<()> {
    let (_dir, mut conn) = sqlite_file()?;
    conn.run_pending_migrations(SQLITE_MIGRATIONS)
        .map_err(|e| anyhow!("{e}"))?;
    assert_schema_rs_matches(&sqlite_columns(&mut conn)?, "SQLite")
}

#[test]
fn both_backends_ship_the_same_migrations() -> Result<()> {
    let sqlite: Vec<String> = MigrationSource::<Sqlite>::migrations(&SQLITE_MIGRATIONS)
        .map_err(|e| anyhow!("{e}"))?
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let postgres: Vec<String> = MigrationSource::<Pg>::migrations(&POSTGRES_MIGRATIONS)
        .map_err(|e| anyhow!("{e}"))?
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    ensure!(
        sqlite == postgres,
        "migration folders differ: sqlite {sqlite:?}, postgres {postgres:?}"
    );

    // Apart from the spelling of types, the two trees hold the same SQL: same tables, columns,
    // constraints and indexes. Statements that cannot be the same (SQLite cannot alter a constraint, so
    // it rebuilds the table) go after a `BACKEND_SPECIFIC` line, in both files.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for name in &postgres {
        for file in ["up.sql", "down.sql"] {
            let read = |backend: &str| std::fs::read_to_string(root.join(backend).join(name).join(file));
            let (postgres_sql, sqlite_sql) = (read("postgres")?, read("sqlite")?);
            ensure!(
                postgres_sql.contains(BACKEND_SPECIFIC) == sqlite_sql.contains(BACKEND_SPECIFIC),
                "{name}/{file}: only one backend marks a backend-specific part"
            );
            let common = |sql: &str| sql.split(BACKEND_SPECIFIC).next().unwrap_or_default().to_owned();
            let as_sqlite = common(&postgres_sql)
                .replace("BIGSERIAL PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT")
                .replace("DOUBLE PRECISION", "REAL")
                .replace("BYTEA", "BLOB");
            ensure!(
                as_sqlite == common(&sqlite_sql),
                "{name}/{file} differs between postgres and sqlite beyond types"
            );
        }
    }
    Ok(())
}

/// Creates the demo accounts the way the seeding code does (plain rows), then loads the demo city.
fn load_demo_city(conn: &mut impl SimpleConnection) -> Result<()> {
    let accounts: Vec<String> = DEMO_ACCOUNTS
        .iter()
        .map(|(local, role)| format!("('{local}@demo.onemedi.in', '{local}', '{role}')"))
        .collect();
    conn.batch_execute(&format!(
        "INSERT INTO users (email, name, role) VALUES {}",
        accounts.join(", ")
    ))?;
    conn.batch_execute(DEMO_CITY_SQL)
        .context("demo_city.sql failed")?;
    Ok(())
}

fn assert_demo_counts(counts: &[String]) -> Result<()> {
    let expected = [
        "ambulances 12",
        "blood stock 128",
        "coupons 2",
        "crewed units 19",
        "doctors 4",
        "donors 5",
        "hospitals 6",
        "lab packages 2",
        "medicines 30",
        "partnered hospitals 2",
        "phlebotomists 3",
        "riders 4",
    ];
    ensure!(
        counts == expected,
        "demo city rows: {counts:?}, expected {expected:?}"
    );
    Ok(())
}

#[test]
fn the_demo_city_loads_on_sqlite() -> Result<()> {
    let (_dir, mut conn) = sqlite_file()?;
    conn.run_pending_migrations(SQLITE_MIGRATIONS)
        .map_err(|e| anyhow!("{e}"))?;
    load_demo_city(&mut conn)?;
    assert_demo_counts(&snapshot(&mut conn, DEMO_COUNTS)?)?;
    let violations = snapshot(
        &mut conn,
        "SELECT \"table\" || ' ' || \"parent\" AS item FROM pragma_foreign_key_check",
    )?;
    ensure!(violations.is_empty(), "foreign key violations: {violations:?}");
    Ok(())
}

/// A throwaway Postgres database for one test; dropped when the test ends, pass or fail.
struct ScratchPg {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchPg {
    /// None when `TEST_DATABASE_URL` is not set (CI always sets it).
    fn create() -> Result<Option<Self>> {
        let Some(admin_url) = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            println!("TEST_DATABASE_URL is not set: skipping the PostgreSQL migration check");
            return Ok(None);
        };
        let base = admin_url.split('?').next().unwrap_or(&admin_url);
        let (server, _) = base
            .rsplit_once('/')
            .context("TEST_DATABASE_URL names a database")?;
        let name = format!("onemedi_test_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{server}/{name}");
        let mut admin = PgWrapper::establish(&admin_url).context("connect to TEST_DATABASE_URL")?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(Some(Self { admin_url, name, url }))
    }
}

impl Drop for ScratchPg {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgWrapper::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// Runs a blocking Postgres check off the async workers (the wrapper blocks on the runtime handle).
async fn with_scratch_postgres(
    check: impl FnOnce(&mut PgWrapper) -> Result<()> + Send + 'static,
) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let Some(db) = ScratchPg::create()? else {
            return Ok(());
        };
        // The connection closes before `db` is dropped (reverse declaration order).
        let mut conn = PgWrapper::establish(&db.url)?;
        check(&mut conn)
    })
    .await?
}

#[tokio::test(flavor = "multi_thread")]
async fn every_postgres_down_migration_reverts_its_up() -> Result<()> {
    with_scratch_postgres(|conn| {
        let migrations =
            MigrationSource::<Pg>::migrations(&POSTGRES_MIGRATIONS).map_err(|e| anyhow!("{e}"))?;
        let count = assert_each_down_reverts_its_up(conn, migrations, POSTGRES_SNAPSHOT)?;
        ensure!(
            count >= 2,
            "expected the core migration and the product migrations, found {count}"
        );
        let tables = postgres_columns(conn)?;
        ensure!(
            tables.len() >= schema_rs_tables()?.len(),
            "some schema.rs tables were not created"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_rs_describes_every_postgres_column_exactly() -> Result<()> {
    with_scratch_postgres(|conn| {
        conn.run_pending_migrations(POSTGRES_MIGRATIONS)
            .map_err(|e| anyhow!("{e}"))?;
        assert_schema_rs_matches(&postgres_columns(conn)?, "PostgreSQL")
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_city_loads_on_postgres() -> Result<()> {
    with_scratch_postgres(|conn| {
        conn.run_pending_migrations(POSTGRES_MIGRATIONS)
            .map_err(|e| anyhow!("{e}"))?;
        load_demo_city(conn)?;
        assert_demo_counts(&snapshot(conn, DEMO_COUNTS)?)
    })
    .await
}
