//! End-to-end tests of the custom plugin through the real host runtime (to be written).
