//! In-memory adapters for every port: for tests, the demo and embedding.
