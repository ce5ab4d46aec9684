//! The application: its state, how it is built from a `Config` and served, its OpenAPI description (drawn
//! from the routing table) and the operator's commands.

pub mod build;
pub mod cli;
pub mod openapi;
pub mod state;

pub use build::Application;
pub use state::AppState;
