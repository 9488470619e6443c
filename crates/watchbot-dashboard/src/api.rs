//! The page's routes: the three asset files, the JSON reads the page polls, and the actions (POST only). Every
//! route runs behind [`guard`] (the access rules of [`crate::access`]) and answers errors as `{"error": "one line"}`.
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `/app.js`, `/app.css` | the page (the token embedded on loopback) |
//! | `GET /api/overview` | `Operate::status` (counts, oldest age, messages in flight) and `ops::recent_failures` |
//! | `GET /api/outcomes` | the chart: outcomes per minute for the last hour ([`crate::Chart`]) |
//! | `GET /api/dead-letters` | `Operate::dead_letters`: the first 200, each as `dead-letter list --json` prints it (texts cut at 1,000 characters), and `total` |
//! | `GET /api/messages/{id}/attempts` | `ops::attempts`: a message's attempts with their output |
//! | `GET /api/jobs` | `Store::list_jobs`: reduce-mode jobs |
//! | `POST /api/dead-letters/redrive` | `{"ids": [...]}` or `{"all": true}`: `Operate::redrive` |
//! | `POST /api/dead-letters/delete` | `{"ids": [...]}` (more than one: `"confirm": true`): `Operate::delete` |
//! | `POST /api/dead-letters/purge` | `{"confirm": true}`: `Operate::delete(None)` |

use crate::Sources;
use crate::access::Access;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;
use watchbot_progress::Store;
use watchbot_watcher::ops::outcomes::Outcomes;
use watchbot_watcher::ops::{self, Operate, OpsError};

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

/// Recent failures listed.
const FAILURES: usize = 20;
/// Jobs listed.
const JOBS: usize = 50;
/// Dead letters listed (all are counted; `watchbot dead-letter list` shows every one).
const LISTED_DEAD_LETTERS: usize = 200;
/// Characters of a dead letter's message and body sent to the page (`watchbot dead-letter show` has them whole).
const LISTED_CHARS: usize = 1000;
/// Minutes charted.
const MINUTES: u32 = 60;

struct App<Q> {
    sources: Sources<Q>,
    access: Access,
}

type Shared<Q> = State<Arc<App<Q>>>;

pub(crate) fn router<Q: Operate + 'static>(sources: Sources<Q>, access: Access) -> Router {
    let app = Arc::new(App { sources, access: access.clone() });
    Router::new()
        .route("/", get(index::<Q>))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/app.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/api/overview", get(overview::<Q>))
        .route("/api/outcomes", get(outcomes::<Q>))
        .route("/api/dead-letters", get(dead_letters::<Q>))
        .route("/api/messages/{id}/attempts", get(attempts::<Q>))
        .route("/api/jobs", get(jobs::<Q>))
        .route("/api/dead-letters/redrive", post(redrive::<Q>))
        .route("/api/dead-letters/delete", post(delete::<Q>))
        .route("/api/dead-letters/purge", post(purge::<Q>))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page".to_string()) })
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(access, guard))
}

/// The access rules before every route, and the headers every answer carries.
async fn guard(State(access): State<Access>, request: Request, next: Next) -> Response {
    let mut response = match access.check(request.method(), request.uri().path(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err((status, why)) => error(status, why),
    };
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn error(status: StatusCode, why: String) -> Response {
    (status, axum::Json(json!({ "error": why }))).into_response()
}

fn ops_error(error: OpsError) -> Response {
    let status = match &error {
        OpsError::UnknownId(_) => StatusCode::NOT_FOUND,
        OpsError::NoDeadLetterQueue(_) => StatusCode::CONFLICT,
        OpsError::Port(_) => StatusCode::BAD_GATEWAY,
    };
    self::error(status, error.to_string())
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

async fn index<Q: Operate + 'static>(State(app): Shared<Q>) -> Response {
    let page = INDEX
        .replace("{{TITLE}}", &escape(&app.sources.title))
        .replace("{{TOKEN}}", &escape(app.access.embedded_token().unwrap_or("")));
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

async fn overview<Q: Operate + 'static>(State(app): Shared<Q>) -> Response {
    let status = match app.sources.queue.status().await {
        Ok(status) => status,
        Err(e) => return ops_error(e),
    };
    let state_dir = app.sources.state_dir.clone();
    let failures = tokio::task::spawn_blocking(move || ops::recent_failures(state_dir.as_deref(), FAILURES))
        .await
        .unwrap_or_default();
    axum::Json(json!({
        "title": app.sources.title,
        "now_ms": now_ms(),
        "remote": app.sources.remote,
        "history": app.sources.state_dir.is_some(),
        "status": status,
        "failures": failures,
    }))
    .into_response()
}

async fn outcomes<Q: Operate + 'static>(State(app): Shared<Q>) -> Response {
    let chart = &app.sources.chart;
    match chart.per_minute(now_ms(), MINUTES).await {
        Ok(minutes) => axum::Json(json!({
            "source": chart.describe(),
            "available": !matches!(chart, crate::Chart::Unavailable(_)),
            "minutes": minutes,
        }))
        .into_response(),
        Err(e) => ops_error(e),
    }
}

async fn dead_letters<Q: Operate + 'static>(State(app): Shared<Q>) -> Response {
    match app.sources.queue.dead_letters().await {
        Ok(letters) => {
            let listed: Vec<Value> = letters.iter().take(LISTED_DEAD_LETTERS).map(listed_letter).collect();
            axum::Json(json!({ "dead_letters": listed, "total": letters.len() })).into_response()
        }
        Err(e) => ops_error(e),
    }
}

/// A dead letter as `watchbot dead-letter list --json` prints it, its message and body cut to [`LISTED_CHARS`].
fn listed_letter(letter: &ops::DeadLetter) -> Value {
    let mut value = letter.to_json();
    for key in ["message", "body"] {
        if let Some(text) = value[key].as_str()
            && text.chars().count() > LISTED_CHARS
        {
            let cut: String = text.chars().take(LISTED_CHARS).collect();
            value[key] = Value::String(format!("{cut}…"));
        }
    }
    value
}

async fn attempts<Q: Operate + 'static>(State(app): Shared<Q>, Path(id): Path<String>) -> Response {
    let state_dir = app.sources.state_dir.clone();
    let history = state_dir.is_some();
    let attempts =
        tokio::task::spawn_blocking(move || ops::attempts(state_dir.as_deref(), &id)).await.unwrap_or_default();
    axum::Json(json!({ "history": history, "attempts": attempts })).into_response()
}

async fn jobs<Q: Operate + 'static>(State(app): Shared<Q>) -> Response {
    let store = match &app.sources.progress {
        Ok(store) => store,
        Err(why) => return axum::Json(json!({ "available": false, "note": why, "jobs": [] })).into_response(),
    };
    match store.list_jobs(JOBS).await {
        Ok(list) => {
            let jobs: Vec<Value> = list
                .jobs
                .iter()
                .map(|(id, state)| {
                    json!({
                        "id": id,
                        "total": state.total,
                        "remaining": state.remaining,
                        "percent": state.progress_percent(),
                        "failed": state.failed,
                        "reduce_sent": state.reduce_sent,
                    })
                })
                .collect();
            axum::Json(json!({ "available": true, "jobs": jobs, "more": list.more })).into_response()
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, one_line(&e)),
    }
}

/// An error and its sources on one line.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        line.push_str(": ");
        line.push_str(&inner.to_string());
        source = inner.source();
    }
    line
}

/// An action's body: `{"ids": [...], "all": bool, "confirm": bool}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Action {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    confirm: bool,
}

fn action(body: &Bytes) -> Result<Action, Box<Response>> {
    if body.is_empty() {
        return Ok(Action::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the body must be {{\"ids\": [...], \"all\": bool, \"confirm\": bool}}: {e}"),
        ))
    })
}

async fn redrive<Q: Operate + 'static>(State(app): Shared<Q>, body: Bytes) -> Response {
    let action = match action(&body) {
        Ok(action) => action,
        Err(response) => return *response,
    };
    let ids = match (action.all, action.ids.is_empty()) {
        (true, true) => None,
        (false, false) => Some(action.ids),
        _ => return error(StatusCode::BAD_REQUEST, "give either \"ids\" or \"all\": true (nothing was sent)".into()),
    };
    match app.sources.queue.redrive(ids.as_deref()).await {
        Ok(redriven) => axum::Json(json!({ "redriven": redriven })).into_response(),
        Err(e) => ops_error(e),
    }
}

async fn delete<Q: Operate + 'static>(State(app): Shared<Q>, body: Bytes) -> Response {
    let action = match action(&body) {
        Ok(action) => action,
        Err(response) => return *response,
    };
    if action.ids.is_empty() || action.all {
        return error(StatusCode::BAD_REQUEST, "give \"ids\" (a purge is /api/dead-letters/purge)".into());
    }
    if action.ids.len() > 1 && !action.confirm {
        return error(
            StatusCode::BAD_REQUEST,
            format!("a delete of {} dead letters needs \"confirm\": true (nothing was deleted)", action.ids.len()),
        );
    }
    match app.sources.queue.delete(Some(&action.ids)).await {
        Ok(deleted) => axum::Json(json!({ "deleted": deleted })).into_response(),
        Err(e) => ops_error(e),
    }
}

async fn purge<Q: Operate + 'static>(State(app): Shared<Q>, body: Bytes) -> Response {
    let action = match action(&body) {
        Ok(action) => action,
        Err(response) => return *response,
    };
    if !action.confirm {
        return error(
            StatusCode::BAD_REQUEST,
            "a purge deletes every dead letter: it needs \"confirm\": true (nothing was deleted)".into(),
        );
    }
    match app.sources.queue.delete(None).await {
        Ok(deleted) => axum::Json(json!({ "deleted": deleted })).into_response(),
        Err(e) => ops_error(e),
    }
}
