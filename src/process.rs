//! Process-wide settings for speed: the app's choice, never made by the library.

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
/// growing its own: memory one translation worker frees is reused by the others, not kept aside
/// per thread (measured: two workers on marian-fren-s, peak RSS 143 -> 122 MB, about 3 % slower
/// from the shared heap's lock). Call it before
/// [`transduce::Workers::new`] starts more than one worker; a no-op on other platforms.
pub fn share_heaps() {
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
