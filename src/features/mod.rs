//! One folder per screen family.

pub mod home;
pub mod settings;
