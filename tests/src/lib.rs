//! End-to-end tests across the isp crates live in `tests/tests/`.
