//! The SLA PDF read back the way a customer's viewer would: rendered from realistic and from
//! hostile data, its text extracted with `pdftotext` and its first page rasterised with
//! `pdftoppm` (poppler-utils). Without poppler the tests print SKIPPED, unless `CI` is set.
//! `FLEETPROBE_PDF_OUT=DIR` keeps the PDFs for a look.

use std::path::{Path, PathBuf};
use std::process::Command;

use fleetprobe::report::chart;
use fleetprobe::report::pdf::{
    Branding, CreditLine, GoodwillLine, IncidentRow, MaintenanceOverlap, PdfError, SiteRow, SlaDocument, SvgChart,
    example_document, render_sla_pdf,
};

fn poppler_available() -> bool {
    let found = ["pdftotext", "pdftoppm"]
        .iter()
        .all(|tool| Command::new(tool).arg("-v").output().is_ok_and(|o| o.status.success() || !o.stderr.is_empty()));
    if !found {
        assert!(std::env::var_os("CI").is_none(), "pdftotext/pdftoppm (poppler-utils) missing and CI is set");
        eprintln!("SKIPPED: pdftotext/pdftoppm not installed (apt-get install poppler-utils)");
    }
    found
}

/// Writes the PDF, extracts its text, renders page 1; returns the text.
fn read_back(name: &str, pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).expect("write pdf");
    if let Some(out) = std::env::var_os("FLEETPROBE_PDF_OUT") {
        let out = PathBuf::from(out);
        std::fs::create_dir_all(&out).expect("create FLEETPROBE_PDF_OUT");
        std::fs::copy(&path, out.join(format!("{name}.pdf"))).expect("keep pdf");
    }
    let text = Command::new("pdftotext").args(["-enc", "UTF-8"]).arg(&path).arg("-").output().expect("run pdftotext");
    assert!(text.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&text.stderr));
    assert!(text.stderr.is_empty(), "pdftotext complained: {}", String::from_utf8_lossy(&text.stderr));
    let png_prefix = dir.path().join(name);
    let render = Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1"])
        .arg(&path)
        .arg(&png_prefix)
        .output()
        .expect("run pdftoppm");
    assert!(render.status.success(), "pdftoppm failed: {}", String::from_utf8_lossy(&render.stderr));
    assert!(render.stderr.is_empty(), "pdftoppm complained: {}", String::from_utf8_lossy(&render.stderr));
    let png = std::fs::read_dir(dir.path())
        .expect("list temp dir")
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "png"))
        .expect("pdftoppm wrote a PNG");
    assert!(png.metadata().expect("png metadata").len() > 1000);
    let text = String::from_utf8(text.stdout).expect("pdftotext wrote UTF-8");
    // Compare words, not line breaks: a sentence may wrap anywhere; no-break spaces count as spaces.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A chart the way plotters writes one: shapes plus `<text font-family="sans-serif">`.
fn chart_svg(label: &str) -> String {
    let mut svg = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="600" height="240" viewBox="0 0 600 240"><rect width="600" height="240" fill="#ffffff"/>"##,
    );
    let points: Vec<String> = (0..30).map(|i| format!("{},{}", 40 + i * 18, 60 + (i * 37 % 120))).collect();
    svg += &format!(r##"<polyline points="{}" fill="none" stroke="#14365d" stroke-width="2"/>"##, points.join(" "));
    svg += &format!(r##"<text x="40" y="30" font-family="sans-serif" font-size="14">{label}</text>"##);
    svg += r##"<text x="40" y="230" font-family="sans-serif" font-size="11">p95 latency, ms</text></svg>"##;
    svg
}

fn realistic() -> SlaDocument {
    let mut doc = example_document();
    doc.customer_name = "Meridian Dental Clinics Ltd".into();
    doc.sites = (1..=14)
        .map(|i| SiteRow {
            site_id: format!("c0107-s{i}"),
            hostname: format!("practice-{i}.meridian-dental.example"),
            cluster: if i % 2 == 0 { "fra-1".into() } else { "ams-2".into() },
            availability_percent: Some(100.0 - f64::from(i) * 0.0123),
            downtime_minutes: i64::from(i) * 5,
            maintenance_minutes: if i % 3 == 0 { 45 } else { 0 },
        })
        .collect();
    doc.incidents = (1..=45)
        .map(|i| IncidentRow {
            id: format!("INC-{}", 1000 + i),
            start: format!("2026-10-{:02} 03:{:02}", i % 28 + 1, i),
            end: format!("2026-10-{:02} 04:{:02}", i % 28 + 1, i),
            duration_minutes: 60 + i64::from(i),
            cause: if i % 4 == 0 {
                "DNS answered NXDOMAIN after a zone push".into()
            } else {
                "web server answered 503".into()
            },
            cluster: "fra-1".into(),
            in_maintenance: match i % 3 {
                0 => MaintenanceOverlap::Full,
                1 => MaintenanceOverlap::Partial,
                _ => MaintenanceOverlap::None,
            },
        })
        .collect();
    doc.charts.push(SvgChart {
        title: "Latency, p95".into(),
        description: "First byte over October".into(),
        svg: chart_svg("First byte over October"),
    });
    // What the report will really place: plotters' SVG, which carries its own title.
    let daily = chart::Chart::DailyAvailability(chart::DailyAvailability {
        title: "Daily availability, plotters".into(),
        days: (1..=31)
            .map(|d| (jiff::civil::date(2026, 10, d), (d != 9).then_some(if d == 14 { 99.28 } else { 99.99 })))
            .collect(),
        target_percent: 99.9,
        partial: Vec::new(),
    });
    let svg = chart::render_svg(&daily, chart::ChartSize { width: 640, height: 260 }).expect("plotters chart");
    let description = "Availability per day, 1 to 31 October: lowest 99.28 % on 14 October; target 99.9 %";
    doc.charts.push(SvgChart { title: String::new(), description: description.into(), svg });
    doc
}

#[test]
fn a_realistic_report_reads_back() {
    let pdf = render_sla_pdf(&realistic(), &Branding::default()).expect("render");
    assert!(pdf.starts_with(b"%PDF-"));
    if !poppler_available() {
        return;
    }
    let text = read_back("realistic", &pdf);
    for expected in [
        "Meridian Dental Clinics Ltd",
        "October 2026",
        "99.871%",
        "99.9%",
        "a 10% credit of EUR 2.00 applies",
        "INC-1001",
        "INC-1045",
        "practice-14.meridian-dental.example",
        "EUR 19.90",
        // Chart text survives only if usvg found the embedded font.
        "First byte over October",
        "p95 latency, ms",
        "Daily availability, plotters",
        "How availability is measured",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    let pages = text.matches("Page ").count();
    assert!(pages >= 3, "the incidents should span pages:\n{text}");
    assert!(text.contains(&format!("Page {pages} of {pages}")), "{text}");
}

/// `pdfinfo ARGS file` on the PDF; stdout. Poppler 22 prints a spurious "Suspects object is
/// wrong type (boolean)" for the (valid) boolean it reads; any other complaint fails.
fn pdfinfo(pdf: &[u8], args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf).expect("write pdf");
    let out = Command::new("pdfinfo").args(args).arg(&path).output().expect("run pdfinfo");
    assert!(out.status.success(), "pdfinfo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr.lines().filter(|l| !l.contains("Suspects object is wrong type")).collect();
    assert!(complaints.is_empty(), "pdfinfo {args:?} complained: {complaints:?}");
    String::from_utf8(out.stdout).expect("pdfinfo wrote UTF-8")
}

/// One element of `pdfinfo -struct-text` output: its type ("Table", "TH", "H1") and the text
/// lines and elements under it.
#[derive(Debug, Default)]
struct Element {
    kind: String,
    texts: Vec<String>,
    children: Vec<Element>,
}

impl Element {
    fn all(&self) -> Vec<&Element> {
        let mut found = vec![self];
        for child in &self.children {
            found.extend(child.all());
        }
        found
    }

    fn text(&self) -> String {
        self.all().iter().flat_map(|e| e.texts.iter().cloned()).collect::<Vec<_>>().join(" ")
    }

    fn kinds(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.kind.as_str()).collect()
    }
}

/// Parses the indented tree `pdfinfo -struct-text` prints: two spaces per level, an element
/// line starts with its type, a quoted line is text, attribute lines (`/Scope /Column`) skipped.
fn structure_tree(listing: &str) -> Element {
    let mut stack: Vec<(usize, Element)> = vec![(0, Element { kind: "root".into(), ..Element::default() })];
    for line in listing.lines().filter(|l| !l.trim().is_empty()) {
        let depth = line.len() - line.trim_start().len();
        let content = line.trim();
        if content.starts_with('/') {
            continue;
        }
        if let Some(text) = content.strip_prefix('"') {
            stack.last_mut().expect("root").1.texts.push(text.trim_end_matches('"').to_string());
            continue;
        }
        while stack.len() > 1 && stack.last().expect("root").0 >= depth {
            let (_, done) = stack.pop().expect("element");
            stack.last_mut().expect("root").1.children.push(done);
        }
        let kind = content.split([' ', ':']).next().unwrap_or_default().to_string();
        stack.push((depth, Element { kind, ..Element::default() }));
    }
    while stack.len() > 1 {
        let (_, done) = stack.pop().expect("element");
        stack.last_mut().expect("root").1.children.push(done);
    }
    stack.pop().expect("root").1
}

#[test]
fn the_pdf_is_tagged_for_screen_readers() {
    let doc = realistic();
    let pdf = render_sla_pdf(&doc, &Branding::default()).expect("render");
    // The text alternative of the plotters chart, as the figure's /Alt string.
    let alt = "/Alt(Availability per day, 1 to 31 October: lowest 99.28 % on 14 October; target 99.9 %)";
    assert!(pdf.windows(alt.len()).any(|w| w == alt.as_bytes()), "{alt} missing from the PDF");
    assert!(pdf.windows(21).any(|w| w == b"/DisplayDocTitle true"), "viewers show the title, not the file name");
    if !poppler_available() {
        return;
    }
    let info = pdfinfo(&pdf, &[]);
    assert!(info.lines().any(|l| l.starts_with("Tagged:") && l.ends_with("yes")), "{info}");
    assert!(
        info.lines().any(|l| l.starts_with("Title:")
            && l.ends_with("Service level report — Meridian Dental Clinics Ltd — October 2026")),
        "{info}"
    );
    let root = structure_tree(&pdfinfo(&pdf, &["-struct-text"]));
    let document = root.children.first().expect("a Document element");
    assert_eq!(document.kind, "Document");

    // The document title is the first element and the only H1; sections are H2.
    let first = document.children.first().expect("content");
    assert_eq!((first.kind.as_str(), first.text().as_str()), ("H1", "Service level report"));
    let headings: Vec<String> = document
        .children
        .iter()
        .filter(|e| e.kind.starts_with('H'))
        .map(|e| format!("{} {}", e.kind, e.text()))
        .collect();
    for expected in
        ["H2 Service credit", "H2 Sites", "H2 Incidents", "H2 Latency, p95", "H2 How availability is measured"]
    {
        assert!(headings.iter().any(|h| h == expected), "{expected:?} not in {headings:?}");
    }
    assert_eq!(headings.iter().filter(|h| h.starts_with("H1")).count(), 1, "{headings:?}");

    // Sites: a header row of TH cells, then one row of TD cells per site.
    let tables: Vec<&Element> = document.children.iter().filter(|e| e.kind == "Table").collect();
    let sites = tables.iter().find(|t| t.text().contains("c0107-s1")).expect("the sites table");
    assert!(sites.children.iter().all(|r| r.kind == "TR"), "{:?}", sites.kinds());
    let header = &sites.children[0];
    assert_eq!(header.kinds(), ["TH"; 6]);
    let titles: Vec<String> = header.children.iter().map(Element::text).collect();
    assert_eq!(titles, ["Site", "Hostname", "Cluster", "Availability", "Downtime", "Maintenance"]);
    assert_eq!(sites.children.len(), 1 + doc.sites.len());
    let first_row: Vec<String> = sites.children[1].children.iter().map(Element::text).collect();
    assert_eq!(first_row[..2], ["c0107-s1", "practice-1.meridian-dental.example"]);
    assert_eq!(sites.children[1].kinds(), ["TD"; 6]);

    // The incidents span pages: the header repeated on later pages is pagination, not a row.
    let incidents = tables.iter().find(|t| t.text().contains("INC-1001")).expect("the incidents table");
    assert_eq!(incidents.children.len(), 1 + doc.incidents.len());
    assert_eq!(incidents.children.iter().filter(|r| r.kinds().contains(&"TH")).count(), 1);

    // Each chart is one figure; its drawn text belongs to it, not to the reading order.
    let figures = document.children.iter().filter(|e| e.kind == "Figure").count();
    assert_eq!(figures, doc.charts.len());

    // Running header and footer are artifacts: in the text a viewer shows, not in the structure.
    let read = document.text();
    assert!(!read.contains("Page 1 of"), "the footer is tagged as content");
    assert!(read.contains("INC-1045") && read.contains("How availability is measured"));
}

#[test]
fn hostile_strings_do_not_break_the_file() {
    let mut doc = realistic();
    doc.customer_name =
        "<script>alert('x')</script> & %PDF-1.7 trailer << /Root >> \u{0}\u{7}\u{1b}[31m 🚀🔥 Ünïcødé".into();
    doc.contact = String::new();
    doc.plan_name = "\u{202E}nalp".into();
    doc.time_zone = String::new();
    doc.sites[0].hostname = "a".repeat(5000);
    doc.sites[1].hostname = "שלום-עולם.example מרכז 42".into();
    doc.sites[2].hostname = "مرحبا.example".into();
    doc.sites[3].hostname = "👨\u{200D}👩\u{200D}👧.example".into();
    doc.sites[4].site_id = String::new();
    doc.sites[5].cluster = ")\\(\r\n".into();
    doc.incidents[0].cause = "word ".repeat(300);
    doc.goodwill.push(GoodwillLine {
        incident_id: "\u{FEFF}".into(),
        text: "endstream endobj %%EOF".into(),
        amount_cents: i64::MAX,
        currency: "<EUR>".into(),
    });
    doc.credit = Some(CreditLine { tier: "\t".into(), percent: f64::NAN, amount_cents: -1, currency: String::new() });
    doc.availability_percent = Some(f64::INFINITY);
    doc.sites[6].availability_percent = None;
    doc.coverage_percent = None;
    let pdf = render_sla_pdf(&doc, &Branding::default()).expect("render");
    if !poppler_available() {
        return;
    }
    let text = read_back("hostile", &pdf);
    assert!(text.contains("<script>alert('x')</script> & %PDF-1.7 trailer"), "{text}");
    assert!(text.contains('\u{FFFD}'), "missing glyphs show a placeholder:\n{text}");
    assert!(text.contains("endstream endobj %%EOF"), "{text}");
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "control characters are stripped");
    assert!(text.contains("aaaaaaaaaa"), "{text}");
}

#[test]
fn german_branding_changes_wording_and_numbers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let toml = std::fs::read_to_string(reports.join("branding.toml")).expect("read branding");
    let toml = toml.replace("# language_file", "language_file");
    std::fs::write(dir.path().join("branding.toml"), toml).expect("write");
    std::fs::create_dir(dir.path().join("lang")).expect("mkdir");
    std::fs::copy(reports.join("lang/de.toml"), dir.path().join("lang/de.toml")).expect("copy");
    std::fs::copy(reports.join("logo.svg"), dir.path().join("logo.svg")).expect("copy");
    let branding = Branding::load(Some(dir.path())).expect("load");
    let pdf = render_sla_pdf(&example_document(), &branding).expect("render");
    if !poppler_available() {
        return;
    }
    let text = read_back("german", &pdf);
    for expected in [
        "Kestrel Hosting",
        "Verfügbarkeit",
        "99,871 %",
        "2,00 EUR",
        "Seite 1 von",
        "Ziel verfehlt".to_uppercase().as_str(),
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
}

#[test]
fn the_example_branding_renders() {
    let branding = Branding::load(Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("reports"))).expect("load");
    let mut doc = example_document();
    doc.met = true;
    doc.availability_percent = Some(99.98);
    doc.credit = None;
    let pdf = render_sla_pdf(&doc, &branding).expect("render");
    if !poppler_available() {
        return;
    }
    let text = read_back("example", &pdf);
    assert!(text.contains("99.98% — your 99.9% target was met"), "{text}");
    assert!(text.contains("No service credit is due"), "{text}");
}

#[test]
fn a_broken_chart_is_an_error_naming_it() {
    let mut doc = example_document();
    doc.charts.push(SvgChart { title: "Latency".into(), description: String::new(), svg: "<svg".into() });
    let error = render_sla_pdf(&doc, &Branding::default()).expect_err("broken SVG");
    assert!(matches!(error, PdfError::Chart { index: 1, .. }), "{error}");
    assert!(error.to_string().contains("Latency"));
}

#[test]
fn an_empty_unmonitored_report_still_reads_well() {
    let mut doc = example_document();
    doc.customer_name = String::new();
    doc.availability_percent = None;
    doc.coverage_percent = None;
    doc.met = false;
    doc.credit = None;
    doc.goodwill.clear();
    doc.sites.clear();
    doc.incidents.clear();
    doc.charts.clear();
    let pdf = render_sla_pdf(&doc, &Branding::default()).expect("render");
    if !poppler_available() {
        return;
    }
    let text = read_back("empty", &pdf);
    for expected in [
        "c0042",
        "No monitored time in this period",
        "No sites were monitored",
        "No incident affected your sites",
        "Page 1 of 1",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
}

/// The method note and the key figures say what a person reads: no "location(s)", no "once 1
/// consecutive checks"; several sites get the site-time note beside the wall-clock downtime.
#[test]
fn method_note_and_downtime_read_as_plain_sentences() {
    if !poppler_available() {
        return;
    }
    let branding = Branding::default();
    let mut doc = example_document();
    doc.method.vantages = 1;
    doc.method.confirm_after = 1;
    let text = read_back("one-location", &render_sla_pdf(&doc, &branding).expect("render"));
    assert!(!text.contains("locations agree"), "one location needs no quorum: {text}");
    assert!(text.contains("from one monitoring location."), "{text}");
    assert!(text.contains("counts as down as soon as a check fails;"), "{text}");
    assert!(!text.contains("location(s)") && !text.contains("1 consecutive"), "{text}");
    // Wall-clock downtime in the key figures, the four sites' own downtime added up beside it.
    assert!(
        text.contains(
            "Downtime is the time in which any of your 4 sites was down; added up site by site it comes to 4 h 50 min"
        ),
        "{text}"
    );

    doc.method.vantages = 3;
    doc.method.quorum = 2;
    doc.method.confirm_after = 2;
    let text = read_back("three-locations", &render_sla_pdf(&doc, &branding).expect("render"));
    assert!(text.contains("from 3 monitoring locations."), "{text}");
    assert!(text.contains("once 2 consecutive checks fail;"), "{text}");
    assert!(text.contains("A site counts as down when 2 of 3 monitoring locations agree"), "{text}");

    // Too little measured to judge: no verdict, no credit, the account manager reviews it.
    let mut sparse = doc.clone();
    sparse.coverage_percent = Some(6.45);
    sparse.min_coverage_percent = Some(90.0);
    let text = read_back("low-coverage", &render_sla_pdf(&sparse, &branding).expect("render"));
    assert!(
        text.contains(
            "measured over only 6.45% of the period; 90% is needed to judge your 99.9% target, so no credit is computed"
        ),
        "{text}"
    );
    assert!(!text.contains("credit of") && !text.contains("applies"), "{text}");

    // One site: its downtime is the customer's; no note.
    doc.sites.truncate(1);
    doc.site_count = 1;
    let text = read_back("one-site", &render_sla_pdf(&doc, &branding).expect("render"));
    assert!(!text.contains("added up site by site"), "{text}");
}
