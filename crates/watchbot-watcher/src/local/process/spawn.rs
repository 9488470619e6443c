//! Starting a child process cheaply while it still dies with the watcher: a vfork-style `clone` from long-lived
//! spawner threads, a parent-death signal set in the child before `execve`, and a pidfd to wait on.
//!
//! Why not `std`/`tokio::process`: setting `PR_SET_PDEATHSIG` needs code between fork and exec (`pre_exec`), and
//! `pre_exec` makes std fall back from `posix_spawn` to a full `fork`, which copies the watcher's page tables for
//! every child (most of the cost of a short task). Here the child is created with `CLONE_VM | CLONE_VFORK`, as
//! glibc's `posix_spawn` does: it shares the watcher's memory and the spawner thread waits until it has exec'd, so
//! nothing is copied. In exchange the child may only make async-signal-safe calls on data prepared beforehand
//! ([`Plan`]): it allocates nothing, takes no lock, and never returns into Rust code of the parent.
//!
//! The parent-death signal fires when the *thread* that created the child ends, so every clone happens on one of
//! [`SPAWNER_THREADS`] threads that live as long as the process (children still start in parallel).
//!
//! A child started here is not a `tokio::process::Child`: [`ChildProcess`] owns it (signals it while it is known
//! not to be reaped, reaps it, kills it if dropped while running), and its pidfd (from `CLONE_PIDFD`) becomes
//! readable when it exits, which the owner waits for with tokio's `AsyncFd`.
//!
//! The child's stdout and stderr are the write ends of two pipes made here (close-on-exec in the watcher, so no
//! other child inherits them); the read ends are handed back ([`Pipes`]) for the runner to read.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Threads that clone children: enough for children to start in parallel on a small machine.
const SPAWNER_THREADS: usize = 4;

/// The child's own stack while it runs before `execve` (a few calls deep; glibc's `posix_spawn` uses 32 KiB plus the
/// arguments), above one guard page.
const CHILD_STACK: usize = 64 * 1024;

/// Everything the child needs, prepared in the parent: after the clone the child may not allocate.
pub(super) struct Plan {
    /// The paths to try with `execve`, in order: the program itself when it holds a `/`, else one per `PATH` entry.
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    working_dir: Option<CString>,
    die_with_watcher: bool,
}

/// Why a child did not start. The messages name the failing step; the OS error says why (ENOENT, EACCES, E2BIG...).
#[derive(Debug, thiserror::Error)]
pub(super) enum SpawnError {
    /// An argument or environment variable holds a NUL byte, which a C string cannot carry.
    #[error("{what} contains a NUL byte")]
    Nul { what: String },
    /// `clone` itself failed (out of processes or memory).
    #[error("{0}")]
    Clone(#[source] std::io::Error),
    /// Setting up the child (process group, parent-death signal, stdin) failed.
    #[error("{step}: {error}")]
    Setup { step: &'static str, error: std::io::Error },
    /// The watcher died while the child was being set up: nobody holds the message, so it did not run.
    #[error("the watcher exited while the child was starting")]
    WatcherGone,
    /// The working folder could not be entered.
    #[error("working folder {path}: {error}")]
    WorkingDir { path: String, error: std::io::Error },
    /// `execve` failed for every candidate path.
    #[error("{0}")]
    Exec(#[source] std::io::Error),
    /// The spawner threads could not be started, or dropped the request.
    #[error("the spawner thread is gone")]
    NoSpawner,
}

impl Plan {
    /// The plan for `program args...` with the watcher's environment plus `task_env` (which wins), in
    /// `working_dir`. A program without `/` is looked up in the child's `PATH` (the task's if it sets one), as
    /// `execvp` does; a relative path is relative to the working folder.
    pub(super) fn new(
        program: &Path,
        args: &[String],
        task_env: &BTreeMap<String, String>,
        working_dir: Option<&Path>,
        die_with_watcher: bool,
    ) -> Result<Plan, SpawnError> {
        // The watcher's environment at launch, as std's `Command` passes it: the child inherits it, it is not
        // configuration read by the library.
        let mut env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        env.extend(task_env.iter().map(|(name, value)| (OsString::from(name), OsString::from(value))));

        let program_bytes = program.as_os_str().as_bytes();
        let candidates = if program_bytes.contains(&b'/') {
            vec![c_string(program_bytes.to_vec(), "the program")?]
        } else {
            let path =
                env.get(&OsString::from("PATH")).map(|p| p.as_bytes()).unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
            path.split(|b| *b == b':')
                .map(|dir| {
                    // An empty entry is the current folder, as for `execvp`.
                    let mut candidate = dir.to_vec();
                    if !candidate.is_empty() {
                        candidate.push(b'/');
                    }
                    candidate.extend_from_slice(program_bytes);
                    c_string(candidate, "the program")
                })
                .collect::<Result<_, _>>()?
        };
        let argv = std::iter::once(Ok(c_string(program_bytes.to_vec(), "the program")?))
            .chain(args.iter().map(|arg| c_string(arg.clone().into_bytes(), "an argument")))
            .collect::<Result<_, _>>()?;
        let envp = env
            .into_iter()
            .map(|(name, value)| {
                let what = format!("environment variable {}", name.to_string_lossy());
                let mut entry = name.into_vec();
                entry.push(b'=');
                entry.extend(value.into_vec());
                c_string(entry, &what)
            })
            .collect::<Result<_, _>>()?;
        let working_dir = match working_dir {
            Some(dir) => Some(c_string(dir.as_os_str().as_bytes().to_vec(), "the working folder")?),
            None => None,
        };
        Ok(Plan { candidates, argv, envp, working_dir, die_with_watcher })
    }
}

fn c_string(bytes: Vec<u8>, what: &str) -> Result<CString, SpawnError> {
    CString::new(bytes).map_err(|_| SpawnError::Nul { what: what.to_string() })
}

/// A started child, not yet reaped. Dropped while running, it kills the child's process group and reaps it.
pub(super) struct ChildProcess {
    pid: libc::pid_t,
    reaped: bool,
}

impl ChildProcess {
    pub(super) fn id(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// Sends `signal` to the child's process group, unless the child was reaped (then its pid may be someone
    /// else's).
    pub(super) fn signal_group(&self, signal: libc::c_int) {
        if !self.reaped {
            signal_group(self.pid, signal);
        }
    }

    /// Reaps the child if it has exited; `Ok(None)` while it runs.
    pub(super) fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if self.reaped {
            return Err(std::io::Error::other("the child was already reaped"));
        }
        match wait_pid(self.pid, libc::WNOHANG)? {
            Some(status) => {
                self.reaped = true;
                Ok(Some(status))
            }
            None => Ok(None),
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // Nobody owns the worker any more (the runtime is shutting down): do not leave it behind, nor a zombie.
        signal_group(self.pid, libc::SIGKILL);
        if matches!(wait_pid(self.pid, libc::WNOHANG), Ok(Some(_))) {
            return;
        }
        let pid = self.pid;
        // SIGKILL ends it within moments (unless it is stuck in the kernel): reap it without blocking the caller.
        let _ = std::thread::Builder::new().name("watchbot-reaper".into()).spawn(move || {
            let _ = wait_pid(pid, 0);
        });
    }
}

/// `waitpid` for one child of ours, retried on EINTR: `Some(status)` once it has exited (and is reaped).
#[allow(unsafe_code)]
fn wait_pid(pid: libc::pid_t, flags: libc::c_int) -> std::io::Result<Option<ExitStatus>> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid, writable int for the call's duration; `pid` is a child of ours not yet reaped
        // (callers keep that state), so no other process is waited for.
        let result = unsafe { libc::waitpid(pid, &mut status, flags) };
        match result {
            -1 => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            0 => return Ok(None),
            _ => return Ok(Some(ExitStatus::from_raw(status))),
        }
    }
}

/// Sends `signal` to the process group led by `pid`.
#[allow(unsafe_code)]
fn signal_group(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: `kill` takes no pointers and has no memory-safety preconditions. The group id is that of a child we
    // started as a group leader and have not reaped yet, so it cannot name anyone else's group. Errors (ESRCH when
    // the group has just exited) need no handling: the owner sees the exit through the pidfd.
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// The read ends of a started child's stdout and stderr pipes.
pub(super) struct Pipes {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// A started child, its pidfd (readable once it has exited) and its output pipes.
pub(super) type Started = (ChildProcess, OwnedFd, Pipes);

type SpawnRequest = (Plan, tokio::sync::oneshot::Sender<Result<Started, SpawnError>>);

/// Starts the planned child on a spawner thread; returns it with its pidfd and its output pipes.
pub(super) async fn spawn(plan: Plan) -> Result<Started, SpawnError> {
    static SPAWNER: OnceLock<Option<std::sync::mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let Some(spawner) = SPAWNER.get_or_init(start_spawner_threads) else { return Err(SpawnError::NoSpawner) };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if spawner.send((plan, reply)).is_err() {
        return Err(SpawnError::NoSpawner);
    }
    // A child started for a caller that has gone away is dropped with the reply, which kills and reaps it.
    answer.await.unwrap_or(Err(SpawnError::NoSpawner))
}

/// Starts the spawner threads (never joined, never ending: a child's parent-death signal fires when the thread that
/// created it exits); `None` when not even one could be started.
fn start_spawner_threads() -> Option<std::sync::mpsc::Sender<SpawnRequest>> {
    let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
    let rx = Arc::new(Mutex::new(rx));
    let mut started = 0;
    for n in 0..SPAWNER_THREADS {
        let rx = Arc::clone(&rx);
        let thread = std::thread::Builder::new().name(format!("watchbot-spawner-{n}")).spawn(move || {
            block_all_signals();
            let stack = ChildStack::new().ok();
            loop {
                let request = rx.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
                let Ok((plan, reply)) = request else { return };
                let result = match &stack {
                    Some(stack) => clone_child(&plan, stack),
                    None => Err(SpawnError::Clone(std::io::Error::other("no stack for the child"))),
                };
                let _ = reply.send(result);
            }
        });
        started += usize::from(thread.is_ok());
    }
    (started > 0).then_some(tx)
}

/// Blocks every signal on the calling (spawner) thread, so that a child starts with all signals blocked until it has
/// reset their handlers: a handler of the watcher must never run in the child, which shares the watcher's memory.
/// Signals meant for the watcher are delivered to its other threads.
#[allow(unsafe_code)]
fn block_all_signals() {
    // SAFETY: `set` is a local sigset_t initialised by sigfillset before use; pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// One spawner thread's stack for its children (one at a time: the thread waits while its child runs on it).
struct ChildStack {
    base: *mut c_void,
    len: usize,
}

impl ChildStack {
    #[allow(unsafe_code)]
    fn new() -> std::io::Result<ChildStack> {
        let guard = 4096;
        let len = CHILD_STACK + guard;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the lowest page of the mapping just made; an overflow of the child's stack then faults instead of
        // writing below it.
        if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } == -1 {
            let error = std::io::Error::last_os_error();
            // SAFETY: unmapping the mapping made above, which nothing else uses.
            unsafe { libc::munmap(base, len) };
            return Err(error);
        }
        Ok(ChildStack { base, len })
    }

    /// The top of the stack (it grows down), 16-byte aligned.
    fn top(&self) -> *mut c_void {
        self.base.wrapping_byte_add(self.len)
    }
}

impl Drop for ChildStack {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, used by no child any more (a child is done with it when clone returns).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// What the child reads (pointers into a [`Plan`] and arrays built from it) and where it reports a failure.
struct ChildArgs {
    candidates: Vec<*const libc::c_char>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    working_dir: *const libc::c_char,
    devnull: RawFd,
    /// The write ends of the output pipes, to become fds 1 and 2.
    stdout: RawFd,
    stderr: RawFd,
    die_with_watcher: bool,
    watcher: libc::pid_t,
    /// The step that failed ([`Step`] as a number; 0: none), and its errno: written by the child before it exits.
    failed_step: AtomicI32,
    errno: AtomicI32,
}

/// The child's steps that can fail, as stored in [`ChildArgs::failed_step`].
#[derive(Clone, Copy)]
#[repr(i32)]
enum Step {
    ProcessGroup = 1,
    DeathSignal = 2,
    WatcherGone = 3,
    Stdin = 4,
    WorkingDir = 5,
    Exec = 6,
    Output = 7,
}

/// A pipe (both ends close-on-exec): (read end, write end).
#[allow(unsafe_code)]
fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    let mut fds: [libc::c_int; 2] = [-1; 2];
    // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SpawnError::Setup { step: "making its output pipe", error: std::io::Error::last_os_error() });
    }
    // SAFETY: pipe2 succeeded: both are new descriptors that only we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `/dev/null`, opened once (close-on-exec; each child makes it its stdin with `dup2`).
fn devnull() -> Result<RawFd, SpawnError> {
    static DEVNULL: OnceLock<Result<OwnedFd, i32>> = OnceLock::new();
    let opened = DEVNULL.get_or_init(|| {
        std::fs::File::open("/dev/null").map(OwnedFd::from).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
    });
    match opened {
        Ok(fd) => Ok(fd.as_raw_fd()),
        Err(errno) => {
            Err(SpawnError::Setup { step: "opening /dev/null", error: std::io::Error::from_raw_os_error(*errno) })
        }
    }
}

/// Clones the child (on a spawner thread, whose signals are all blocked), which sets itself up and execs; returns
/// once it has exec'd, or its error once it has given up.
#[allow(unsafe_code)]
fn clone_child(plan: &Plan, stack: &ChildStack) -> Result<Started, SpawnError> {
    // The write ends are closed here when this returns (the child has its own copies by then, or has exited).
    let (stdout_read, stdout_write) = pipe()?;
    let (stderr_read, stderr_write) = pipe()?;
    let null_terminated = |strings: &[CString]| -> Vec<*const libc::c_char> {
        strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
    };
    let args = ChildArgs {
        candidates: plan.candidates.iter().map(|s| s.as_ptr()).collect(),
        argv: null_terminated(&plan.argv),
        envp: null_terminated(&plan.envp),
        working_dir: plan.working_dir.as_ref().map_or(std::ptr::null(), |dir| dir.as_ptr()),
        devnull: devnull()?,
        stdout: stdout_write.as_raw_fd(),
        stderr: stderr_write.as_raw_fd(),
        die_with_watcher: plan.die_with_watcher,
        watcher: libc::pid_t::try_from(std::process::id()).unwrap_or(0),
        failed_step: AtomicI32::new(0),
        errno: AtomicI32::new(0),
    };
    let mut pidfd: libc::c_int = -1;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
    // SAFETY: `child_main` is the child's whole life, and it keeps the rules of a CLONE_VM child: it only reads
    // `args` (alive on this frame: CLONE_VFORK suspends this thread until the child has exec'd or exited), writes
    // only its two atomics, and calls only async-signal-safe functions before execve or _exit. It runs on `stack`,
    // which is this thread's and used by one child at a time. This thread blocks every signal (so the child starts
    // with all blocked and no handler of ours can run in it before it resets them). With CLONE_PIDFD the kernel
    // writes the child's pidfd to `pidfd`, an int on this frame.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            flags,
            std::ptr::from_ref(&args).cast_mut().cast::<c_void>(),
            &mut pidfd as *mut libc::c_int,
        )
    };
    if pid == -1 {
        return Err(SpawnError::Clone(std::io::Error::last_os_error()));
    }
    // SAFETY: with CLONE_PIDFD a successful clone returns a new pidfd (close-on-exec) that only we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let child = ChildProcess { pid, reaped: false };
    let step = args.failed_step.load(Ordering::SeqCst);
    if step == 0 {
        return Ok((child, pidfd, Pipes { stdout: stdout_read, stderr: stderr_read }));
    }
    let mut child = child;
    // The child has already exited (with 127): reap it now, so the failure leaves no zombie.
    let _ = wait_pid(pid, 0).map(|_| child.reaped = true);
    let error = std::io::Error::from_raw_os_error(args.errno.load(Ordering::SeqCst));
    Err(match step {
        s if s == Step::ProcessGroup as i32 => SpawnError::Setup { step: "joining its own process group", error },
        s if s == Step::DeathSignal as i32 => SpawnError::Setup { step: "setting its parent-death signal", error },
        s if s == Step::WatcherGone as i32 => SpawnError::WatcherGone,
        s if s == Step::Stdin as i32 => SpawnError::Setup { step: "making /dev/null its stdin", error },
        s if s == Step::Output as i32 => SpawnError::Setup { step: "making the pipes its stdout and stderr", error },
        s if s == Step::WorkingDir as i32 => {
            let path = plan.working_dir.as_ref().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
            SpawnError::WorkingDir { path, error }
        }
        _ => SpawnError::Exec(error),
    })
}

/// The child between clone and exec. Only async-signal-safe calls, no allocation, no panic: it shares the watcher's
/// memory (including locks another thread may hold) until execve replaces it.
#[allow(unsafe_code)]
extern "C" fn child_main(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` that `clone_child` passed, alive until this child execs or exits (the parent
    // thread is suspended meanwhile); it is only read here, apart from its atomics.
    let args = unsafe { &*arg.cast_const().cast::<ChildArgs>() };
    let fail = |step: Step| -> ! {
        args.errno.store(last_errno(), Ordering::SeqCst);
        args.failed_step.store(step as i32, Ordering::SeqCst);
        // SAFETY: _exit ends this process at once, running no atexit handler or destructor of the shared memory.
        unsafe { libc::_exit(127) }
    };
    // SAFETY (the block): each call is async-signal-safe and takes pointers that are valid for its duration: locals
    // of this frame, or the C strings and null-terminated arrays of `args`, built from the `Plan` before the clone.
    unsafe {
        // Handlers of the watcher (tokio's, for instance) must not run here: back to the default for every caught
        // signal, while all are still blocked. SIGPIPE too, which Rust ignores in the watcher (std does the same).
        let mut action: libc::sigaction = std::mem::zeroed();
        for signal in 1..65 {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            // glibc's internal signals answer EINVAL: nothing to reset there.
            if libc::sigaction(signal, std::ptr::null(), &mut action) != 0 {
                continue;
            }
            if signal == libc::SIGPIPE || (action.sa_sigaction != libc::SIG_DFL && action.sa_sigaction != libc::SIG_IGN)
            {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        // Its own process group: `stop` signals the whole worker, and terminal signals reach only the watcher.
        if libc::setpgid(0, 0) != 0 {
            fail(Step::ProcessGroup);
        }
        if args.die_with_watcher {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                fail(Step::DeathSignal);
            }
            // The watcher may have died before the prctl: then nobody holds this message; do not run it.
            if libc::getppid() != args.watcher {
                fail(Step::WatcherGone);
            }
        }
        if args.devnull == 0 {
            // stdin was closed in the watcher and /dev/null took its number: keep it open across exec.
            if libc::fcntl(0, libc::F_SETFD, 0) != 0 {
                fail(Step::Stdin);
            }
        } else if libc::dup2(args.devnull, 0) == -1 {
            fail(Step::Stdin);
        }
        // The output pipes become stdout and stderr (dup2 clears close-on-exec on the copy). The write ends are above
        // 2 unless the watcher runs with stdout or stderr closed; then one may already sit on its number.
        for (fd, target) in [(args.stdout, 1), (args.stderr, 2)] {
            let ok = if fd == target { libc::fcntl(fd, libc::F_SETFD, 0) == 0 } else { libc::dup2(fd, target) != -1 };
            if !ok {
                fail(Step::Output);
            }
        }
        if !args.working_dir.is_null() && libc::chdir(args.working_dir) != 0 {
            fail(Step::WorkingDir);
        }
        let mut unblocked: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut unblocked);
        libc::pthread_sigmask(libc::SIG_SETMASK, &unblocked, std::ptr::null_mut());
        // As execvp: try each candidate; "not there" moves on, EACCES is remembered, anything else is the answer.
        let mut saw_eacces = false;
        for candidate in &args.candidates {
            libc::execve(*candidate, args.argv.as_ptr(), args.envp.as_ptr());
            match last_errno() {
                libc::EACCES => saw_eacces = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => fail(Step::Exec),
            }
        }
        if saw_eacces {
            *libc::__errno_location() = libc::EACCES;
        }
        fail(Step::Exec)
    }
}

/// The calling thread's errno (no allocation).
fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Registers a child's pidfd with the tokio reactor: readable once the child has exited. Must run on a runtime.
#[allow(unsafe_code)]
pub(super) fn watch_exit(pidfd: OwnedFd) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is a valid open descriptor, moved into the `AsyncFd`, which owns it until it is dropped
    // (nothing else can close it), and its `as_raw_fd` always returns that same descriptor.
    let registered = unsafe { tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) };
    registered.map_err(|error| error.into_parts().1)
}
