//! CloudEvents 1.0 in structured content mode (JSON event format): the envelope's attributes
//! and Vigil's finding document as `data`.
//!
//! - `id`: [`update_id`](super::update_id), the same for every delivery of one update of the
//!   finding and new for each update, so `source` + `id` lets a receiver drop redeliveries;
//! - `source`: `/vigil/clusters/<cluster>/nodes/<node>` in a cluster,
//!   `/vigil/hosts/<hostname>` on a host (percent-encoded where needed);
//! - `type`: `dev.vigil.finding`; `subject`: the resource (`namespace/pod/container` or host);
//! - `time`: the finding's `updatedAt`; `datacontenttype`: `application/json`;
//! - extension attributes `findingtype` and `severity` (the label) for routing without
//!   reading `data`.

use serde_json::Value;
use vigil_crds::finding::Finding;

use super::{FormatError, Origin, json::Obj, known_time, update_id};

/// The media type of a structured-mode CloudEvent in JSON.
pub(crate) const CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";

/// The CloudEvents `type` of a finding.
pub(crate) const EVENT_TYPE: &str = "dev.vigil.finding";

pub(crate) fn render(finding: &Finding, origin: &Origin) -> Result<Value, FormatError> {
    let data = serde_json::to_value(finding)?;
    let host = &finding.resource.host;
    let node = host.node_name.as_deref().unwrap_or(&host.hostname);
    let source = match &origin.cluster {
        Some(cluster) => format!(
            "/vigil/clusters/{}/nodes/{}",
            encode_segment(cluster),
            encode_segment(node)
        ),
        None => format!("/vigil/hosts/{}", encode_segment(&host.hostname)),
    };
    Ok(Obj::new()
        .put("specversion", "1.0")
        .put("id", update_id(finding))
        .put("source", source)
        .put("type", EVENT_TYPE)
        .put("subject", finding.resource.display_name.clone())
        .opt(
            "time",
            known_time(&finding.updated_at).map(|t| t.to_string()),
        )
        .put("datacontenttype", "application/json")
        .put("findingtype", finding.finding_type.clone())
        .put("severity", finding.severity_label.to_string())
        .put("data", data)
        .into())
}

/// A URI path segment: unreserved characters kept, everything else percent-encoded.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::format::testdata;

    #[test]
    fn envelope_of_the_sample() {
        let f = testdata::sample();
        let doc = render(&f, &testdata::aws_origin()).unwrap();
        let mut envelope = doc.clone();
        let data = envelope.as_object_mut().unwrap().remove("data").unwrap();
        assert_eq!(
            envelope,
            json!({
                "specversion": "1.0",
                "id": "5f0c1e2a-new-binary-web-1:3:1795773900000",
                "source": "/vigil/clusters/prod-eu/nodes/node-a",
                "type": "dev.vigil.finding",
                "subject": "shop/web-1/web",
                "time": "2026-11-27T10:05:00Z",
                "datacontenttype": "application/json",
                "findingtype": "Execution:Runtime/NewBinaryExecuted",
                "severity": "Medium"
            })
        );
        // data is Vigil's own document, whole.
        assert_eq!(serde_json::from_value::<Finding>(data).unwrap(), f);
    }

    #[test]
    fn host_source_is_encoded_and_attribute_names_are_valid() {
        let mut f = testdata::network_on_host();
        f.resource.host.hostname = "node a/1".into();
        let doc = render(&f, &Origin::default()).unwrap();
        assert_eq!(doc["source"], "/vigil/hosts/node%20a%2F1");
        // CloudEvents attribute names: lower-case letters and digits only, at most 20.
        for name in doc.as_object().unwrap().keys() {
            assert!(
                name.len() <= 20
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{name}"
            );
        }
        for required in ["specversion", "id", "source", "type"] {
            assert!(doc[required].as_str().is_some_and(|s| !s.is_empty()));
        }
    }
}
