//! Process-wide settings for speed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Stops glibc's allocator from handing large freed blocks back to the OS.
///
/// A training step allocates and frees tensors of megabytes hundreds of times; by default glibc
/// serves each with a fresh `mmap` and returns it on free, so every reuse page-faults and
/// zero-fills. Keeping the memory in the heap removes that cost (measured: train step on cfg S
/// 810 -> 655 ms). A no-op on other platforms.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// Makes candle's elementwise thread pool sleep between operations instead of spinning, unless
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT` is set. Its worker spins 25,000 rounds after each op by
/// default, which on few cores takes a core from the GEMM's threads (measured: cfg S training
/// step 371 -> 289 ms). Call at start-up, before any thread starts.
pub fn quiet_candle_pool() {
    const SPIN: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(SPIN).is_none() {
        std::env::set_var(SPIN, "0");
    }
}

/// Makes threads started from now on share the allocator's existing heaps instead of each
/// growing its own: memory one translation stream frees is reused by the others, not kept aside
/// per thread (measured: two streams on marian-fren-s, peak RSS 143 -> 122 MB, about 3 % slower
/// from the shared heap's lock). [`Streams::new`] calls it before starting its threads; a no-op
/// on other platforms.
fn share_heaps() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// The process's peak resident memory (`VmHWM`), where the platform reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Independent jobs (sentence batches) run `n` at a time, each stream on its own thread pool
/// with an equal share of the threads: on few cores, two single-threaded searches keep both
/// busy without the hand-offs a two-threaded search pays at every small product (CTranslate2's
/// `inter_threads`).
#[derive(Debug, Default)]
pub struct Streams {
    /// Empty: one stream on the global pool.
    pools: Vec<rayon::ThreadPool>,
}

impl Streams {
    /// `n` streams sharing the global pool's threads (at least one thread each); `n <= 1` runs
    /// jobs one after another on the global pool. More than one makes the process's threads
    /// share the allocator's heaps ([`share_heaps`]).
    pub fn new(n: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        if n <= 1 {
            return Ok(Streams::default());
        }
        share_heaps();
        let threads = (rayon::current_num_threads() / n).max(1);
        let pools = (0..n)
            .map(|i| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(move |t| format!("transduce-stream-{i}-{t}"))
                    .build()
            })
            .collect::<Result<_, _>>()?;
        Ok(Streams { pools })
    }

    /// Jobs at a time.
    pub fn count(&self) -> usize {
        self.pools.len().max(1)
    }

    /// `f` on every item, results in item order; each stream takes the next item when it is
    /// done with one. The first error stops the streams and is returned.
    pub fn map<T: Sync, R: Send, E: Send>(
        &self,
        items: &[T],
        f: impl Fn(&T) -> Result<R, E> + Sync,
    ) -> Result<Vec<R>, E> {
        if self.pools.len() <= 1 || items.len() <= 1 {
            return items.iter().map(f).collect();
        }
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<R, E>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
        std::thread::scope(|s| {
            for pool in &self.pools {
                s.spawn(|| {
                    pool.install(|| loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        let r = f(item);
                        let failed = r.is_err();
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                        if failed {
                            next.store(items.len(), Ordering::Relaxed);
                            break;
                        }
                    })
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        // only an error stops the streams early: return it if there is one
        let mut out = Vec::with_capacity(items.len());
        let mut skipped = false;
        for r in results {
            match r {
                Some(Ok(r)) => out.push(r),
                Some(Err(e)) => return Err(e),
                None => skipped = true,
            }
        }
        assert!(!skipped, "every item runs unless an error stops the streams");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::Streams;

    #[test]
    fn streams_keep_item_order_and_return_an_error() {
        let items: Vec<u32> = (0..50).collect();
        for n in [1, 2, 3] {
            let streams = Streams::new(n).unwrap();
            assert_eq!(streams.count(), n);
            let squares = streams.map(&items, |&i| Ok::<u32, String>(i * i)).unwrap();
            assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
            let failed = streams.map(&items, |&i| if i == 17 { Err(format!("item {i}")) } else { Ok(i) });
            assert_eq!(failed, Err("item 17".to_string()), "{n} streams");
        }
    }
}
