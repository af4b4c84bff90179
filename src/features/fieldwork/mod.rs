//! Field visits: participants, visits, consent, interviews, reflections and closing.

pub mod codes;
pub mod consent;
pub mod copy;
pub mod data;
pub mod interview;
pub mod names;
pub mod participants;
pub mod visits;
