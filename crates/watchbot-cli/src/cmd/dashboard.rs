//! `watchbot dashboard`: the queue in a browser (the `watchbot-dashboard` crate), on the same addresses as
//! `watchbot status` (`--state DIR`, `--queue-url URL`, `--stack NAME`). It prints the page's URL and serves until
//! Ctrl-C or SIGTERM. `watchbot local --dashboard [ADDR]` serves the same page beside its loop ([`start_local`]).
//!
//! Loopback by default (`127.0.0.1:8417`); another address needs `--token` and without one exits 1 before
//! listening. The chart's outcomes come from the state folder's attempt history, or the stack's CloudWatch metrics
//! (`Watchbot/<stack>`); jobs from `<state>/progress.sqlite`, the stack's `<prefix>ProgressTable`, or
//! `--progress-table`.

use super::queue_address::{self, QueueArgs, Target};
use crate::Failure;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use watchbot_dashboard::{Bound, Chart, Sources};
use watchbot_progress::AnyStore;
use watchbot_watcher::local::queue::LocalQueue;
use watchbot_watcher::ops::outcomes::HistoryOutcomes;

/// The address the dashboard listens on unless told.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8417";

/// Arguments of `watchbot dashboard`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Address to listen on; one that is not loopback needs --token (`127.0.0.1:0`: any free port).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The token the page asks for (required off loopback; on loopback without it, a random one is embedded).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// The reduce-mode progress table (DynamoDB table or SQLite path) (default: `<state>/progress.sqlite`, or the
    /// stack's `<prefix>ProgressTable`)
    #[arg(long, value_name = "ADDRESS")]
    pub progress_table: Option<String>,
}

/// Runs `watchbot dashboard`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    crate::aws::runtime()?.block_on(async {
        let bound = bind(args.listen, args.token.clone(), ["--listen", "--token"]).await?;
        let target = queue_address::open(&args.queue).await?;
        let aws = match &target {
            Target::Sqs(_) => Some(crate::aws::load().await),
            Target::Local { .. } => None,
        };
        let chart = match (&target, &args.queue.stack, &aws) {
            (Target::Local { state, .. }, ..) => Chart::History(HistoryOutcomes::new(state)),
            (_, Some(stack), Some(aws)) => Chart::Metrics(aws.metric_outcomes(stack)),
            _ => Chart::Unavailable(
                "No outcome chart for a queue URL: pass --stack NAME to read its CloudWatch metrics (Watchbot/<stack>)"
                    .to_string(),
            ),
        };
        let progress = progress(&args, &target, aws.as_ref()).await;
        let title = target.describe();
        let state_dir = target.state_dir().map(Path::to_path_buf);
        let remote = matches!(target, Target::Sqs(_));
        let mut sources = Sources::new(target, title);
        sources.state_dir = state_dir;
        sources.remote = remote;
        sources.chart = chart;
        sources.progress = progress;
        announce(&bound);
        bound
            .serve(sources, watchbot_watcher::service::shutdown_signal())
            .await
            .map_err(|e| Failure::new(format!("the dashboard stopped: {e}")))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Binds the dashboard's address: a non-loopback address without a token, or one that cannot be listened on, is
/// one line naming the command's flags (`--listen`/`--token`, or `local`'s `--dashboard`/`--dashboard-token`),
/// exit 1.
pub async fn bind(listen: SocketAddr, token: Option<String>, flags: [&str; 2]) -> Result<Bound, Failure> {
    use watchbot_dashboard::StartError;
    let [address_flag, token_flag] = flags;
    watchbot_dashboard::bind(listen, token).await.map_err(|e| match e {
        StartError::TokenRequired(_) => Failure::new(format!(
            "{address_flag} {listen} is not a loopback address: anyone who can reach it could act on the queue; pass \
             {token_flag} TOKEN (the page asks for it)"
        )),
        StartError::EmptyToken => Failure::new(format!("{token_flag} must not be empty")),
        StartError::Bind { .. } => Failure::new(format!("{e} (pass {address_flag} 127.0.0.1:0 for any free port)")),
        other => Failure::new(other.to_string()),
    })
}

fn announce(bound: &Bound) {
    use std::io::Write;
    println!("dashboard: {}", bound.url());
    let _ = std::io::stdout().flush();
}

/// The progress store the page lists jobs from, or why there is none.
async fn progress(args: &Args, target: &Target, aws: Option<&crate::aws::Aws>) -> Result<AnyStore, String> {
    let address = match (&args.progress_table, target, &args.queue.stack) {
        (Some(address), ..) => address.clone(),
        (None, Target::Local { state, .. }, _) => {
            let path = state.join(super::local::PROGRESS_FILE);
            if !path.is_file() {
                return Err(format!("No progress store in {} (no reduce-mode job ran there).", state.display()));
            }
            path.display().to_string()
        }
        (None, Target::Sqs(_), Some(stack)) => {
            let aws = aws.ok_or("no AWS configuration")?;
            let logical = format!("{}ProgressTable", args.queue.prefix);
            let resources = aws.stack_resources(stack).await.map_err(|e| e.message)?;
            match resources.physical(&logical) {
                Some(table) => table.to_string(),
                None => return Err(format!("The stack {stack} has no {logical} (reduce mode is off).")),
            }
        }
        (None, Target::Sqs(_), None) => {
            return Err("Pass --progress-table TABLE to show reduce-mode jobs.".to_string());
        }
    };
    watchbot_progress::open(&address, aws.map(crate::aws::Aws::sdk_config))
        .await
        .map_err(|e| format!("progress table {address}: {e}"))
}

/// Starts the dashboard of `watchbot local` on its state folder beside the loop, printing its URL; it serves until
/// the runtime ends.
pub async fn start_local(
    queue: LocalQueue,
    state: &Path,
    listen: SocketAddr,
    token: Option<String>,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let bound = bind(listen, token, ["--dashboard", "--dashboard-token"]).await?;
    let progress = watchbot_progress::EmbeddedStore::open(state.join(super::local::PROGRESS_FILE))
        .await
        .map(AnyStore::Embedded)
        .map_err(|e| e.to_string());
    let mut sources = Sources::new(queue, format!("local queue in {}", state.display()));
    sources.state_dir = Some(state.to_path_buf());
    sources.chart = Chart::History(HistoryOutcomes::new(state));
    sources.progress = progress;
    announce(&bound);
    Ok(tokio::spawn(async move {
        if let Err(error) = bound.serve(sources, std::future::pending()).await {
            eprintln!("watchbot local: the dashboard stopped: {error}");
        }
    }))
}
