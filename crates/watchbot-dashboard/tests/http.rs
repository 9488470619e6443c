//! The dashboard over HTTP, without a socket (the router as a tower service): each access rule refuses what it
//! should and changes nothing, and a same-origin action with the token goes through the library's `Operate`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;
use watchbot_dashboard::{Access, Chart, Sources, StartError};
use watchbot_progress::{AnyStore, EmbeddedStore, Store};
use watchbot_watcher::local::queue::{LocalQueue, LocalQueueConfig};
use watchbot_watcher::ops::outcomes::HistoryOutcomes;
use watchbot_watcher::ports::{OutgoingMessage, Queue, ReceiveRequest};

const HOST: &str = "127.0.0.1:8417";

struct Fixture {
    _dir: tempfile::TempDir,
    queue: LocalQueue,
    router: axum::Router,
    token: String,
    dead_id: String,
}

/// A queue with one dead letter and one job, and the dashboard on it.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LocalQueueConfig::default();
    config.max_receive_count = Some(1);
    let queue = LocalQueue::open(dir.path(), config).unwrap();
    let dead_id = queue.send(OutgoingMessage { body: "bad".into(), ..Default::default() }).await.unwrap();
    let request = ReceiveRequest::new(10, Duration::ZERO, Some(Duration::from_secs(60)));
    let got = queue.receive(request).await.unwrap();
    queue.change_visibility(&got[0].receipt_handle, Duration::ZERO).await.unwrap();
    assert!(queue.receive(request).await.unwrap().is_empty(), "the second receive moves it to the dead letters");
    let store = EmbeddedStore::open(dir.path().join("progress.sqlite")).await.unwrap();
    store.set_total("job-1", 4).await.unwrap();
    store.complete_part("job-1", 1).await.unwrap();
    let access = Access::new(HOST.parse().unwrap(), None);
    let token = access.token().to_string();
    let mut sources = Sources::new(queue.clone(), "local queue in test");
    sources.state_dir = Some(dir.path().to_path_buf());
    sources.chart = Chart::History(HistoryOutcomes::new(dir.path()));
    sources.progress = Ok(AnyStore::Embedded(store));
    Fixture { router: watchbot_dashboard::router(sources, access), _dir: dir, queue, token, dead_id }
}

impl Fixture {
    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn get(&self, path: &str) -> axum::http::request::Builder {
        Request::builder().method(Method::GET).uri(path).header("host", HOST).header("x-watchbot-token", &self.token)
    }

    /// A POST as the page sends it: the token, the page's own origin.
    fn post(&self, path: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", HOST)
            .header("x-watchbot-token", &self.token)
            .header("origin", format!("http://{HOST}"))
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/json")
    }

    async fn json(&self, path: &str) -> Value {
        let (status, _, body) = self.send(self.get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn redrive_body(&self) -> Body {
        Body::from(json!({ "ids": [self.dead_id] }).to_string())
    }

    /// The dead letter is still there: the refused request changed nothing.
    fn assert_unchanged(&self) {
        let counts = self.queue.counts().unwrap();
        assert_eq!((counts.dead_lettered, counts.visible), (1, 0), "{counts:?}");
    }
}

fn error_of(body: &str) -> String {
    serde_json::from_str::<Value>(body).map(|v| v["error"].as_str().unwrap_or("").to_string()).unwrap_or_default()
}

#[tokio::test]
async fn the_page_embeds_the_token_on_loopback_and_forbids_framing() {
    let f = fixture().await;
    let (status, headers, body) =
        f.send(Request::get("/").header("host", "localhost:8417").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(&format!(r#"content="{}""#, f.token)), "{body}");
    assert!(body.contains("local queue in test"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    for asset in ["/app.js", "/app.css"] {
        let (status, _, body) = f.send(Request::get(asset).header("host", HOST).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        // The SVG namespace is a name, not an address that is loaded.
        let body = body.replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(!body.contains("http://") && !body.contains("https://"), "{asset} loads nothing from elsewhere");
    }
}

#[tokio::test]
async fn an_operator_token_is_never_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let queue = LocalQueue::open(dir.path(), LocalQueueConfig::default()).unwrap();
    let access = Access::new("0.0.0.0:8417".parse().unwrap(), Some("s3cret-token".into()));
    let sources = Sources::new(queue, "t");
    let router = watchbot_dashboard::router(sources, access);
    let response = router.oneshot(Request::get("/").header("host", "192.0.2.1:8417").body(Body::empty()).unwrap());
    let body = response.await.unwrap().into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains(r#"name="watchbot-token" content="""#) && !body.contains("s3cret-token"), "{body}");
}

#[tokio::test]
async fn a_host_that_is_not_the_listen_address_or_localhost_is_refused() {
    let f = fixture().await;
    for host in ["evil.example:8417", "evil.example", "127.0.0.1:9999", "localhost.evil.example:8417", ""] {
        let (status, _, body) = f.send(Request::get("/").header("host", host).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(error_of(&body).contains("is not this dashboard's address"), "{body}");
        let mut post = f.post("/api/dead-letters/redrive").body(f.redrive_body()).unwrap();
        post.headers_mut().insert("host", host.parse().unwrap());
        assert_eq!(f.send(post).await.0, StatusCode::MISDIRECTED_REQUEST, "{host}");
    }
    f.assert_unchanged();
}

#[tokio::test]
async fn no_action_is_reachable_by_get() {
    let f = fixture().await;
    for path in ["/api/dead-letters/redrive", "/api/dead-letters/delete", "/api/dead-letters/purge"] {
        let (status, _, _) = f.send(f.get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    f.assert_unchanged();
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_refused() {
    let f = fixture().await;
    let mut without = f.post("/api/dead-letters/redrive").body(f.redrive_body()).unwrap();
    without.headers_mut().remove("x-watchbot-token");
    let (status, _, body) = f.send(without).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error_of(&body).contains("x-watchbot-token"), "{body}");
    let mut wrong = f.post("/api/dead-letters/redrive").body(f.redrive_body()).unwrap();
    wrong.headers_mut().insert("x-watchbot-token", "0".repeat(32).parse().unwrap());
    let (status, _, body) = f.send(wrong).await;
    assert_eq!((status, error_of(&body).as_str()), (StatusCode::UNAUTHORIZED, "wrong token"));
    // Reads need it too.
    let read = Request::get("/api/dead-letters").header("host", HOST).body(Body::empty()).unwrap();
    assert_eq!(f.send(read).await.0, StatusCode::UNAUTHORIZED);
    f.assert_unchanged();
}

#[tokio::test]
async fn a_cross_origin_action_is_refused_even_with_the_token() {
    let f = fixture().await;
    let mut cross = f.post("/api/dead-letters/redrive").body(f.redrive_body()).unwrap();
    cross.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    let (status, _, body) = f.send(cross).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error_of(&body).contains("cross-origin request from \"http://evil.example\""), "{body}");
    let mut other_port = f.post("/api/dead-letters/purge").body(Body::from(r#"{"confirm":true}"#)).unwrap();
    other_port.headers_mut().insert("origin", "http://127.0.0.1:9999".parse().unwrap());
    assert_eq!(f.send(other_port).await.0, StatusCode::FORBIDDEN);
    let mut site = f.post("/api/dead-letters/delete").body(f.redrive_body()).unwrap();
    site.headers_mut().remove("origin");
    site.headers_mut().insert("sec-fetch-site", "cross-site".parse().unwrap());
    let (status, _, body) = f.send(site).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error_of(&body).contains("Sec-Fetch-Site: cross-site"), "{body}");
    f.assert_unchanged();
}

#[tokio::test]
async fn a_non_loopback_address_without_a_token_does_not_start() {
    let error = watchbot_dashboard::bind("0.0.0.0:0".parse().unwrap(), None).await.unwrap_err();
    assert!(matches!(error, StartError::TokenRequired(_)));
    let line = error.to_string();
    assert!(line.contains("--listen 0.0.0.0:0") && line.contains("--token") && !line.contains('\n'), "{line}");
    let bound = watchbot_dashboard::bind("127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    assert!(bound.url().starts_with("http://127.0.0.1:") && bound.address().port() != 0, "{}", bound.url());
}

#[tokio::test]
async fn the_page_reads_the_counts_dead_letters_failures_jobs_and_chart() {
    let f = fixture().await;
    let overview = f.json("/api/overview").await;
    assert_eq!(overview["status"]["dead_letters"], 1, "{overview}");
    assert_eq!(overview["status"]["visible"], 0);
    let letters = f.json("/api/dead-letters").await;
    assert_eq!(letters["dead_letters"][0]["message_id"], f.dead_id.as_str(), "{letters}");
    assert_eq!(letters["dead_letters"][0]["message"], "bad");
    assert_eq!(letters["total"], 1);
    let jobs = f.json("/api/jobs").await;
    assert_eq!(jobs["jobs"][0]["id"], "job-1", "{jobs}");
    assert_eq!((jobs["jobs"][0]["percent"].as_u64(), jobs["jobs"][0]["remaining"].as_u64()), (Some(25), Some(3)));
    let chart = f.json("/api/outcomes").await;
    assert_eq!(chart["minutes"].as_array().map(Vec::len), Some(60), "{chart}");
    let attempts = f.json(&format!("/api/messages/{}/attempts", f.dead_id)).await;
    assert_eq!(attempts["attempts"], json!([]), "no history was written in this test");
}

#[tokio::test]
async fn a_same_origin_redrive_with_the_token_sends_the_dead_letter_back() {
    let f = fixture().await;
    let (status, _, body) = f.send(f.post("/api/dead-letters/redrive").body(f.redrive_body()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["redriven"][0]["message_id"], f.dead_id.as_str());
    let counts = f.queue.counts().unwrap();
    assert_eq!((counts.dead_lettered, counts.visible), (0, 1), "{counts:?}");
    // Without a browser's headers (curl), the token is enough.
    let mut curl = f.post("/api/dead-letters/redrive").body(f.redrive_body()).unwrap();
    curl.headers_mut().remove("origin");
    curl.headers_mut().remove("sec-fetch-site");
    let (status, _, body) = f.send(curl).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "gone now: {body}");
    assert!(error_of(&body).contains(&format!("no dead letter with id {}", f.dead_id)), "{body}");
}

#[tokio::test]
async fn purge_and_bulk_delete_need_confirm_and_bad_bodies_are_one_line() {
    let f = fixture().await;
    let (status, _, body) = f.send(f.post("/api/dead-letters/purge").body(Body::from("{}")).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("nothing was deleted"), "{body}");
    let two = Body::from(json!({ "ids": [f.dead_id, "other"] }).to_string());
    let (status, _, body) = f.send(f.post("/api/dead-letters/delete").body(two).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = f.send(f.post("/api/dead-letters/redrive").body(Body::from("{\"idz\":1}")).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!error_of(&body).is_empty() && !error_of(&body).contains('\n'), "{body}");
    f.assert_unchanged();
    let (status, _, body) =
        f.send(f.post("/api/dead-letters/purge").body(Body::from(r#"{"confirm":true}"#)).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(f.queue.counts().unwrap().dead_lettered, 0);
}
