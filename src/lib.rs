pub mod address;
pub mod config;
pub mod diagnostic;
pub mod eval;
pub mod functions;
pub mod schema;
pub mod value;
