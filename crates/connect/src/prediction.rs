//! The prediction side of topics, shared by Kafka and Pulsar: how a bound topic's event
//! is scored ([`score_event`]), and what the topic sinks read of an NDJSON line they
//! publish: the message key consumers de-duplicate on and the id carried beside it. A
//! captured prediction is keyed `<request_id>/<row>` (with `freshet-request-id`); a dead
//! letter by its `event_id` (with `freshet-event-id`).

use freshet_serve::error::ServeError;
use freshet_serve::service::{Protocol, ScoreInput, Scored, Scorer};

/// Score one event of a bound topic (a JSON object of the model's columns) as the
/// invocations route scores a one-record request. The event must be one JSON value, so
/// it cannot add fields of its own to the request around it. `body` is scratch space.
pub(crate) fn score_event(
    scorer: &Scorer,
    model: &str,
    event: Option<&[u8]>,
    client_id: &str,
    routing_key: Option<&str>,
    body: &mut Vec<u8>,
) -> Result<Scored, ServeError> {
    let event = event.unwrap_or(b"null");
    if serde_json::from_slice::<&serde_json::value::RawValue>(event).is_err() {
        return Err(ServeError::BadRequest(
            "the event is not one JSON value (a JSON object of the model's columns)".into(),
        ));
    }
    body.clear();
    body.extend_from_slice(b"{\"dataframe_records\":[");
    body.extend_from_slice(event);
    body.extend_from_slice(b"]}");
    let input = ScoreInput {
        content_type: Some("application/json"),
        body,
        version: None,
        client_request_id: Some(client_id),
        routing_key,
    };
    scorer.score(model, Protocol::Invocations, input)
}

/// The fields of a line its key is made of.
#[derive(serde::Deserialize)]
struct Ids<'a> {
    #[serde(borrow, default)]
    request_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    row: Option<i64>,
    #[serde(borrow, default)]
    event_id: Option<std::borrow::Cow<'a, str>>,
}

/// A line's message key, and the id to send as a header or property.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub key: String,
    pub id_name: &'static str,
    pub id: String,
}

impl Head {
    /// The head of `line`; None when it carries neither `request_id` and `row` nor
    /// `event_id`.
    pub fn of(line: &[u8]) -> Option<Self> {
        let ids: Ids = serde_json::from_slice(line).ok()?;
        match ids {
            Ids {
                request_id: Some(r),
                row: Some(n),
                ..
            } => Some(Head {
                key: format!("{r}/{n}"),
                id_name: "freshet-request-id",
                id: r.into_owned(),
            }),
            Ids {
                event_id: Some(e), ..
            } => Some(Head {
                key: e.to_string(),
                id_name: "freshet-event-id",
                id: e.into_owned(),
            }),
            _ => None,
        }
    }
}

/// What an undelivered line without ids is counted as.
pub(crate) const NO_IDS: &str = "a line without request_id and row (or event_id)";

/// The non-empty lines of a batch.
pub(crate) fn lines(batch: &[u8]) -> impl Iterator<Item = &[u8]> {
    batch.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_and_dead_letters_give_their_keys_and_other_lines_none() {
        let batch = b"{\"request_id\":\"r1\",\"row\":2,\"model\":\"m\"}\n\n{\"model\":\"m\"}\n\
                      {\"event_id\":\"e7\",\"reason\":\"x\"}\n";
        let heads: Vec<Option<(String, &str)>> = lines(batch)
            .map(|l| Head::of(l).map(|h| (h.key, h.id_name)))
            .collect();
        assert_eq!(
            heads,
            vec![
                Some(("r1/2".to_string(), "freshet-request-id")),
                None,
                Some(("e7".to_string(), "freshet-event-id")),
            ]
        );
    }
}
