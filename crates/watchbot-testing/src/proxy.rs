//! A fault-injecting, answer-rewriting HTTP/1 reverse proxy for emulator tests: put it in front of moto, point one
//! client at it (`AWS_ENDPOINT_URL`), and make chosen AWS calls hang, or rewrite their answers
//! ([`FaultProxy::rewrite`]: e.g. `ecs::repair_answer` for a program whose SDK client the test cannot wrap, such as
//! the watcher in its container), while everything else passes through.
//!
//! Requests are told apart by their `X-Amz-Target` header (`AmazonSQS.ChangeMessageVisibilityBatch`: the JSON
//! protocol SQS, DynamoDB and ECS speak). A [`FaultProxy::hang`] rule holds the next N requests of one target for a
//! given time without answering, then drops the connection ([`AfterHang::Drop`], what a dead connection looks like to
//! the client: the call never reached the server) or forwards the request late ([`AfterHang::Forward`]). Every request
//! is recorded ([`FaultProxy::requests`]), so a test can prove its faults happened.
//!
//! Built on the HTTP stack the AWS SDK already links (hyper 1, hyper-util). The proxy runs on the tokio runtime that
//! starts it (a multi-threaded one keeps serving outside `block_on`) and stops when the [`FaultProxy`] is dropped.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use std::time::Duration;
//! use watchbot_testing::proxy::{AfterHang, FaultProxy};
//! let proxy = FaultProxy::start(watchbot_testing::moto().endpoint()).await?;
//! proxy.hang("AmazonSQS.ChangeMessageVisibilityBatch", 2, Duration::from_secs(25), AfterHang::Drop);
//! // Point a client at proxy.endpoint() ...
//! # Ok(())
//! # }
//! ```

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The header that names an AWS JSON-protocol operation.
pub const TARGET_HEADER: &str = "x-amz-target";

/// What a held request gets once its hang is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterHang {
    /// Close the connection without an answer: the request never reaches the server.
    Drop,
    /// Forward it to the server and pass the answer back (a slow server rather than a dead connection).
    Forward,
}

/// What the proxy did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Treatment {
    /// Forwarded at once.
    Forwarded,
    /// Held this long, then dropped or forwarded.
    Held(Duration, AfterHang),
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Its `X-Amz-Target`, if it had one.
    pub target: Option<String>,
    /// When it arrived.
    pub at: Instant,
    /// What the proxy did with it.
    pub treatment: Treatment,
}

#[derive(Debug)]
struct Rule {
    target: String,
    remaining: usize,
    hold: Duration,
    then: AfterHang,
}

/// Rewrites an answer's body; `None` leaves it as it is.
pub type Rewrite = Arc<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

struct RewriteRule {
    target_prefix: String,
    rewrite: Rewrite,
}

impl std::fmt::Debug for RewriteRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewriteRule").field("target_prefix", &self.target_prefix).finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    rewrites: Vec<RewriteRule>,
    seen: Vec<Seen>,
}

impl State {
    /// Records a request and decides its treatment: the first rule for its target with requests left applies.
    fn admit(&mut self, target: Option<&str>) -> Treatment {
        let rule = target.and_then(|t| self.rules.iter_mut().find(|r| r.target == t && r.remaining > 0));
        let treatment = match rule {
            Some(rule) => {
                rule.remaining -= 1;
                Treatment::Held(rule.hold, rule.then)
            }
            None => Treatment::Forwarded,
        };
        self.seen.push(Seen { target: target.map(String::from), at: Instant::now(), treatment: treatment.clone() });
        treatment
    }

    /// The first rewrite whose prefix the target starts with.
    fn rewrite_for(&self, target: Option<&str>) -> Option<Rewrite> {
        let target = target?;
        self.rewrites.iter().find(|r| target.starts_with(&r.target_prefix)).map(|r| Arc::clone(&r.rewrite))
    }
}

/// Why the proxy closed a connection without an answer.
#[derive(Debug, thiserror::Error)]
enum ProxyError {
    #[error("held for {0:?}, then dropped")]
    Dropped(Duration),
    #[error("cannot read the request: {0}")]
    Request(hyper::Error),
    #[error("the upstream did not answer: {0}")]
    Upstream(String),
}

/// A running proxy on `127.0.0.1`; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port that forwards to `upstream` (a base URL such as
    /// `http://127.0.0.1:41234`, plain HTTP). Must be called inside a tokio runtime, which then runs it.
    pub async fn start(upstream: &str) -> std::io::Result<FaultProxy> {
        let invalid = |problem: String| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("upstream {upstream:?}: {problem}"))
        };
        let upstream_uri: hyper::Uri =
            upstream.parse().map_err(|e: hyper::http::uri::InvalidUri| invalid(e.to_string()))?;
        if upstream_uri.scheme_str() != Some("http") || upstream_uri.authority().is_none() {
            return Err(invalid("expected http://host:port".into()));
        }
        let upstream = upstream_uri;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            // Connections live in the set, so stopping the server (dropping this task) stops them too.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let (state, client, upstream) = (Arc::clone(&shared), client.clone(), upstream.clone());
                        let service = hyper::service::service_fn(move |request| {
                            handle(request, Arc::clone(&state), client.clone(), upstream.clone())
                        });
                        connections.spawn(async move {
                            // A dropped request ends its connection with an error: expected, nothing to report.
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(FaultProxy { addr, state, server })
    }

    /// The proxy's base URL, e.g. `http://127.0.0.1:41235`: what `AWS_ENDPOINT_URL` should say.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds the next `times` requests whose `X-Amz-Target` is `target` for `hold`, then treats them as `then` says.
    /// Rules for the same target apply in the order they were added.
    pub fn hang(&self, target: &str, times: usize, hold: Duration, then: AfterHang) {
        let rule = Rule { target: target.to_string(), remaining: times, hold, then };
        self.lock().rules.push(rule);
    }

    /// Rewrites the answers to every request whose `X-Amz-Target` starts with `target_prefix` (e.g.
    /// `AmazonEC2ContainerServiceV20141113.` for all of ECS) with `rewrite`, which gets the body and returns the new
    /// one, or `None` to leave it. The first matching rule applies; `Content-Length` follows the new body.
    pub fn rewrite(&self, target_prefix: &str, rewrite: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static) {
        let rule = RewriteRule { target_prefix: target_prefix.to_string(), rewrite: Arc::new(rewrite) };
        self.lock().rewrites.push(rule);
    }

    /// Every request seen so far, in order of arrival.
    pub fn requests(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// The requests of one target seen so far.
    pub fn requests_of(&self, target: &str) -> Vec<Seen> {
        self.requests().into_iter().filter(|seen| seen.target.as_deref() == Some(target)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: hyper::Uri,
) -> Result<Response<Full<Bytes>>, ProxyError> {
    let target = request.headers().get(TARGET_HEADER).and_then(|v| v.to_str().ok()).map(String::from);
    let (treatment, rewrite) = {
        let mut state = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (state.admit(target.as_deref()), state.rewrite_for(target.as_deref()))
    };
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await.map_err(ProxyError::Request)?.to_bytes();
    if let Treatment::Held(hold, then) = treatment {
        tokio::time::sleep(hold).await;
        if then == AfterHang::Drop {
            return Err(ProxyError::Dropped(hold));
        }
    }
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut uri = upstream.into_parts();
    uri.path_and_query = Some(path.parse().map_err(|e| ProxyError::Upstream(format!("path {path:?}: {e}")))?);
    parts.uri = hyper::Uri::from_parts(uri).map_err(|e| ProxyError::Upstream(e.to_string()))?;
    let response = client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|e| ProxyError::Upstream(e.to_string()))?;
    let (mut parts, body) = response.into_parts();
    let mut body = body.collect().await.map_err(|e| ProxyError::Upstream(e.to_string()))?.to_bytes();
    if let Some(rewritten) = rewrite.and_then(|rewrite| rewrite(&body)) {
        body = Bytes::from(rewritten);
        // hyper sets the length of the new body (a full body of known size).
        parts.headers.remove(hyper::header::CONTENT_LENGTH);
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}
