#![doc = include_str!("../README.md")]

mod admin;
mod demand;
mod fault;
mod ids;
mod later;
mod operation;
mod origin;
mod reply;
mod routes;
mod sandbox;
mod server;
mod state;
mod tokens;

pub use fault::Fault;
pub use operation::Operation;
pub use sandbox::{Sandbox, SandboxBuilder, StartError};
