//! nginx serving every site of the fleet as a virtual host, one listen address per cluster.
//!
//! A reload is not instant (old workers keep serving, and keep a removed listen socket open,
//! until they exit), so [`Nginx::apply`] waits until a marker virtual host shows the new
//! generation *and* the workers from before the reload are gone.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::fleet::{CLUSTERS, Faults, Fleet};
use super::process::{Daemon, SIGHUP, children_of, signal, wait_for};

const MARKER_HOST: &str = "generation.e2e.test";
/// The marker lives on the first cluster, which the fault schedule never takes down.
const MARKER_CLUSTER: usize = 0;

pub struct Nginx {
    bin: PathBuf,
    dir: PathBuf,
    conf: PathBuf,
    error_log: PathBuf,
    generation: u32,
    pub daemon: Daemon,
}

impl Nginx {
    /// Writes the configuration for `faults`, starts nginx and waits until every live cluster
    /// address answers.
    pub fn start(bin: &Path, dir: &Path, fleet: &Fleet, faults: &Faults) -> Result<Nginx, String> {
        let dir = dir.join("nginx");
        fs::create_dir_all(dir.join("tmp")).map_err(|e| format!("nginx: {}: {e}", dir.display()))?;
        let conf = dir.join("nginx.conf");
        let error_log = dir.join("error.log");
        write_conf(&conf, &dir, fleet, faults, 1)?;
        test_conf(bin, &dir, &conf, &error_log)?;
        let mut command = Command::new(bin);
        command.arg("-p").arg(&dir).arg("-c").arg(&conf).arg("-e").arg(&error_log);
        let daemon = Daemon::spawn("nginx", command, dir.join("stdout.log"), vec![error_log.clone()])?;
        let mut nginx = Nginx { bin: bin.to_path_buf(), dir, conf, error_log, generation: 1, daemon };
        nginx.wait_until_live(fleet, faults)?;
        Ok(nginx)
    }

    /// Rewrites the configuration for `faults`, reloads, and waits until it is fully in force.
    pub fn apply(&mut self, fleet: &Fleet, faults: &Faults) -> Result<(), String> {
        self.daemon.check_alive()?;
        self.generation += 1;
        write_conf(&self.conf, &self.dir, fleet, faults, self.generation)?;
        test_conf(&self.bin, &self.dir, &self.conf, &self.error_log)?;
        let old_workers = children_of(self.daemon.pid());
        signal(self.daemon.pid(), SIGHUP).map_err(|e| format!("nginx: cannot send SIGHUP: {e}"))?;
        let replaced = wait_for(Duration::from_secs(15), Duration::from_millis(25), || {
            let workers = children_of(self.daemon.pid());
            (!workers.is_empty() && workers.is_disjoint(&old_workers)).then_some(())
        });
        if replaced.is_none() {
            return Err(format!(
                "nginx: the workers from before reload {} did not exit within 15 s\n{}",
                self.generation,
                self.daemon.log_tail()
            ));
        }
        self.wait_until_live(fleet, faults)
    }

    /// Waits until the marker shows the current generation on several fresh connections, then
    /// checks that each cluster address listens or refuses as `faults` say, and that a faulty
    /// virtual host answers 503.
    fn wait_until_live(&mut self, fleet: &Fleet, faults: &Faults) -> Result<(), String> {
        let marker = fleet.net.frontend_addr(MARKER_CLUSTER);
        let want = format!("generation {}", self.generation);
        let mut last = String::new();
        let mut streak = 0;
        let seen = wait_for(Duration::from_secs(15), Duration::from_millis(25), || {
            match get(marker, MARKER_HOST) {
                Ok((200, body)) if body.trim() == want => streak += 1,
                Ok((status, body)) => {
                    streak = 0;
                    last = format!("status {status}, body {body:?}");
                }
                Err(e) => {
                    streak = 0;
                    last = e.to_string();
                }
            }
            (streak >= 5).then_some(())
        });
        if seen.is_none() {
            self.daemon.check_alive()?;
            return Err(format!(
                "nginx: the marker at {marker} did not show {want:?} within 15 s (last: {last})\n{}",
                self.daemon.log_tail()
            ));
        }
        for (cluster, name) in CLUSTERS.iter().enumerate() {
            let addr = fleet.net.frontend_addr(cluster);
            let result = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
            match (faults.cluster_down(cluster), result) {
                (false, Ok(_)) => {}
                (true, Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                (down, result) => {
                    return Err(format!(
                        "nginx: {addr} ({name}) should {} but connecting gave {result:?}",
                        if down { "refuse connections" } else { "listen" }
                    ));
                }
            }
        }
        let failing = faults.status_503.iter().map(|&i| &fleet.sites[i]).find(|s| !faults.cluster_down(s.cluster));
        if let Some(site) = failing {
            let addr = fleet.net.frontend_addr(site.cluster);
            match get(addr, &format!("{}:{}", site.hostname, fleet.net.port)) {
                Ok((503, _)) => {}
                other => return Err(format!("nginx: {} should answer 503 but gave {other:?}", site.hostname)),
            }
        }
        Ok(())
    }
}

/// Checks the configuration with `nginx -t`, so a mistake fails here with nginx's own words
/// instead of a reload that silently keeps the old configuration.
fn test_conf(bin: &Path, dir: &Path, conf: &Path, error_log: &Path) -> Result<(), String> {
    let output = Command::new(bin)
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf)
        .arg("-e")
        .arg(error_log)
        .output()
        .map_err(|e| format!("nginx: cannot run {} -t: {e}", bin.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("nginx -t rejected {}:\n{}", conf.display(), String::from_utf8_lossy(&output.stderr)))
    }
}

fn write_conf(path: &Path, dir: &Path, fleet: &Fleet, faults: &Faults, generation: u32) -> Result<(), String> {
    let d = dir.display();
    // nginx sizes its server name hash from this bound; big fleets (the sweep benchmark) need more.
    let names_hash = (fleet.sites.len() * 2).next_power_of_two().max(16384);
    let mut conf = format!(
        "# Generated by the end-to-end suite, generation {generation}.
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    default_type text/plain;
    keepalive_timeout 5s;
    server_names_hash_max_size {names_hash};
    server_names_hash_bucket_size 64;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
"
    );
    let port = fleet.net.port;
    for cluster in (0..CLUSTERS.len()).filter(|&c| !faults.cluster_down(c)) {
        let ip = fleet.net.frontend(cluster);
        writeln!(conf, "    server {{ listen {ip}:{port} default_server; return 404 \"no such site\\n\"; }}")
            .expect("String");
    }
    let marker_ip = fleet.net.frontend(MARKER_CLUSTER);
    writeln!(conf, "    server {{ listen {marker_ip}:{port}; server_name {MARKER_HOST}; return 200 \"generation {generation}\\n\"; }}")
        .expect("String");
    for (i, site) in fleet.sites.iter().enumerate().filter(|(_, s)| !faults.cluster_down(s.cluster)) {
        let ip = fleet.net.frontend(site.cluster);
        let (status, body) = if faults.status_503.contains(&i) {
            (503, format!("unavailable {}", site.id))
        } else {
            (200, Fleet::body(site))
        };
        // `if` runs in the rewrite phase, before `return`; `deny` (access phase) would come too late.
        let denied = match faults.denied_source {
            Some((cluster, source)) if cluster == site.cluster => {
                format!("if ($remote_addr = {source}) {{ return 403 \"denied\\n\"; }} ")
            }
            _ => String::new(),
        };
        writeln!(
            conf,
            "    server {{ listen {ip}:{port}; server_name {}; {denied}return {status} \"{body}\\n\"; }}",
            site.hostname
        )
        .expect("String");
    }
    conf.push_str("}\n");
    fs::write(path, conf).map_err(|e| format!("nginx: cannot write {}: {e}", path.display()))
}

/// One HTTP/1.0 GET of `/` with a Host header on a fresh connection: (status, body).
pub fn get(addr: SocketAddr, host: &str) -> io::Result<(u16, String)> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    Ok((status, body))
}
