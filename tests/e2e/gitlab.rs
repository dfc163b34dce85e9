//! End-to-end tests of the gitlab plugin through the real host runtime (to be written).
