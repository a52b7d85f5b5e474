//! One integration-test binary, one module per topic.

mod auth_cli;
mod cli;
mod corpus;
mod deploy;
mod get;
mod help;
mod hostile;
mod inspect_faults;
mod inspect_layouts;
mod inspect_registries;
mod interop;
mod layout;
mod migrate;
mod prune;
mod races;
mod registries;
mod registry_client;
mod schema;
mod schemas;
mod tsa;
mod verify;
mod verify_cli;
