//! Streamed blob reads and writes: a layer of several GB goes through in chunks, hashed on the way,
//! never whole in memory.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::Layout;
use super::files::{io_error, write_chunks_atomic};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::oci::Descriptor;
use crate::store::{BlobChunks, chunks};

/// Bytes read from a blob file at a time.
const CHUNK: usize = 1024 * 1024;

impl Layout {
    /// What a streamed read or write of `digest` is, for messages.
    fn blob_context(&self, digest: &Digest) -> String {
        format!("blob {digest} in {}", self.name())
    }

    /// [`Repository::read_blob_stream`](crate::store::Repository::read_blob_stream) of a blob file.
    pub(super) async fn read_blob_stream(&self, descriptor: &Descriptor) -> Result<BlobChunks> {
        let what = self.blob_context(&descriptor.digest);
        let path = self.blob_path(&descriptor.digest);
        let file = open_blob(&path, descriptor).await.map_err(|e| e.context(&what))?;
        let pieces = futures_util::stream::unfold(Some(file), move |file| {
            let path = path.clone();
            async move {
                let mut file = file?;
                match read_chunk(&mut file).await {
                    Ok(Some(chunk)) => Some((Ok(chunk), Some(file))),
                    Ok(None) => None,
                    Err(e) => Some((Err(io_error("cannot read", &path, e)), None)),
                }
            }
        });
        Ok(chunks::checked(descriptor, what, pieces.boxed()))
    }

    /// [`Repository::put_blob_stream`](crate::store::Repository::put_blob_stream) into a blob file.
    pub(super) async fn put_blob_stream(&self, descriptor: &Descriptor, chunks: BlobChunks) -> Result<Digest> {
        let what = self.blob_context(&descriptor.digest);
        let path = self.blob_path(&descriptor.digest);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(|e| io_error("cannot create", dir, e).context(&what))?;
        }
        // The checked stream fails before its last chunk when the bytes are not the blob, so the
        // temporary file is never renamed into place with them.
        write_chunks_atomic(&path, chunks::checked(descriptor, &what, chunks)).await?;
        Ok(descriptor.digest.clone())
    }
}

/// Open a blob file, refusing one whose size is not the descriptor's before anything is read.
async fn open_blob(path: &Path, descriptor: &Descriptor) -> Result<tokio::fs::File> {
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(ErrorKind::NotFound, format!("not found ({} is missing)", path.display())));
        }
        Err(e) => return Err(io_error("cannot open", path, e)),
    };
    let meta = file.metadata().await.map_err(|e| io_error("cannot inspect", path, e))?;
    if !meta.is_file() {
        return Err(Error::invalid_format(format!("{} is not a regular file", path.display())));
    }
    if meta.len() != descriptor.size {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!("{} has {} bytes but its descriptor says {}", path.display(), meta.len(), descriptor.size),
        ));
    }
    Ok(file)
}

/// Up to [`CHUNK`] bytes, `None` at the end of the file.
async fn read_chunk(file: &mut tokio::fs::File) -> std::io::Result<Option<Bytes>> {
    let mut buf = BytesMut::with_capacity(CHUNK);
    while buf.len() < CHUNK {
        if file.read_buf(&mut buf).await? == 0 {
            break;
        }
    }
    Ok((!buf.is_empty()).then(|| buf.freeze()))
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;
    use crate::limits::Limits;
    use crate::store::Repository;
    use crate::store::layout::LayoutRepository;

    fn layout() -> (tempfile::TempDir, LayoutRepository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = LayoutRepository::create(dir.path().join("l"), Limits::default()).unwrap();
        (dir, repo)
    }

    /// `bytes` as a stream of `piece`-byte chunks.
    fn pieces(bytes: &[u8], piece: usize) -> BlobChunks {
        let chunks: Vec<Result<Bytes>> = bytes.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        stream::iter(chunks).boxed()
    }

    fn blob(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn leftovers(repo: &LayoutRepository) -> Vec<String> {
        let dir = repo.path().join("blobs").join("sha256");
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut names: Vec<String> = entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_blob_goes_in_and_out_in_chunks() {
        let (_dir, repo) = layout();
        let bytes = blob(3 * CHUNK + 5);
        let d = Descriptor::of("application/octet-stream", &bytes);
        assert_eq!(repo.put_blob_stream(&d, pieces(&bytes, 700 * 1024)).await.unwrap(), d.digest);
        assert_eq!(leftovers(&repo), vec![d.digest.hex().to_owned()]);
        let mut read = repo.read_blob_stream(&d).await.unwrap();
        let mut sizes = Vec::new();
        let mut back = Vec::new();
        while let Some(chunk) = read.next().await {
            let chunk = chunk.unwrap();
            sizes.push(chunk.len());
            back.extend_from_slice(&chunk);
        }
        assert_eq!(sizes, vec![CHUNK, CHUNK, CHUNK, 5]);
        assert!(back == bytes, "the bytes read back differ");
    }

    #[tokio::test]
    async fn a_missing_blob_is_not_found_before_any_chunk() {
        let (_dir, repo) = layout();
        let d = Descriptor::of("application/octet-stream", b"never stored");
        let err = repo.read_blob_stream(&d).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().starts_with(&format!("blob {} in ocidir://", d.digest)), "{err}");
    }

    #[tokio::test]
    async fn bytes_that_are_not_the_blob_leave_no_file() {
        let (_dir, repo) = layout();
        let bytes = blob(2 * CHUNK);
        let d = Descriptor::of("application/octet-stream", &bytes);
        let mut other = bytes.clone();
        other[CHUNK] ^= 1;
        let mut longer = bytes.clone();
        longer.push(0);
        for (case, sent) in
            [("other bytes", &other), ("one byte more", &longer), ("one byte less", &bytes[1..].to_vec())]
        {
            let err = repo.put_blob_stream(&d, pieces(sent, 300 * 1024)).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{case}: {err}");
            assert!(err.to_string().contains(&d.digest.to_string()), "{case}: {err}");
            assert_eq!(leftovers(&repo), Vec::<String>::new(), "{case}");
        }
        let err = repo.put_blob_stream(&d, stream::iter([Err(Error::new(ErrorKind::Network, "reset"))]).boxed());
        assert_eq!(err.await.unwrap_err().kind(), ErrorKind::Network);
        assert_eq!(leftovers(&repo), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_damaged_file_fails_the_read() {
        let (_dir, repo) = layout();
        let bytes = blob(CHUNK + 10);
        let d = Descriptor::of("application/octet-stream", &bytes);
        repo.put_blob_stream(&d, pieces(&bytes, CHUNK)).await.unwrap();
        let path = repo.path().join("blobs").join("sha256").join(d.digest.hex());
        let mut damaged = bytes.clone();
        damaged[0] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        let items: Vec<Result<Bytes>> = repo.read_blob_stream(&d).await.unwrap().collect().await;
        assert_eq!(items.len(), 2, "the first chunk, then the error instead of the last");
        assert_eq!(items[1].as_ref().unwrap_err().kind(), ErrorKind::DigestMismatch);
        // A file of another size is refused before any byte is read.
        std::fs::write(&path, &bytes[1..]).unwrap();
        let err = repo.read_blob_stream(&d).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err}");
        assert!(err.to_string().contains(&format!("has {} bytes but its descriptor says {}", CHUNK + 9, CHUNK + 10)));
    }
}
