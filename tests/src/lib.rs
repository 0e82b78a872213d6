//! Workspace-wide integration tests (in `tests/tests/`): the port of CPython's
//! `test_asyncore` and `test_asynchat`, and scenarios that cross crates.
