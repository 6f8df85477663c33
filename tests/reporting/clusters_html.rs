//! `report clusters --format html` on a phone and a desktop: the day of faults of
//! `reports::fault_day`, rendered, parsed, and laid out by headless Chromium at 390 and 1280 px.

use crate::browser;
use crate::fixtures::ok;
use crate::reports::fault_day;

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

    let Some(chromium) = browser::chromium() else { return };
    for (width, chart_min) in [(390, 640), (1280, 640)] {
        let layout = browser::layout(&chromium, dir, &html, width);
        assert_eq!(layout.wide, "", "{width} px: wider than the screen and not scrollable");
        assert_eq!(layout.wrapped, "", "{width} px: ids and times on more than one line");
        assert_eq!(layout.viewport, width, "{width} px: laid out at the width asked for");
        assert_eq!(layout.page, layout.viewport, "{width} px: the page scrolls sideways");
        assert_eq!(layout.charts.len(), 4);
        assert!(
            layout.charts.iter().all(|&w| w >= chart_min),
            "{width} px: charts {:?} narrower than {chart_min} px",
            layout.charts
        );
    }
}
