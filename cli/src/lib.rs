//! The `isms` command line as a library: the gRPC server (`isms serve`), the ledger set-up
//! (`isms init`) and the helpers clients share (signing read requests).

pub mod bundle;
pub mod client;
pub mod commands;
pub mod console;
pub mod dates;
pub mod init;
pub mod mirror;
pub mod output;
pub mod report;
pub mod server;
pub mod store;
pub mod witness;
pub mod witness_policy;

pub use server::auth::sign_read;
