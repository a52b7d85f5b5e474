//! A report written while the batch runs: its items (one per image) go out as the engine delivers them,
//! so a run over a whole registry holds no more of its report than the repositories still in progress.
//! The bytes are those of the report serialised whole (`--report FILE` and `-o json`), or the text
//! blocks in the same order (`-o text`); only the fields after the items wait for the end.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::args::Format;

/// Where the items of a report go as they arrive, then its closing fields.
pub struct StreamedReport<I> {
    /// The top-level field that holds the items.
    field: &'static str,
    file: Option<(PathBuf, BufWriter<File>)>,
    format: Format,
    text: fn(&I) -> String,
    bar: ProgressBar,
    head: String,
    items: usize,
    /// The first failed write of the report file: nothing more goes there, and `finish` returns it.
    file_failed: Option<anyhow::Error>,
    /// Standard output (a stand-in in tests).
    stdout: Box<dyn Write + Send>,
    /// The first failed write to stdout: nothing more goes there, the report file is still written
    /// whole, and `finish` returns it after any error of the file (unless the reader just went away).
    stdout_failed: Option<anyhow::Error>,
}

impl<I: Serialize> StreamedReport<I> {
    /// Start the report: `report` is the whole report with no items yet; `text` renders one item for
    /// `-o text`. The report file is created now, so a path that cannot be written fails before any work.
    pub fn start<T: Serialize>(
        report: &T,
        field: &'static str,
        file: Option<&Path>,
        format: Format,
        text: fn(&I) -> String,
        bar: ProgressBar,
    ) -> Result<Self> {
        Self::start_with(report, field, file, format, text, bar, Box::new(std::io::stdout()))
    }

    fn start_with<T: Serialize>(
        report: &T,
        field: &'static str,
        file: Option<&Path>,
        format: Format,
        text: fn(&I) -> String,
        bar: ProgressBar,
        stdout: Box<dyn Write + Send>,
    ) -> Result<Self> {
        let (head, _) = split(report, field)?;
        let file = match file {
            Some(path) => {
                let f = File::create(path).map_err(|e| anyhow!("writing --report {}: {e}", path.display()))?;
                Some((path.to_owned(), BufWriter::new(f)))
            }
            None => None,
        };
        let mut streamed = StreamedReport {
            field,
            file,
            format,
            text,
            bar,
            head: head.clone(),
            items: 0,
            file_failed: None,
            stdout,
            stdout_failed: None,
        };
        streamed.write_json(&head);
        Ok(streamed)
    }

    /// A repository's items: each first shown to `each` (which counts it, and may warn on stderr: the
    /// progress bar is kept off the terminal meanwhile), then written.
    pub fn items(&mut self, items: &[I], mut each: impl FnMut(&I)) {
        for item in items {
            self.bar.suspend(|| each(item));
            self.item(item);
        }
    }

    /// One more item.
    pub fn item(&mut self, item: &I) {
        let json = match serde_json::to_string_pretty(item) {
            Ok(json) => json,
            Err(e) => {
                self.file_failed.get_or_insert(anyhow!("serialising a report entry: {e}"));
                return;
            }
        };
        // Nested two levels deep in the whole report: every line indented by four spaces.
        let mut chunk = String::from(if self.items == 0 { "\n" } else { ",\n" });
        for (n, line) in json.lines().enumerate() {
            if n > 0 {
                chunk.push('\n');
            }
            chunk.push_str("    ");
            chunk.push_str(line);
        }
        self.items += 1;
        self.write_json(&chunk);
        if self.format == Format::Text {
            let text = (self.text)(item);
            self.write_stdout(&text);
        }
    }

    /// Close the item list and write the fields after it (`report` is the whole report with no items,
    /// its totals complete) and, for `-o text`, the closing `text`.
    pub fn finish<T: Serialize>(mut self, report: &T, text: &str) -> Result<()> {
        let (head, tail) = split(report, self.field)?;
        if head != self.head {
            return Err(anyhow!("internal: the report's opening fields changed during the run"));
        }
        let close = if self.items == 0 { format!("]{tail}\n") } else { format!("\n  ]{tail}\n") };
        self.write_json(&close);
        if self.format == Format::Text {
            self.write_stdout(text);
        }
        if let Some((path, mut f)) = self.file.take()
            && self.file_failed.is_none()
            && let Err(e) = f.flush()
        {
            self.file_failed = Some(anyhow!("writing --report {}: {e}", path.display()));
        }
        match (self.file_failed, self.stdout_failed) {
            (Some(e), _) => Err(e),
            // A reader that went away (`| head`) is no failure of the run: the caller goes on to its
            // warnings, exit code and metrics.
            (None, Some(e)) if crate::exit::is_broken_pipe(&e) => Ok(()),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(()),
        }
    }

    fn write_json(&mut self, chunk: &str) {
        if let Some((path, f)) = &mut self.file
            && self.file_failed.is_none()
            && let Err(e) = f.write_all(chunk.as_bytes())
        {
            self.file_failed = Some(anyhow!("writing --report {}: {e}", path.display()));
        }
        if self.format == Format::Json {
            self.write_stdout(chunk);
        }
    }

    fn write_stdout(&mut self, chunk: &str) {
        if self.stdout_failed.is_some() {
            return;
        }
        // The progress bar draws on stderr: keep it off the terminal while stdout is written.
        let out = &mut self.stdout;
        let written = self.bar.suspend(|| out.write_all(chunk.as_bytes()).and_then(|()| out.flush()));
        if let Err(e) = written {
            // Kept as the io::Error it is, so that main recognises a closed pipe.
            self.stdout_failed = Some(e.into());
        }
    }
}

/// The whole report serialised with no items, cut where they go: what comes before them (up to the
/// list's opening bracket) and what comes after (from the field after the list).
fn split<T: Serialize>(report: &T, field: &str) -> Result<(String, String)> {
    let whole = serde_json::to_string_pretty(report)?;
    let marker = format!("\n  \"{field}\": []");
    let at = whole.find(&marker).ok_or_else(|| anyhow!("internal: the report has no empty top-level \"{field}\""))?;
    let head = whole[..at + marker.len() - 1].to_owned();
    let tail = whole[at + marker.len()..].to_owned();
    Ok((head, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Serialize)]
    struct Item {
        name: String,
        list: Vec<u32>,
        note: Option<String>,
    }

    #[derive(Clone, Serialize)]
    struct Whole {
        format: &'static str,
        targets: Vec<String>,
        images: Vec<Item>,
        totals: std::collections::BTreeMap<String, usize>,
        errors: Vec<String>,
    }

    fn whole(items: Vec<Item>) -> Whole {
        let totals = [("items".to_owned(), items.len())].into_iter().collect();
        Whole {
            format: "f/1",
            targets: vec!["a".into(), "b\n\"images\": []".into()],
            images: items,
            totals,
            errors: vec![],
        }
    }

    /// What stdout received, or a stdout whose reader is gone.
    #[derive(Clone, Default)]
    struct Stdout {
        got: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
        /// Every write fails with this.
        fails: Option<std::io::ErrorKind>,
    }

    impl Write for Stdout {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(kind) = self.fails {
                return Err(kind.into());
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The report file and stdout after streaming `items` in `format`; the result of `finish`.
    fn streamed(items: &[Item], format: Format, stdout: Stdout) -> (String, String, Result<()>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let text: fn(&Item) -> String = |i| format!("{}\n", i.name);
        let out = Box::new(stdout.clone());
        let mut report =
            StreamedReport::start_with(&whole(vec![]), "images", Some(&path), format, text, ProgressBar::hidden(), out)
                .unwrap();
        for i in items {
            report.item(i);
        }
        let mut closing = whole(vec![]);
        closing.totals = whole(items.to_vec()).totals;
        let done = report.finish(&closing, "the end\n");
        let printed = String::from_utf8(stdout.got.lock().unwrap().clone()).unwrap();
        (std::fs::read_to_string(&path).unwrap(), printed, done)
    }

    #[test]
    fn the_streamed_report_is_byte_for_byte_the_whole_one() {
        let item = |n: u32| Item {
            name: format!("image {n}\nwith \"quotes\""),
            list: (0..n).collect(),
            note: n.is_multiple_of(2).then(|| "even".to_owned()),
        };
        for count in [0, 1, 3] {
            let items: Vec<Item> = (0..count).map(item).collect();
            let mut expected = serde_json::to_string_pretty(&whole(items.clone())).unwrap();
            expected.push('\n');
            let (file, printed, done) = streamed(&items, Format::Json, Stdout::default());
            done.unwrap();
            assert_eq!(file, expected, "{count} items");
            assert_eq!(printed, expected, "{count} items on stdout");
            let (file, printed, _) = streamed(&items, Format::Text, Stdout::default());
            assert_eq!(file, expected, "{count} items, text on stdout");
            let lines: String = items.iter().map(|i| format!("{}\n", i.name)).collect();
            assert_eq!(printed, format!("{lines}the end\n"));
        }
    }

    #[test]
    fn a_failing_stdout_leaves_the_report_file_whole() {
        let items: Vec<Item> = (0..3).map(|n| Item { name: format!("i{n}"), list: vec![n], note: None }).collect();
        let mut expected = serde_json::to_string_pretty(&whole(items.clone())).unwrap();
        expected.push('\n');
        for format in [Format::Json, Format::Text] {
            // The reader went away: the run goes on as if stdout had taken it all.
            let gone = Stdout { fails: Some(std::io::ErrorKind::BrokenPipe), ..Stdout::default() };
            let (file, printed, done) = streamed(&items, format, gone);
            assert_eq!(file, expected, "{format:?}");
            assert_eq!(printed, "");
            done.unwrap();
            // Any other failure is the run's.
            let broken = Stdout { fails: Some(std::io::ErrorKind::StorageFull), ..Stdout::default() };
            let (file, _, done) = streamed(&items, format, broken);
            assert_eq!(file, expected, "{format:?}");
            let err = done.unwrap_err();
            assert_eq!(err.downcast_ref::<std::io::Error>().unwrap().kind(), std::io::ErrorKind::StorageFull);
        }
    }

    #[test]
    fn a_report_without_the_field_is_refused() {
        let text: fn(&Item) -> String = |i| i.name.clone();
        let err = StreamedReport::start(&whole(vec![]), "other", None, Format::Json, text, ProgressBar::hidden())
            .err()
            .unwrap();
        assert!(err.to_string().contains("\"other\""), "{err}");
    }
}
