//! Regenerate the committed OCI layouts under `fixtures/layouts/` from the deterministic generator.
//!
//! ```sh
//! cargo run --example gen_fixtures            # rewrite fixtures/layouts/
//! cargo run --example gen_fixtures -- DIR     # write them somewhere else
//! ```
//!
//! The integration suite regenerates them into a temporary directory and compares every file byte for
//! byte, so a change to the generator that changes the data fails until the fixtures are regenerated.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> att2ref::Result<()> {
    let out = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("fixtures/layouts"));
    for scenario in att2ref::demo::committed_scenarios()? {
        let dir = out.join(scenario.name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| att2ref::Error::new(att2ref::ErrorKind::Io, format!("{}: {e}", dir.display())))?;
        }
        att2ref::demo::write_layout(&scenario, &dir).await?;
        println!("{}: {} ({})", dir.display(), scenario.summary, scenario.image);
    }
    Ok(())
}
