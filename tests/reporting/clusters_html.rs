//! `report clusters --format html` on a phone and a desktop: the day of faults of
//! `reports::fault_day`, rendered, parsed, and laid out by headless Chromium at 390 and 1280 px.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixtures::ok;
use crate::reports::fault_day;

/// Measures the laid-out page and writes the findings into `<body data-*>`, which
/// `--dump-dom` prints: elements reaching past the viewport outside any sideways-scrolling box,
/// incident ids and times laid out on more than one line, and each chart's width.
const PROBE: &str = r#"<script>
(() => {
  const width = document.documentElement.clientWidth;
  const scrolls = el => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll') return true;
    }
    return false;
  };
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 1 && !scrolls(el)) wide.push(el.tagName + ':' + Math.round(r.right));
  }
  const token = /^([a-z0-9-]+-\d{8}T\d{4}|\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}.*)$/;
  const wrapped = [];
  for (const td of document.querySelectorAll('td')) {
    if (!token.test(td.textContent.trim())) continue;
    const range = document.createRange();
    range.selectNodeContents(td);
    const lines = new Set([...range.getClientRects()].map(q => Math.round(q.top)));
    if (lines.size > 1) wrapped.push(td.textContent.trim());
  }
  const charts = [...document.querySelectorAll('figure svg')].map(s => Math.round(s.getBoundingClientRect().width));
  document.body.dataset.wide = wide.join('|');
  document.body.dataset.wrapped = wrapped.join('|');
  document.body.dataset.page = document.documentElement.scrollWidth + '/' + width;
  document.body.dataset.charts = charts.join(',');
  // Laid out in a frame of the phone's width (see `dump_dom`): the figures go to the page
  // Chromium dumps.
  if (window.parent !== window) Object.assign(window.parent.document.body.dataset, document.body.dataset);
})();
</script>
"#;

fn attribute<'a>(dom: &'a str, name: &str) -> &'a str {
    let key = format!("data-{name}=\"");
    let start = dom.find(&key).unwrap_or_else(|| panic!("no {key} in the dumped page")) + key.len();
    &dom[start..start + dom[start..].find('"').unwrap()]
}

#[test]
fn cluster_page_fits_a_phone_and_names_its_charts() {
    let fleet = fault_day();
    let dir = fleet.dir();
    ok(&fleet.run(&["import", "--valid", "yes", dir.join("results.csv").to_str().unwrap()]));
    let html = ok(&fleet.run(&["report", "clusters", "--period", "2026-10-01", "--format", "html"]));
    assert!(html.contains("b-20261001T0100"), "the overrun incident is listed");

    // Every inline SVG is an image with a title and a text alternative saying its message.
    let svgs: Vec<&str> = html.split("<svg").skip(1).map(|rest| rest.split("</svg>").next().unwrap()).collect();
    assert_eq!(svgs.len(), 4, "two charts per cluster");
    for svg in &svgs {
        let text = format!("<svg{svg}</svg>");
        let doc = roxmltree::Document::parse(&text).expect("inline SVG is well-formed");
        let root = doc.root_element();
        assert_eq!(root.attribute("role"), Some("img"), "{}", &text[..200]);
        let label = root.attribute("aria-label").unwrap_or_default();
        let title = root.children().find(|n| n.has_tag_name("title")).and_then(|t| t.text()).unwrap_or_default();
        let desc = root.children().find(|n| n.has_tag_name("desc")).and_then(|t| t.text()).unwrap_or_default();
        assert!(!title.is_empty() && !label.is_empty() && label == desc, "{title:?} {label:?} {desc:?}");
    }
    assert!(
        html.contains(
            "aria-label=\"Sites down on b over 2026-10-01: at most 5 of 5 at once; 1 incident, 1 maintenance window.\""
        ),
        "the timeline says its message"
    );
    // Under the latency charts, the strip of failed checks: b's hours of refused connections
    // are all failed, and a day with a run every minute has no bucket without data.
    assert!(html.contains("2026-10-01 06:00 – 07:00 UTC: all 300 checks failed"), "b's strip");
    // The chart's text alternative says it too.
    assert!(html.contains("on b over 2026-10-01; of 24 hours, all checks failed in 11."), "b's chart in words");
    assert!(html.contains("on a over 2026-10-01; of 24 hours, some failed in 2."), "a's chart in words");
    assert!(html.contains("2026-10-01 18:00 – 19:00 UTC: no failed checks (of 600)"), "a's strip");
    assert!(!html.contains("UTC: no data"));

    let chromium = PathBuf::from("/usr/bin/chromium");
    if !chromium.exists() {
        assert!(std::env::var_os("CI").is_none(), "chromium is missing; CI must install it (.ci/run)");
        println!("SKIPPED: /usr/bin/chromium is not installed");
        return;
    }
    let page = dir.join("clusters.html");
    std::fs::write(&page, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    for (width, chart_min) in [(390, 640), (1280, 640)] {
        let dom = dump_dom(&chromium, &page, width);
        assert_eq!(attribute(&dom, "wide"), "", "{width} px: wider than the screen and not scrollable");
        assert_eq!(attribute(&dom, "wrapped"), "", "{width} px: ids and times on more than one line");
        let (page_width, viewport) = attribute(&dom, "page").split_once('/').unwrap();
        assert_eq!(page_width, viewport, "{width} px: the page scrolls sideways");
        assert_eq!(viewport, width.to_string(), "{width} px: laid out at the width asked for");
        let charts: Vec<u32> = attribute(&dom, "charts").split(',').map(|w| w.parse().unwrap()).collect();
        assert_eq!(charts.len(), 4);
        assert!(charts.iter().all(|&w| w >= chart_min), "{width} px: charts {charts:?} narrower than {chart_min} px");
    }
}

/// The page laid out `width` px wide, with what its probe found. Headless Chromium makes no
/// window narrower than 500 px, so the page is shown in a frame of exactly `width` px (its
/// viewport for media queries and layout) inside a window as wide, and the probe copies its
/// figures to the outer page, which is the one dumped.
fn dump_dom(chromium: &Path, page: &Path, width: u32) -> String {
    let frame = page.with_file_name(format!("frame-{width}.html"));
    let name = page.file_name().unwrap().to_str().unwrap();
    std::fs::write(
        &frame,
        format!(
            "<!doctype html><html><body style=\"margin:0\"><iframe src=\"{name}\" \
             style=\"width:{width}px;height:1600px;border:0\"></iframe></body></html>"
        ),
    )
    .unwrap();
    let page = frame.as_path();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            // The frame's page may then be read by the outer one (both are files).
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={},1600", width.max(500)))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
