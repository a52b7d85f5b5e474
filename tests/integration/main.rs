//! One integration-test binary, one module per topic.

mod registries;
mod registry_client;
