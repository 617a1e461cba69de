//! Which text format `/metrics` answers in, from the request's `Accept` header.

/// The text format `/metrics` answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus's classic text format, `text/plain; version=0.0.4` (counters' HELP and
    /// TYPE name the `_total` series; no `# EOF`): what `promtool check metrics` reads,
    /// and the answer to a request that does not prefer OpenMetrics.
    Classic,
    /// OpenMetrics 1.0.0, for scrapers that prefer `application/openmetrics-text`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header prefers: OpenMetrics when it ranks
    /// `application/openmetrics-text` above `text/plain` (by `q`), else classic.
    pub fn asked(accept: Option<&str>) -> Format {
        let mut openmetrics = 0.0f32;
        let mut classic = 0.0f32;
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" => classic = classic.max(q),
                _ => {}
            }
        }
        if openmetrics > classic {
            Format::OpenMetrics
        } else {
            Format::Classic
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_is_preferred_only_when_ranked_above_text() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::asked(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::asked(Some("text/plain; version=0.0.4")),
            Format::Classic
        );
        assert_eq!(Format::asked(None), Format::Classic);
        assert_eq!(Format::asked(Some("*/*")), Format::Classic);
        let text_first = "text/plain;version=0.0.4,application/openmetrics-text;q=0.5";
        assert_eq!(Format::asked(Some(text_first)), Format::Classic);
    }
}
