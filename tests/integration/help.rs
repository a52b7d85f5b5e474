//! Generated documentation: `--help` of every command, shell completions, the man page.

use crate::cli::att2ref;

#[test]
fn every_command_has_help() {
    for cmd in ["inspect", "verify", "migrate", "get", "prune", "probe", "demo", "completions", "man"] {
        let run = att2ref(&[cmd, "--help"]);
        assert_eq!(run.code, 0, "{cmd} --help: {}", run.stderr);
        assert!(run.stdout.contains("Usage: att2ref"), "{cmd}: {}", run.stdout);
    }
    let run = att2ref(&["verify", "--help"]);
    for flag in ["--key", "--trusted-root", "--certificate-identity", "--insecure-ignore-tlog", "--type"] {
        assert!(run.stdout.contains(flag), "verify --help lacks {flag}");
    }
}

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = att2ref(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("att2ref") && run.stdout.contains("migrate"), "{shell}: {}", run.stdout);
    }
    let run = att2ref(&["man"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(".TH att2ref 1"), "{}", run.stdout);
    assert!(run.stdout.contains("migrate"), "the man page lists the subcommands");
}
