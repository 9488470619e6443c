//! The browser dashboard of a watchbot queue (`watchbot dashboard`, `watchbot local --dashboard`): the counts live,
//! outcomes per minute for the last hour, the messages in flight, recent failures with their attempts and output,
//! dead letters with Redrive, Delete and Purge, and reduce-mode jobs with a progress bar each.
//!
//! It shows and acts only through the library calls `watchbot status`, `watchbot dead-letter` and `watchbot logs`
//! use: [`Operate`] (counts, dead letters and the actions on them), [`ops::recent_failures`] and [`ops::attempts`]
//! (the attempt history), an [`Outcomes`] source ([`Chart`]), and the progress store's [`Store::list_jobs`].
//! The page is three files compiled into the binary (`assets/`: HTML, CSS, a small script; nothing loaded from
//! elsewhere, no build step); it polls the JSON API below.
//!
//! Security ([`access`]): loopback by default; a request whose `Host` is not the listen address or `localhost` is
//! refused (DNS rebinding); every `/api/` request carries the per-process token (embedded in the page on loopback,
//! asked for by the page otherwise); actions are POSTs, also checked for the same origin (`Origin`,
//! `Sec-Fetch-Site`); a non-loopback listen address needs a token given by the operator ([`StartError`]).
//!
//! A server is [`bind`] then [`Bound::serve`] with the [`Sources`] (`watchbot dashboard` does that); [`router`] is the
//! same routes without a socket. The page of an embedded queue in a temporary folder, asked for through the router:
//!
//! ```
//! use tower::ServiceExt;
//! use watchbot_dashboard::{Access, Chart, Sources};
//! use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig};
//! use watchbot_watcher::ops::outcomes::HistoryOutcomes;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default())?;
//! let mut sources = Sources::new(queue, "local queue in the example");
//! sources.state_dir = Some(dir.path().to_path_buf());
//! sources.chart = Chart::History(HistoryOutcomes::new(dir.path()));
//!
//! // On loopback without a token, the page embeds a random per-process one.
//! let access = Access::new("127.0.0.1:8417".parse()?, None);
//! let token = access.token().to_string();
//! let router = watchbot_dashboard::router(sources, access);
//!
//! let page = axum::http::Request::get("/").header("host", "127.0.0.1:8417").body(axum::body::Body::empty())?;
//! let response = router.clone().oneshot(page).await?;
//! assert_eq!(response.status(), axum::http::StatusCode::OK);
//!
//! // The JSON API needs the token; the queue is empty.
//! let overview = axum::http::Request::get("/api/overview")
//!     .header("host", "127.0.0.1:8417")
//!     .header(watchbot_dashboard::access::TOKEN_HEADER, token)
//!     .body(axum::body::Body::empty())?;
//! let response = router.oneshot(overview).await?;
//! assert_eq!(response.status(), axum::http::StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! [`Store::list_jobs`]: watchbot_progress::Store::list_jobs

#![warn(missing_docs)]

pub mod access;
mod api;

pub use access::{Access, StartError};

use std::net::SocketAddr;
use std::path::PathBuf;
use watchbot_progress::AnyStore;
use watchbot_watcher::ops::outcomes::{Minute, Outcomes};
use watchbot_watcher::ops::{self, Operate, OpsError};

/// Where the outcome chart's counts come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Chart {
    /// A state folder's attempt history (local mode).
    History(ops::outcomes::HistoryOutcomes),
    /// A deployed stack's CloudWatch metrics.
    Metrics(watchbot_watcher::aws::metrics::MetricOutcomes),
    /// None; the text says why (shown on the page).
    Unavailable(String),
}

impl Chart {
    /// What the chart shows, for its caption.
    pub fn describe(&self) -> String {
        match self {
            Chart::History(_) => "from the attempt history".to_string(),
            Chart::Metrics(metrics) => format!("from CloudWatch metrics {}", metrics.namespace()),
            Chart::Unavailable(why) => why.clone(),
        }
    }
}

impl Outcomes for Chart {
    async fn per_minute(&self, now_ms: u64, minutes: u32) -> Result<Vec<Minute>, OpsError> {
        match self {
            Chart::History(history) => history.per_minute(now_ms, minutes).await,
            Chart::Metrics(metrics) => metrics.per_minute(now_ms, minutes).await,
            Chart::Unavailable(_) => Ok(Vec::new()),
        }
    }
}

/// Everything the page shows, and the queue it acts on. Built with [`Sources::new`]; the other fields are set by
/// assignment (more may come).
#[derive(Debug)]
#[non_exhaustive]
pub struct Sources<Q> {
    /// The queue and its dead-letter queue.
    pub queue: Q,
    /// What the queue is, for the page's heading (`local queue in .watchbot`).
    pub title: String,
    /// The state folder whose attempt history holds failures and output (`None` on SQS).
    pub state_dir: Option<PathBuf>,
    /// The outcome chart's source.
    pub chart: Chart,
    /// The reduce-mode progress store, or why there is none.
    pub progress: Result<AnyStore, String>,
    /// Whether the queue is remote (SQS): the page polls less often, and lists dead letters only when their count
    /// changes or when asked (each listing on SQS adds one to their receive counts).
    pub remote: bool,
}

impl<Q> Sources<Q> {
    /// The page of `queue` headed `title`, with no attempt history, no chart (the page says so), no progress store,
    /// and polling as for a local queue; set the fields to add them.
    pub fn new(queue: Q, title: impl Into<String>) -> Sources<Q> {
        Sources {
            queue,
            title: title.into(),
            state_dir: None,
            chart: Chart::Unavailable("No outcome chart for this queue".to_string()),
            progress: Err("no progress store".to_string()),
            remote: false,
        }
    }
}

/// A dashboard bound to its address, not yet serving.
#[derive(Debug)]
pub struct Bound {
    listener: tokio::net::TcpListener,
    access: Access,
}

/// Checks the listen address and token ([`access::check_listen`]) and binds. A non-loopback address without a
/// token is refused before anything listens.
pub async fn bind(listen: SocketAddr, token: Option<String>) -> Result<Bound, StartError> {
    let given = access::check_listen(listen, token)?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| StartError::Bind { address: listen, source })?;
    let address = listener.local_addr().map_err(|source| StartError::Bind { address: listen, source })?;
    Ok(Bound { listener, access: Access::new(address, given) })
}

impl Bound {
    /// The address listened on (with the port chosen when `:0` was asked).
    pub fn address(&self) -> SocketAddr {
        self.access.address()
    }

    /// The page's URL (`http://127.0.0.1:8417/`).
    pub fn url(&self) -> String {
        format!("http://{}/", self.access.address())
    }

    /// Serves the page until `shutdown` resolves.
    pub async fn serve<Q: Operate + 'static>(
        self,
        sources: Sources<Q>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, router(sources, self.access)).with_graceful_shutdown(shutdown).await
    }
}

/// The dashboard's routes behind its access checks (tests call it without a socket).
pub fn router<Q: Operate + 'static>(sources: Sources<Q>, access: Access) -> axum::Router {
    api::router(sources, access)
}
