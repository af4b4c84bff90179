//! The study team's part of the shared store suite (see [`super::suite`]).
