//! The status page end to end: a fault schedule imported as results CSV, an incident update with
//! hostile text, `report status` at a fixed now; the page's content and escaping, the Atom feed
//! parsed as XML, and the page opened in headless Chromium for a screenshot.

use std::fmt::Write as _;
use std::path::Path;

use crate::fixtures::{Customer, FleetFiles, Site, TempFleet, ok, stderr};

const NOW: &str = "2026-10-01T11:00:00Z";
const HOSTILE: &str = "<script>alert(1)</script> & \"quoted\" ]]> 'single' مرحبا بالعالم";

/// Cluster `a`: a1..a10 of customers c1..c10; `b`: b1..b4 of c11..c14 and b5 of c1; `c`: c1s,
/// c2s of c15, c16 (maintenance 10:00-12:00, no faults); `d`: d1 of c17 (never down).
/// One run a minute from 2026-10-01 00:00 to 11:00 (now). Faults: a4 down 03:00-03:30 (resolved,
/// isolated); a1-a3 down from 10:00 (ongoing, 30 %: partial); b1-b5 refused from 01:00 (ongoing,
/// all customers: major; maintenance 01:00-05:00 overrun).
fn write_fixture(show_names: bool) -> TempFleet {
    let customers = (1..=17).map(|i| {
        let name = if i == 1 { HOSTILE.to_string() } else { format!("Customer {i}") };
        Customer::new(format!("c{i}"), name, "basic", "10")
    });
    let fleet = FleetFiles::new()
        .store("store.db")
        .probe("confirm_after", 2)
        .status("title", "Example <Hosting> & Co status")
        .status("description", "Web hosting clusters")
        .status("show_customer_names", show_names)
        .cluster("a", &[])
        .cluster("b", &[])
        .cluster("c", &[])
        .cluster("d", &[])
        .plan("basic", 99.9, &[(99.9, 10.0)])
        .maintenance("b", "2026-10-01T01:00:00Z", "2026-10-01T05:00:00Z", "storage firmware")
        .maintenance("c", "2026-10-01T10:00:00Z", "2026-10-01T12:00:00Z", "kernel upgrade")
        .maintenance("d", "2026-10-05T22:00:00Z", "2026-10-06T02:00:00Z", HOSTILE)
        .customers(customers)
        .sites((1..=10).map(|i| Site::new(format!("a{i}"), format!("c{i}"), "a", format!("a{i}.test"))))
        .sites((1..=4).map(|i| Site::new(format!("b{i}"), format!("c{}", 10 + i), "b", format!("b{i}.test"))))
        .site(Site::new("b5", "c1", "b", "b5.test"))
        .site(Site::new("c1s", "c15", "c", "c1s.test"))
        .site(Site::new("c2s", "c16", "c", "c2s.test"))
        .site(Site::new("d1", "c17", "d", "d1.test"))
        .write_temp()
        .at(NOW);
    let dir = fleet.dir();
    let mut csv = String::from("run_started_at,site_id,check,outcome,http_status,total_ms\n");
    let site_ids: Vec<String> = (1..=10)
        .map(|i| format!("a{i}"))
        .chain((1..=5).map(|i| format!("b{i}")))
        .chain(["c1s", "c2s", "d1"].map(String::from))
        .collect();
    for minute in 0..660 {
        let at = jiff::Timestamp::from_second(1_790_812_800 + minute * 60).unwrap(); // 2026-10-01T00:00:00Z
        for site in &site_ids {
            let storage = ["a1", "a2", "a3"].contains(&site.as_str()) && minute >= 600;
            let short = site == "a4" && (180..210).contains(&minute);
            let overrun = site.starts_with('b') && minute >= 60;
            let (outcome, status) = match (storage || short, overrun) {
                (true, _) => ("http_status", "503"),
                (_, true) => ("connect_refused", ""),
                _ => ("ok", "200"),
            };
            writeln!(csv, "{at},{site},http,{outcome},{status},12.5").unwrap();
        }
    }
    std::fs::write(dir.join("results.csv"), csv).unwrap();
    ok(&fleet.run(&["import", "--valid", "yes", dir.join("results.csv").to_str().unwrap()]));
    fleet
}

/// The text of a cluster's card, from the `<li ... id="cluster-NAME">` to its end.
fn card<'a>(html: &'a str, cluster: &str) -> &'a str {
    let start = html.find(&format!("id=\"cluster-{cluster}\"")).unwrap_or_else(|| panic!("no card for {cluster}"));
    let end = html[start..].find("</li>\n").map_or(html.len(), |e| start + e);
    &html[start..end]
}

#[test]
fn status_page_shows_states_incidents_updates_and_feed() {
    let fleet = write_fixture(false);

    // Bad updates are refused with what was expected.
    let bad = fleet.run(&["incident", "update", "x-20261001T1000", "text"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("expected a cluster name (a, b, c, d)"));
    let empty = fleet.run(&["incident", "update", "a-20261001T1000", "  "]);
    assert!(stderr(&empty).contains("empty"), "{:?}", empty);
    let long = "x".repeat(5000);
    let too_long = fleet.run(&["incident", "update", "a-20261001T1000", &long]);
    assert!(stderr(&too_long).contains("at most 4000"));

    let update = |at: &str, text: &str, extra: &[&str]| {
        let mut args = vec!["incident", "update", "a-20261001T1000", text, "--at", at];
        args.extend_from_slice(extra);
        ok(&fleet.run(&args));
    };
    let unknown = fleet.run(&["incident", "update", "d-20261001T1000", "Looking into it"]);
    assert!(stderr(&unknown).contains("warning: the store shows no incident d-20261001T1000"));
    update("2026-10-01T10:15:00Z", "We are investigating errors on some sites.", &[]);
    update("2026-10-01T10:45:00Z", HOSTILE, &["--title", "Storage <failure> on a", "--cause", "controller & \"disk\""]);

    let out = fleet.dir().join("site");
    ok(&fleet.run(&["report", "status", "-o", out.to_str().unwrap()]));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();

    // States, by text.
    assert!(card(&html, "a").contains("Partial outage"), "{}", card(&html, "a"));
    assert!(card(&html, "a").contains("30 % of customers affected now (3 of 10)"), "{}", card(&html, "a"));
    assert!(card(&html, "b").contains("Major outage"));
    assert!(card(&html, "b").contains("100 % of customers affected now (5 of 5)"));
    assert!(card(&html, "c").contains("Under maintenance"));
    assert!(card(&html, "d").contains("Operational"));
    assert!(html.contains("Major outage on 1 of 4 clusters"));
    // Bars with tooltips and a text alternative.
    assert!(card(&html, "a").contains("<title>2026-10-01: "));
    assert!(card(&html, "d").contains("<li>2026-10-01: 100 % available, no incidents</li>"));
    assert!(card(&html, "d").contains("<li>2026-09-30: no data</li>"));
    // One day of 90 has measurements: the figure says it covers that day only.
    assert!(card(&html, "d").contains("100 % available over the 1 day of the last 90 days with measurements"));
    assert!(!html.contains("available over the last 90 days"), "no 90-day figure from one day of data");

    // The incident with its title, cause and updates, newest first, escaped.
    assert!(html.contains("Storage &lt;failure&gt; on a"));
    assert!(html.contains("controller &amp; &quot;disk&quot;"));
    let escaped =
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; ]]&gt; &#39;single&#39; مرحبا بالعالم";
    let newest = html.find(escaped).expect("the hostile update, escaped");
    let older = html.find("We are investigating").unwrap();
    assert!(newest < older, "updates newest first");
    assert!(!html.contains("<script>") && !html.contains("alert(1)</"), "nothing hostile unescaped");
    assert!(html.contains("b-20261001T0100") && html.contains("Overran scheduled maintenance"));
    // The window that ended is kept in the history, with the incident that outlasted it.
    let past = &html[html.find("<h3>Completed maintenance</h3>").expect("completed maintenance listed")..];
    assert!(past.contains("Completed</span> Cluster <bdi>b</bdi>"), "{past}");
    assert!(past.contains("b-20261001T0100 overran the window by 6h 0m."), "{past}");
    assert!(html.contains("a-20261001T0300") && html.contains("Resolved"));
    // Scheduled maintenance, with its note escaped; customer and site names stay private.
    assert!(html.contains("Scheduled</span> Cluster <bdi>d</bdi>"));
    assert!(html.contains("Example &lt;Hosting&gt; &amp; Co status"));
    assert!(!html.contains("a1.test") && !html.contains("Customer 2"), "no customer or site names by default");
    assert!(html.contains("href=\"feed.atom\""));
    assert!(html.contains("<html lang=\"en\">") && html.contains("name=\"viewport\""));

    let feed = std::fs::read_to_string(out.join("feed.atom")).unwrap();
    check_feed(&feed);
    // The overrun is news: b's entry says so (window 01:00-05:00, still down at 11:00).
    assert!(feed.contains("Overran scheduled maintenance by 6h 0m."), "{feed}");
    open_in_chromium(&out);

    // With names configured, they appear, escaped.
    let named = write_fixture(true);
    let out = named.dir().join("site");
    ok(&named.run(&["report", "status", "-o", out.to_str().unwrap(), "--days", "7"]));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("a1.test") && html.contains("Customer 11"));
    // Without `status.url`, two installations' feeds never share an id.
    let feed_id =
        |feed: &str| feed.split("<id>").nth(1).and_then(|rest| rest.split("</id>").next()).unwrap().to_string();
    let other = feed_id(&std::fs::read_to_string(out.join("feed.atom")).unwrap());
    assert!(other.starts_with("urn:fleetprobe:status:") && other != feed_id(&feed), "{other} vs {}", feed_id(&feed));
    assert!(html.contains("<div class=\"all\" style=") && !html.contains("class=\"long\""), "7 days fit a phone");
    assert!(!html.contains("Measurements are delayed"));

    // Two hours without a run: the page says its states are as of the last measurement.
    let later = named.dir().join("later");
    ok(&named.run(&["report", "status", "-o", later.to_str().unwrap(), "--now", "2026-10-01T13:00:00Z"]));
    let html = std::fs::read_to_string(later.join("index.html")).unwrap();
    assert!(
        html.contains(
            "Measurements are delayed:</strong> the last one covers up to <time datetime=\"2026-10-01T11:00:00Z\">"
        ),
        "{html}"
    );
    assert!(html.contains(escaped) && !html.contains("<script>"));
    // Stale data never reads as operational: the banner and every cluster say the state is unknown.
    let banner = &html[html.find("<p class=\"banner").unwrap()..];
    let banner = &banner[..banner.find("</p>").unwrap()];
    assert!(
        banner.contains("s-unknown")
            && banner.contains("Current state unknown: no measurements since 2026-10-01 11:00 UTC"),
        "{banner}"
    );
    for cluster in ["a", "b", "c", "d"] {
        assert!(card(&html, cluster).contains("State unknown"), "{}", card(&html, cluster));
        assert!(!card(&html, cluster).contains(">Operational<") && !card(&html, cluster).contains(" Operational</p>"));
    }
}

fn child<'a, 'input>(node: roxmltree::Node<'a, 'input>, name: &str) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|c| c.has_tag_name(("http://www.w3.org/2005/Atom", name)))
}

fn check_feed(text: &str) {
    let doc = roxmltree::Document::parse(text).expect("feed.atom is well-formed XML");
    let atom = "http://www.w3.org/2005/Atom";
    let feed = doc.root_element();
    assert!(feed.has_tag_name((atom, "feed")));
    for name in ["id", "title", "updated", "author"] {
        assert!(child(feed, name).is_some(), "feed has no {name}");
    }
    let rels: Vec<&str> =
        feed.children().filter(|c| c.has_tag_name((atom, "link"))).filter_map(|l| l.attribute("rel")).collect();
    assert!(rels.contains(&"self") && rels.contains(&"alternate"), "{rels:?}");
    let entries: Vec<_> = feed.children().filter(|c| c.has_tag_name((atom, "entry"))).collect();
    assert_eq!(entries.len(), 3 + 2, "three incidents and two updates");
    let mut ids = std::collections::BTreeSet::new();
    for e in &entries {
        for name in ["id", "title", "updated", "content", "link"] {
            assert!(child(*e, name).is_some(), "entry has no {name}");
        }
        let updated = child(*e, "updated").and_then(|u| u.text()).unwrap();
        assert!(updated.parse::<jiff::Timestamp>().is_ok(), "{updated}");
        assert!(ids.insert(child(*e, "id").and_then(|i| i.text()).unwrap().to_string()), "entry ids are unique");
    }
    let contents: Vec<&str> = entries.iter().filter_map(|e| child(*e, "content").and_then(|c| c.text())).collect();
    assert!(contents.contains(&HOSTILE), "the hostile update reads back as text: {contents:?}");
    assert!(
        entries.iter().any(|e| child(*e, "title").and_then(|t| t.text()) == Some("Update: Storage <failure> on a"))
    );
}

/// Opens the page in headless Chromium: a screenshot, and the DOM after parsing.
fn open_in_chromium(site: &Path) {
    let Some(chromium) = crate::browser::chromium() else { return };
    let url = format!("file://{}", site.join("index.html").display());
    if let Some(keep) = std::env::var_os("FLEETPROBE_KEEP_SCREENSHOTS") {
        for name in ["index.html", "feed.atom"] {
            std::fs::copy(site.join(name), Path::new(&keep).join(name)).unwrap();
        }
    }
    for (name, size) in [("desktop.png", "1280,2000"), ("phone.png", "390,1600")] {
        let profile = tempfile::tempdir().unwrap();
        let shot = site.join(name);
        let out = crate::browser::command(&chromium, profile.path())
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("--window-size={size}"))
            .arg(&url)
            .output()
            .unwrap();
        let png = std::fs::read(&shot)
            .unwrap_or_else(|e| panic!("no screenshot {name} ({e}): {}", String::from_utf8_lossy(&out.stderr)));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "{name}: {} bytes", png.len());
        if let Some(keep) = std::env::var_os("FLEETPROBE_KEEP_SCREENSHOTS") {
            std::fs::copy(&shot, Path::new(&keep).join(name)).unwrap();
        }
    }
    let profile = tempfile::tempdir().unwrap();
    let out = crate::browser::command(&chromium, profile.path()).arg("--dump-dom").arg(&url).output().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("Partial outage") && dom.contains("Major outage"), "{dom}");
    assert!(dom.contains("Storage &lt;failure&gt; on a"), "the title stays text after parsing");
    assert!(!dom.contains("<script"), "no script element after parsing");
    assert!(dom.contains("href=\"feed.atom\""));
    let html = std::fs::read_to_string(site.join("index.html")).unwrap();
    for width in [390, 1280] {
        let layout = crate::browser::layout(&chromium, site, &html, width);
        assert_eq!(layout.viewport, width, "laid out at the width asked for");
        assert_eq!(layout.page, layout.viewport, "{width} px: the page scrolls sideways");
        assert_eq!(layout.wide, "", "{width} px: elements wider than the screen and not scrollable");
    }
}

#[test]
fn status_settings_are_checked_with_file_line_and_field() {
    // The errors name lines of exactly the text `fleet_with_status` writes.
    let write = fleet_with_status;
    let unknown = write("show_customers = true");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("show_customers"), "{unknown:?}");
    let empty = write("title = \"  \"");
    assert!(stderr(&empty).contains("fleet.toml:13: status.title"), "{empty:?}");
    let url = write("url = \"javascript:alert(1)\"");
    assert!(stderr(&url).contains("status.url: `javascript:alert(1)` is not an http(s) URL"));
    ok(&write("title = \"Example status\"\nurl = \"https://status.example.net\"\nshow_customer_names = false"));
}

/// Clusters `fast` (f1, f2) and `slow` (s1, s2), a run every 5 minutes over two days from
/// 2026-10-01, every check ok; the slow cluster's first byte goes from 10 ms to 200 ms at
/// 2026-10-02 22:00 (its sites stay up). `status` sets `[status]` keys.
fn slow_fleet(status: &[(&str, toml::Value)]) -> TempFleet {
    let mut files = FleetFiles::new()
        .store("store.db")
        .probe("interval", "5m")
        .cluster("fast", &[])
        .cluster("slow", &[])
        .plan("basic", 99.9, &[(99.9, 10.0)])
        .customers((1..=4).map(|i| Customer::new(format!("c{i}"), format!("Customer {i}"), "basic", "10")))
        .sites((1..=2).map(|i| Site::new(format!("f{i}"), format!("c{i}"), "fast", format!("f{i}.test"))))
        .sites((1..=2).map(|i| Site::new(format!("s{i}"), format!("c{}", 2 + i), "slow", format!("s{i}.test"))));
    for (key, value) in status {
        files = files.status(key, value.clone());
    }
    let fleet = files.write_temp().at("2026-10-03T00:00:00Z");
    let mut csv = String::from("run_started_at,site_id,check,outcome,http_status,first_byte_ms,total_ms\n");
    for run in 0..(2 * 288) {
        let at = jiff::Timestamp::from_second(1_790_812_800 + run * 300).unwrap();
        for site in ["f1", "f2", "s1", "s2"] {
            let first_byte = if site.starts_with('s') && run >= 288 + 264 { 200.0 } else { 10.0 };
            writeln!(csv, "{at},{site},http,ok,200,{first_byte},{}", first_byte + 2.0).unwrap();
        }
    }
    std::fs::write(fleet.dir().join("results.csv"), csv).unwrap();
    ok(&fleet.run(&["import", "--valid", "yes", fleet.dir().join("results.csv").to_str().unwrap()]));
    fleet
}

/// A cluster that is up but answers far slower than its own week shows "Degraded performance"
/// on the page and in the feed, from the start of the slow stretch; a cluster as fast as usual
/// stays operational; the absolute bound works alone; a bad rule is refused with its line.
#[test]
fn a_slow_cluster_shows_degraded_performance() {
    let fleet = slow_fleet(&[]);
    let out = fleet.dir().join("site");
    ok(&fleet.run(&["report", "status", "-o", out.to_str().unwrap()]));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("Degraded performance on 1 of 2 clusters"), "{html}");
    let slow = card(&html, "slow");
    assert!(slow.contains("Degraded performance"), "{slow}");
    assert!(
        slow.contains("answering slowly since 2026-10-02 22:00 UTC: half the pages take over 200 ms to their first byte (usually 10 ms)"),
        "{slow}"
    );
    let fast = card(&html, "fast");
    assert!(fast.contains("Operational") && !fast.contains("slowly"), "{fast}");
    let feed = std::fs::read_to_string(out.join("feed.atom")).unwrap();
    assert!(feed.contains("<title type=\"text\">Degraded performance on slow</title>"), "{feed}");
    let since = "2026-10-02T22:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
    assert!(feed.contains(&format!("slow-slow-{since}</id>")), "one entry per slow stretch: {feed}");
    assert!(roxmltree::Document::parse(&feed).is_ok());

    // The absolute bound alone: crossed at 100 ms, not at 300 ms.
    let bound = |above: &str| {
        let fleet = slow_fleet(&[("slow_factor", 0.0.into()), ("slow_above", above.into())]);
        let out = fleet.dir().join("site");
        ok(&fleet.run(&["report", "status", "-o", out.to_str().unwrap()]));
        std::fs::read_to_string(out.join("index.html")).unwrap()
    };
    assert!(card(&bound("100ms"), "slow").contains("Degraded performance"));
    assert!(card(&bound("300ms"), "slow").contains("Operational"));

    let bad = fleet_with_status("slow_factor = 1.2\nslow_window = \"10s\"");
    assert_eq!(bad.status.code(), Some(2));
    let message = stderr(&bad);
    assert!(message.contains("status.slow_factor: 1.2 is out of range; expected 0 (off) or 1.5 to 100"), "{message}");
    assert!(message.contains("status.slow_window"), "{message}");
}

/// `check` of a one-cluster fleet whose `[status]` section is `status`.
fn fleet_with_status(status: &str) -> std::process::Output {
    let fleet = FleetFiles::new()
        .customer(Customer::new("c1", "C", "basic", "10"))
        .site(Site::new("s1", "c1", "one", "s1.test"))
        .write_temp();
    std::fs::write(
        fleet.config(),
        format!(
            "[inventory]\nsites = \"sites.csv\"\ncustomers = \"customers.csv\"\n\n[[cluster]]\nname = \"one\"\n\n\
             [[plan]]\nname = \"basic\"\ntarget = 99.9\n\n[status]\n{status}\n"
        ),
    )
    .unwrap();
    fleet.run(&["check"])
}
