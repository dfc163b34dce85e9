//! End-to-end tests of the azure_devops plugin through the real host runtime (to be written).
