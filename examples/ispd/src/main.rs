//! `ispd`: the isp daemon. See `ispd --help` and the crate docs.

/// mimalloc: glibc's malloc and free were a fifth of the daemon's CPU in a sweep.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(ispd::cli::main())
}
