//! Splitting a small product between the calling thread and one helper that spins between
//! jobs.
//!
//! A batch-1 decoding step multiplies one row by a dozen weight matrices, each a few to a few
//! hundred microseconds of work. Handing half of one to a rayon worker that has gone to sleep
//! costs a futex wake-up (tens of microseconds on these virtual machines), more than the half
//! saves. The helper here stays awake, spinning, for a while after each job (as OpenMP runtimes
//! do), so consecutive products of a step reach it in well under a microsecond; idle longer than
//! that, it parks and costs nothing.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;

/// Spin rounds before the helper parks (each a pause instruction; roughly 0.1 - 0.5 ms).
const SPIN_ROUNDS: u32 = 1 << 14;

/// A job: a type-erased `&(dyn Fn() + Sync)` living on the caller's stack for the call.
type Job = *const (dyn Fn() + Sync);

struct Helper {
    /// Bumped by the caller for every job.
    posted: AtomicU64,
    /// Set by the helper to `posted` when that job is done.
    done: AtomicU64,
    /// Whether the job panicked.
    panicked: AtomicBool,
    job: UnsafeCell<Option<Job>>,
    thread: Thread,
    /// One caller at a time; others run both halves themselves.
    caller: Mutex<()>,
}

// SAFETY: `job` is written by the one caller holding `caller` before it bumps `posted`, and read
// by the helper only after it sees that bump (release/acquire); the caller waits for `done`
// before the job's referent goes away.
unsafe impl Sync for Helper {}
unsafe impl Send for Helper {}

fn helper() -> Option<&'static Helper> {
    static HELPER: OnceLock<Option<&'static Helper>> = OnceLock::new();
    *HELPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<&'static Helper>();
        let spawned = std::thread::Builder::new().name("transduce-pair".into()).spawn(move || {
            let Ok(h) = rx.recv() else { return };
            run_helper(h)
        });
        let thread = spawned.ok()?.thread().clone();
        let h: &'static Helper = Box::leak(Box::new(Helper {
            posted: AtomicU64::new(0),
            done: AtomicU64::new(0),
            panicked: AtomicBool::new(false),
            job: UnsafeCell::new(None),
            thread,
            caller: Mutex::new(()),
        }));
        tx.send(h).ok()?;
        Some(h)
    })
}

fn run_helper(h: &Helper) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0;
        let posted = loop {
            let posted = h.posted.load(Ordering::Acquire);
            if posted != seen {
                break posted;
            }
            if spins < SPIN_ROUNDS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                // a caller's unpark between the check and the park leaves a token: no lost job
                std::thread::park();
            }
        };
        // SAFETY: the caller wrote the job before publishing `posted` (acquired above) and keeps
        // it alive until `done` says so.
        let job = unsafe { (*h.job.get()).expect("a posted job") };
        let ok = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() })).is_ok();
        if !ok {
            h.panicked.store(true, Ordering::Relaxed);
        }
        seen = posted;
        h.done.store(posted, Ordering::Release);
    }
}

/// Runs `mine` on this thread and `theirs` on the helper at the same time, returning when both
/// are done; both run here, one after the other, when the helper is busy with another caller or
/// cannot be started.
pub fn join(mine: impl FnOnce(), theirs: impl Fn() + Sync) {
    let Some(h) = helper() else {
        theirs();
        mine();
        return;
    };
    let Ok(_guard) = h.caller.try_lock() else {
        theirs();
        mine();
        return;
    };
    let job: &(dyn Fn() + Sync) = &theirs;
    // SAFETY: the helper only reads the job between the bump below and its `done` store, and we
    // wait for that store before `theirs` goes out of scope; the lifetime is erased for the slot.
    let job: Job = unsafe { std::mem::transmute::<&(dyn Fn() + Sync), Job>(job) };
    unsafe { *h.job.get() = Some(job) };
    let posted = h.posted.load(Ordering::Relaxed) + 1;
    h.posted.store(posted, Ordering::Release);
    h.thread.unpark();
    // the helper holds `theirs` until it is done: wait for it even if `mine` panics
    let mine = catch_unwind(AssertUnwindSafe(mine));
    let mut spins = 0u32;
    while h.done.load(Ordering::Acquire) != posted {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1024) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    if let Err(payload) = mine {
        std::panic::resume_unwind(payload);
    }
    if h.panicked.swap(false, Ordering::Relaxed) {
        panic!("the helper's half of a product panicked");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::join;

    #[test]
    fn both_halves_run_once_per_call_from_any_thread() {
        let count = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for i in 0..2000 {
                        let mut mine = 0;
                        join(
                            || mine = i,
                            || {
                                count.fetch_add(1, Ordering::Relaxed);
                            },
                        );
                        assert_eq!(mine, i);
                        if i % 500 == 0 {
                            // long enough for the helper to park
                            std::thread::sleep(std::time::Duration::from_millis(2));
                        }
                    }
                });
            }
        });
        assert_eq!(count.load(Ordering::Relaxed), 6000);
    }
}
