//! Sync between a device and the research server.
//!
//! [`api`] holds the JSON bodies of the sync API, shared by the server, this engine and the
//! app, so the three cannot drift apart.

pub mod api;

pub use api::{
    ControlKind, ControlMessage, EnrolRequest, EnrolResponse, PullResponse, PushOutcome,
    PushRequest, PushResponse, PushResult, Revocation,
};
