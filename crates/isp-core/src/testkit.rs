//! The conformance suite every repository adapter runs.
