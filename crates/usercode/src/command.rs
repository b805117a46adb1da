//! Running one of the user's command lines: `sh -c LINE` in a given folder, with a
//! scrubbed environment (the basics a program needs to find its interpreter and libraries,
//! plus the variables the caller documents, never a token or a NATS credential), in its
//! own process group so the whole tree stops together, stdout and stderr read line by line
//! as they come. A timeout or a stop request sends SIGTERM to the group, then SIGKILL
//! after a grace.

use std::{
    collections::VecDeque,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::Command,
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

/// The variables of the service's own environment a command sees: where programs and
/// libraries are (`PATH`, a venv, a conda env), who and where it runs, its locale.
pub const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TERM",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PYTHONPATH",
    "LD_LIBRARY_PATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// How long a stopped command has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// Lines of each stream kept for the reason of a failure.
pub const TAIL_LINES: usize = 20;

/// The longest line passed on; longer ones are cut.
pub const MAX_LINE: usize = 1000;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A command line to run.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The command line, for `sh -c`.
    pub line: String,
    /// The working directory.
    pub dir: PathBuf,
    /// Variables set for it beside [`PASSED_THROUGH`].
    pub env: Vec<(String, String)>,
    /// How long it may run.
    pub timeout: Duration,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Its exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// The last lines of its stdout.
    pub stdout_tail: Vec<String>,
    /// The last lines of its stderr.
    pub stderr_tail: Vec<String>,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Finished {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `exit status 1`, or `killed by signal 9`.
    pub fn status(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "ended without a status".into(),
        }
    }

    /// The last `n` lines of stdout then of stderr, joined: where a test runner's summary
    /// and a traceback both are.
    pub fn last_lines_of_both(&self, n: usize) -> String {
        let take = |tail: &[String]| tail[tail.len().saturating_sub(n)..].to_vec();
        let mut lines = take(&self.stdout_tail);
        lines.extend(take(&self.stderr_tail));
        lines.retain(|l| !l.trim().is_empty());
        lines.join(" | ")
    }

    /// The last `n` lines of stderr, else of stdout, joined for a reason.
    pub fn last_lines(&self, n: usize) -> String {
        let tail = if self.stderr_tail.is_empty() {
            &self.stdout_tail
        } else {
            &self.stderr_tail
        };
        let start = tail.len().saturating_sub(n);
        tail[start..].join(" | ")
    }
}

/// Why a command did not finish on its own.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// It could not be started.
    #[error("cannot start `{line}` in {dir}: {source}")]
    Spawn {
        /// The command line.
        line: String,
        /// Its folder.
        dir: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// It ran past its timeout and was stopped.
    #[error("`{line}` ran past its timeout of {} and was stopped{}", humantime(*.timeout), tail(.finished))]
    TimedOut {
        /// The command line.
        line: String,
        /// The timeout.
        timeout: Duration,
        /// What it had printed.
        finished: Box<Finished>,
    },
    /// A stop was asked for (shutdown, cancellation) and it was stopped.
    #[error("`{line}` was stopped")]
    Stopped {
        /// The command line.
        line: String,
    },
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn tail(f: &Finished) -> String {
    let last = f.last_lines(5);
    if last.is_empty() {
        String::new()
    } else {
        format!("; last output: {last}")
    }
}

/// The environment a command runs with: [`PASSED_THROUGH`] and `LC_*` from this process,
/// then `extra`.
pub fn environment(extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| PASSED_THROUGH.contains(&k.as_str()) || k.starts_with("LC_"))
        .collect();
    env.extend(extra.iter().cloned());
    env
}

/// Runs `invocation`, sending each line to `lines` as it comes, until it exits, its
/// timeout passes or `stop` fires. A non-zero exit is a [`Finished`], not an error.
pub async fn run(
    invocation: &Invocation,
    lines: mpsc::UnboundedSender<(Stream, String)>,
    stop: &CancellationToken,
) -> Result<Finished, CommandError> {
    let started = Instant::now();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&invocation.line)
        .current_dir(&invocation.dir)
        .env_clear()
        .envs(environment(&invocation.env))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| CommandError::Spawn {
        line: invocation.line.clone(),
        dir: invocation.dir.display().to_string(),
        source,
    })?;
    let group = child.id();
    let readers = [
        child
            .stdout
            .take()
            .map(|o| read_lines(o, Stream::Stdout, lines.clone())),
        child
            .stderr
            .take()
            .map(|e| read_lines(e, Stream::Stderr, lines.clone())),
    ];
    drop(lines);
    let deadline = tokio::time::sleep(invocation.timeout);
    tokio::pin!(deadline);
    let ending = tokio::select! {
        status = child.wait() => Ending::Exited(status),
        _ = &mut deadline => Ending::TimedOut,
        _ = stop.cancelled() => Ending::Stopped,
    };
    let (status, ending) = match ending {
        Ending::Exited(status) => (status, None),
        other => {
            signal_group(group, rustix::process::Signal::TERM);
            let status = match tokio::time::timeout(KILL_GRACE, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    signal_group(group, rustix::process::Signal::KILL);
                    child.wait().await
                }
            };
            (status, Some(other))
        }
    };
    // Whatever the command left running in its group goes with it.
    signal_group(group, rustix::process::Signal::KILL);
    let mut tails = [VecDeque::new(), VecDeque::new()];
    for (i, reader) in readers.into_iter().enumerate() {
        if let Some(reader) = reader
            && let Ok(Ok(t)) = tokio::time::timeout(Duration::from_secs(2), reader).await
        {
            tails[i] = t;
        }
    }
    let [stdout_tail, stderr_tail] = tails.map(Vec::from);
    let (code, signal) = match &status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            (s.code(), s.signal())
        }
        Err(_) => (None, None),
    };
    let finished = Finished {
        code,
        signal,
        stdout_tail,
        stderr_tail,
        elapsed: started.elapsed(),
    };
    match ending {
        None | Some(Ending::Exited(_)) => Ok(finished),
        Some(Ending::TimedOut) => Err(CommandError::TimedOut {
            line: invocation.line.clone(),
            timeout: invocation.timeout,
            finished: Box::new(finished),
        }),
        Some(Ending::Stopped) => Err(CommandError::Stopped {
            line: invocation.line.clone(),
        }),
    }
}

/// Why the wait for a command ended.
enum Ending {
    Exited(std::io::Result<std::process::ExitStatus>),
    TimedOut,
    Stopped,
}

/// Runs `invocation` with its lines as progress: each sent to `progress` as `| LINE`,
/// through a [`crate::throttle::Throttle`], with a last line counting those held back.
pub async fn run_to_progress(
    invocation: &Invocation,
    progress: &mpsc::UnboundedSender<String>,
    stop: &CancellationToken,
) -> Result<Finished, CommandError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let forward = {
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut throttle = crate::throttle::Throttle::default();
            while let Some((_, line)) = rx.recv().await {
                if throttle.admit(Instant::now()) {
                    let _ = progress.send(format!("| {line}"));
                }
            }
            if throttle.held() > 0 {
                let _ = progress.send(format!(
                    "| ({} more lines of output not shown)",
                    throttle.held()
                ));
            }
        })
    };
    let finished = run(invocation, tx, stop).await;
    let _ = forward.await;
    finished
}

/// Sends `signal` to the process group led by `pid`; a group that is gone is fine.
fn signal_group(pid: Option<u32>, signal: rustix::process::Signal) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Reads `stream` line by line into `lines`, keeping the last [`TAIL_LINES`].
fn read_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    kind: Stream,
    lines: mpsc::UnboundedSender<(Stream, String)>,
) -> tokio::task::JoinHandle<VecDeque<String>> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let mut line = String::from_utf8_lossy(&buf).trim_end().to_string();
            if line.len() > MAX_LINE {
                let cut = (0..=MAX_LINE)
                    .rev()
                    .find(|&i| line.is_char_boundary(i))
                    .unwrap_or(0);
                line.truncate(cut);
                line.push('…');
            }
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.clone());
            let _ = lines.send((kind, line));
        }
        tail
    })
}

#[cfg(test)]
mod tests;
