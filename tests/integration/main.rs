//! One integration-test binary, one module per topic.

mod layout;
mod verify;
