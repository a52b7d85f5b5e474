//! Running the real `att2ref` binary.

use assert_cmd::Command;
use serde_json::Value;

/// Output of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as the one JSON document it must be.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not ONE JSON document ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

/// Run `att2ref ARGS…` to completion.
pub fn att2ref(args: &[&str]) -> Run {
    att2ref_with(args, None, &[])
}

/// Run `att2ref ARGS…`, killed (code -1) if it has not ended within `limit`.
pub fn att2ref_within(args: &[&str], limit: std::time::Duration) -> Run {
    run(args, None, &[], limit)
}

/// Run `att2ref ARGS…` with standard input and extra environment variables.
pub fn att2ref_with(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    run(args, stdin, env, std::time::Duration::from_secs(300))
}

fn run(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)], limit: std::time::Duration) -> Run {
    let mut cmd = Command::cargo_bin("att2ref").unwrap();
    cmd.args(args).env_remove("RUST_LOG").timeout(limit);
    // Never pick up the credentials of whoever runs the tests.
    cmd.env("HOME", std::env::temp_dir())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("COSIGN_REPOSITORY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
