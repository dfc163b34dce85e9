//! End-to-end tests of the github plugin through the real host runtime (to be written).
