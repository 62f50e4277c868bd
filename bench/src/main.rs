//! The isp benchmark runner (work in progress).

fn main() {}
