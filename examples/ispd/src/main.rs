//! `ispd`: the isp daemon. See `ispd --help` and the crate docs.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(ispd::cli::main())
}
