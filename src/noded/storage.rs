//! Placeholder: being written (issue 5).
#![forbid(unsafe_code)]

use super::Procedure;

pub const PROCEDURES: &[Procedure] = &[];
