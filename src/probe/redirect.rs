//! Where a redirect may lead. Customers control their sites' redirects and the prober runs
//! inside the provider's network, so a redirect is followed only to a public address, to the
//! site's own host (whatever it resolves to: the site itself was checked there), to one of the
//! fleet's frontends, or to what `probe.http.redirect_allow` names. Anything else ends the check
//! as `redirect_blocked` before a connection is opened.
//!
//! The hop's name is resolved once, the address judged, and the connection made to that same
//! address (see `http.rs`): no second lookup can swap in another one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::fleet::RedirectAllow;

/// The targets a redirect may reach besides public addresses and the site's own host.
#[derive(Debug, Clone, Copy)]
pub struct RedirectPolicy<'a> {
    /// `probe.http.redirect_allow`: networks and hostnames allowed on top of the default.
    pub allow: &'a [RedirectAllow],
    /// Every cluster frontend address of the fleet.
    pub frontends: &'a [IpAddr],
}

impl RedirectPolicy<'_> {
    /// Whether `host` is allowed by name, whatever it resolves to.
    pub fn allows_host(&self, host: &str) -> bool {
        self.allow.iter().any(|a| matches!(a, RedirectAllow::Host(h) if h.eq_ignore_ascii_case(host)))
    }

    /// Judges the address a redirect's host resolved to: `Err` says why it may not be reached.
    /// `site_addresses` are the addresses the site's own host was checked at in this check.
    pub fn judge(&self, ip: IpAddr, site_addresses: &[IpAddr]) -> Result<(), String> {
        let ip = canonical(ip);
        if site_addresses.iter().any(|&a| canonical(a) == ip)
            || self.frontends.iter().any(|&f| canonical(f) == ip)
            || self.allow.iter().any(|a| a.contains(ip))
        {
            return Ok(());
        }
        match non_public(ip) {
            None => Ok(()),
            Some(kind) => Err(format!(
                "{ip} is {kind}, not a public address, the site's own host, a fleet frontend \
                 or in probe.http.redirect_allow"
            )),
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is judged as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "the cloud metadata address",
        (0, _, _) => "an unspecified (this-network) address",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (100, 64..=127, _) => "a shared (CGNAT) address",
        (127, _, _) => "a loopback address",
        (169, 254, _) => "a link-local address",
        (192, 0, 0) => "an IETF protocol address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved or broadcast address",
        _ => return None,
    };
    Some(kind)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let kind = if ip.is_unspecified() {
        "the unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if segments[0] & 0xfe00 == 0xfc00 {
        "a unique-local address"
    } else if segments[0] & 0xffc0 == 0xfe80 {
        "a link-local address"
    } else if segments[0] & 0xff00 == 0xff00 {
        "a multicast address"
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        "a documentation address"
    } else if segments[..6] == [0, 0, 0, 0, 0, 0] {
        "an IPv4-compatible address"
    } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64: judged as the IPv4 address it carries.
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return non_public_v4(Ipv4Addr::new(a, b, c, d));
    } else if segments[..4] == [0x100, 0, 0, 0] {
        "a discard address"
    } else {
        return None;
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_named() {
        for (address, kind) in [
            ("10.0.0.1", "a private address"),
            ("172.20.1.1", "a private address"),
            ("192.168.1.1", "a private address"),
            ("127.0.20.4", "a loopback address"),
            ("169.254.169.254", "the cloud metadata address"),
            ("169.254.10.1", "a link-local address"),
            ("100.64.0.1", "a shared (CGNAT) address"),
            ("0.0.0.0", "an unspecified (this-network) address"),
            ("224.0.0.1", "a multicast address"),
            ("255.255.255.255", "a reserved or broadcast address"),
            ("192.0.2.7", "a documentation address"),
            ("::1", "a loopback address"),
            ("::", "the unspecified address"),
            ("fd00:ec2::254", "a unique-local address"),
            ("fe80::1", "a link-local address"),
            ("ff02::1", "a multicast address"),
            ("::ffff:10.0.0.1", "a private address"),
            ("64:ff9b::a9fe:a9fe", "the cloud metadata address"),
        ] {
            assert_eq!(non_public(ip(address)), Some(kind), "{address}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "100.128.0.1", "172.32.0.1", "2606:4700::1111"] {
            assert_eq!(non_public(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn the_site_its_frontends_and_the_allow_list_pass() {
        let allow =
            [RedirectAllow::parse("10.20.0.0/16").unwrap(), RedirectAllow::parse("intranet.example.net").unwrap()];
        let frontends = [ip("192.168.7.1")];
        let policy = RedirectPolicy { allow: &allow, frontends: &frontends };
        assert!(policy.judge(ip("10.20.3.4"), &[]).is_ok());
        assert!(policy.judge(ip("192.168.7.1"), &[]).is_ok());
        assert!(policy.judge(ip("127.0.0.9"), &[ip("127.0.0.9")]).is_ok());
        assert!(policy.judge(ip("93.184.216.34"), &[]).is_ok());
        assert!(policy.allows_host("Intranet.Example.net"));
        let blocked = policy.judge(ip("10.21.0.1"), &[]).unwrap_err();
        assert!(blocked.starts_with("10.21.0.1 is a private address"), "{blocked}");
        assert!(policy.judge(ip("169.254.169.254"), &[ip("127.0.0.1")]).is_err());
    }
}
