//! Workers: independent jobs (translation batches, or the shards of a training update) run
//! several at a time, each on a thread pool of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Independent jobs (sentence batches) run `n` at a time, each worker on its own thread pool
/// with an equal share of the threads: on few cores, two single-threaded searches keep both
/// busy without the hand-offs a two-threaded search pays at every small product (CTranslate2's
/// `inter_threads`).
#[derive(Debug, Default)]
pub struct Workers {
    /// Empty: one worker on the global pool.
    pools: Vec<rayon::ThreadPool>,
}

impl Workers {
    /// `n` workers sharing the global pool's threads (at least one thread each); `n <= 1` runs
    /// jobs one after another on the global pool. Nothing process-wide changes: a program that
    /// wants the workers' threads to share the allocator's heaps (less memory, as the `transduce`
    /// command does) sets that itself before starting them.
    pub fn new(n: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        if n <= 1 {
            return Ok(Workers::default());
        }
        let threads = (rayon::current_num_threads() / n).max(1);
        let pools = (0..n)
            .map(|i| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(move |t| format!("transduce-worker-{i}-{t}"))
                    .build()
            })
            .collect::<Result<_, _>>()?;
        Ok(Workers { pools })
    }

    /// Jobs at a time.
    pub fn count(&self) -> usize {
        self.pools.len().max(1)
    }

    /// `f` on every item, results in item order; each worker takes the next item when it is
    /// done with one. The first error stops the workers and is returned.
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
        // only an error stops the workers early: return it if there is one
        let mut out = Vec::with_capacity(items.len());
        let mut skipped = false;
        for r in results {
            match r {
                Some(Ok(r)) => out.push(r),
                Some(Err(e)) => return Err(e),
                None => skipped = true,
            }
        }
        assert!(!skipped, "every item runs unless an error stops the workers");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::Workers;

    #[test]
    fn workers_keep_item_order_and_return_an_error() {
        let items: Vec<u32> = (0..50).collect();
        for n in [1, 2, 3] {
            let workers = Workers::new(n).unwrap();
            assert_eq!(workers.count(), n);
            let squares = workers.map(&items, |&i| Ok::<u32, String>(i * i)).unwrap();
            assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
            let failed = workers.map(&items, |&i| if i == 17 { Err(format!("item {i}")) } else { Ok(i) });
            assert_eq!(failed, Err("item 17".to_string()), "{n} workers");
        }
    }
}
