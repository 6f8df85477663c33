//! NSD answering for every customer zone of the fleet, as one foreground process.
//!
//! A zone change is a rewritten zone file with a newer mtime and a SIGHUP: NSD rereads the
//! files whose mtime changed. [`Nsd::apply`] then waits until NSD's server process from before
//! the reload is gone and a direct query shows the change.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use super::dns::{NOERROR, NXDOMAIN, Reply, query_a};
use super::fleet::{Faults, Fleet};
use super::process::{Daemon, Proc, SIGHUP, children_of, signal, wait_for};

pub struct Nsd {
    dir: PathBuf,
    /// The zone texts in force, one per customer.
    zones: Vec<String>,
    generation: u64,
    /// Zone file mtimes start an hour in the past and go up by one second per generation, so
    /// every rewrite is seen as a change however fast it follows the previous one.
    mtime_base: SystemTime,
    pub daemon: Daemon,
}

impl Nsd {
    pub fn start(
        bin: &Path,
        checkconf: Option<&Path>,
        dir: &Path,
        fleet: &Fleet,
        faults: &Faults,
    ) -> Result<Nsd, String> {
        let dir = dir.join("nsd");
        let zones_dir = dir.join("zones");
        fs::create_dir_all(&zones_dir).map_err(|e| format!("nsd: {}: {e}", zones_dir.display()))?;
        let conf = dir.join("nsd.conf");
        let log = dir.join("nsd.log");
        fs::write(&conf, nsd_conf(&dir, fleet)).map_err(|e| format!("nsd: cannot write {}: {e}", conf.display()))?;
        let mtime_base = SystemTime::now() - Duration::from_secs(3600);
        let zones: Vec<String> = (0..fleet.customers.len()).map(|c| zone_text(fleet, faults, c, 1)).collect();
        for (customer, text) in zones.iter().enumerate() {
            write_zone(&zones_dir, &fleet.customers[customer].domain, text, mtime_base)?;
        }
        if let Some(checkconf) = checkconf {
            let output = Command::new(checkconf)
                .arg(&conf)
                .output()
                .map_err(|e| format!("nsd: cannot run {}: {e}", checkconf.display()))?;
            if !output.status.success() {
                return Err(format!(
                    "nsd-checkconf rejected {}:\n{}{}",
                    conf.display(),
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
        }
        let mut command = Command::new(bin);
        command.arg("-d").arg("-c").arg(&conf);
        let daemon = Daemon::spawn("nsd", command, dir.join("stdout.log"), vec![log])?;
        let mut nsd = Nsd { dir, zones, generation: 1, mtime_base, daemon };
        // Every zone is loaded before NSD answers, so one name per state is enough.
        let probes: Vec<usize> = sample_customers(faults);
        nsd.wait_for_answers(fleet, faults, &probes)?;
        Ok(nsd)
    }

    /// Rewrites the zones that `faults` change, reloads, and waits until the change is served.
    pub fn apply(&mut self, fleet: &Fleet, faults: &Faults) -> Result<(), String> {
        self.daemon.check_alive()?;
        self.generation += 1;
        let mtime = self.mtime_base + Duration::from_secs(self.generation);
        let mut changed = Vec::new();
        for customer in 0..fleet.customers.len() {
            let text = zone_text(fleet, faults, customer, self.generation);
            // The serial differs in every generation; compare the records without it.
            if without_serial(&text) != without_serial(&self.zones[customer]) {
                write_zone(&self.dir.join("zones"), &fleet.customers[customer].domain, &text, mtime)?;
                self.zones[customer] = text;
                changed.push(customer);
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        let old_servers = self.servers();
        signal(self.daemon.pid(), SIGHUP).map_err(|e| format!("nsd: cannot send SIGHUP: {e}"))?;
        let replaced = wait_for(Duration::from_secs(15), Duration::from_millis(25), || {
            let servers = self.servers();
            (!servers.is_empty() && servers.is_disjoint(&old_servers)).then_some(())
        });
        if replaced.is_none() {
            return Err(format!(
                "nsd: the server processes from before reload {} were not replaced within 15 s ({} zones changed)\n{}",
                self.generation,
                changed.len(),
                self.daemon.log_tail()
            ));
        }
        self.wait_for_answers(fleet, faults, &changed)
    }

    /// NSD's query-serving processes: the foreground process (xfrd) forks the main process,
    /// which forks the servers; a reload replaces the servers.
    fn servers(&self) -> std::collections::BTreeSet<Proc> {
        children_of(self.daemon.pid()).iter().flat_map(|main| children_of(main.pid)).collect()
    }

    /// Queries the first site name of each of `customers` until NSD answers as `faults` say,
    /// five times in a row.
    fn wait_for_answers(&mut self, fleet: &Fleet, faults: &Faults, customers: &[usize]) -> Result<(), String> {
        let server = fleet.net.nameserver();
        for &customer in customers {
            let Some(&first) = fleet.customers[customer].sites.first() else { continue };
            let site = &fleet.sites[first];
            let want = expected_reply(fleet, faults, first);
            let mut last = String::from("no query yet");
            let mut streak = 0;
            let seen = wait_for(Duration::from_secs(15), Duration::from_millis(25), || {
                match query_a(server, &site.hostname, Duration::from_millis(500)) {
                    Ok(reply) if reply == want => streak += 1,
                    other => {
                        streak = 0;
                        last = format!("{other:?}");
                    }
                }
                (streak >= 5).then_some(())
            });
            if seen.is_none() {
                self.daemon.check_alive()?;
                return Err(format!(
                    "nsd: {} at {server} did not answer {want:?} within 15 s (last: {last})\n{}",
                    site.hostname,
                    self.daemon.log_tail()
                ));
            }
        }
        Ok(())
    }
}

/// One customer of each state (zone emptied or not), to check that NSD is up.
fn sample_customers(faults: &Faults) -> Vec<usize> {
    let mut sample = vec![0];
    if let Some(c) = faults.nxdomain_customer.filter(|&c| c != 0) {
        sample.push(c);
    }
    sample
}

fn expected_reply(fleet: &Fleet, faults: &Faults, site: usize) -> Reply {
    let s = &fleet.sites[site];
    if faults.zone_emptied(s.customer) {
        Reply { rcode: NXDOMAIN, addresses: Vec::new() }
    } else {
        Reply { rcode: NOERROR, addresses: vec![fleet.net.frontend(s.cluster)] }
    }
}

fn nsd_conf(dir: &Path, fleet: &Fleet) -> String {
    let d = dir.display();
    let ns = fleet.net.nameserver();
    let mut conf = format!(
        r#"# Generated by the end-to-end suite: {zones} zones.
server:
    ip-address: {ip}@{port}
    do-ip4: yes
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}/zones"
    database: ""
    zonelistfile: "{d}/zone.list"
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    logfile: "{d}/nsd.log"
    verbosity: 1
    hide-version: yes
    tcp-count: 256

remote-control:
    control-enable: no
"#,
        zones = fleet.customers.len(),
        ip = ns.ip(),
        port = ns.port(),
    );
    for customer in &fleet.customers {
        writeln!(conf, "\nzone:\n    name: \"{0}\"\n    zonefile: \"{0}.zone\"", customer.domain).expect("String");
    }
    conf
}

/// The zone of one customer: SOA and NS always; one A record per site unless the fault
/// schedule empties the zone (then every site name is NXDOMAIN).
fn zone_text(fleet: &Fleet, faults: &Faults, customer: usize, serial: u64) -> String {
    let c = &fleet.customers[customer];
    let mut zone = format!(
        "$ORIGIN {}.\n$TTL 60\n@ IN SOA ns1.e2e.test. hostmaster.e2e.test. {serial} 60 60 600 60\n@ IN NS ns1.e2e.test.\n",
        c.domain
    );
    if !faults.zone_emptied(customer) {
        for &site in &c.sites {
            let s = &fleet.sites[site];
            let label = s.hostname.strip_suffix(&format!(".{}", c.domain)).unwrap_or(&s.hostname);
            let address: Ipv4Addr = fleet.net.frontend(s.cluster);
            writeln!(zone, "{label} IN A {address}").expect("String");
        }
    }
    zone
}

fn without_serial(zone: &str) -> String {
    zone.lines().filter(|l| !l.contains(" SOA ")).collect::<Vec<_>>().join("\n")
}

fn write_zone(dir: &Path, domain: &str, text: &str, mtime: SystemTime) -> Result<(), String> {
    let path = dir.join(format!("{domain}.zone"));
    fs::write(&path, text).map_err(|e| format!("nsd: cannot write {}: {e}", path.display()))?;
    fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(mtime))
        .map_err(|e| format!("nsd: cannot set the mtime of {}: {e}", path.display()))
}
