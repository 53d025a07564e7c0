//! Integration tests live in `tests/`; this crate holds only what several of
//! those test binaries share.

pub mod schema_drift;
