//! End-to-end tests of the linear plugin through the real host runtime (to be written).
