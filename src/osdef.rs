//! Placeholder: being written (issue 5).
#![forbid(unsafe_code)]
