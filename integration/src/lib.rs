//! End-to-end test helpers; the tests are in `tests/`.
