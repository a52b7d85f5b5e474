//! File primitives for the layout: capped reads, atomic writes and the index lock.
//!
//! Every write goes to a fresh temporary file in the target's own directory (so the rename cannot
//! cross file systems), is flushed to disk, then renamed over the target. Readers therefore see the
//! old file or the new one, never a torn one, and need no lock. The temporary file is created with
//! `create_new`, which refuses to follow a symlink planted at its name, and the rename replaces a
//! symlink at the target rather than writing through it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, ErrorKind, Result};
use crate::store::BlobChunks;

/// Distinguishes temporary files of concurrent writers in one process; the pid covers processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
/// Attempts at finding an unused temporary name before giving up (stale files of a crashed run
/// with a recycled pid are the only expected collisions).
const TEMP_ATTEMPTS: u32 = 64;

/// Map an I/O error on `path` to our error, keeping "file not found" as [`ErrorKind::NotFound`].
pub(super) fn io_error(action: &str, path: &Path, err: io::Error) -> Error {
    Error::io(format_args!("{action} {}", path.display()), err)
}

/// Read a whole regular file, refusing more than `max` bytes (checked against the file's size and
/// again while reading, in case it grows). `Ok(None)` when the file does not exist.
pub(super) fn read_capped(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot open", path, e)),
    };
    let meta = file.metadata().map_err(|e| io_error("cannot inspect", path, e))?;
    if !meta.is_file() {
        return Err(Error::invalid_format(format!("{} is not a regular file", path.display())));
    }
    if meta.len() > max {
        return Err(too_large(path, meta.len(), max));
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    (&mut file).take(max.saturating_add(1)).read_to_end(&mut buf).map_err(|e| io_error("cannot read", path, e))?;
    if buf.len() as u64 > max {
        return Err(too_large(path, buf.len() as u64, max));
    }
    Ok(Some(buf))
}

fn too_large(path: &Path, size: u64, max: u64) -> Error {
    Error::new(ErrorKind::TooLarge, format!("{} is {size} bytes, more than the limit of {max}", path.display()))
}

/// The size of a regular file, `Ok(None)` when it does not exist.
pub(super) fn file_size(path: &Path) -> Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Some(m.len())),
        Ok(_) => Err(Error::invalid_format(format!("{} is not a regular file", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("cannot inspect", path, e)),
    }
}

/// Replace `path` with `bytes` atomically (temporary file in the same directory, fsync, rename).
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let (temp_path, mut file) = create_temp(path)?;
    let written = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp_path, path)
    })();
    if let Err(e) = written {
        // Best effort: a leftover temporary file is harmless, the error below is what matters.
        let _ = fs::remove_file(&temp_path);
        return Err(io_error("cannot write", path, e));
    }
    Ok(())
}

/// Replace `path` with the bytes of `chunks`, atomically as [`write_atomic`] does but without holding
/// them: they go to the temporary file as they arrive, and it is renamed into place only after the
/// stream ended without error. On any error (the stream's own is returned unchanged) the temporary
/// file is removed, and so it is when the future is dropped midway.
pub(super) async fn write_chunks_atomic(path: &Path, mut chunks: BlobChunks) -> Result<()> {
    let target = path.to_owned();
    let (temp_path, file) = tokio::task::spawn_blocking(move || create_temp(&target))
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("creating a temporary file for {}: {e}", path.display())))??;
    let temp = TempFile(Some(temp_path));
    let mut file = tokio::fs::File::from_std(file);
    let failed = |e: io::Error| io_error("cannot write", path, e);
    while let Some(chunk) = chunks.next().await {
        file.write_all(&chunk?).await.map_err(failed)?;
    }
    // The flush reports a failure of the last write, which tokio runs in the background.
    file.flush().await.map_err(failed)?;
    file.sync_all().await.map_err(failed)?;
    drop(file);
    let temp_path = temp.keep();
    if let Err(e) = tokio::fs::rename(&temp_path, path).await {
        let _ = tokio::fs::remove_file(&temp_path).await;
        return Err(failed(e));
    }
    Ok(())
}

/// A temporary file removed when dropped, unless kept.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn keep(mut self) -> PathBuf {
        self.0.take().expect("kept once")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort, and a blocking call on purpose: a drop cannot wait for the blocking pool, and
        // unlinking one file is quick.
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

fn create_temp(path: &Path) -> Result<(PathBuf, File)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let base = path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let pid = std::process::id();
    for _ in 0..TEMP_ATTEMPTS {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let candidate = dir.join(format!(".{base}.{pid}.{n}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&candidate) {
            Ok(file) => return Ok((candidate, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error("cannot create a temporary file for", path, e)),
        }
    }
    Err(Error::new(
        ErrorKind::Io,
        format!("cannot create a temporary file for {}: {TEMP_ATTEMPTS} names were taken", path.display()),
    ))
}

/// An exclusive lock on a lock file, released when dropped (closing the handle releases it).
///
/// The lock file is never replaced or removed: replacing it would let two writers hold locks on
/// two different files. Locks are per open handle, so two handles in one process exclude each other
/// just as two processes do.
#[derive(Debug)]
pub(super) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Block until the exclusive lock on `path` (created if missing) is ours.
    pub(super) fn acquire(path: &Path) -> Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_error("cannot open lock file", path, e))?;
        file.lock().map_err(|e| io_error("cannot lock", path, e))?;
        Ok(FileLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("index.json");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("index.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_replaces_a_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"keep").unwrap();
        let inner = dir.path().join("layout");
        fs::create_dir(&inner).unwrap();
        let link = inner.join("blob");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"keep");
        assert_eq!(fs::read(&link).unwrap(), b"new");
        assert!(!fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    }

    fn temp_files_left(dir: &Path) -> Vec<std::ffi::OsString> {
        let names = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name());
        names.filter(|n| n.to_string_lossy().ends_with(".tmp")).collect()
    }

    #[tokio::test]
    async fn streamed_writes_land_whole_or_not_at_all() {
        use futures_util::stream;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("blob");
        let pieces = vec![Ok(bytes::Bytes::from_static(b"one ")), Ok(bytes::Bytes::from_static(b"two"))];
        write_chunks_atomic(&target, stream::iter(pieces).boxed()).await.unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"one two");
        let failing =
            vec![Ok(bytes::Bytes::from_static(b"three")), Err(Error::new(ErrorKind::DigestMismatch, "not the blob"))];
        let err = write_chunks_atomic(&target, stream::iter(failing).boxed()).await.unwrap_err();
        assert_eq!((err.kind(), err.to_string()), (ErrorKind::DigestMismatch, "not the blob".to_owned()));
        assert_eq!(fs::read(&target).unwrap(), b"one two", "the old file stays");
        assert!(temp_files_left(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn an_abandoned_streamed_write_leaves_no_temporary_file() {
        use futures_util::stream;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("blob");
        // A source that never ends: the write is dropped while it waits.
        let endless = stream::iter([Ok(bytes::Bytes::from_static(b"start"))]).chain(stream::pending()).boxed();
        let write = write_chunks_atomic(&target, endless);
        assert!(tokio::time::timeout(std::time::Duration::from_millis(100), write).await.is_err());
        assert!(temp_files_left(dir.path()).is_empty());
        assert!(!target.exists());
    }

    #[test]
    fn capped_reads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        assert!(read_capped(&f, 10).unwrap().is_none());
        assert_eq!(file_size(&f).unwrap(), None);
        fs::write(&f, b"12345").unwrap();
        assert_eq!(read_capped(&f, 5).unwrap().unwrap(), b"12345");
        assert_eq!(file_size(&f).unwrap(), Some(5));
        let err = read_capped(&f, 4).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLarge);
        assert!(err.to_string().contains(&f.display().to_string()), "{err}");
        assert_eq!(read_capped(dir.path(), 5).unwrap_err().kind(), ErrorKind::InvalidFormat);
        assert_eq!(file_size(dir.path()).unwrap_err().kind(), ErrorKind::InvalidFormat);
    }

    #[test]
    fn lock_excludes_a_second_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = FileLock::acquire(&path).unwrap();
        let other = File::open(&path).unwrap();
        // WouldBlock, not an I/O error that would also make try_lock fail: the lock is what refuses.
        let refused = other.try_lock();
        assert!(
            matches!(refused, Err(std::fs::TryLockError::WouldBlock)),
            "a second handle must not get the lock while it is held: {refused:?}"
        );
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
