//! Branding of the SLA PDF: the provider's name, address, logo, colours and the wording of every
//! fixed phrase. Read at run time from `reports/branding.toml` (and the language file it names),
//! so a provider restyles its reports without recompiling; a neutral default is built in.
//! Input to `render_sla_pdf` next to the computed figures.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where a branding problem is: the file, the key, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandingError {
    pub file: PathBuf,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for BrandingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for BrandingError {}

impl BrandingError {
    fn new(file: &Path, field: Option<&str>, message: impl Into<String>) -> Self {
        BrandingError { file: file.to_path_buf(), field: field.map(str::to_string), message: message.into() }
    }
}

/// An sRGB colour, from `"#1f4e79"` or `"#17a"` in the branding file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub fn parse(hex: &str) -> Option<Rgb> {
        let digits = hex.strip_prefix('#')?;
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |s: &str| u8::from_str_radix(s, 16).ok();
        match digits.len() {
            6 => Some(Rgb(channel(&digits[0..2])?, channel(&digits[2..4])?, channel(&digits[4..6])?)),
            3 => {
                let short = |i: usize| channel(&digits[i..i + 1]).map(|v| v * 17);
                Some(Rgb(short(0)?, short(1)?, short(2)?))
            }
            _ => None,
        }
    }

    /// This colour mixed with white; `amount` 0 is white, 1 is the colour itself.
    pub fn tint(self, amount: f32) -> Rgb {
        let mix = |c: u8| (255.0 - (255.0 - f32::from(c)) * amount.clamp(0.0, 1.0)).round() as u8;
        Rgb(mix(self.0), mix(self.1), mix(self.2))
    }
}

/// The colours a report is drawn with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colours {
    /// Headings, rules, the title.
    pub primary: Rgb,
    /// The verdict when the target was met.
    pub met: Rgb,
    /// The verdict when the target was missed.
    pub missed: Rgb,
    pub text: Rgb,
    /// Labels, footers, secondary text.
    pub muted: Rgb,
    /// Table lines.
    pub rule: Rgb,
    /// Background of every other table row and of table headers.
    pub stripe: Rgb,
}

impl Default for Colours {
    fn default() -> Self {
        Colours {
            primary: Rgb(0x1f, 0x3a, 0x5f),
            met: Rgb(0x1e, 0x7b, 0x4a),
            missed: Rgb(0xb4, 0x2b, 0x1f),
            text: Rgb(0x1d, 0x23, 0x2b),
            muted: Rgb(0x5f, 0x6b, 0x7a),
            rule: Rgb(0xd5, 0xdb, 0xe3),
            stripe: Rgb(0xf4, 0xf6, 0xf9),
        }
    }
}

/// The provider's logo as found in the branding folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logo {
    Svg(String),
    Png(Vec<u8>),
}

macro_rules! phrases {
    ($($key:ident: $default:literal $([$($placeholder:ident),*])?;)*) => {
        /// Every fixed phrase of the report, with English defaults. `{name}` placeholders are
        /// filled in when the report is drawn; which ones a phrase may use is checked on load.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Phrases {
            $(pub $key: String,)*
        }

        impl Default for Phrases {
            fn default() -> Self {
                Phrases { $($key: $default.to_string(),)* }
            }
        }

        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct PhrasesFile {
            $(#[serde(default)] $key: Option<String>,)*
        }

        impl Phrases {
            fn overlay(&mut self, file: PhrasesFile) {
                $(if let Some(value) = file.$key { self.$key = value; })*
            }

            /// (key, text, placeholders the text may use)
            fn entries(&self) -> Vec<(&'static str, &str, &'static [&'static str])> {
                vec![$((stringify!($key), self.$key.as_str(), &[$($(stringify!($placeholder)),*)?]),)*]
            }
        }
    };
}

phrases! {
    document_title: "Service level report";
    prepared_for: "Prepared for";
    customer_id: "Customer ID";
    plan: "Plan";
    contact: "Contact";
    period: "Period";
    time_zone: "Time zone";
    generated: "Generated";
    target_met: "Target met";
    target_missed: "Target missed";
    target_unknown: "No data";
    not_monitored: "n/a";
    verdict_met: "{availability} — your {target} target was met" [availability, target];
    verdict_missed: "{availability} — below your {target} target" [availability, target];
    verdict_unmonitored: "No monitored time in this period: availability against your {target} target cannot be stated"
        [target];
    verdict_low_coverage: "{availability} measured over only {coverage} of the period; {minimum} is needed to judge your {target} target, so no credit is computed and your account manager will review the period"
        [availability, target, coverage, minimum];
    verdict_missed_credit: "{availability} — below your {target} target; a {credit_percent} credit of {credit_amount} applies"
        [availability, target, credit_percent, credit_amount];
    availability: "Availability";
    target: "Target";
    downtime: "Downtime counted";
    maintenance_excluded: "Maintenance downtime, excluded";
    site_time_note: "Downtime is the time in which any of your {sites} sites was down; added up site by site it comes to {site_time} (see Sites)."
        [sites, site_time];
    coverage: "Monitoring coverage";
    section_credit: "Service credit";
    credit_line: "{tier}: {credit_percent} of the monthly fee, {credit_amount}" [tier, credit_percent, credit_amount];
    no_credit: "No service credit is due for this period.";
    section_goodwill: "Goodwill credits";
    goodwill_intro: "Granted in addition to the service credit above, for the incidents named.";
    col_credit: "Credit";
    col_amount: "Amount";
    section_sites: "Sites";
    col_site: "Site";
    col_hostname: "Hostname";
    col_cluster: "Cluster";
    col_availability: "Availability";
    col_downtime: "Downtime";
    col_maintenance: "Maintenance";
    no_sites: "No sites were monitored for this customer in this period.";
    section_incidents: "Incidents";
    no_incidents: "No incident affected your sites in this period.";
    col_incident: "Incident";
    col_start: "Start";
    col_end: "End";
    col_duration: "Duration";
    col_cause: "Cause";
    col_in_maintenance: "In maintenance";
    in_maintenance_none: "no";
    in_maintenance_partial: "partly";
    in_maintenance_full: "yes";
    section_charts: "Charts";
    section_method: "How availability is measured";
    locations_one: "one monitoring location";
    locations_many: "{count} monitoring locations" [count];
    confirmation_one: "as soon as a check fails";
    confirmation_many: "once {count} consecutive checks fail" [count];
    method: "Every site is checked every {interval} from {locations}. A site counts as down {confirmation}; the outage runs from the first failed check to the first successful one. Downtime inside an announced maintenance window is listed but excluded; downtime past the end of the window counts. Time without a valid check is left out of the calculation and shown as monitoring coverage. Availability is the monitored time without counted downtime, divided by the monitored time, over all your sites."
        [interval, locations, confirmation, vantages, confirm_after];
    quorum_rule: "A site counts as down when {needed} of {count} monitoring locations agree, each confirming the failure by its own checks; a failure fewer locations see is a problem of their own network path and is not counted, and with staggered checks an outage can start or end up to one check interval later than the first location saw it."
        [needed, count];
    page_of: "Page {page} of {pages}" [page, pages];
    percent: "{value}%" [value];
    money: "{currency} {amount}" [currency, amount];
    decimal_separator: ".";
    thousands_separator: ",";
    unit_days: "d";
    unit_hours: "h";
    unit_minutes: "min";
    unit_seconds: "s";
}

/// Everything about a report that is the provider's, not the customer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    pub provider_name: String,
    /// Address and contact lines, printed in the footer of every page.
    pub footer: Vec<String>,
    pub logo: Option<Logo>,
    pub colours: Colours,
    pub phrases: Phrases,
    /// Language tag written into the PDF (`en`, `de`, ...), for screen readers.
    pub language: String,
}

impl Default for Branding {
    /// Neutral branding for a provider that has not written its own yet.
    fn default() -> Self {
        Branding {
            provider_name: "Hosting provider".to_string(),
            footer: Vec::new(),
            logo: None,
            colours: Colours::default(),
            phrases: Phrases::default(),
            language: "en".to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrandingFile {
    provider: ProviderFile,
    #[serde(default)]
    colours: ColoursFile,
    /// A language file (`lang/de.toml`), relative to the branding file.
    language_file: Option<PathBuf>,
    /// Single phrases overriding the language file.
    #[serde(default)]
    phrases: PhrasesFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    name: String,
    #[serde(default)]
    footer: Vec<String>,
    logo: Option<PathBuf>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColoursFile {
    primary: Option<String>,
    met: Option<String>,
    missed: Option<String>,
    text: Option<String>,
    muted: Option<String>,
    rule: Option<String>,
    stripe: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LanguageFile {
    /// Language tag for the PDF's metadata.
    language: String,
    #[serde(default)]
    phrases: PhrasesFile,
}

impl Branding {
    /// Reads branding from `path` (a `branding.toml`, or a folder holding one), or returns the
    /// built-in default when `path` is `None`. Logo and language file paths are relative to the
    /// branding file. Every error names the file and key.
    pub fn load(path: Option<&Path>) -> Result<Branding, BrandingError> {
        let Some(path) = path else { return Ok(Branding::default()) };
        let file = if path.is_dir() { path.join("branding.toml") } else { path.to_path_buf() };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let raw: BrandingFile = read_toml(&file)?;

        let mut branding = Branding::default();
        if raw.provider.name.trim().is_empty() {
            return Err(BrandingError::new(&file, Some("provider.name"), "must not be empty"));
        }
        branding.provider_name = raw.provider.name;
        branding.footer = raw.provider.footer;
        if let Some(logo) = raw.provider.logo {
            branding.logo = Some(load_logo(&dir.join(logo), &file)?);
        }

        let colours = &mut branding.colours;
        for (field, slot, value) in [
            ("primary", &mut colours.primary, raw.colours.primary),
            ("met", &mut colours.met, raw.colours.met),
            ("missed", &mut colours.missed, raw.colours.missed),
            ("text", &mut colours.text, raw.colours.text),
            ("muted", &mut colours.muted, raw.colours.muted),
            ("rule", &mut colours.rule, raw.colours.rule),
            ("stripe", &mut colours.stripe, raw.colours.stripe),
        ] {
            if let Some(value) = value {
                *slot = Rgb::parse(&value).ok_or_else(|| {
                    let message = format!("expected a colour like \"#1f3a5f\", found {value:?}");
                    BrandingError::new(&file, Some(&format!("colours.{field}")), message)
                })?;
            }
        }

        if let Some(language_file) = raw.language_file {
            let language_path = dir.join(language_file);
            let language: LanguageFile = read_toml(&language_path)?;
            branding.language = language.language;
            branding.phrases.overlay(language.phrases);
            check_placeholders(&branding.phrases, &language_path)?;
        }
        branding.phrases.overlay(raw.phrases);
        check_placeholders(&branding.phrases, &file)?;
        Ok(branding)
    }
}

fn read_toml<T: serde::de::DeserializeOwned>(file: &Path) -> Result<T, BrandingError> {
    let text = std::fs::read_to_string(file).map_err(|e| BrandingError::new(file, None, e.to_string()))?;
    toml::from_str(&text).map_err(|e| {
        // toml's message already quotes the line and points at the key.
        BrandingError::new(file, None, e.to_string().trim_end().to_string())
    })
}

fn load_logo(path: &Path, branding_file: &Path) -> Result<Logo, BrandingError> {
    let bytes = std::fs::read(path)
        .map_err(|e| BrandingError::new(branding_file, Some("provider.logo"), format!("{}: {e}", path.display())))?;
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("svg") => {
            let text = String::from_utf8(bytes)
                .map_err(|_| BrandingError::new(path, None, "an SVG logo must be UTF-8 text".to_string()))?;
            // Parse now so a broken logo fails here, naming the file, not halfway through a batch.
            usvg::Tree::from_str(&text, &usvg::Options::default())
                .map_err(|e| BrandingError::new(path, None, format!("not a usable SVG: {e}")))?;
            Ok(Logo::Svg(text))
        }
        Some("png") => {
            krilla::image::Image::from_png(bytes.clone().into(), true)
                .map_err(|e| BrandingError::new(path, None, format!("not a usable PNG: {e}")))?;
            Ok(Logo::Png(bytes))
        }
        _ => Err(BrandingError::new(branding_file, Some("provider.logo"), "expected an .svg or .png file")),
    }
}

/// Every `{name}` in a phrase must be one the report fills in; a typo would otherwise be printed
/// to customers verbatim.
fn check_placeholders(phrases: &Phrases, file: &Path) -> Result<(), BrandingError> {
    for (key, text, allowed) in phrases.entries() {
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(BrandingError::new(file, Some(&format!("phrases.{key}")), "a '{' is never closed"));
            };
            let name = &after[..close];
            if !allowed.contains(&name) {
                let expected = if allowed.is_empty() {
                    "this phrase takes no placeholders".to_string()
                } else {
                    format!(
                        "expected one of {}",
                        allowed.iter().map(|a| format!("{{{a}}}")).collect::<Vec<_>>().join(", ")
                    )
                };
                let message = format!("unknown placeholder {{{name}}}: {expected}");
                return Err(BrandingError::new(file, Some(&format!("phrases.{key}")), message));
            }
            rest = &after[close + 1..];
        }
    }
    Ok(())
}

/// Fills `{name}` placeholders; `check_placeholders` has made sure the names are known.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match values.iter().find(|(key, _)| *key == name) {
                    Some((_, value)) => out.push_str(value),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    #[test]
    fn colours_parse_long_and_short_forms() {
        assert_eq!(Rgb::parse("#1f3a5f"), Some(Rgb(0x1f, 0x3a, 0x5f)));
        assert_eq!(Rgb::parse("#fff"), Some(Rgb(255, 255, 255)));
        assert_eq!(Rgb::parse("1f3a5f"), None);
        assert_eq!(Rgb::parse("#12345g"), None);
        assert_eq!(Rgb::parse("#ééé"), None);
    }

    #[test]
    fn placeholders_are_filled() {
        let text = fill("{a} and {b}, {unknown} {", &[("a", "1"), ("b", "2")]);
        assert_eq!(text, "1 and 2, {unknown} {");
    }

    #[test]
    fn the_example_branding_and_german_wording_load() {
        let branding = Branding::load(Some(&repo("reports"))).expect("reports/branding.toml loads");
        assert!(matches!(branding.logo, Some(Logo::Svg(_))));
        assert!(!branding.footer.is_empty());

        let dir = tempfile::tempdir().expect("temp dir");
        let toml = std::fs::read_to_string(repo("reports/branding.toml")).expect("read example");
        let german = toml.replace("# language_file = \"lang/de.toml\"", "language_file = \"lang/de.toml\"");
        assert_ne!(german, toml, "the example mentions the German language file");
        std::fs::write(dir.path().join("branding.toml"), german).expect("write");
        std::fs::create_dir(dir.path().join("lang")).expect("mkdir");
        std::fs::copy(repo("reports/lang/de.toml"), dir.path().join("lang/de.toml")).expect("copy");
        std::fs::copy(repo("reports/logo.svg"), dir.path().join("logo.svg")).expect("copy");
        let branding = Branding::load(Some(dir.path())).expect("German branding loads");
        assert_eq!(branding.language, "de");
        assert_eq!(branding.phrases.decimal_separator, ",");
    }

    #[test]
    fn the_english_language_file_lists_the_defaults() {
        // reports/lang/en.toml is the translators' template: it must match the built-in wording.
        let text = std::fs::read_to_string(repo("reports/lang/en.toml")).expect("read en.toml");
        let file: LanguageFile = toml::from_str(&text).expect("en.toml parses");
        let mut phrases = Phrases::default();
        phrases.overlay(file.phrases);
        assert_eq!(phrases, Phrases::default());
        let defaults = Phrases::default();
        for (key, _, _) in defaults.entries() {
            assert!(text.contains(&format!("\n{key} = ")), "en.toml lacks {key}");
        }
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("branding.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).expect("write");
            Branding::load(Some(&file)).expect_err("must fail").to_string()
        };
        let error = load("[provider]\nname = \"X\"\n[colours]\nprimary = \"blue\"\n");
        assert!(error.contains("branding.toml: colours.primary: expected a colour"), "{error}");
        let error = load("[provider]\nname = \"X\"\nlogo_url = \"x\"\n");
        assert!(error.contains("branding.toml") && error.contains("logo_url"), "{error}");
        let error = load("[provider]\nname = \"X\"\n[phrases]\nverdict_met = \"{availabilty}\"\n");
        assert!(error.contains("phrases.verdict_met: unknown placeholder {availabilty}"), "{error}");
        let error = load("[provider]\nname = \"X\"\nlogo = \"missing.svg\"\n");
        assert!(error.contains("provider.logo") && error.contains("missing.svg"), "{error}");
        let error = load("[provider]\nname = \" \"\n");
        assert!(error.contains("provider.name: must not be empty"), "{error}");
    }
}
