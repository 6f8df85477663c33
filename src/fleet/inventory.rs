//! The inventory CSVs: sites and customers, as providers export them from their own databases.
//!
//! Both files need a header line; columns may come in any order. A UTF-8 byte order mark and CRLF
//! line ends (what spreadsheet exports write) are accepted. Lines starting with `#` are comments.

use std::collections::HashMap;
use std::net::IpAddr;

use super::config::{Parsed, known};
use crate::fleet::checks::CheckKind;

use super::{
    Checks, Customer, ExpectedAddresses, FleetError, FleetErrors, InvalidValue, PlanIdx, Site, SiteUrl, Source,
};

const SITE_COLUMNS: &[(&str, bool)] = &[
    ("site_id", true),
    ("customer", true),
    ("cluster", true),
    ("hostname", true),
    ("url", false),
    ("expected_addresses", false),
    ("checks", false),
    ("keyword", false),
];

const CUSTOMER_COLUMNS: &[(&str, bool)] =
    &[("customer_id", true), ("name", true), ("plan", true), ("monthly_fee", true), ("contact", false)];

/// One CSV file opened with its header checked: maps column names to positions.
struct Table {
    path: std::path::PathBuf,
    columns: HashMap<&'static str, usize>,
    reader: csv::Reader<std::io::Cursor<Vec<u8>>>,
}

impl Table {
    fn open(
        source: &Source,
        relative: &str,
        expected: &'static [(&'static str, bool)],
        errors: &mut FleetErrors,
    ) -> Option<Table> {
        let (path, text) = match source.read(relative) {
            Ok(found) => found,
            Err(e) => {
                errors.push(e);
                return None;
            }
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let expected_header = expected.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(",");
        if text.trim().is_empty() {
            errors.push(FleetError::file(
                &path,
                format!("the file is empty; expected a header line `{expected_header}` and one row per entry"),
            ));
            return None;
        }
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(std::io::Cursor::new(text.as_bytes().to_vec()));
        let header = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                errors.push(FleetError::at(&path, Some(1), "header", format!("unreadable header: {e}")));
                return None;
            }
        };
        let mut columns = HashMap::new();
        let mut header_ok = true;
        for (i, name) in header.iter().enumerate() {
            match expected.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((n, _)) if columns.contains_key(n) => {
                    errors.push(FleetError::at(
                        &path,
                        Some(1),
                        format!("column {}", i + 1),
                        format!("column `{name}` appears twice"),
                    ));
                    header_ok = false;
                }
                Some((n, _)) => {
                    columns.insert(*n, i);
                }
                None => {
                    errors.push(FleetError::at(
                        &path,
                        Some(1),
                        format!("column {}", i + 1),
                        format!("unknown column `{name}`; expected columns: {expected_header}"),
                    ));
                    header_ok = false;
                }
            }
        }
        for (name, required) in expected {
            if *required && !columns.contains_key(name) {
                errors.push(FleetError::at(
                    &path,
                    Some(1),
                    "header",
                    format!("missing required column `{name}`; expected columns: {expected_header}"),
                ));
                header_ok = false;
            }
        }
        header_ok.then_some(Table { path, columns, reader })
    }

    /// Iterates rows as (line, record); malformed rows are reported and skipped, as are rows
    /// with a line break inside a value that cannot hold one (an unclosed `"` swallows the rows
    /// after it: the error names the line where the quote opened).
    fn rows<'a>(&'a mut self, errors: &'a mut FleetErrors) -> impl Iterator<Item = (u64, csv::StringRecord)> + 'a {
        let path = self.path.clone();
        let columns = self.columns.clone();
        self.reader.records().filter_map(move |row| match row {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line());
                let mut field_line = line;
                for (i, value) in record.iter().enumerate() {
                    let name = columns.iter().find(|&(_, &c)| c == i).map(|(n, _)| *n);
                    let breaks = value.matches('\n').count() as u64;
                    if breaks > 0 && name.is_some_and(|n| !MULTILINE_COLUMNS.contains(&n)) {
                        let message = format!(
                            "a quoted value runs from here over {} more line{} (is a `\"` not closed?); \
                             expected one line",
                            breaks,
                            if breaks == 1 { "" } else { "s" }
                        );
                        errors.push(FleetError::at(&path, Some(field_line), name.unwrap_or_default(), message));
                        return None;
                    }
                    field_line += breaks;
                }
                Some((line, record))
            }
            Err(e) => {
                let line = e.position().map(|p| p.line());
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                        format!("this row has {len} fields; expected {expected_len} like the header")
                    }
                    _ => format!("unreadable row: {e}"),
                };
                errors.push(FleetError { file: path.clone(), line, field: None, message });
                None
            }
        })
    }
}

/// The columns whose values may span lines (a name or contact with a line break); every other
/// value is one line.
const MULTILINE_COLUMNS: [&str; 2] = ["name", "contact"];

fn cell<'r>(table_columns: &HashMap<&'static str, usize>, record: &'r csv::StringRecord, column: &str) -> &'r str {
    table_columns.get(column).and_then(|&i| record.get(i)).unwrap_or("")
}

/// Reads the customers file. Returns each customer with the line it came from.
pub(crate) fn read_customers(
    source: &Source,
    relative: &str,
    plan_index: &HashMap<String, PlanIdx>,
    errors: &mut FleetErrors,
) -> Vec<(Customer, u64)> {
    let Some(mut table) = Table::open(source, relative, CUSTOMER_COLUMNS, errors) else { return Vec::new() };
    let path = table.path.clone();
    let columns = table.columns.clone();
    let mut customers: Vec<(Customer, u64)> = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut row_errors = FleetErrors::default();
    for (line, record) in table.rows(&mut row_errors) {
        let get = |c: &str| cell(&columns, &record, c);
        let err = |field: &str, message: String| FleetError::at(&path, Some(line), field, message);
        let mut ok = true;
        let id = get("customer_id");
        if id.is_empty() {
            errors.push(err("customer_id", "empty; expected a customer id".into()));
            ok = false;
        } else if let Some(first) = seen.get(id) {
            errors.push(err("customer_id", format!("duplicate customer `{id}` (first defined on line {first})")));
            ok = false;
        }
        let name = get("name");
        if name.is_empty() {
            errors.push(err("name", "empty; expected the customer's name".into()));
            ok = false;
        }
        let plan = match plan_index.get(get("plan")) {
            Some(&p) => p,
            None => {
                let mut plans: Vec<&str> = plan_index.keys().map(String::as_str).collect();
                plans.sort();
                errors.push(err(
                    "plan",
                    format!("unknown plan `{}`; expected one of: {}", get("plan"), known(plans.into_iter())),
                ));
                ok = false;
                0
            }
        };
        let monthly_fee_cents = match parse_money(get("monthly_fee")) {
            Ok(cents) => cents,
            Err(m) => {
                errors.push(err("monthly_fee", m.to_string()));
                ok = false;
                0
            }
        };
        if ok {
            seen.insert(id.to_string(), line);
            customers.push((
                Customer {
                    id: id.to_string(),
                    name: name.to_string(),
                    plan,
                    monthly_fee_cents,
                    contact: get("contact").to_string(),
                },
                line,
            ));
        }
    }
    errors.0.extend(row_errors.0);
    if customers.is_empty() && errors.is_empty() {
        errors.push(FleetError::file(&path, "no customers; expected at least one row after the header"));
    }
    customers
}

/// Reads the sites file, checking every reference against clusters and customers.
pub(crate) fn read_sites(
    source: &Source,
    relative: &str,
    parsed: &Parsed,
    customers: &[(Customer, u64)],
    errors: &mut FleetErrors,
) -> Vec<Site> {
    let Some(mut table) = Table::open(source, relative, SITE_COLUMNS, errors) else { return Vec::new() };
    let path = table.path.clone();
    let columns = table.columns.clone();
    let customer_index: HashMap<&str, usize> =
        customers.iter().enumerate().map(|(i, (c, _))| (c.id.as_str(), i)).collect();
    let mut sites = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut row_errors = FleetErrors::default();
    for (line, record) in table.rows(&mut row_errors) {
        let get = |c: &str| cell(&columns, &record, c);
        let err = |field: &str, message: String| FleetError::at(&path, Some(line), field, message);
        let before = errors.len();

        let id = get("site_id");
        if id.is_empty() {
            errors.push(err("site_id", "empty; expected a site id".into()));
        } else if let Some(first) = seen.get(id) {
            errors.push(err("site_id", format!("duplicate site `{id}` (first defined on line {first})")));
        }
        let customer = customer_index.get(get("customer")).copied();
        if customer.is_none() {
            errors.push(err(
                "customer",
                format!(
                    "unknown customer `{}`; expected a customer_id from {}",
                    get("customer"),
                    parsed.inventory_customers
                ),
            ));
        }
        let cluster = parsed.cluster_index.get(get("cluster")).copied();
        if cluster.is_none() {
            errors.push(err(
                "cluster",
                format!(
                    "unknown cluster `{}`; expected one of: {}",
                    get("cluster"),
                    known(parsed.clusters.iter().map(|c| c.name.as_str()))
                ),
            ));
        }
        let hostname = match normalize_hostname(get("hostname")) {
            Ok(h) => h,
            Err(m) => {
                errors.push(err("hostname", m.to_string()));
                String::new()
            }
        };
        let url_text = get("url");
        let url = if url_text.is_empty() {
            SiteUrl::parse(&format!("https://{hostname}/")).ok()
        } else {
            match SiteUrl::parse(url_text) {
                Ok(u) => Some(u),
                Err(m) => {
                    errors.push(err("url", m.to_string()));
                    None
                }
            }
        };
        let expected_addresses = match parse_expected(get("expected_addresses")) {
            Ok(e) => e,
            Err(m) => {
                errors.push(err("expected_addresses", m.to_string()));
                ExpectedAddresses::Any
            }
        };
        let checks = match parse_checks(get("checks")) {
            Ok(c) => c,
            Err(m) => {
                errors.push(err("checks", m.to_string()));
                Checks::default_for_site()
            }
        };
        for kind in checks.kinds().filter(|&k| k.takes_port()) {
            if checks.port(kind).is_none() && parsed.probe.default_port(kind).is_none() {
                errors.push(err(
                    "checks",
                    format!("the {kind} check needs a port; expected `{kind}:PORT` here or `port` in [probe.{kind}]"),
                ));
            }
        }
        if errors.len() == before {
            if let (Some(customer), Some(cluster), Some(url)) = (customer, cluster, url) {
                seen.insert(id.to_string(), line);
                let keyword = Some(get("keyword")).filter(|k| !k.is_empty()).map(str::to_string);
                sites.push(Site {
                    id: id.to_string(),
                    customer,
                    cluster,
                    hostname,
                    url,
                    expected_addresses,
                    checks,
                    keyword,
                });
            }
        } else if !id.is_empty() {
            seen.entry(id.to_string()).or_insert(line);
        }
    }
    errors.0.extend(row_errors.0);
    if sites.is_empty() && errors.is_empty() {
        errors.push(FleetError::file(&path, "no sites; expected at least one row after the header"));
    }
    sites
}

/// Lower-cases a DNS name, drops a trailing dot, and checks label syntax (ASCII; IDNs as punycode).
pub(crate) fn normalize_hostname(text: &str) -> Result<String, InvalidValue> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err(InvalidValue::EmptyHostname);
    }
    if !name.is_ascii() {
        return Err(InvalidValue::HostnameNotAscii(text.to_string()));
    }
    if name.len() > 253 {
        return Err(InvalidValue::HostnameTooLong(text.to_string()));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(InvalidValue::HostnameLabel { name: text.to_string(), label: label.to_string() });
        }
    }
    Ok(name)
}

fn parse_expected(text: &str) -> Result<ExpectedAddresses, InvalidValue> {
    match text.trim() {
        "" => Ok(ExpectedAddresses::ClusterFrontends),
        "*" => Ok(ExpectedAddresses::Any),
        list => list
            .split([' ', ';'])
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<IpAddr>().map_err(|_| InvalidValue::ExpectedAddress(s.to_string())))
            .collect::<Result<Vec<_>, _>>()
            .map(ExpectedAddresses::List),
    }
}

/// Parses the `checks` column: kinds separated by spaces, `;` or `+`, each `kind` or
/// `kind:PORT` (for kinds that connect to a port the site names). Empty: HTTP and DNS.
fn parse_checks(text: &str) -> Result<Checks, InvalidValue> {
    if text.trim().is_empty() {
        return Ok(Checks::default_for_site());
    }
    let mut checks = Checks::default();
    for word in text.split([' ', ';', '+']).filter(|s| !s.is_empty()) {
        let (name, port) = match word.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (word, None),
        };
        let kind: CheckKind = name.parse()?;
        match port {
            None => checks.insert(kind),
            Some(_) if !kind.takes_port() => {
                return Err(InvalidValue::CheckTakesNoPort {
                    token: word.to_string(),
                    kind,
                    takes_ports: known(CheckKind::ALL.into_iter().filter(|k| k.takes_port()).map(CheckKind::as_str)),
                });
            }
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => checks.insert_with_port(kind, port),
                _ => {
                    return Err(InvalidValue::CheckPort { token: word.to_string(), kind, port: port.to_string() });
                }
            },
        }
    }
    Ok(checks)
}

/// The largest monthly fee accepted, in cents (1,000,000.00): credits and their totals stay far
/// from overflowing.
pub const MAX_MONTHLY_FEE_CENTS: i64 = 100_000_000;

/// Parses a non-negative amount with at most two decimals ("20", "20.5", "20.50") into cents,
/// at most [`MAX_MONTHLY_FEE_CENTS`].
pub(crate) fn parse_money(text: &str) -> Result<i64, InvalidValue> {
    let bad = || InvalidValue::Money(text.to_string());
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().map_err(|_| bad())? };
    let cents = whole.checked_mul(100).and_then(|w| w.checked_add(frac));
    match cents {
        Some(cents) if cents <= MAX_MONTHLY_FEE_CENTS => Ok(cents),
        _ => Err(InvalidValue::MoneyTooLarge(text.trim().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money() {
        assert_eq!(parse_money("20").unwrap(), 2000);
        assert_eq!(parse_money("20.5").unwrap(), 2050);
        assert_eq!(parse_money("0.07").unwrap(), 7);
        assert!(parse_money("-1").is_err());
        assert!(parse_money("1,50").is_err());
        assert_eq!(parse_money("1000000.00").unwrap(), MAX_MONTHLY_FEE_CENTS);
        assert!(parse_money("1000000.01").unwrap_err().to_string().contains("at most 1000000.00"));
        assert!(parse_money("92233720368547758.07").is_err());
        assert!(parse_money("1.505").is_err());
        assert!(parse_money("").is_err());
    }

    #[test]
    fn hostnames() {
        assert_eq!(normalize_hostname("WWW.Example.COM.").unwrap(), "www.example.com");
        assert!(normalize_hostname("bad_host!.com").is_err());
        assert!(normalize_hostname("-a.com").is_err());
        assert!(normalize_hostname("bücher.de").unwrap_err().to_string().contains("punycode"));
        assert!(normalize_hostname("a..b").is_err());
    }

    #[test]
    fn checks_and_expected() {
        assert_eq!(parse_checks("http dns").unwrap(), Checks::default_for_site());
        assert_eq!(parse_checks("").unwrap(), Checks::default_for_site());
        assert_eq!(parse_checks("DNS").unwrap(), [CheckKind::Dns].into_iter().collect());
        let unknown = parse_checks("http icmp").unwrap_err().to_string();
        assert!(unknown.contains("unknown check `icmp`; expected one of: http, dns"), "{unknown}");
        assert!(parse_checks("http:8080").unwrap_err().to_string().contains("takes no port"));
        assert_eq!(parse_expected("").unwrap(), ExpectedAddresses::ClusterFrontends);
        assert_eq!(parse_expected("*").unwrap(), ExpectedAddresses::Any);
        assert_eq!(
            parse_expected("192.0.2.1;192.0.2.2").unwrap(),
            ExpectedAddresses::List(vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()])
        );
        assert!(parse_expected("192.0.2.300").is_err());
    }
}
