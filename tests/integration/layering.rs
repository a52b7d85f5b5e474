//! The library's layering, read from its sources: a command's module (`src/<command>/`) is used by the
//! binary only; no other module of the library — another command, or a lower layer — names it. Shared
//! steps live in the layers below (`rewrite`, `store`, `read`, `batch`, …).

use std::path::{Path, PathBuf};

/// One module per command of the binary.
const COMMANDS: &[&str] = &["inspect", "verify", "get", "migrate", "prune", "copy", "status", "rollback", "probe"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The commands a line of code names through `crate::` (comments are not code: doc links may point
/// anywhere).
fn commands_named(line: &str) -> Vec<&'static str> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    let mut named = Vec::new();
    for command in COMMANDS {
        let path = format!("crate::{command}");
        let direct = code
            .match_indices(&path)
            .any(|(at, _)| !code[at + path.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'));
        // `use crate::{a, migrate::x}`
        let grouped = code.split("crate::{").skip(1).any(|rest| {
            let group = rest.split('}').next().unwrap_or_default();
            group.split([',', ' ', ':']).any(|word| word == *command)
        });
        if direct || grouped {
            named.push(*command);
        }
    }
    named
}

#[test]
fn the_pattern_catches_every_spelling_of_a_command_import() {
    assert_eq!(commands_named("use crate::migrate::MigrateOptions;"), ["migrate"]);
    assert_eq!(commands_named("    let x = crate::get::foo();"), ["get"]);
    assert_eq!(commands_named("use crate::{error::Result, prune::{self, Scope}};"), ["prune"]);
    assert!(commands_named("use crate::migrate_helpers::x;").is_empty());
    assert!(commands_named("//! see [`crate::migrate::migrate_batch`]").is_empty());
    assert!(commands_named("use crate::rewrite::{MigrateOptions, migrate_image};").is_empty());
}

#[test]
fn no_module_of_the_library_names_a_command_but_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut scanned_per_command = vec![0; COMMANDS.len()];
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_str().unwrap().trim_end_matches(".rs");
        if top == "bin" {
            continue; // the binary is the skin over every command
        }
        if let Some(i) = COMMANDS.iter().position(|c| *c == top) {
            scanned_per_command[i] += 1;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for command in commands_named(line) {
                if command != top {
                    violations.push(format!(
                        "src/{}:{}: names `{command}`: {}",
                        relative.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    // Every command's module was found and read: a renamed directory must not empty the check.
    for (command, scanned) in COMMANDS.iter().zip(&scanned_per_command) {
        assert!(*scanned > 0, "no sources under src/{command}/");
    }
    assert!(violations.is_empty(), "a command used outside the binary:\n{}", violations.join("\n"));
}

/// Every public type of the library has a name of its own: the same name in two modules is two things
/// a reader has to tell apart by path (it happened five times before this check).
#[test]
fn no_two_public_types_of_the_library_share_a_name() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut seen: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for file in files.iter().filter(|f| !f.strip_prefix(&src).unwrap().starts_with("bin")) {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("pub") {
                continue;
            }
            if let (Some("struct" | "enum" | "trait" | "type"), Some(name)) = (words.next(), words.next()) {
                let name: String = name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                seen.entry(name).or_default().push(file.strip_prefix(&src).unwrap().display().to_string());
            }
        }
    }
    assert!(seen.len() > 100, "only {} public types found: the scan is broken", seen.len());
    let shared: Vec<String> =
        seen.iter().filter(|(_, at)| at.len() > 1).map(|(name, at)| format!("{name}: {}", at.join(", "))).collect();
    assert!(shared.is_empty(), "public types sharing a name:\n{}", shared.join("\n"));
}
