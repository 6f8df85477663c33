//! Child daemons of the suite: started in the foreground, signalled and stopped by pid only.
//!
//! nginx (`daemon off;`) and NSD (`-d`) stay our direct children, so their main process is a
//! [`Child`] we can wait for. Their workers are found through `/proc` (parent pid, zombies
//! skipped), which is also how a reload is known to be complete: the old workers are gone.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const SIGHUP: i32 = 1;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

unsafe extern "C" {
    // From the C library that std already links on Linux; avoids a dependency for one call.
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Sends `signal` to exactly one process.
pub fn signal(pid: u32, signal: i32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { kill(pid, signal) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Stat {
    ppid: u32,
    /// Start time in clock ticks after boot: tells a process from a later one that reuses its pid.
    start: u64,
    zombie: bool,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    let state = *fields.first()?;
    Some(Stat {
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        zombie: state == "Z" || state == "X",
    })
}

/// A process known by pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Proc {
    pub pid: u32,
    start: u64,
}

impl Proc {
    /// Still the same process, and not a zombie waiting to be reaped.
    pub fn is_running(self) -> bool {
        stat(self.pid).is_some_and(|s| s.start == self.start && !s.zombie)
    }
}

/// Live (non-zombie) children of `parent`, from `/proc/*/stat`.
pub fn children_of(parent: u32) -> BTreeSet<Proc> {
    let mut children = BTreeSet::new();
    let Ok(entries) = fs::read_dir("/proc") else { return children };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(s) = stat(pid).filter(|s| s.ppid == parent && !s.zombie) {
            children.insert(Proc { pid, start: s.start });
        }
    }
    children
}

/// Children, grandchildren and so on of `root` (bounded depth: daemons fork two or three levels).
pub fn descendants_of(root: u32) -> BTreeSet<Proc> {
    let mut found = BTreeSet::new();
    let mut level = children_of(root);
    for _ in 0..4 {
        let next: BTreeSet<Proc> = level.iter().flat_map(|p| children_of(p.pid)).collect();
        found.extend(level);
        if next.is_empty() {
            break;
        }
        level = next;
    }
    found
}

/// Polls `check` every `every` until it gives a value or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, every: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(every);
    }
}

/// A server process run in the foreground, with its log files; stopped when dropped.
pub struct Daemon {
    pub name: &'static str,
    child: Child,
    logs: Vec<PathBuf>,
}

impl Daemon {
    /// Starts `command` with stdout and stderr appended to `output` (listed first among the logs).
    pub fn spawn(
        name: &'static str,
        mut command: Command,
        output: PathBuf,
        logs: Vec<PathBuf>,
    ) -> Result<Daemon, String> {
        let out = fs::File::create(&output).map_err(|e| format!("{name}: cannot create {}: {e}", output.display()))?;
        let err = out.try_clone().map_err(|e| format!("{name}: {e}"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{name}: cannot start {:?}: {e}", command.get_program()))?;
        let mut all_logs = vec![output];
        all_logs.extend(logs);
        Ok(Daemon { name, child, logs: all_logs })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` with the exit status and logs when the process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited ({status})\n{}", self.name, self.log_tail())),
            Err(e) => Err(format!("{}: cannot check the process: {e}", self.name)),
        }
    }

    /// The last lines of each log file, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        for path in &self.logs {
            let content = fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            text.push_str(&format!("--- {} (last {} lines)\n{}\n", path.display(), tail.len(), tail.join("\n")));
        }
        text
    }

    /// Asks the process to stop (SIGTERM), waits up to 5 s, then kills it and its children.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = self.pid();
        let children = descendants_of(pid);
        let _ = signal(pid, SIGTERM);
        let exited = wait_for(Duration::from_secs(5), Duration::from_millis(20), || {
            matches!(self.child.try_wait(), Ok(Some(_))).then_some(())
        });
        if exited.is_none() {
            eprintln!("{} (pid {pid}) did not stop within 5 s of SIGTERM; killing it", self.name);
            for child in descendants_of(pid).union(&children).filter(|c| c.is_running()) {
                let _ = signal(child.pid, SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Workers normally leave with their master; any left over (re-parented) are killed by pid.
        let leftover = wait_for(Duration::from_secs(2), Duration::from_millis(20), || {
            children.iter().all(|c| !c.is_running()).then_some(())
        });
        if leftover.is_none() {
            for child in children.iter().filter(|c| c.is_running()) {
                let _ = signal(child.pid, SIGKILL);
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
