//! Validating JSON outputs against the schemas in `schemas/`.

use serde_json::Value;

/// Panic with every violation when `instance` does not validate against `schemas/<name>`.
pub fn assert_valid(name: &str, instance: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let validator =
        jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"));
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "output does not validate against {name}:\n{}", errors.join("\n"));
}
