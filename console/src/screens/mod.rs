//! The console's screens.

pub mod activity;
pub mod conflicts;
pub mod devices;
pub mod enrolment;
pub mod export;
pub mod key;
pub mod overview;
pub mod participants;
pub mod protocol;
pub mod qr;
pub mod safeguarding;
pub mod signin;
pub mod team;
pub mod timeline;
pub mod withdrawals;
