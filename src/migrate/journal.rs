//! The run journal (`--journal FILE`): JSON Lines, one event per finished image, written and flushed as
//! each image finishes, so a killed run can resume without redoing verified work.
//!
//! On start the journal is read back; an image recorded `migrated` or `already-migrated` is skipped when
//! its legacy `.att` manifest digest is still the recorded one (a changed `.att` is migrated again). A
//! truncated last line — the run was killed mid-write — is ignored, and the next event starts on a new line.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;

use super::report::{ImageReport, Outcome};

/// One journal line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// The repository.
    pub repository: String,
    /// The image digest.
    pub image: String,
    /// The outcome name.
    pub outcome: String,
    /// The legacy `.att` manifest digest at the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_manifest: Option<String>,
    /// The referrers the image had when it was recorded, so a resumed run can check they are still
    /// listed before it skips the image (absent in journals of earlier versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<String>,
}

/// What the journal holds for one finished image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Recorded {
    legacy_manifest: String,
    referrers: Vec<String>,
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    done: HashMap<(String, String), Recorded>,
    /// Lines that could not be read (a truncated last line, normally).
    pub skipped_lines: usize,
}

impl Journal {
    /// Open (or create) the journal at `path` and read what earlier runs recorded.
    pub fn open(path: &Path) -> Result<Journal> {
        let io = |what: &str, e: std::io::Error| {
            Error::new(ErrorKind::Io, format!("{what} journal {}: {e}", path.display())).with_source(e)
        };
        let existing = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("reading", e)),
        };
        let (done, skipped_lines) = parse(&existing);
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| io("opening", e))?;
        if !existing.is_empty() && !existing.ends_with(b"\n") {
            file.write_all(b"\n").map_err(|e| io("writing", e))?;
        }
        Ok(Journal { path: path.to_owned(), file: Mutex::new(file), done, skipped_lines })
    }

    /// The legacy `.att` digest recorded when `image` of `repository` was last migrated, if it was.
    pub fn migrated(&self, repository: &str, image: &Digest) -> Option<&str> {
        self.done.get(&(repository.to_owned(), image.to_string())).map(|r| r.legacy_manifest.as_str())
    }

    /// The referrers recorded with that completion (empty when none were, or the line predates them).
    pub fn recorded_referrers(&self, repository: &str, image: &Digest) -> &[String] {
        self.done.get(&(repository.to_owned(), image.to_string())).map_or(&[], |r| r.referrers.as_slice())
    }

    /// Append one event for a finished image and flush it.
    pub fn record(&self, report: &ImageReport) -> Result<()> {
        let event = JournalEvent {
            repository: report.repository.clone(),
            image: report.image.to_string(),
            outcome: report.outcome.as_str().to_owned(),
            legacy_manifest: report.legacy_manifest.as_ref().map(ToString::to_string),
            referrers: report.referrers.iter().map(|r| r.digest.to_string()).collect(),
        };
        let mut line = serde_json::to_vec(&event)
            .map_err(|e| Error::new(ErrorKind::Io, format!("serialising a journal event: {e}")))?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)
            .and_then(|()| file.flush())
            .map_err(|e| Error::new(ErrorKind::Io, format!("writing journal {}: {e}", self.path.display())))
    }
}

/// Completed images by (repository, image) → legacy digest, and how many lines were unreadable.
fn parse(bytes: &[u8]) -> (HashMap<(String, String), Recorded>, usize) {
    let mut done: HashMap<(String, String), Recorded> = HashMap::new();
    let mut skipped = 0;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        let Ok(event) = serde_json::from_slice::<JournalEvent>(line) else {
            skipped += 1;
            continue;
        };
        let key = (event.repository, event.image);
        let finished =
            [Outcome::Migrated.as_str(), Outcome::AlreadyMigrated.as_str()].contains(&event.outcome.as_str());
        match (finished, event.legacy_manifest) {
            (true, Some(legacy_manifest)) => {
                let mut referrers = event.referrers;
                // A run that skipped the image records it again without referrers: the ones recorded
                // for the same `.att` still stand, or the next resume would skip without checking them.
                if referrers.is_empty()
                    && let Some(earlier) = done.get(&key)
                    && earlier.legacy_manifest == legacy_manifest
                {
                    referrers = earlier.referrers.clone();
                }
                done.insert(key, Recorded { legacy_manifest, referrers });
            }
            // A later event that is not a completion supersedes an earlier one.
            _ => {
                done.remove(&key);
            }
        }
    }
    (done, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_completions_and_tolerates_a_truncated_line() {
        let d = Digest::sha256(b"img");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let text = format!(
            "{{\"repository\":\"r\",\"image\":\"{d}\",\"outcome\":\"migrated\",\"legacy_manifest\":\"sha256:aa\"}}\n\
             {{\"repository\":\"r\",\"image\":\"sha256:bb\",\"outcome\":\"blocked\"}}\n{{\"repository\":\"r\",\"ima"
        );
        std::fs::write(&path, text).unwrap();
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.migrated("r", &d), Some("sha256:aa"));
        assert_eq!(j.migrated("other", &d), None);
        assert_eq!(j.skipped_lines, 1);
        assert!(j.recorded_referrers("r", &d).is_empty(), "a line without referrers (an earlier version's)");

        let mut report = ImageReport::new("r".into(), d.clone(), Outcome::Migrated);
        report.legacy_manifest = Some(Digest::sha256(b"att"));
        let referrer = Digest::sha256(b"referrer");
        report.referrers.push(crate::migrate::report::ReferrerReport {
            digest: referrer.clone(),
            size: 1,
            artifact_type: String::new(),
            predicate_type: String::new(),
            layer_index: 0,
            existed: false,
        });
        j.record(&report).unwrap();
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.recorded_referrers("r", &d), [referrer.to_string()]);

        let mut report = ImageReport::new("r".into(), Digest::sha256(b"two"), Outcome::AlreadyMigrated);
        report.legacy_manifest = Some(Digest::sha256(b"att"));
        j.record(&report).unwrap();
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.skipped_lines, 1, "the new event starts on its own line");
        assert_eq!(j.migrated("r", &report.image), Some(Digest::sha256(b"att").to_string().as_str()));
    }

    #[test]
    fn a_later_failure_supersedes_a_completion() {
        let lines = b"{\"repository\":\"r\",\"image\":\"i\",\"outcome\":\"migrated\",\"legacy_manifest\":\"x\"}\n\
                      {\"repository\":\"r\",\"image\":\"i\",\"outcome\":\"failed\"}\n";
        let (done, skipped) = parse(lines);
        assert!(done.is_empty());
        assert_eq!(skipped, 0);
    }
}
