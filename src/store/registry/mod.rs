//! OCI distribution registry client.
