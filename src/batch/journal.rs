//! A batch's journal (`--journal FILE`): JSON Lines, one event per line, appended and flushed as each
//! event happens, so what a killed run did is on disk and a rerun can read it.
//!
//! The commands choose the events (`migrate`: each finished image, which a resumed run skips; `prune`:
//! each removal attempted, as an audit trail); the file handling is here, once. A truncated last line —
//! the run was killed mid-write — is counted in [`Journal::skipped_lines`] and ignored, and the next
//! event starts on a new line.

use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};

/// An open journal of events `E`.
#[derive(Debug)]
pub struct Journal<E> {
    path: PathBuf,
    file: Mutex<Appending>,
    /// Lines of earlier runs that could not be read as an event (a truncated last line, normally).
    pub skipped_lines: usize,
    events: PhantomData<fn(&E)>,
}

impl<E: Serialize> Journal<E> {
    /// Open (or create) the journal at `path`, with the events earlier runs recorded, oldest first.
    pub fn open(path: &Path) -> Result<(Journal<E>, Vec<E>)>
    where
        E: DeserializeOwned,
    {
        let existing = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error("reading", path, e)),
        };
        let (earlier, skipped_lines) = parse(&existing);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error("opening", path, e))?;
        if !existing.is_empty() && !existing.ends_with(b"\n") {
            file.write_all(b"\n").map_err(|e| io_error("writing", path, e))?;
        }
        let file = Mutex::new(Appending { file, broken: false });
        let journal = Journal { path: path.to_owned(), file, skipped_lines, events: PhantomData };
        Ok((journal, earlier))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event and flush it.
    pub fn record(&self, event: &E) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| Error::new(ErrorKind::Io, format!("serialising a journal event: {e}")))?;
        line.push(b'\n');
        let mut appending = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // After a failed write (a full disk, say) the last line may have stopped part-way: this event
        // starts on a line of its own, or the two would be one unreadable line.
        if appending.broken {
            line.insert(0, b'\n');
        }
        let Appending { file, broken } = &mut *appending;
        let written = file.write_all(&line).and_then(|()| file.flush());
        *broken = written.is_err();
        written.map_err(|e| io_error("writing", &self.path, e))
    }
}

/// The file events are appended to, and whether the last write failed.
#[derive(Debug)]
struct Appending {
    file: std::fs::File,
    broken: bool,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{what} journal {}: {e}", path.display())).with_source(e)
}

/// The readable events, and how many non-blank lines were not.
fn parse<E: DeserializeOwned>(bytes: &[u8]) -> (Vec<E>, usize) {
    let mut events = Vec::new();
    let mut skipped = 0;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        match serde_json::from_slice(line) {
            Ok(event) => events.push(event),
            Err(_) => skipped += 1,
        }
    }
    (events, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Seen {
        n: u32,
    }

    #[test]
    fn reopening_reads_back_events_past_a_truncated_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "{\"n\":1}\n\n{\"n\":2}\n{\"n\"").unwrap();
        let (journal, earlier) = Journal::<Seen>::open(&path).unwrap();
        assert_eq!(earlier, [Seen { n: 1 }, Seen { n: 2 }]);
        assert_eq!(journal.skipped_lines, 1);
        journal.record(&Seen { n: 3 }).unwrap();
        drop(journal);
        let (journal, earlier) = Journal::<Seen>::open(&path).unwrap();
        assert_eq!(earlier, [Seen { n: 1 }, Seen { n: 2 }, Seen { n: 3 }], "the new event starts on its own line");
        assert_eq!(journal.skipped_lines, 1);
    }

    /// A write that fails part-way (here: the disk is full, then the line it began is left behind) does
    /// not swallow the next event into the same line.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_event_after_a_failed_write_starts_on_its_own_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let (journal, _) = Journal::<Seen>::open(&path).unwrap();
        journal.record(&Seen { n: 1 }).unwrap();
        let full = std::fs::OpenOptions::new().append(true).open("/dev/full").unwrap();
        let real = std::mem::replace(&mut journal.file.lock().unwrap().file, full);
        let err = journal.record(&Seen { n: 2 }).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        journal.file.lock().unwrap().file = real;
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"n\":").unwrap();
        journal.record(&Seen { n: 3 }).unwrap();
        drop(journal);
        let (journal, earlier) = Journal::<Seen>::open(&path).unwrap();
        assert_eq!(earlier, [Seen { n: 1 }, Seen { n: 3 }]);
        assert_eq!(journal.skipped_lines, 1, "only the line the failed write left");
    }

    #[test]
    fn an_unreadable_journal_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Journal::<Seen>::open(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.to_string().contains("journal"), "{err}");
    }
}
