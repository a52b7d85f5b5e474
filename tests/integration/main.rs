//! One integration-test binary, one module per topic.

mod auth_cli;
mod cli;
mod corpus;
mod crash;
mod deploy;
mod fault_proxy;
mod faults;
mod fleet;
mod get;
mod help;
mod inspect_faults;
mod inspect_layouts;
mod inspect_registries;
mod interop;
mod layout;
mod migrate;
mod prune;
mod registries;
mod registry_client;
mod schema;
mod schemas;
mod security;
mod tsa;
mod upload_faults;
mod verify;
mod verify_cli;
