//! A SQLite file that several processes use at once, opened one way and called off the async runtime.
//!
//! The embedded queue (`watchbot-watcher`'s `local::queue`) and the embedded progress store (`watchbot-progress`)
//! both keep their state in a SQLite file that the watcher, its workers and a second watcher open together. Both
//! need the same three things, defined here once:
//!
//! - [`open`]: open the file with a busy timeout, switch it to WAL (readers never block the writer) with a brief
//!   retry, because openers racing on a fresh file can get `SQLITE_BUSY` there before the busy handler applies,
//!   set `synchronous`, and apply the caller's schema in one `BEGIN IMMEDIATE` transaction (so `CREATE ... IF NOT
//!   EXISTS` statements migrate an older file, and two openers never interleave them);
//! - [`Database`]: one connection behind a mutex (SQLite connections are not `Sync`), shared by clones;
//! - [`Database::call`]: run a closure on the connection in tokio's blocking pool (SQLite calls block on fsync and
//!   busy waits). A closure that panics, or a blocking task the runtime cancels, becomes [`Error::TaskFailed`]
//!   naming the operation: never a panic in the caller. The connection stays usable afterwards: an open
//!   transaction rolls back when the panicking closure drops it, and the poisoned mutex is recovered.
//!
//! ```
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir().unwrap();
//! let options = watchbot_sqlite::OpenOptions {
//!     schema: "CREATE TABLE IF NOT EXISTS notes (text TEXT NOT NULL);",
//!     ..watchbot_sqlite::OpenOptions::default()
//! };
//! let database = watchbot_sqlite::Database::open(&dir.path().join("notes.sqlite"), &options)?;
//! let inserted = database
//!     .call("add note", |connection| connection.execute("INSERT INTO notes (text) VALUES ('hi')", []))
//!     .await??;
//! assert_eq!(inserted, 1);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(example()).unwrap();
//! ```

// Every public item says what it is for (a library users depend on).
#![warn(missing_docs)]

/// The SQLite binding whose types this API takes and gives (`Connection` in [`Database::call`], the errors), so that
/// a user names the same version without a dependency of their own.
pub use rusqlite;

use rusqlite::{Connection, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How [`open`] sets up a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// How long a statement waits for another connection's lock before failing with `SQLITE_BUSY`.
    pub busy_timeout: Duration,
    /// The `synchronous` setting (`FULL`, `NORMAL`, ...). In WAL mode `NORMAL` survives any process crash; only a
    /// power loss can roll back the latest commits.
    pub synchronous: &'static str,
    /// SQL run once per open in a `BEGIN IMMEDIATE` transaction: `CREATE TABLE/INDEX IF NOT EXISTS ...`.
    pub schema: &'static str,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions { busy_timeout: Duration::from_secs(10), synchronous: "NORMAL", schema: "" }
    }
}

/// What went wrong opening or calling a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, switched to WAL, or given its schema.
    #[error("cannot open {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The blocking task running a [`Database::call`] ended without an answer: the closure panicked, or the
    /// runtime was shutting down and cancelled it. What the closure did in an open transaction was rolled back.
    #[error("{operation} on {} did not finish: its blocking task {reason}", path.display())]
    TaskFailed {
        /// What the call was doing (the caller's name for it).
        operation: &'static str,
        /// The database file.
        path: PathBuf,
        /// `panicked` or `was cancelled`.
        reason: &'static str,
    },
}

/// How often, and how long apart, [`open`] retries a WAL switch that found the file busy (about a second in all).
const WAL_ATTEMPTS: u32 = 50;
const WAL_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// SQLite's "try again": another connection holds the lock we need.
pub fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Opens (creating if needed) the file at `path` as [`OpenOptions`] says. The parent folder must exist.
pub fn open(path: &Path, options: &OpenOptions) -> Result<Connection, Error> {
    let open_error = |source| Error::Open { path: path.to_path_buf(), source };
    let mut connection = Connection::open(path).map_err(open_error)?;
    connection.busy_timeout(options.busy_timeout).map_err(open_error)?;
    // WAL persists in the file; setting it again is a no-op. Switching a fresh file needs a moment of exclusive
    // access, and openers that collide there get SQLITE_BUSY at once, without the busy handler (SQLite will not wait
    // while holding the shared lock it took to read the schema: deadlock avoidance), so retry briefly.
    let mut attempt = 0;
    loop {
        match connection.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())) {
            Ok(()) => break,
            Err(e) if attempt < WAL_ATTEMPTS && is_busy(&e) => {
                attempt += 1;
                std::thread::sleep(WAL_RETRY_PAUSE);
            }
            Err(e) => return Err(open_error(e)),
        }
    }
    connection.pragma_update(None, "synchronous", options.synchronous).map_err(open_error)?;
    if !options.schema.is_empty() {
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(open_error)?;
        tx.execute_batch(options.schema).map_err(open_error)?;
        tx.commit().map_err(open_error)?;
    }
    Ok(connection)
}

/// One connection to a SQLite file, shared by clones; calls from this process's threads take turns on it, other
/// processes coordinate through SQLite's file locks.
#[derive(Debug, Clone)]
pub struct Database {
    path: Arc<PathBuf>,
    connection: Arc<Mutex<Connection>>,
}

impl Database {
    /// Opens the file with [`open`].
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Database, Error> {
        Ok(Database::from_connection(path, open(path, options)?))
    }

    /// Opens the file with [`open`] in tokio's blocking pool (opening may wait on a busy file).
    pub async fn open_async(path: &Path, options: OpenOptions) -> Result<Database, Error> {
        let for_task = path.to_path_buf();
        let task = tokio::task::spawn_blocking(move || Database::open(&for_task, &options));
        task.await.map_err(|e| task_failed("open", path, &e))?
    }

    /// Wraps an already open connection to `path`.
    pub fn from_connection(path: &Path, connection: Connection) -> Database {
        Database { path: Arc::new(path.to_path_buf()), connection: Arc::new(Mutex::new(connection)) }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for a call on the current thread (one that must not wait for the blocking pool, or runs
    /// outside a runtime). A poisoned lock is recovered: see [`Database::call`].
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the connection in tokio's blocking pool and returns what it returned, or
    /// [`Error::TaskFailed`] naming `operation` when the task ended without an answer (a panic in `f`, or
    /// cancellation at runtime shutdown). Must be called within a tokio runtime.
    pub async fn call<R, F>(&self, operation: &'static str, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> R + Send + 'static,
    {
        let connection = self.connection.clone();
        let task = tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the connection usable: a transaction rolls back on drop.
            let mut guard = connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        });
        task.await.map_err(|e| task_failed(operation, &self.path, &e))
    }
}

fn task_failed(operation: &'static str, path: &Path, error: &tokio::task::JoinError) -> Error {
    let reason = if error.is_panic() { "panicked" } else { "was cancelled" };
    Error::TaskFailed { operation, path: path.to_path_buf(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (n INTEGER NOT NULL);";

    fn options() -> OpenOptions {
        OpenOptions { schema: SCHEMA, ..OpenOptions::default() }
    }

    fn count(connection: &Connection) -> i64 {
        connection.query_row("SELECT COUNT(*) FROM items", [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn open_switches_to_wal_and_applies_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let options = OpenOptions { synchronous: "FULL", ..options() };
        let connection = open(&dir.path().join("db.sqlite"), &options).unwrap();
        let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let synchronous: i64 = connection.query_row("PRAGMA synchronous", [], |row| row.get(0)).unwrap();
        assert_eq!(synchronous, 2, "FULL");
        assert_eq!(count(&connection), 0);
    }

    #[test]
    fn open_names_the_file_it_could_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-folder").join("db.sqlite");
        let error = open(&path, &options()).unwrap_err();
        assert!(matches!(error, Error::Open { .. }), "{error:?}");
        assert_eq!(error.to_string(), format!("cannot open {}", path.display()));
    }

    #[test]
    fn openers_racing_on_a_fresh_file_all_succeed() {
        for round in 0..50 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db.sqlite");
            let barrier = Arc::new(std::sync::Barrier::new(8));
            let openers: Vec<_> = (0..8)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        open(&path, &options()).map(|_| ())
                    })
                })
                .collect();
            for opener in openers {
                let result = opener.join().unwrap();
                assert!(result.is_ok(), "round {round}: {result:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_panicking_call_is_an_error_naming_the_operation_and_the_connection_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let database = Database::open(&path, &options()).unwrap();
        let failed = database
            .call("insert then panic", |connection| -> () {
                let tx = connection.transaction().unwrap();
                tx.execute("INSERT INTO items (n) VALUES (1)", []).unwrap();
                panic!("a bug in the closure");
            })
            .await
            .unwrap_err();
        assert!(
            matches!(failed, Error::TaskFailed { operation: "insert then panic", reason: "panicked", .. }),
            "{failed:?}"
        );
        assert_eq!(
            failed.to_string(),
            format!("insert then panic on {} did not finish: its blocking task panicked", path.display())
        );
        // The poisoned lock is recovered and the panicking closure's transaction was rolled back.
        let rows = database.call("count", |connection| count(connection)).await.unwrap();
        assert_eq!(rows, 0);
        assert_eq!(count(&database.lock()), 0);
    }
}
