//! Process-wide settings for speed.

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

/// The process's peak resident memory (`VmHWM`), where the platform reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
