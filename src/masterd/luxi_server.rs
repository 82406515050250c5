//! Placeholder: being written (issue 4).
#![forbid(unsafe_code)]
