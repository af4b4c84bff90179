//! One folder per screen family.

pub mod home;
pub mod lock;
pub mod notebook;
pub mod settings;
