//! Packet faults on loopback with nftables: one table of the suite's own, with a chain on the
//! *input* hook (a drop there gives clients a real timeout; on the output hook local senders
//! fail at once with EPERM instead). Every rule names the suite's addresses and port, so
//! nothing else on the machine is touched; the table is deleted when the guard is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Nft {
    bin: PathBuf,
    table: String,
}

impl Nft {
    /// Creates the suite's table and its input chain (accept by default).
    pub fn create(bin: &Path) -> Result<Nft, String> {
        let nft = Nft { bin: bin.to_path_buf(), table: format!("fleetprobe_e2e_{}", std::process::id()) };
        nft.run(&["add", "table", "inet", &nft.table])?;
        nft.run(&[
            "add",
            "chain",
            "inet",
            &nft.table,
            "input",
            "{ type filter hook input priority 0; policy accept; }",
        ])?;
        Ok(nft)
    }

    /// Adds one rule to the input chain, e.g. `ip daddr 127.0.40.53 th dport 18053 drop`.
    pub fn add(&self, rule: &str) -> Result<(), String> {
        let mut args = vec!["add", "rule", "inet", &self.table, "input"];
        args.extend(rule.split_whitespace());
        self.run(&args)
    }

    /// Removes every rule: the fault is over.
    pub fn clear(&self) -> Result<(), String> {
        self.run(&["flush", "chain", "inet", &self.table, "input"])
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new(&self.bin)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nft {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for Nft {
    fn drop(&mut self) {
        if let Err(e) = self.run(&["delete", "table", "inet", &self.table]) {
            eprintln!("e2e: could not delete the nft table {}: {e}", self.table);
        }
    }
}
