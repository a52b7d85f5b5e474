//! OCI image layout store (ocidir://).
