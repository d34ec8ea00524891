//! The engine's integration tests, in one test binary (one link of DataFusion instead of one
//! per file): each module is one capability.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod batch_compaction;
mod carrier_calls;
mod counting;
mod distributed;
mod many_batches;
mod plan_codec;
mod sqllogictest;
mod store_info;
