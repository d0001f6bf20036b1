//! Threads that run only on CPU time nothing else in the machine wants.
//!
//! Linux's `SCHED_IDLE` policy: the kernel runs such a thread when no
//! normal thread wants its core, and preempts it at once for one that
//! wakes. Bulk work that must never delay a block runs there: media's
//! chunk I/O (`service::io_pool`) and the node's miner. Two such threads
//! share a core as equals, so a mining node still serves and plays media
//! at half its cores' speed rather than not at all. Where the policy
//! cannot be set (another OS, a restricted container), a niceness stands
//! in.

/// Puts the calling thread on `SCHED_IDLE`, then at nice `fallback_nice`
/// (which counts only if the policy could not be set). `Err` says what
/// did not take, for the caller to log; the thread runs on either way.
#[cfg(target_os = "linux")]
pub fn run_when_idle(fallback_nice: i32) -> Result<(), String> {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, thread_schedule_policy,
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    // `Min` is the only priority `SCHED_IDLE` takes (0). The call also
    // resets the niceness to 0, which fails in a process already niced
    // after the policy was set: the policy read back is what counts.
    let _ = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle);
    let policy = match thread_schedule_policy() {
        Ok(policy) if policy == idle => Ok(()),
        got => Err(format!("not on SCHED_IDLE ({got:?})")),
    };
    let tid = rustix::thread::gettid();
    let nice = rustix::process::setpriority_process(Some(tid), fallback_nice)
        .map_err(|e| format!("nice {fallback_nice} not set: {e}"));
    match (policy, nice) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
    }
}

/// Elsewhere the thread keeps the default priority.
#[cfg(not(target_os = "linux"))]
pub fn run_when_idle(_fallback_nice: i32) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    /// Field `n` (1-based, as in proc(5)) of this thread's stat line.
    #[cfg(target_os = "linux")]
    fn stat_field<T: std::str::FromStr>(n: usize) -> T {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("procfs");
        // The command name (field 2) may hold spaces: count after its ')'.
        let after = &stat[stat.rfind(')').expect("stat line") + 2..];
        after
            .split(' ')
            .nth(n - 3)
            .and_then(|f| f.parse().ok())
            .expect("a stat field")
    }

    /// This thread's niceness (field 19).
    #[cfg(target_os = "linux")]
    pub(crate) fn niceness() -> i32 {
        stat_field(19)
    }

    /// This thread's scheduling policy (field 41).
    #[cfg(target_os = "linux")]
    pub(crate) fn policy() -> u32 {
        stat_field(41)
    }

    pub(crate) const SCHED_OTHER: u32 = 0;
    pub(crate) const SCHED_IDLE: u32 = 5;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_moves_to_idle_and_its_neighbours_do_not() {
        let (outside, outside_policy) = (niceness(), policy());
        let (inside, inside_policy) = std::thread::spawn(|| {
            super::run_when_idle(19).expect("SCHED_IDLE for an unprivileged thread");
            (niceness(), policy())
        })
        .join()
        .expect("the thread ran");
        assert_eq!(outside_policy, SCHED_OTHER);
        assert_eq!(inside_policy, SCHED_IDLE);
        assert_eq!(inside, 19, "the fallback niceness is set too");
        assert_eq!((niceness(), policy()), (outside, outside_policy));
    }
}
