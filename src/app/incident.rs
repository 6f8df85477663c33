//! `fleetprobe incident update ID "text"`: people post what they know about an incident (and
//! optionally its title and cause), in the manner of the hourly updates providers post during
//! long outages. Updates are stored with the incident and shown on the status page and its feed.

use super::{Context, Error, Result};
use crate::fleet::Fleet;
use crate::store::IncidentUpdate;

/// Longest update text, in characters.
pub const MAX_TEXT: usize = 4000;
/// Longest title, in characters.
pub const MAX_TITLE: usize = 120;
/// Longest cause, in characters.
pub const MAX_CAUSE: usize = 1000;

/// An update as posted: the incident's id, the text, optionally a new title and the cause.
#[derive(Debug, Clone)]
pub struct UpdateRequest {
    /// The incident's id: its cluster and start in UTC, e.g. fra-1-20261014T2200.
    pub id: String,
    pub text: String,
    pub title: Option<String>,
    pub cause: Option<String>,
    /// When the update was posted; now when not given.
    pub at: Option<jiff::Timestamp>,
}

/// `fleetprobe incident update`: validates the update and stores it with the incident.
pub fn update(context: &Context, request: &UpdateRequest) -> Result<()> {
    let fleet = &context.fleet;
    let update = validate(fleet, request)?;
    let mut store = context.open_existing_store_for_writing()?;
    if !incident_exists(fleet, store.as_ref(), &update.incident_id)? {
        eprintln!(
            "fleetprobe: warning: the store shows no incident {} (yet); the update is kept and appears once it does",
            update.incident_id
        );
    }
    store.add_incident_update(&update)?;
    eprintln!(
        "fleetprobe: update on {} stored ({})",
        update.incident_id,
        crate::report::format_ms(update.posted_at_ms)
    );
    Ok(())
}

/// Whether the stored results make an incident with this id: the analysis of the day from the
/// minute it names (with the usual lookback before it).
fn incident_exists(fleet: &Fleet, store: &dyn crate::store::Store, id: &str) -> Result<bool> {
    let Some(stamp) = id.rsplit('-').next() else { return Ok(false) };
    let Ok(start) =
        jiff::civil::DateTime::strptime("%Y%m%dT%H%M", stamp).and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC))
    else {
        return Ok(false);
    };
    let start_ms = start.timestamp().as_millisecond();
    // A day from its start: the outages that make it are confirmed only after later runs.
    let end_ms = start_ms + 24 * 3600 * 1000;
    let analysis = super::analyze::analyze(fleet, store, start_ms, end_ms, end_ms)?;
    Ok(analysis.incidents.iter().any(|i| i.id == id))
}

/// Checks the id, text, title and cause; errors name the argument and what was expected.
pub fn validate(fleet: &Fleet, args: &UpdateRequest) -> Result<IncidentUpdate> {
    let id = args.id.trim();
    check_id(fleet, id)?;
    let text = checked_text("the update text", &args.text, MAX_TEXT, true)?;
    let title = args.title.as_deref().map(|t| checked_text("--title", t, MAX_TITLE, false)).transpose()?;
    let cause = args.cause.as_deref().map(|c| checked_text("--cause", c, MAX_CAUSE, true)).transpose()?;
    let posted_at_ms = args.at.unwrap_or_else(jiff::Timestamp::now).as_millisecond();
    Ok(IncidentUpdate { incident_id: id.to_string(), posted_at_ms, text, title, cause })
}

/// An incident id is `<cluster>-YYYYMMDDTHHMM` with a cluster of the fleet.
pub fn check_id(fleet: &Fleet, id: &str) -> Result<()> {
    let known = fleet.clusters.iter().any(|c| {
        id.strip_prefix(c.name.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|stamp| stamp.len() == 13 && jiff::civil::DateTime::strptime("%Y%m%dT%H%M", stamp).is_ok())
    });
    if known {
        return Ok(());
    }
    let clusters: Vec<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
    Err(Error::config(format!(
        "incident id `{id}`: expected a cluster name ({}) and the start minute in UTC, e.g. {}-20261014T2200 (see `fleetprobe report incidents`)",
        clusters.join(", "),
        clusters.first().copied().unwrap_or("fra-1"),
    )))
}

/// Trimmed text of 1 to `max` characters; control characters other than line breaks (when
/// allowed) are refused.
fn checked_text(what: &str, text: &str, max: usize, multiline: bool) -> Result<String> {
    let text = text.trim();
    let length = text.chars().count();
    if length == 0 {
        return Err(Error::config(format!("{what} is empty; expected 1 to {max} characters")));
    }
    if length > max {
        return Err(Error::config(format!("{what} has {length} characters; expected at most {max}")));
    }
    let bad = |c: char| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r'));
    if let Some(c) = text.chars().find(|&c| bad(c)) {
        return Err(Error::config(format!(
            "{what} contains the control character U+{:04X}; expected {}",
            c as u32,
            if multiline { "printable text and line breaks" } else { "one line of printable text" }
        )));
    }
    Ok(text.replace("\r\n", "\n"))
}

#[cfg(test)]
mod tests {
    use super::checked_text;

    #[test]
    fn texts_are_bounded_and_printable() {
        assert_eq!(checked_text("t", "  hi\r\nthere ", 10, true).unwrap(), "hi\nthere");
        assert!(checked_text("t", "   ", 10, true).unwrap_err().message.contains("empty"));
        assert!(checked_text("t", "x".repeat(11).as_str(), 10, true).unwrap_err().message.contains("at most 10"));
        assert!(checked_text("t", "a\nb", 10, false).unwrap_err().message.contains("U+000A"));
        assert!(checked_text("t", "a\u{7}b", 10, true).is_err());
        assert_eq!(checked_text("t", "<script>", 10, false).unwrap(), "<script>");
    }
}
