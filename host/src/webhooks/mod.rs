//! "Process webhooks": the tracker's events, received on a per-source URL, checked by the
//! scheme the source's plugin declares (`verify`) before anything reads them.

pub mod verify;
