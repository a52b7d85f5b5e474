//! Blobs of a layout: content-addressed files under `blobs/<alg>/<hex>`.

use std::fs;

use bytes::Bytes;

use super::Layout;
use super::files::{file_size, io_error, read_capped, write_atomic};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::oci::Descriptor;
use crate::store::{BlobPrefix, BlobState, PrefixRead};

impl Layout {
    pub(super) fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        file_size(&self.blob_path(digest))
    }

    pub(super) fn blob_state(&self, descriptor: &Descriptor) -> Result<BlobState> {
        let path = self.blob_path(&descriptor.digest);
        match file_size(&path)? {
            None => return Ok(BlobState::Missing),
            Some(size) if size != descriptor.size => return Ok(BlobState::WrongSize(size)),
            Some(_) => {}
        }
        // Capped at the size just seen: a file that grows meanwhile is refused, not read without end.
        let Some(bytes) = read_capped(&path, descriptor.size)? else {
            return Ok(BlobState::Missing);
        };
        Ok(if descriptor.digest.compute_like(&bytes) == descriptor.digest {
            BlobState::Verified
        } else {
            BlobState::Corrupted
        })
    }

    pub(super) fn get_blob(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<Bytes> {
        let digest = &descriptor.digest;
        if descriptor.size > max_bytes {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("blob {digest} is declared as {} bytes, more than the limit of {max_bytes}", descriptor.size),
            ));
        }
        let path = self.blob_path(digest);
        let bytes = self.read_verified(digest, max_bytes)?.ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("blob {digest} not found ({} is missing)", path.display()))
        })?;
        if bytes.len() as u64 != descriptor.size {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("{} has {} bytes but its descriptor says {}", path.display(), bytes.len(), descriptor.size),
            ));
        }
        Ok(Bytes::from(bytes))
    }

    /// The first `max_bytes` of a blob file, unchecked (see [`Repository::get_blob_prefix`]).
    ///
    /// [`Repository::get_blob_prefix`]: crate::store::Repository::get_blob_prefix
    pub(super) fn get_blob_prefix(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<BlobPrefix> {
        use std::io::Read as _;
        let path = self.blob_path(&descriptor.digest);
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("blob {} not found ({} is missing)", descriptor.digest, path.display()),
                ));
            }
            Err(e) => return Err(io_error("cannot open", &path, e)),
        };
        let want = max_bytes.min(descriptor.size);
        let mut bytes = Vec::with_capacity(want as usize);
        file.take(want).read_to_end(&mut bytes).map_err(|e| io_error("cannot read", &path, e))?;
        let transferred = bytes.len() as u64;
        let whole = descriptor.size <= max_bytes && transferred == descriptor.size;
        Ok(BlobPrefix { bytes: Bytes::from(bytes), whole, transferred, read: PrefixRead::Local })
    }

    /// Read a blob or manifest file and check it hashes to `digest`. `Ok(None)` when absent.
    pub(super) fn read_verified(&self, digest: &Digest, max_bytes: u64) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(digest);
        let Some(bytes) = read_capped(&path, max_bytes)? else {
            return Ok(None);
        };
        digest.verify(&bytes).map_err(|e| e.context(format!("{} is corrupted", path.display())))?;
        Ok(Some(bytes))
    }

    /// Store `bytes` under their SHA-256 digest unless an intact copy is already there. A file of
    /// the right name but wrong content (a torn copy from another tool, a disk error) is replaced.
    pub(super) fn store_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256(bytes);
        let path = self.blob_path(&digest);
        if file_size(&path)? == Some(bytes.len() as u64) {
            let intact =
                read_capped(&path, bytes.len() as u64).ok().flatten().is_some_and(|existing| existing == bytes);
            if intact {
                return Ok(digest);
            }
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
        }
        write_atomic(&path, bytes)?;
        Ok(digest)
    }
}
