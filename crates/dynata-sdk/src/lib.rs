//! Dynata's Sample API from Rust. The token lifecycle lands here next; for now
//! the crate re-exports the generated low-level auth client.

pub use dynata_auth_api as auth_api;
