//! One integration-test binary, one module per topic.

mod cli;
mod corpus;
mod inspect_layouts;
mod layout;
mod schema;
