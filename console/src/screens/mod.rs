//! The console's screens.

pub mod conflicts;
pub mod export;
pub mod key;
pub mod overview;
pub mod participants;
pub mod safeguarding;
pub mod signin;
pub mod team;
pub mod timeline;
pub mod withdrawals;
