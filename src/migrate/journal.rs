//! migrate's journal (`--journal FILE`): one [`JournalEvent`] per finished image, written through the
//! batch engine's [`Journal`] as each image finishes, so a killed run can resume without redoing
//! verified work.
//!
//! On start the journal is read back; an image recorded `migrated` or `already-migrated` is skipped when
//! it was recorded under this run's settings
//! ([`crate::rewrite::MigrateOptions::settings_fingerprint`]: another format or trust policy means the
//! work is not done), its legacy `.att` manifest digest is still the recorded one (a changed `.att` is
//! migrated again) and the referrers recorded with it are still listed. A line
//! that names no referrer (an earlier version's) cannot be checked that way and does not count. A later
//! event for the same image that is not a completion, or one under other settings, supersedes an
//! earlier completion.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::batch::Journal;
use crate::error::Result;
use crate::model::digest::Digest;

use crate::rewrite::{ImageMigration, Outcome};

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
    /// The run's [`crate::rewrite::MigrateOptions::settings_fingerprint`] (absent in journals of earlier
    /// versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
}

impl JournalEvent {
    /// The event for a finished image of a run with these settings.
    pub fn for_image(report: &ImageMigration, settings: &str) -> JournalEvent {
        JournalEvent {
            repository: report.repository.clone(),
            image: report.image.to_string(),
            outcome: report.outcome.as_str().to_owned(),
            legacy_manifest: report.legacy_manifest.as_ref().map(ToString::to_string),
            referrers: report.referrers.iter().map(|r| r.digest.to_string()).collect(),
            settings: Some(settings.to_owned()),
        }
    }
}

/// What the journal holds for one finished image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Recorded {
    legacy_manifest: String,
    referrers: Vec<String>,
}

/// migrate's open journal: the events file, and the images earlier runs completed.
#[derive(Debug)]
pub struct MigrateJournal {
    /// The file new events go to.
    pub events: Journal<JournalEvent>,
    done: HashMap<(String, String), Recorded>,
    settings: String,
}

impl MigrateJournal {
    /// Open (or create) the journal at `path` for a run with these `settings`
    /// ([`crate::rewrite::MigrateOptions::settings_fingerprint`]) and read what earlier runs completed
    /// under them.
    pub fn open(path: &Path, settings: impl Into<String>) -> Result<MigrateJournal> {
        let settings = settings.into();
        let (events, earlier) = Journal::open(path)?;
        Ok(MigrateJournal { events, done: completions(earlier, &settings), settings })
    }

    /// Lines of earlier runs that could not be read (a truncated last line, normally).
    pub fn skipped_lines(&self) -> usize {
        self.events.skipped_lines
    }

    /// The legacy `.att` digest recorded when `image` of `repository` was last migrated, if it was.
    pub fn migrated(&self, repository: &str, image: &Digest) -> Option<&str> {
        self.done.get(&(repository.to_owned(), image.to_string())).map(|r| r.legacy_manifest.as_str())
    }

    /// The referrers recorded with that completion (never empty for a completion that counts).
    pub fn recorded_referrers(&self, repository: &str, image: &Digest) -> &[String] {
        self.done.get(&(repository.to_owned(), image.to_string())).map_or(&[], |r| r.referrers.as_slice())
    }

    /// The event for a finished image of this run.
    pub fn event(&self, report: &ImageMigration) -> JournalEvent {
        JournalEvent::for_image(report, &self.settings)
    }

    /// Append the event for a finished image and flush it.
    pub fn record(&self, report: &ImageMigration) -> Result<()> {
        self.events.record(&self.event(report))
    }
}

/// Images completed under `settings`, by (repository, image), the last event of each deciding.
fn completions(events: Vec<JournalEvent>, settings: &str) -> HashMap<(String, String), Recorded> {
    let mut done: HashMap<(String, String), Recorded> = HashMap::new();
    for event in events {
        let key = (event.repository, event.image);
        let finished = [Outcome::Migrated.as_str(), Outcome::AlreadyMigrated.as_str()]
            .contains(&event.outcome.as_str())
            && event.settings.as_deref() == Some(settings);
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
                if referrers.is_empty() {
                    // Nothing a resumed run could check is still listed.
                    done.remove(&key);
                    continue;
                }
                done.insert(key, Recorded { legacy_manifest, referrers });
            }
            _ => {
                done.remove(&key);
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "sha256:settings";

    fn migrated_referrer(digest: Digest) -> crate::rewrite::MigratedReferrer {
        crate::rewrite::MigratedReferrer {
            digest,
            size: 1,
            artifact_type: String::new(),
            predicate_type: String::new(),
            layer_index: 0,
            existed: false,
        }
    }

    #[test]
    fn reads_completions_and_tolerates_a_truncated_line() {
        let d = Digest::sha256(b"img");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let text = format!(
            "{{\"repository\":\"r\",\"image\":\"{d}\",\"outcome\":\"migrated\",\"legacy_manifest\":\"sha256:aa\",\"referrers\":[\"sha256:r1\"],\"settings\":\"{S}\"}}\n\
             {{\"repository\":\"r\",\"image\":\"sha256:bb\",\"outcome\":\"blocked\"}}\n{{\"repository\":\"r\",\"ima"
        );
        std::fs::write(&path, text).unwrap();
        let j = MigrateJournal::open(&path, S).unwrap();
        assert_eq!(j.migrated("r", &d), Some("sha256:aa"));
        assert_eq!(j.recorded_referrers("r", &d), ["sha256:r1"]);
        assert_eq!(j.migrated("other", &d), None);
        assert_eq!(j.skipped_lines(), 1);

        let mut report = ImageMigration::new("r".into(), d.clone(), Outcome::Migrated);
        report.legacy_manifest = Some(Digest::sha256(b"att"));
        let referrer = Digest::sha256(b"referrer");
        report.referrers.push(migrated_referrer(referrer.clone()));
        j.record(&report).unwrap();
        let j = MigrateJournal::open(&path, S).unwrap();
        assert_eq!(j.skipped_lines(), 1, "the new event starts on its own line");
        assert_eq!(j.migrated("r", &d), Some(Digest::sha256(b"att").to_string().as_str()));
        assert_eq!(j.recorded_referrers("r", &d), [referrer.to_string()]);
        // Under other settings (another format or trust policy) nothing recorded counts.
        let j = MigrateJournal::open(&path, "sha256:other").unwrap();
        assert_eq!(j.migrated("r", &d), None);
    }

    #[test]
    fn only_completions_under_the_same_settings_that_name_their_referrers_count() {
        let line = |image: &str, referrers: &str, settings: &str| {
            format!(
                "{{\"repository\":\"r\",\"image\":\"{image}\",\"outcome\":\"migrated\",\"legacy_manifest\":\"x\"{referrers}{settings}}}\n"
            )
        };
        let listed = r#","referrers":["sha256:r1"]"#;
        let text = [
            line("same", listed, &format!(r#","settings":"{S}""#)),
            line("other-settings", listed, r#","settings":"sha256:other""#),
            // An earlier version's lines: no settings, or no referrers to check.
            line("no-settings", listed, ""),
            line("no-referrers", "", &format!(r#","settings":"{S}""#)),
            // A completion under other settings supersedes one under these.
            line("superseded", listed, &format!(r#","settings":"{S}""#)),
            line("superseded", listed, r#","settings":"sha256:other""#),
        ]
        .concat();
        let done = completions(parse_events(text.as_bytes()), S);
        let mut keys: Vec<&str> = done.keys().map(|(_, image)| image.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["same"]);
    }

    #[test]
    fn a_skip_recorded_without_referrers_keeps_those_recorded_for_the_same_att() {
        let lines = b"{\"repository\":\"r\",\"image\":\"i\",\"outcome\":\"migrated\",\"legacy_manifest\":\"x\",\"referrers\":[\"sha256:r1\"],\"settings\":\"sha256:settings\"}\n\
                      {\"repository\":\"r\",\"image\":\"i\",\"outcome\":\"already-migrated\",\"legacy_manifest\":\"x\",\"settings\":\"sha256:settings\"}\n\
                      {\"repository\":\"r\",\"image\":\"j\",\"outcome\":\"migrated\",\"legacy_manifest\":\"x\",\"referrers\":[\"sha256:r2\"],\"settings\":\"sha256:settings\"}\n\
                      {\"repository\":\"r\",\"image\":\"j\",\"outcome\":\"already-migrated\",\"legacy_manifest\":\"y\",\"settings\":\"sha256:settings\"}\n";
        let done = completions(parse_events(lines), S);
        assert_eq!(done[&("r".to_owned(), "i".to_owned())].referrers, ["sha256:r1"]);
        assert!(!done.contains_key(&("r".to_owned(), "j".to_owned())), "a changed .att keeps nothing to check");
    }

    fn parse_events(bytes: &[u8]) -> Vec<JournalEvent> {
        bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
    }

    #[test]
    fn a_later_failure_supersedes_a_completion() {
        let lines = b"{\"repository\":\"r\",\"image\":\"i\",\"outcome\":\"migrated\",\"legacy_manifest\":\"x\",\"referrers\":[\"sha256:r1\"],\"settings\":\"sha256:settings\"}\n\
                      {\"repository\":\"r\",\"image\":\"i\",\"outcome\":\"failed\"}\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, lines).unwrap();
        let j = MigrateJournal::open(&path, S).unwrap();
        assert!(j.done.is_empty());
        assert_eq!(j.skipped_lines(), 0);
    }
}
