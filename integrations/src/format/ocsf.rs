//! OCSF Detection Finding (class 2004, category 2 Findings), schema version [`OCSF_VERSION`]
//! with the profiles [`OCSF_PROFILES`] (listed in `metadata.profiles`). The tests validate the
//! documents against the JSON Schema that the `ocsf-json-schema` package generates from the
//! OCSF schema it ships (`integrations/tests/ocsf_schema.rs`).
//!
//! - `activity_id` is 1 (Create) for a finding's first write and 2 (Update) after;
//!   `type_uid` = 200400 + activity; `status_id` 1 (New), or 5 (Archived) for an archived one.
//! - `severity_id`: Low 2, Medium 3, High 4, Critical 5; `time` is `updatedAt` in ms.
//! - `finding_info`: the id, title, description, the GuardDuty type in `types`, the first/last
//!   seen times, the rule as `analytic`, ATT&CK in `attacks`.
//! - `resources`: the host, pod and container, the most specific one with the finding's
//!   `resourceRole` (`role_id` 2 Actor / 1 Target); `device`: the host (`type_id` 0 Unknown: a
//!   node can be a server, a VM or a laptop, and Vigil does not tell them apart).
//! - `evidences` (the class has no top-level process): the `process` with `parent_process`,
//!   `ancestry` (the lineage), the executable in `file`, the user, `euid` (linux profile),
//!   `namespace_pid` and `container` (container profile); the connection (`dst_endpoint`,
//!   `connection_info`), the DNS `query`, the file; threat-list matches are `observables` and
//!   `enrichments`.

use serde_json::Value;
use vigil_crds::finding::{
    ConnectionDirection, ContainerDetails, Finding, LineageEntry, ProcessDetails, ResourceRole,
    SeverityLabel, UNKNOWN_ID,
};

use super::{Origin, additional, attack, basename, json::Obj, known_time, update_id};

/// The OCSF schema version the documents follow.
pub const OCSF_VERSION: &str = "1.8.0";

/// The OCSF profiles the documents use: `container` (process `container`, `namespace_pid`) and
/// `linux/linux_users` (process `euid`).
pub const OCSF_PROFILES: [&str; 2] = ["container", "linux/linux_users"];

const CLASS_UID: u32 = 2004;
const CATEGORY_UID: u32 = 2;

pub(crate) fn render(finding: &Finding, origin: &Origin) -> Value {
    let created = known_time(&finding.created_at);
    let updated = known_time(&finding.updated_at);
    let (activity_id, activity_name) = if finding.count > 1 || created != updated {
        (2, "Update")
    } else {
        (1, "Create")
    };
    let (severity_id, severity) = match finding.severity_label {
        SeverityLabel::Low => (2, "Low"),
        SeverityLabel::Medium => (3, "Medium"),
        SeverityLabel::High => (4, "High"),
        SeverityLabel::Critical => (5, "Critical"),
    };
    let (status_id, status) = if finding.archived {
        (5, "Archived")
    } else {
        (1, "New")
    };
    let time = updated
        .or(known_time(&finding.event_last_seen))
        .or(created)
        .map(|t| t.as_millisecond());
    let product = Obj::new()
        .put("name", "Vigil")
        .put("vendor_name", "Vigil")
        .put("version", env!("CARGO_PKG_VERSION"));
    let metadata = Obj::new()
        .put("version", OCSF_VERSION)
        .put("product", product)
        .put("uid", update_id(finding))
        .put(
            "profiles",
            OCSF_PROFILES
                .iter()
                .map(|p| Value::from(*p))
                .collect::<Vec<_>>(),
        )
        .opt("tenant_uid", origin.account_id.clone());
    Obj::new()
        .put("class_uid", CLASS_UID)
        .put("class_name", "Detection Finding")
        .put("category_uid", CATEGORY_UID)
        .put("category_name", "Findings")
        .put("activity_id", activity_id)
        .put("activity_name", activity_name)
        .put("type_uid", CLASS_UID * 100 + activity_id)
        .put("type_name", format!("Detection Finding: {activity_name}"))
        .put("severity_id", severity_id)
        .put("severity", severity)
        .put("status_id", status_id)
        .put("status", status)
        .opt("time", time)
        .put("count", finding.count)
        .opt(
            "start_time",
            known_time(&finding.event_first_seen).map(|t| t.as_millisecond()),
        )
        .opt(
            "end_time",
            known_time(&finding.event_last_seen).map(|t| t.as_millisecond()),
        )
        .put("message", finding.title.clone())
        .put("metadata", metadata)
        .put("finding_info", finding_info(finding))
        .put("resources", resources(finding))
        .put("device", device(finding, origin))
        .put("evidences", evidences(finding))
        .put("observables", observables(finding))
        .put("enrichments", enrichments(finding))
        .put("unmapped", unmapped(finding, origin))
        .into()
}

fn ms(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Option<i64> {
    known_time(t).map(|t| t.as_millisecond())
}

fn finding_info(finding: &Finding) -> Obj {
    let analytic = additional(finding, "ruleId").map(|rule| {
        Obj::new()
            .put("uid", rule.to_owned())
            .put("name", rule.to_owned())
            .put("type_id", 1)
            .put("type", "Rule")
            .opt(
                "category",
                additional(finding, "ruleOrigin").map(str::to_owned),
            )
    });
    let attacks: Vec<Value> = attack::attacks(finding)
        .into_iter()
        .map(|a| {
            let technique = Obj::new()
                .put("uid", a.technique)
                .opt("name", a.technique_name);
            let sub = a
                .sub_technique
                .map(|(uid, name)| Obj::new().put("uid", uid).opt("name", name));
            let tactic = a
                .tactic
                .map(|(uid, name)| Obj::new().put("uid", uid).put("name", name));
            Obj::new()
                .put("technique", technique)
                .opt("sub_technique", sub)
                .opt("tactic", tactic)
                .into()
        })
        .collect();
    Obj::new()
        .put("uid", finding.id.clone())
        .put("title", finding.title.clone())
        .put("desc", finding.description.clone())
        .put("types", vec![Value::from(finding.finding_type.clone())])
        .opt("created_time", ms(&finding.created_at))
        .opt("modified_time", ms(&finding.updated_at))
        .opt("first_seen_time", ms(&finding.event_first_seen))
        .opt("last_seen_time", ms(&finding.event_last_seen))
        .opt("analytic", analytic)
        .put("attacks", attacks)
}

fn resources(finding: &Finding) -> Vec<Value> {
    let r = &finding.resource;
    let role = match finding.resource_role {
        ResourceRole::Actor => (2, "Actor"),
        ResourceRole::Target => (1, "Target"),
    };
    let mut out: Vec<Obj> = Vec::new();
    out.push(
        Obj::new()
            .put("type", "Host")
            .put("name", r.host.hostname.clone())
            .put("hostname", r.host.hostname.clone())
            .opt("uid", r.host.node_name.clone()),
    );
    if let Some(p) = &r.pod {
        let labels: Vec<Value> = p
            .labels
            .iter()
            .map(|(k, v)| Value::from(format!("{k}:{v}")))
            .collect();
        out.push(
            Obj::new()
                .put("type", "Pod")
                .put("name", p.name.clone())
                .put("namespace", p.namespace.clone())
                .opt("uid", p.uid.clone())
                .put("labels", labels),
        );
    }
    if let Some(c) = &r.container {
        out.push(
            Obj::new()
                .put("type", "Container")
                .put("name", c.name.clone())
                .put("uid", c.id.clone())
                .opt("namespace", r.pod.as_ref().map(|p| p.namespace.clone())),
        );
    }
    // The most specific resource is the one the finding is about.
    let last = out.len() - 1;
    out.into_iter()
        .enumerate()
        .map(|(i, o)| {
            if i == last {
                o.put("role_id", role.0).put("role", role.1)
            } else {
                o
            }
            .into()
        })
        .collect()
}

fn device(finding: &Finding, origin: &Origin) -> Obj {
    let h = &finding.resource.host;
    let os = Obj::new()
        .put(
            "name",
            h.os_image.clone().unwrap_or_else(|| "Linux".to_owned()),
        )
        .put("type_id", 200)
        .put("type", "Linux")
        .opt("kernel_release", h.kernel_version.clone());
    Obj::new()
        .put("type_id", 0)
        .put("type", "Unknown")
        .put("hostname", h.hostname.clone())
        .opt("name", h.node_name.clone())
        .put("os", os)
        .opt("region", origin.region.clone())
}

fn file_of(path: &str, sha256: Option<&String>) -> Obj {
    let hashes: Vec<Value> = sha256
        .map(|h| {
            Obj::new()
                .put("algorithm_id", 3)
                .put("algorithm", "SHA-256")
                .put("value", h.clone())
                .into()
        })
        .into_iter()
        .collect();
    Obj::new()
        .put("name", basename(path).to_owned())
        .put("path", path.to_owned())
        .put("type_id", 1)
        .put("type", "Regular File")
        .put("hashes", hashes)
}

fn user(uid: u32, name: Option<&String>) -> Option<Obj> {
    if uid == UNKNOWN_ID && name.is_none() {
        return None;
    }
    let type_id = match uid {
        0 => Some((2, "Admin")),
        UNKNOWN_ID => None,
        _ => Some((1, "User")),
    };
    Some(
        Obj::new()
            .opt("uid", (uid != UNKNOWN_ID).then(|| uid.to_string()))
            .opt("name", name.cloned())
            .opt("type_id", type_id.map(|t| t.0))
            .opt("type", type_id.map(|t| t.1)),
    )
}

fn container(c: &ContainerDetails, finding: &Finding) -> Obj {
    let image = c.image.as_ref().map(|image| {
        Obj::new()
            .put("uid", c.image_id.clone().unwrap_or_else(|| image.clone()))
            .put("name", image.clone())
    });
    let orchestrator = finding.resource.pod.as_ref().map(|_| "Kubernetes");
    Obj::new()
        .put("uid", c.id.clone())
        .put("name", c.name.clone())
        .opt("runtime", c.container_runtime.clone())
        .opt("image", image)
        .opt("orchestrator", orchestrator)
}

/// OCSF `process`; `finding` is given for the acting process, whose command line and container
/// are the finding's.
fn process(
    p: &ProcessDetails,
    in_container: Option<&ContainerDetails>,
    finding: Option<&Finding>,
) -> Obj {
    let path = (!p.executable_path.is_empty()).then_some(p.executable_path.as_str());
    let ancestry: Vec<Value> = p.lineage.iter().map(|l| process_entity(l).into()).collect();
    let parent = p.lineage.first().map(|l| {
        let mut parent = process_entity(l)
            .opt("user", user(l.uid, None))
            .opt("euid", (l.euid != UNKNOWN_ID).then_some(l.euid));
        if let Some(path) = (!l.executable_path.is_empty()).then_some(&l.executable_path) {
            parent = parent.put("file", file_of(path, None));
        }
        parent
    });
    let cmd_line = finding.and_then(|f| f.context.command_line_example.clone());
    Obj::new()
        .put("name", p.name.clone())
        .put("pid", p.pid)
        .put("uid", p.uuid.clone())
        .opt("path", path.map(str::to_owned))
        .opt(
            "file",
            path.map(|path| file_of(path, p.executable_sha256.as_ref())),
        )
        .opt("cmd_line", cmd_line)
        .opt("created_time", ms(&p.start_time))
        .opt("working_directory", p.pwd.clone())
        .opt("user", user(p.uid, p.user.as_ref()))
        .opt("euid", (p.euid != UNKNOWN_ID).then_some(p.euid))
        .opt("namespace_pid", p.namespace_pid)
        .opt(
            "container",
            in_container.zip(finding).map(|(c, f)| container(c, f)),
        )
        .opt("parent_process", parent)
        .put("ancestry", ancestry)
}

fn process_entity(l: &LineageEntry) -> Obj {
    Obj::new()
        .put("name", l.name.clone())
        .put("pid", l.pid)
        .put("uid", l.uuid.clone())
        .put("path", l.executable_path.clone())
        .opt("created_time", ms(&l.start_time))
}

fn evidences(finding: &Finding) -> Vec<Value> {
    let in_container = finding.resource.container.as_ref();
    let mut evidence = Obj::new().opt(
        "process",
        finding
            .process
            .as_ref()
            .map(|p| process(p, in_container, Some(finding))),
    );
    if let Some(n) = &finding.network {
        let (direction_id, direction) = match n.connection_direction {
            ConnectionDirection::Outbound => (2, "Outbound"),
            ConnectionDirection::Inbound => (1, "Inbound"),
        };
        let remote = Obj::new()
            .put("ip", n.remote_ip.clone())
            .put("port", n.remote_port)
            .opt("domain", n.remote_domain.clone());
        let local = Obj::new()
            .put("ip", n.local_ip.clone())
            .opt("port", (n.local_port != 0).then_some(n.local_port));
        let (src, dst) = match n.connection_direction {
            ConnectionDirection::Outbound => (local, remote),
            ConnectionDirection::Inbound => (remote, local),
        };
        let src = (!src.is_empty()).then_some(src);
        let dst = (!dst.is_empty()).then_some(dst);
        evidence = evidence
            .opt("src_endpoint", src)
            .opt("dst_endpoint", dst)
            .put(
                "connection_info",
                Obj::new()
                    .put("direction_id", direction_id)
                    .put("direction", direction)
                    .put("protocol_name", n.protocol.to_ascii_lowercase()),
            );
    }
    if let Some(d) = &finding.dns {
        evidence = evidence.put("query", Obj::new().put("hostname", d.domain.clone()));
    }
    if let Some(path) = &finding.context.file_path {
        evidence = evidence.put("file", file_of(path, None));
    }
    // An evidence needs one of its artifacts (the schema's `at_least_one`); a container alone
    // is not one.
    let evidence: Value = evidence.into();
    let has_artifact = ["process", "src_endpoint", "dst_endpoint", "query", "file"]
        .iter()
        .any(|k| evidence.get(k).is_some());
    if !has_artifact {
        return Vec::new();
    }
    let mut evidence = evidence;
    if let (Some(c), Some(e)) = (in_container, evidence.as_object_mut()) {
        e.insert("container".to_owned(), container(c, finding).into());
    }
    vec![evidence]
}

fn observables(finding: &Finding) -> Vec<Value> {
    finding
        .evidence
        .iter()
        .flat_map(|e| &e.threat_intelligence_details)
        .map(|t| {
            let indicator = t.indicator.as_str();
            let (type_id, kind, name) = if indicator.parse::<std::net::IpAddr>().is_ok() {
                (2, "IP Address", "evidences[0].dst_endpoint.ip")
            } else if indicator.len() == 64 && indicator.bytes().all(|b| b.is_ascii_hexdigit()) {
                (8, "Hash", "process.file.hashes[0].value")
            } else {
                (1, "Hostname", "evidences[0].query.hostname")
            };
            Obj::new()
                .put("name", name)
                .put("type_id", type_id)
                .put("type", kind)
                .put("value", indicator.to_owned())
                .into()
        })
        .collect()
}

fn enrichments(finding: &Finding) -> Vec<Value> {
    finding
        .evidence
        .iter()
        .flat_map(|e| &e.threat_intelligence_details)
        .map(|t| {
            Obj::new()
                .put("name", "threat_list")
                .put("value", t.indicator.clone())
                .put("type", "Threat Intelligence")
                .put("provider", t.threat_list_name.clone())
                .put(
                    "data",
                    Obj::new().put("threatListName", t.threat_list_name.clone()),
                )
                .into()
        })
        .collect()
}

/// Vigil's fields with no OCSF attribute.
fn unmapped(finding: &Finding, origin: &Origin) -> Obj {
    let ctx = &finding.context;
    Obj::new()
        .put("severityScore", finding.severity)
        .opt("cluster", origin.cluster.clone())
        .put("resourceDisplayName", finding.resource.display_name.clone())
        .opt("toolName", ctx.tool_name.clone())
        .opt("toolCategory", ctx.tool_category.clone())
        .opt("fileOperation", ctx.file_operation.clone())
        .opt("moduleName", ctx.module_name.clone())
        .opt("socketPath", ctx.socket_path.clone())
        .opt("mountSource", ctx.mount_source.clone())
        .opt("mountTarget", ctx.mount_target.clone())
        .opt("ldPreloadValue", ctx.ld_preload_value.clone())
        .opt(
            "modifyingProcess",
            ctx.modifying_process
                .as_ref()
                .map(|p| Value::from(process(p, None, None))),
        )
        .opt(
            "targetProcess",
            ctx.target_process
                .as_ref()
                .map(|p| Value::from(process(p, None, None))),
        )
        .put(
            "additional",
            serde_json::to_value(&ctx.additional).unwrap_or(Value::Null),
        )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::format::testdata;

    #[test]
    fn sample_as_a_detection_finding() {
        let doc = render(&testdata::sample(), &testdata::aws_origin());
        assert_eq!(doc["class_uid"], 2004);
        assert_eq!(doc["category_uid"], 2);
        assert_eq!(doc["activity_id"], 2, "count 3: an update");
        assert_eq!(doc["type_uid"], 200402);
        assert_eq!(doc["severity_id"], 3);
        assert_eq!(doc["status_id"], 1);
        assert_eq!(doc["time"], 1795773900000_i64);
        assert_eq!(doc["count"], 3);
        assert_eq!(
            doc["metadata"],
            json!({"version": "1.8.0",
                   "product": {"name": "Vigil", "vendor_name": "Vigil", "version": env!("CARGO_PKG_VERSION")},
                   "uid": "5f0c1e2a-new-binary-web-1:3:1795773900000",
                   "profiles": ["container", "linux/linux_users"],
                   "tenant_uid": "123456789012"})
        );
        let info = &doc["finding_info"];
        assert_eq!(info["uid"], "5f0c1e2a-new-binary-web-1");
        assert_eq!(
            info["types"],
            json!(["Execution:Runtime/NewBinaryExecuted"])
        );
        assert_eq!(info["first_seen_time"], 1795773600000_i64);
        assert!(
            info.get("attacks").is_none(),
            "no technique for new binaries"
        );
        assert!(
            doc.get("process").is_none(),
            "not an attribute of the class"
        );
        let p = &doc["evidences"][0]["process"];
        assert_eq!(p["pid"], 4242);
        assert_eq!(p["uid"], "6e0a8a0e-4d0f-4a7b-9d1e-7c2b3a4d5e6f");
        assert_eq!(
            p["user"],
            json!({"uid": "1000", "name": "app", "type_id": 1, "type": "User"})
        );
        assert_eq!(p["euid"], 1000);
        assert_eq!(p["namespace_pid"], 42);
        assert_eq!(p["file"]["hashes"][0]["algorithm_id"], 3);
        assert_eq!(p["parent_process"]["name"], "bash");
        assert_eq!(p["ancestry"].as_array().unwrap().len(), 2);
        assert_eq!(p["container"]["uid"], "3b5f0c9e6d2a");
        assert_eq!(p["container"]["orchestrator"], "Kubernetes");
        assert_eq!(
            p["cmd_line"],
            "curl -H 'Authorization: Bearer <redacted>' https://example.invalid/x"
        );
        let resources = doc["resources"].as_array().unwrap();
        assert_eq!(
            resources
                .iter()
                .map(|r| r["type"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["Host", "Pod", "Container"]
        );
        assert_eq!(resources[2]["role_id"], 2);
        assert!(resources[0].get("role_id").is_none());
        assert_eq!(resources[1]["labels"], json!(["app:web"]));
        assert_eq!(doc["device"]["os"]["kernel_release"], "6.8.0-45-generic");
        assert_eq!(doc["device"]["region"], "eu-west-1");
        assert_eq!(doc["evidences"][0]["file"]["path"], "/usr/bin/curl");
        assert_eq!(doc["unmapped"]["modifyingProcess"]["name"], "sh");
    }

    #[test]
    fn network_dns_and_rule_findings() {
        let doc = render(&testdata::network_on_host(), &Origin::default());
        assert_eq!(doc["activity_id"], 1, "first write");
        assert_eq!(doc["severity_id"], 4);
        let e = &doc["evidences"][0];
        assert_eq!(
            e["dst_endpoint"],
            json!({"ip": "203.0.113.7", "port": 4444, "domain": "c2.example.invalid"})
        );
        assert!(e.get("src_endpoint").is_none(), "the local end is unknown");
        assert_eq!(
            e["connection_info"],
            json!({"direction_id": 2, "direction": "Outbound", "protocol_name": "tcp"})
        );
        assert_eq!(
            doc["observables"],
            json!([{"name": "evidences[0].dst_endpoint.ip", "type_id": 2, "type": "IP Address",
                    "value": "203.0.113.7"}])
        );
        assert_eq!(doc["enrichments"][0]["provider"], "c2-ips");
        assert_eq!(
            doc["finding_info"]["attacks"],
            json!([{"technique": {"uid": "T1071", "name": "Application Layer Protocol"},
                    "tactic": {"uid": "TA0011", "name": "Command and Control"}}])
        );
        // Unknown ids and times of the unseen parent stay out.
        assert_eq!(
            doc["evidences"][0]["process"]["parent_process"],
            json!({"name": "sshd", "pid": 900})
        );
        assert!(doc["metadata"].get("tenant_uid").is_none());
        assert!(doc["device"].get("region").is_none());
        let text = doc.to_string();
        assert!(!text.contains("4294967295"), "{text}");

        let doc = render(&testdata::dns_in_container(), &Origin::default());
        assert_eq!(
            doc["evidences"][0]["query"],
            json!({"hostname": "pool.minexmr.example"})
        );
        assert_eq!(doc["observables"][0]["type_id"], 1);
        assert_eq!(doc["resources"][1]["role_id"], 2);

        let doc = render(&testdata::rule_archived(), &Origin::default());
        assert_eq!(doc["status_id"], 5);
        assert_eq!(doc["severity_id"], 5);
        assert_eq!(
            doc["finding_info"]["analytic"],
            json!({"uid": "tool-hydra", "name": "tool-hydra", "type_id": 1, "type": "Rule",
                   "category": "builtin"})
        );
        assert_eq!(
            doc["finding_info"]["attacks"][0],
            json!({"technique": {"uid": "T1110"}, "sub_technique": {"uid": "T1110.001"}})
        );
        let p = &doc["evidences"][0]["process"];
        assert_eq!((&p["name"], &p["pid"]), (&json!("hydra"), &json!(77)));
        assert_eq!(p["cmd_line"], "hydra -l root -P words.txt ssh://10.0.0.1");
        assert!(p.get("path").is_none() && p.get("user").is_none(), "{p}");
        assert_eq!(doc["unmapped"]["toolName"], "hydra");
    }

    #[test]
    fn documents_validate_against_the_ocsf_schema_and_broken_ones_do_not() {
        let Some(python) = testdata::schema_python("documents_validate_against_the_ocsf_schema")
        else {
            return;
        };
        let mut docs: Vec<Value> = Vec::new();
        for origin in [Origin::default(), testdata::aws_origin()] {
            for f in testdata::all() {
                docs.push(render(&f, &origin));
            }
        }
        // Every finding type, with its ATT&CK mapping.
        for t in vigil_detection::FindingType::ALL {
            let mut f = testdata::sample();
            f.finding_type = t.as_str().to_owned();
            docs.push(render(&f, &Origin::default()));
        }
        let good = docs.len();
        // Documents the schema must refuse: an unknown attribute, a wrong enum value, a
        // missing required attribute, a user id as a number.
        let base = render(&testdata::sample(), &Origin::default());
        let mut broken = Vec::new();
        let mut b = base.clone();
        b["vigil_extra"] = json!(1);
        broken.push(b);
        let mut b = base.clone();
        b["severity_id"] = json!(7);
        broken.push(b);
        let mut b = base.clone();
        b["finding_info"].as_object_mut().unwrap().remove("uid");
        broken.push(b);
        let mut b = base.clone();
        b["evidences"][0]["process"]["user"]["uid"] = json!(1000);
        broken.push(b);
        docs.extend(broken);

        let profiles = OCSF_PROFILES.join(",");
        let results = testdata::validate(
            &python,
            "ocsf_validate.py",
            &[OCSF_VERSION, &profiles, "2004"],
            &docs,
        );
        assert_eq!(results.len(), docs.len());
        for (doc, errors) in docs.iter().zip(&results).take(good) {
            assert!(
                errors.is_empty(),
                "{} ({}): {errors:#?}",
                doc["finding_info"]["uid"],
                doc["finding_info"]["types"][0]
            );
        }
        for (i, errors) in results[good..].iter().enumerate() {
            assert!(!errors.is_empty(), "broken document {i} validated");
        }
    }
}
