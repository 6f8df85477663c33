//! Pages laid out by headless Chromium at a chosen width, measured by a script in the page.
//!
//! Headless Chromium makes no window narrower than 500 px, so the page (a copy with the probe
//! script) is shown in a frame exactly as wide as asked: the frame is its viewport for media
//! queries and layout. The probe writes its figures as `data-*` attributes on the outer page's
//! body, the document `--dump-dom` prints.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Measures the laid-out page: elements reaching past the viewport outside any
/// sideways-scrolling box, incident ids and times in table cells laid out on more than one line,
/// each chart's width, the page's width and the viewport's.
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
  const out = window.parent.document.body.dataset;
  out.wide = wide.join('|');
  out.wrapped = wrapped.join('|');
  out.page = document.documentElement.scrollWidth;
  out.viewport = width;
  out.charts = charts.join(',');
})();
</script>
"#;

/// What the probe found.
pub struct Layout {
    /// Elements past the viewport and not in a scroll box ("TABLE:612").
    pub wide: String,
    /// Ids and times on more than one line.
    pub wrapped: String,
    /// The page's width (more than the viewport: it scrolls sideways).
    pub page: u32,
    pub viewport: u32,
    /// Each chart's width.
    pub charts: Vec<u32>,
}

/// Chromium, or `None` after saying SKIPPED (a failure when `CI` is set).
pub fn chromium() -> Option<PathBuf> {
    let chromium = PathBuf::from("/usr/bin/chromium");
    if chromium.exists() {
        return Some(chromium);
    }
    assert!(std::env::var_os("CI").is_none(), "chromium is missing; CI must install it (.ci/run)");
    println!("SKIPPED: /usr/bin/chromium is not installed");
    None
}

/// Headless Chromium with a profile of its own, quiet: no network of its own, no sandbox (tests
/// run as root in CI), no scrollbars taking width.
pub fn command(chromium: &Path, profile: &Path) -> Command {
    let mut command = Command::new(chromium);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Lays `html` out `width` px wide (files beside `dir`'s others) and measures it.
pub fn layout(chromium: &Path, dir: &Path, html: &str, width: u32) -> Layout {
    std::fs::write(dir.join("layout.html"), html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let frame = dir.join(format!("frame-{width}.html"));
    std::fs::write(
        &frame,
        format!(
            "<!doctype html><html><body style=\"margin:0\"><iframe src=\"layout.html\" \
             style=\"width:{width}px;height:1600px;border:0\"></iframe></body></html>"
        ),
    )
    .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = command(chromium, profile.path())
        // The framed page may then write on the outer one (both are files).
        .arg("--allow-file-access-from-files")
        .arg(format!("--window-size={},1600", width.max(500)))
        .arg("--dump-dom")
        .arg(format!("file://{}", frame.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let attribute = |name: &str| {
        let key = format!("data-{name}=\"");
        let start = dom.find(&key).unwrap_or_else(|| panic!("{width} px: no {key} in {dom}")) + key.len();
        dom[start..start + dom[start..].find('"').unwrap()].to_string()
    };
    let charts = attribute("charts");
    Layout {
        wide: attribute("wide"),
        wrapped: attribute("wrapped"),
        page: attribute("page").parse().unwrap(),
        viewport: attribute("viewport").parse().unwrap(),
        charts: charts.split(',').filter(|w| !w.is_empty()).map(|w| w.parse().unwrap()).collect(),
    }
}
