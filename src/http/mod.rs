//! (in progress)

pub mod guard;
