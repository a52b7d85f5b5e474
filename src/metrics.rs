//! Metrics for scheduled jobs, in the Prometheus text exposition format, written the way node-exporter's
//! textfile collector expects: one file per job, replaced atomically (written beside it, then renamed), so
//! the collector never reads half a file.
//!
//! Every value is a gauge describing the last run, labelled with the command. The time of the last
//! successful run survives a failed run: it is carried over from the file being replaced.
//!
//! ```
//! use att2ref::metrics::Metrics;
//!
//! let mut m = Metrics::new("status");
//! m.gauge("att2ref_images", "Images by state at the last run.", &[("state", "migrated")], 12.0);
//! m.gauge("att2ref_images", "Images by state at the last run.", &[("state", "legacy-only")], 3.0);
//! let text = m.render();
//! assert!(text.contains("# TYPE att2ref_images gauge\n"));
//! assert!(text.contains("att2ref_images{command=\"status\",state=\"migrated\"} 12\n"));
//! ```

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::error::{Error, ErrorKind, Result};

/// Name of the gauge holding the time of the last successful run.
pub const LAST_SUCCESS: &str = "att2ref_last_success_timestamp_seconds";

/// One family: its name, help and samples (labels, value), in the order given.
struct Family {
    name: String,
    help: String,
    samples: Vec<(Vec<(String, String)>, f64)>,
}

/// The metrics of one run of one command.
pub struct Metrics {
    command: String,
    /// Labels on every sample after `command` (a shard, so that shards on one node do not collide).
    constant: Vec<(String, String)>,
    families: Vec<Family>,
}

impl Metrics {
    /// Metrics labelled `command="<command>"`.
    pub fn new(command: &str) -> Metrics {
        Metrics { command: command.to_owned(), constant: Vec::new(), families: Vec::new() }
    }

    /// Add a label to every sample (e.g. `shard="0/4"`: the Indexed Job's shards write one file each, and
    /// node-exporter refuses the same series from two files).
    pub fn with_label(mut self, key: &str, value: &str) -> Metrics {
        self.constant.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Add a gauge sample (a family is declared once, at its first sample).
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        match self.families.iter_mut().find(|f| f.name == name) {
            Some(f) => f.samples.push((labels, value)),
            None => self.families.push(Family {
                name: name.to_owned(),
                help: help.to_owned(),
                samples: vec![(labels, value)],
            }),
        }
    }

    /// The run's duration, whether it succeeded, and (when it did) the time of this success; `previous`
    /// is the file being replaced, whose last success is carried over when this run failed.
    pub fn finish(&mut self, duration: Duration, success: bool, now: SystemTime, previous: Option<&str>) {
        self.gauge("att2ref_run_duration_seconds", "Duration of the last run.", &[], duration.as_secs_f64());
        self.gauge(
            "att2ref_last_run_success",
            "1 when the last run succeeded, else 0.",
            &[],
            f64::from(u8::from(success)),
        );
        let last = if success {
            Some(now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64().floor())
        } else {
            previous.and_then(|text| previous_success(text, &self.series_labels()))
        };
        if let Some(at) = last {
            self.gauge(LAST_SUCCESS, "Unix time of the last successful run.", &[], at);
        }
    }

    /// The labels every sample starts with, as rendered.
    fn series_labels(&self) -> String {
        let mut all = vec![format!("command=\"{}\"", escape_label(&self.command))];
        all.extend(self.constant.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))));
        all.join(",")
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            out.push_str(&format!("# HELP {} {}\n# TYPE {} gauge\n", f.name, escape_help(&f.help), f.name));
            for (labels, value) in &f.samples {
                let mut all = vec![format!("command=\"{}\"", escape_label(&self.command))];
                all.extend(self.constant.iter().chain(labels).map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))));
                out.push_str(&format!("{}{{{}}} {}\n", f.name, all.join(","), number(*value)));
            }
        }
        out
    }

    /// Write [`Metrics::render`] to `path` atomically: a temporary file in the same directory, synced,
    /// then renamed over `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let io = |what: &str, e: std::io::Error| {
            Error::new(ErrorKind::Io, format!("{what} metrics file {}: {e}", path.display())).with_source(e)
        };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "metrics".into());
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            use std::io::Write;
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(self.render().as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, path)
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            io("writing", e)
        })
    }
}

/// The last-success time recorded for the same series (`labels` as rendered) in an earlier file.
fn previous_success(text: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{LAST_SUCCESS}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_keeps_the_last_success_and_labels_are_escaped() {
        let mut first = Metrics::new("migrate");
        first.gauge("att2ref_failures", "Failures by kind.", &[("kind", "say \"hi\"\\")], 1.0);
        first.finish(
            Duration::from_millis(1500),
            true,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            None,
        );
        let text = first.render();
        assert!(text.contains("att2ref_failures{command=\"migrate\",kind=\"say \\\"hi\\\"\\\\\"} 1\n"), "{text}");
        assert!(text.contains("att2ref_run_duration_seconds{command=\"migrate\"} 1.5\n"), "{text}");
        assert!(text.contains("att2ref_last_success_timestamp_seconds{command=\"migrate\"} 1700000000\n"), "{text}");
        let mut failed = Metrics::new("migrate");
        failed.finish(Duration::from_secs(2), false, SystemTime::now(), Some(&text));
        let again = failed.render();
        assert!(again.contains("att2ref_last_run_success{command=\"migrate\"} 0\n"), "{again}");
        assert!(again.contains("att2ref_last_success_timestamp_seconds{command=\"migrate\"} 1700000000\n"), "{again}");
        let mut never = Metrics::new("migrate");
        never.finish(Duration::from_secs(2), false, SystemTime::now(), None);
        assert!(!never.render().contains(LAST_SUCCESS));
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("att2ref.prom");
        std::fs::write(&path, "old").unwrap();
        let mut m = Metrics::new("status");
        m.gauge("att2ref_images", "Images.", &[("state", "migrated")], 2.0);
        m.write(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), m.render());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }
}
