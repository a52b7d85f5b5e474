//! Checking a blob's bytes while they pass, for the streamed reads and writes of
//! [`Repository`](super::Repository): a blob too large to hold is never whole in memory, so its size
//! and digest can only be checked on the way.
//!
//! The last chunk is held back until the source has ended and every byte hashed to the digest. A
//! consumer that writes chunks somewhere (a file, an upload's request body) therefore never receives
//! the whole of a wrong blob: the stream fails before its final byte.

use bytes::Bytes;
use futures_util::StreamExt;

use super::BlobChunks;
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::{Digest, Hasher};
use crate::model::oci::Descriptor;

/// `chunks`, ending with an [`ErrorKind::DigestMismatch`] (after `what`, which names the store and
/// blob) when more or fewer than `descriptor.size` bytes arrive or they do not hash to
/// `descriptor.digest`. An error of `chunks` itself is passed on unchanged and ends the stream.
pub(crate) fn checked(descriptor: &Descriptor, what: impl Into<String>, chunks: BlobChunks) -> BlobChunks {
    let check = Check {
        source: chunks,
        hasher: Some(Hasher::new(descriptor.digest.algorithm())),
        received: 0,
        size: descriptor.size,
        digest: descriptor.digest.clone(),
        what: what.into(),
        ended: false,
    };
    futures_util::stream::unfold(check, |mut check| async move {
        let item = check.next().await?;
        Some((item, check))
    })
    .boxed()
}

struct Check {
    source: BlobChunks,
    /// Taken when the digest is computed (once, at the end).
    hasher: Option<Hasher>,
    received: u64,
    size: u64,
    digest: Digest,
    what: String,
    ended: bool,
}

impl Check {
    async fn next(&mut self) -> Option<Result<Bytes>> {
        if self.ended {
            return None;
        }
        let item = self.step().await;
        // An error ends the stream, and so does the last chunk (verified before it was handed on).
        if !matches!(item, Some(Ok(_))) || self.received == self.size {
            self.ended = true;
        }
        item
    }

    async fn step(&mut self) -> Option<Result<Bytes>> {
        loop {
            let chunk = match self.source.next().await {
                None if self.received < self.size => return Some(Err(self.too_short())),
                // Only an empty blob ends here: any other ended with its last chunk.
                None => return self.verify().err().map(Err),
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => chunk,
            };
            self.received += chunk.len() as u64;
            if self.received > self.size {
                return Some(Err(self.too_long()));
            }
            if let Some(hasher) = self.hasher.as_mut() {
                hasher.update(&chunk);
            }
            if self.received < self.size {
                return Some(Ok(chunk));
            }
            if let Err(e) = self.expect_end().await {
                return Some(Err(e));
            }
            return Some(self.verify().map(|()| chunk));
        }
    }

    /// After the declared size, the source may only end (empty chunks aside).
    async fn expect_end(&mut self) -> Result<()> {
        loop {
            match self.source.next().await {
                None => return Ok(()),
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    return Err(self.too_long());
                }
                Some(Err(e)) => return Err(e),
            }
        }
    }

    fn verify(&mut self) -> Result<()> {
        let actual = self.hasher.take().map(Hasher::finish);
        match actual {
            Some(actual) if actual == self.digest => Ok(()),
            actual => {
                let actual = actual.map_or_else(|| "nothing".to_owned(), |d| d.to_string());
                Err(mismatch(format!("{}: content digest mismatch: expected {}, got {actual}", self.what, self.digest)))
            }
        }
    }

    fn too_long(&self) -> Error {
        mismatch(format!("{}: more than the {} bytes its descriptor says arrived", self.what, self.size))
    }

    fn too_short(&self) -> Error {
        mismatch(format!("{}: {} bytes arrived but its descriptor says {}", self.what, self.received, self.size))
    }
}

fn mismatch(message: String) -> Error {
    Error::new(ErrorKind::DigestMismatch, message)
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;

    fn descriptor(bytes: &[u8]) -> Descriptor {
        Descriptor::of("application/octet-stream", bytes)
    }

    fn source(pieces: &[&'static [u8]]) -> BlobChunks {
        stream::iter(pieces.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>()).boxed()
    }

    /// Every item of the checked stream: chunks as they were handed on, then the error if any.
    async fn drain(descriptor: &Descriptor, chunks: BlobChunks) -> (Vec<u8>, Option<Error>) {
        let mut out = checked(descriptor, "blob b", chunks);
        let mut passed = Vec::new();
        while let Some(item) = out.next().await {
            match item {
                Ok(chunk) => passed.extend_from_slice(&chunk),
                Err(e) => {
                    assert!(out.next().await.is_none(), "nothing follows an error");
                    return (passed, Some(e));
                }
            }
        }
        (passed, None)
    }

    #[tokio::test]
    async fn the_right_bytes_pass_unchanged() {
        let d = descriptor(b"one two three");
        let (passed, err) = drain(&d, source(&[b"one ", b"", b"two ", b"three", b""])).await;
        assert_eq!(passed, b"one two three");
        assert!(err.is_none(), "{err:?}");
    }

    #[tokio::test]
    async fn an_empty_blob_checks_its_digest_too() {
        let (passed, err) = drain(&descriptor(b""), source(&[])).await;
        assert!(passed.is_empty());
        assert!(err.is_none(), "{err:?}");
        let mut d = descriptor(b"");
        d.digest = Digest::sha256(b"x");
        let (_, err) = drain(&d, source(&[])).await;
        assert_eq!(err.unwrap().kind(), ErrorKind::DigestMismatch);
    }

    #[tokio::test]
    async fn the_last_chunk_of_a_wrong_blob_is_never_handed_on() {
        let mut d = descriptor(b"abcdef");
        d.digest = Digest::sha256(b"abcdeX");
        let (passed, err) = drain(&d, source(&[b"abc", b"def"])).await;
        assert_eq!(passed, b"abc");
        let err = err.unwrap();
        assert_eq!(err.kind(), ErrorKind::DigestMismatch);
        assert_eq!(
            err.to_string(),
            format!("blob b: content digest mismatch: expected {}, got {}", d.digest, Digest::sha256(b"abcdef"))
        );
    }

    #[tokio::test]
    async fn too_many_bytes_fail_in_the_chunk_or_after_the_declared_size() {
        let d = descriptor(b"abcd");
        let (passed, err) = drain(&d, source(&[b"ab", b"cdE"])).await;
        assert_eq!(passed, b"ab");
        assert_eq!(err.unwrap().to_string(), "blob b: more than the 4 bytes its descriptor says arrived");
        // The declared size reached exactly, then more: the last chunk is held back.
        let (passed, err) = drain(&d, source(&[b"ab", b"cd", b"", b"E"])).await;
        assert_eq!(passed, b"ab");
        assert_eq!(err.unwrap().kind(), ErrorKind::DigestMismatch);
    }

    #[tokio::test]
    async fn too_few_bytes_fail_at_the_end() {
        let d = descriptor(b"abcd");
        let (passed, err) = drain(&d, source(&[b"ab", b"c"])).await;
        assert_eq!(passed, b"abc");
        assert_eq!(err.unwrap().to_string(), "blob b: 3 bytes arrived but its descriptor says 4");
    }

    #[tokio::test]
    async fn a_source_error_is_passed_on_unchanged() {
        let d = descriptor(b"abcd");
        let failing = stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(Error::new(ErrorKind::Network, "connection reset")),
            Ok(Bytes::from_static(b"cd")),
        ])
        .boxed();
        let (passed, err) = drain(&d, failing).await;
        assert_eq!(passed, b"ab");
        let err = err.unwrap();
        assert_eq!((err.kind(), err.to_string()), (ErrorKind::Network, "connection reset".to_owned()));
    }

    #[tokio::test]
    async fn sha512_digests_are_checked_with_sha512() {
        let bytes = b"a blob named by sha512";
        let mut hasher = Hasher::new(crate::model::digest::Algorithm::Sha512);
        hasher.update(bytes);
        let mut d = descriptor(bytes);
        d.digest = hasher.finish();
        let (passed, err) = drain(&d, source(&[b"a blob ", b"named by sha512"])).await;
        assert_eq!(passed, bytes);
        assert!(err.is_none(), "{err:?}");
    }
}
