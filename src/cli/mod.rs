//! The command line: arguments (`args`), the thin adapters from arguments to the core
//! (`commands`), what they share (`context`: settings, the workspace, the AWS connection), the sequences of the commands that read and write AWS (`workflow`: lock, plan,
//! guard the owner, apply, report), state editing and moving (`state_commands`), the backend and workspaces (`backend`, `workspace`), taking over a Terraform state (`import_terraform`), `--stats` (`stats`), `skyform fmt` (`fmt`) and `skyform check`
//! (`check`). All printing of results happens here.
//!
//! May use: every other stage. Nothing uses it but `lib.rs`.

pub mod args;
pub(crate) mod backend;
pub(crate) mod check;
pub(crate) mod commands;
pub(crate) mod context;
pub(crate) mod fmt;
pub(crate) mod import_terraform;
pub(crate) mod state_commands;
pub(crate) mod stats;
pub(crate) mod workflow;
pub(crate) mod workspace;
