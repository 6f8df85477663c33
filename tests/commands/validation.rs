//! `fleetprobe check` against settings and inventories that parse but cannot work: every bad
//! value named with its file, line and field, and the range or form expected.

use crate::fixtures::{Customer, FleetFiles, Site, TempFleet, stderr};

/// One cluster on 127.0.0.1, one plan, one customer, one site.
fn fleet() -> FleetFiles {
    FleetFiles::new()
        .store("store.db")
        .cluster("one", &["127.0.0.1"])
        .plan("basic", 99.9, &[])
        .customer(Customer::new("c1", "Alpha GmbH", "basic", "10.00"))
        .site(Site::new("s1", "c1", "one", "www.alpha.test"))
}

/// The 1-based line of `fleet.toml` that contains `text`.
fn line_of(fleet: &TempFleet, text: &str) -> usize {
    let toml = std::fs::read_to_string(fleet.config()).unwrap();
    toml.lines().position(|l| l.contains(text)).unwrap_or_else(|| panic!("`{text}` not in:\n{toml}")) + 1
}

/// Runs `check`, expects the configuration error exit code, returns stderr.
fn refused(fleet: &TempFleet) -> String {
    let out = fleet.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    stderr(&out)
}

#[test]
fn redirect_allow_takes_networks_and_hostnames() {
    let allow = toml::Value::from(vec!["10.20.0.0/16", "fd00::/8", "intranet.example.net", "10.0.0.0/33", "bad host"]);
    let fleet = fleet().probe_http("redirect_allow", allow).write_temp();
    let errors = refused(&fleet);
    let line = line_of(&fleet, "10.0.0.0/33");
    let expected =
        format!("fleet.toml:{line}: probe.http.redirect_allow[3]: `10.0.0.0/33`: the prefix length must be 0 to 32");
    assert!(errors.contains(&expected), "missing `{expected}` in:\n{errors}");
    assert!(errors.contains("probe.http.redirect_allow[4]: `bad host` is not a valid DNS name"), "{errors}");
    assert!(errors.contains("2 problems found"), "{errors}");

    let allow = toml::Value::from(vec!["10.20.0.0/16", "192.0.2.7", "intranet.example.net"]);
    let fleet = self::fleet().probe_http("redirect_allow", allow).write_temp();
    let out = fleet.run(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `fleet.toml` with the line `key = placeholder` replaced by `key = value` as written: for
/// numbers TOML's own integers cannot carry.
fn with_literal(fleet: &TempFleet, key: &str, placeholder: &str, value: &str) {
    let toml = std::fs::read_to_string(fleet.config()).unwrap();
    let line = format!("{key} = {placeholder}\n");
    assert!(toml.contains(&line), "`{line}` not in:\n{toml}");
    std::fs::write(fleet.config(), toml.replace(&line, &format!("{key} = {value}\n"))).unwrap();
}

#[test]
fn every_number_is_bounded_with_field_line_and_range() {
    let fleet = fleet()
        .probe("concurrency", 7_777)
        .probe("retries", 4_294_967_295_i64)
        .probe("confirm_after", 0)
        .probe_http("max_body_bytes", 7_778)
        .probe_http("max_redirects", 21)
        .timeout("connect", "0s")
        .timeout("total", "6m")
        .probe("interval", "2d")
        .write_temp();
    with_literal(&fleet, "concurrency", "7777", "18446744073709551615");
    with_literal(&fleet, "max_body_bytes", "7778", "18446744073709551615");
    let errors = refused(&fleet);
    for (text, expected) in [
        ("18446744073709551615", "probe.concurrency: 18446744073709551615 is out of range; expected 1 to 65536"),
        ("4294967295", "probe.retries: 4294967295 is out of range; expected 0 to 10"),
        ("confirm_after", "probe.confirm_after: 0 is out of range; expected 1 to 100"),
        ("max_redirects", "probe.http.max_redirects: 21 is out of range; expected 0 to 20"),
        ("connect =", "probe.timeouts.connect: 0s is out of range; expected \"1ms\" to \"5m\""),
        ("total =", "probe.timeouts.total: 6m is out of range; expected \"1ms\" to \"5m\""),
        ("interval", "probe.interval: 2d is out of range; expected \"1s\" to \"1d\""),
    ] {
        let expected = format!("fleet.toml:{}: {expected}", line_of(&fleet, text));
        assert!(errors.contains(&expected), "missing `{expected}` in:\n{errors}");
    }
    let body = line_of(&fleet, "max_body_bytes");
    let expected = format!(
        "fleet.toml:{body}: probe.http.max_body_bytes: 18446744073709551615 is out of range; expected 0 to 16777216"
    );
    assert!(errors.contains(&expected), "missing `{expected}` in:\n{errors}");
}

#[test]
fn fields_compared_with_each_other_name_a_line() {
    let fleet = fleet()
        .probe("cluster_concurrency", 0)
        .probe("interval", "30s")
        .probe("spread", "30s")
        .plan("gold", 99.99, &[])
        .write_temp();
    let toml = std::fs::read_to_string(fleet.config()).unwrap();
    std::fs::write(fleet.config(), toml.replace("name = \"gold\"", "name = \"gold\"\nconfirm_after = 101")).unwrap();
    let errors = refused(&fleet);
    for (text, expected) in [
        ("cluster_concurrency", "probe.cluster_concurrency: 0 is out of range; expected 1 to 65536"),
        ("spread", "probe.spread: spread (\"30s\") must be shorter than the interval (\"30s\")"),
        ("confirm_after = 101", "plan[1].confirm_after: 101 is out of range; expected 1 to 100"),
    ] {
        let expected = format!("fleet.toml:{}: {expected}", line_of(&fleet, text));
        assert!(errors.contains(&expected), "missing `{expected}` in:\n{errors}");
    }
}

#[test]
fn a_deadline_must_end_inside_the_interval_and_after_the_spread() {
    let long = fleet().probe("interval", "60s").probe("deadline", "60s").write_temp();
    let errors = refused(&long);
    let expected = format!(
        "fleet.toml:{}: probe.deadline: deadline (\"1m\") must be shorter than the interval (\"1m\")",
        line_of(&long, "deadline")
    );
    assert!(errors.contains(&expected), "missing `{expected}` in:\n{errors}");

    let fleet = fleet().probe("spread", "20s").probe("deadline", "15s").probe("park_after", "0s").write_temp();
    let errors = refused(&fleet);
    for (text, expected) in [
        ("deadline", "probe.deadline: deadline (\"15s\") must be longer than the spread (\"20s\")"),
        ("park_after", "probe.park_after: 0s is out of range; expected \"1ms\" to \"5m\""),
    ] {
        let expected = format!("fleet.toml:{}: {expected}", line_of(&fleet, text));
        assert!(errors.contains(&expected), "missing `{expected}` in:\n{errors}");
    }
}

#[test]
fn a_value_of_the_wrong_type_names_its_field() {
    let fleet = fleet().probe("concurrency", "lots").write_temp();
    let errors = refused(&fleet);
    let expected = format!(
        "fleet.toml:{}: probe.concurrency: invalid type: string \"lots\", expected a whole number",
        line_of(&fleet, "lots")
    );
    assert!(errors.contains(&expected), "missing `{expected}` in:\n{errors}");

    let fleet = self::fleet().cluster("two", &["127.0.0.2"]).write_temp();
    let toml = std::fs::read_to_string(fleet.config()).unwrap();
    std::fs::write(fleet.config(), toml.replace("\"127.0.0.2\"", "7")).unwrap();
    let errors = refused(&fleet);
    assert!(errors.contains("cluster[1].frontends[0]: invalid type: integer `7`, expected a string"), "{errors}");
}

#[test]
fn a_huge_value_is_cut_in_the_error() {
    let huge = "x".repeat(5_000_000);
    let fleet = fleet().timeout("connect", huge.as_str()).write_temp();
    let errors = refused(&fleet);
    assert!(errors.len() < 2_000, "{} bytes of errors", errors.len());
    let shown = format!("probe.timeouts.connect: `{}…` is not a duration", "x".repeat(80));
    assert!(errors.contains(&shown), "{errors}");
}

#[test]
fn bytes_that_are_not_utf8_are_named_by_line() {
    let fleet = fleet().write_temp();
    let sites = b"site_id,customer,cluster,hostname\ns1,c1,one,www.alpha.test\ns2,c1,one,www.\xff.test\n";
    std::fs::write(fleet.dir().join("sites.csv"), sites).unwrap();
    let errors = refused(&fleet);
    assert!(errors.contains("sites.csv:3: not UTF-8 text (invalid byte in column 15)"), "{errors}");

    let mut toml = std::fs::read(fleet.config()).unwrap();
    toml.extend_from_slice(b"\n# caf\xe9\n");
    std::fs::write(fleet.config(), &toml).unwrap();
    let line = toml.iter().filter(|&&b| b == b'\n').count();
    let errors = refused(&fleet);
    assert!(errors.contains(&format!("fleet.toml:{line}: not UTF-8 text")), "{errors}");
}

#[test]
fn an_unclosed_quote_does_not_swallow_the_rows_after_it() {
    let sites = "site_id,customer,cluster,hostname,keyword\n\
                 s1,c1,one,www.alpha.test,\"Welcome\n\
                 s2,c1,one,www.beta.test,\n\
                 s3,c1,one,www.gamma.test,\n";
    let fleet = fleet().sites_csv(sites).write_temp();
    let errors = refused(&fleet);
    assert!(
        errors
            .contains("sites.csv:2: keyword: a quoted value runs from here over 2 more lines (is a `\"` not closed?)"),
        "{errors}"
    );

    // A name may hold a line break; the hostname after it is still on its own line.
    let customers = "customer_id,name,plan,monthly_fee\nc1,\"Alpha\nGmbH\",basic,10.00\n";
    let sites = "site_id,customer,cluster,hostname\ns1,c1,one,\"www.alpha\n.test\"\n";
    let fleet = self::fleet().customers_csv(customers).sites_csv(sites).write_temp();
    let errors = refused(&fleet);
    assert!(errors.contains("sites.csv:2: hostname: a quoted value runs from here over 1 more line"), "{errors}");
    assert!(!errors.contains("customers.csv"), "{errors}");
}

#[test]
fn monthly_fees_are_bounded() {
    let customers = "customer_id,name,plan,monthly_fee\n\
                     c1,Alpha GmbH,basic,1000000.00\n\
                     c2,Beta AG,basic,92233720368547758.07\n\
                     c3,Gamma SA,basic,1000000.01\n";
    let fleet = fleet().customers_csv(customers).write_temp();
    let errors = refused(&fleet);
    assert!(
        errors.contains(
            "customers.csv:3: monthly_fee: `92233720368547758.07` is too large; expected at most 1000000.00 a month"
        ),
        "{errors}"
    );
    assert!(errors.contains("customers.csv:4: monthly_fee: `1000000.01` is too large"), "{errors}");
    assert!(!errors.contains("customers.csv:2"), "{errors}");
}
