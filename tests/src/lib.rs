//! Workspace-wide integration tests (in `tests/tests/`): the port of CPython's
//! `test_asyncore` and `test_asynchat`, and scenarios that cross crates.

/// The root README's code, compiled as a doctest so that it cannot drift from the API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
