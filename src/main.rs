use clap::Parser;
use std::process::ExitCode;

/// glibc's malloc gives each thread that allocates under contention an arena of its own (up to
/// eight per core) and keeps what each arena once held. Page reads run on tokio's blocking
/// threads, so the default lets memory grow under load; four arenas keep it lower at no
/// measurable cost in throughput (docs/benchmarks.md, target 7).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of glibc's allocator; called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// glibc keeps memory freed in its heaps; the store asks for it to be returned after a long
/// replay (see `store::set_release_freed_memory`).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free memory of glibc's heaps back to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    relay::store::set_release_freed_memory(release_freed_memory);
    match relay::cli::run(relay::cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
