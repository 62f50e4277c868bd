//! Quickstart: embed isp in a few lines.

fn main() {}
