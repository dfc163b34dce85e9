//! End-to-end tests of the jira plugin through the real host runtime (to be written).
