//! What the topic sinks read of a captured prediction's NDJSON line: the request id and
//! row that make the message key `<request_id>/<row>` consumers de-duplicate on.

/// The fields of a prediction line the message key is made of.
#[derive(serde::Deserialize)]
pub(crate) struct Head<'a> {
    #[serde(borrow)]
    pub request_id: std::borrow::Cow<'a, str>,
    pub row: i64,
}

impl<'a> Head<'a> {
    /// The head of `line`; None when it lacks `request_id` or `row`.
    pub fn of(line: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(line).ok()
    }

    /// The message key: `<request_id>/<row>`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.request_id, self.row)
    }
}

/// The non-empty lines of a batch.
pub(crate) fn lines(batch: &[u8]) -> impl Iterator<Item = &[u8]> {
    batch.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_gives_its_key_and_a_line_without_ids_gives_none() {
        let batch = b"{\"request_id\":\"r1\",\"row\":2,\"model\":\"m\"}\n\n{\"model\":\"m\"}\n";
        let heads: Vec<Option<String>> =
            lines(batch).map(|l| Head::of(l).map(|h| h.key())).collect();
        assert_eq!(heads, vec![Some("r1/2".to_string()), None]);
    }
}
