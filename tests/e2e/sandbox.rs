//! End-to-end tests of the sandbox plugin through the real host runtime (to be written).
