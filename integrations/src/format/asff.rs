//! The AWS Security Finding Format, as Security Hub's `BatchImportFindings` takes it for a
//! custom integration (`product/<account>/default`).
//!
//! Every field `BatchImportFindings` requires is always present (`SchemaVersion`, `Id`,
//! `ProductArn`, `GeneratorId`, `AwsAccountId`, `Types`, `CreatedAt`, `UpdatedAt`, `Severity`,
//! `Title`, `Description`, `Resources`); the account and the region have no default, so the
//! format refuses to render without them ([`check_origin`]). Length limits of the API are
//! applied (title 256, description 1024 characters).

use serde_json::Value;
use vigil_crds::finding::{ConnectionDirection, Finding, SeverityLabel};

use super::{FormatError, Origin, additional, iso_millis, json::Obj, known_time};

/// ASFF's schema version.
pub(crate) const SCHEMA_VERSION: &str = "2018-10-08";

const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 1024;
const PRODUCT_FIELD_MAX: usize = 4096;

pub(crate) fn check_origin(origin: &Origin) -> Result<(), FormatError> {
    required(origin).map(|_| ())
}

fn required(origin: &Origin) -> Result<(&str, &str, &'static str), FormatError> {
    let missing = |field| FormatError::MissingOrigin {
        format: "asff",
        field,
    };
    let account = origin.account_id.as_deref().ok_or(missing("accountId"))?;
    let region = origin.region.as_deref().ok_or(missing("region"))?;
    let partition = origin.partition().ok_or(missing("region"))?;
    Ok((account, region, partition))
}

pub(crate) fn render(finding: &Finding, origin: &Origin) -> Result<Value, FormatError> {
    let (account, region, partition) = required(origin)?;
    // Unique per product, account and region: the cluster keeps two clusters' findings of the
    // same pod name apart.
    let id = match &origin.cluster {
        Some(cluster) => format!("vigil/{cluster}/{}", finding.id),
        None => format!("vigil/{}", finding.id),
    };
    let generator = match additional(finding, "ruleId") {
        Some(rule) => format!("vigil/rule/{rule}"),
        None => format!("vigil/{}", finding.finding_type),
    };
    let (label, normalized) = severity(finding);
    let created = known_time(&finding.created_at)
        .or(known_time(&finding.event_first_seen))
        .map(iso_millis);
    let updated = known_time(&finding.updated_at)
        .or(known_time(&finding.event_last_seen))
        .map(iso_millis);
    Ok(Obj::new()
        .put("SchemaVersion", SCHEMA_VERSION)
        .put("Id", id)
        .put(
            "ProductArn",
            format!("arn:{partition}:securityhub:{region}:{account}:product/{account}/default"),
        )
        .put("ProductName", "Vigil")
        .put("CompanyName", "Vigil")
        .put("Region", region.to_owned())
        .put("GeneratorId", generator)
        .put("AwsAccountId", account.to_owned())
        .put("Types", vec![asff_type(&finding.finding_type)])
        .opt(
            "FirstObservedAt",
            known_time(&finding.event_first_seen).map(iso_millis),
        )
        .opt(
            "LastObservedAt",
            known_time(&finding.event_last_seen).map(iso_millis),
        )
        .opt("CreatedAt", created)
        .opt("UpdatedAt", updated)
        .put(
            "Severity",
            Obj::new()
                .put("Label", label)
                .put("Normalized", normalized)
                .put("Original", finding.severity.to_string()),
        )
        .put("Title", truncate(&finding.title, TITLE_MAX))
        .put(
            "Description",
            truncate(&finding.description, DESCRIPTION_MAX),
        )
        .put("ProductFields", product_fields(finding))
        .put("Resources", resources(finding, partition, region))
        .opt("Process", process(finding))
        .opt("Network", network(finding))
        .put("ThreatIntelIndicators", indicators(finding))
        .put(
            "RecordState",
            if finding.archived {
                "ARCHIVED"
            } else {
                "ACTIVE"
            },
        )
        .put(
            "Workflow",
            Obj::new().put(
                "Status",
                if finding.archived {
                    "SUPPRESSED"
                } else {
                    "NEW"
                },
            ),
        )
        .into())
}

/// ASFF `Severity.Label` and `Normalized` (0-100): the score times ten, as GuardDuty's own
/// findings arrive in Security Hub.
fn severity(finding: &Finding) -> (&'static str, u64) {
    let label = match finding.severity_label {
        SeverityLabel::Low => "LOW",
        SeverityLabel::Medium => "MEDIUM",
        SeverityLabel::High => "HIGH",
        SeverityLabel::Critical => "CRITICAL",
    };
    let normalized = (finding.severity * 10.0).round().clamp(0.0, 100.0);
    // The clamp keeps the value in 0..=100, so the conversion cannot truncate.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to 0..=100 above"
    )]
    let normalized = normalized as u64;
    (label, normalized)
}

/// `namespace/category/classifier` from the threat purpose; the classifier is the finding type
/// with `/` written `-` (a `/` would be read as another level), as GuardDuty's own types arrive.
pub(crate) fn asff_type(finding_type: &str) -> String {
    let purpose = super::threat_purpose(finding_type);
    let category = match purpose {
        "Backdoor" | "Trojan" => "TTPs/Command and Control",
        "CryptoCurrency" => "Effects/Resource Consumption",
        "Impact" if finding_type.contains("Bitcoin") || finding_type.contains("CryptoMiner") => {
            "Effects/Resource Consumption"
        }
        "Impact" => "TTPs/Command and Control",
        "UnauthorizedAccess" => "TTPs/Initial Access",
        "Execution" => "TTPs/Execution",
        "DefenseEvasion" => "TTPs/Defense Evasion",
        "CredentialAccess" => "TTPs/Credential Access",
        "Discovery" => "TTPs/Discovery",
        "Persistence" => "TTPs/Persistence",
        "PrivilegeEscalation" => "TTPs/Privilege Escalation",
        _ => "Unusual Behaviors/Process",
    };
    format!("{category}/{}", finding_type.replace('/', "-"))
}

fn product_fields(finding: &Finding) -> Obj {
    let mut fields = Obj::new()
        .put("vigil/FindingId", finding.id.clone())
        .put("vigil/FindingType", finding.finding_type.clone())
        .put("vigil/Count", finding.count.to_string())
        .put(
            "vigil/ResourceRole",
            serde_json::to_value(finding.resource_role).unwrap_or(Value::Null),
        )
        .put("vigil/Resource", finding.resource.display_name.clone());
    for (key, value) in &finding.context.additional {
        fields = fields.put(
            &format!("vigil/context/{key}"),
            truncate(value, PRODUCT_FIELD_MAX),
        );
    }
    let ctx = &finding.context;
    for (key, value) in [
        ("vigil/context/filePath", &ctx.file_path),
        (
            "vigil/context/commandLineExample",
            &ctx.command_line_example,
        ),
        ("vigil/context/toolName", &ctx.tool_name),
    ] {
        fields = fields.opt(
            key,
            value.as_deref().map(|v| truncate(v, PRODUCT_FIELD_MAX)),
        );
    }
    fields
}

fn resources(finding: &Finding, partition: &str, region: &str) -> Vec<Value> {
    let r = &finding.resource;
    let base = |kind: &str, id: String| {
        Obj::new()
            .put("Type", kind.to_owned())
            .put("Id", id)
            .put("Partition", partition.to_owned())
            .put("Region", region.to_owned())
    };
    let mut out = Vec::new();
    if let Some(c) = &r.container {
        let details = Obj::new()
            .put("Name", c.name.clone())
            .opt("ImageName", c.image.clone())
            .opt("ImageId", c.image_id.clone())
            .opt("Privileged", c.privileged);
        out.push(
            base("Container", c.id.clone())
                .put("Details", Obj::new().put("Container", details))
                .into(),
        );
    }
    if let Some(p) = &r.pod {
        let other = Obj::new()
            .put("kind", "Pod")
            .put("namespace", p.namespace.clone())
            .put("name", p.name.clone())
            .opt("uid", p.uid.clone())
            .opt("serviceAccountName", p.service_account_name.clone());
        out.push(
            base("Other", format!("pod/{}/{}", p.namespace, p.name))
                .put("Details", Obj::new().put("Other", other))
                .into(),
        );
    }
    let h = &r.host;
    let other = Obj::new()
        .put("kind", "Host")
        .put("hostname", h.hostname.clone())
        .opt("nodeName", h.node_name.clone())
        .opt("kernelVersion", h.kernel_version.clone())
        .opt("osImage", h.os_image.clone());
    out.push(
        base("Other", format!("host/{}", h.hostname))
            .put("Details", Obj::new().put("Other", other))
            .into(),
    );
    out
}

fn process(finding: &Finding) -> Option<Obj> {
    let p = finding.process.as_ref()?;
    Some(
        Obj::new()
            .put("Name", p.name.clone())
            .put("Path", p.executable_path.clone())
            .put("Pid", p.pid)
            .opt("ParentPid", p.lineage.first().map(|l| l.pid))
            .opt("LaunchedAt", known_time(&p.start_time).map(iso_millis)),
    )
}

fn network(finding: &Finding) -> Option<Obj> {
    let n = finding.network.as_ref()?;
    let v6 = |ip: &str| ip.contains(':');
    let local_port = (n.local_port != 0).then_some(n.local_port);
    let (direction, src_ip, src_port, dst_ip, dst_port, dst_domain) = match n.connection_direction {
        ConnectionDirection::Outbound => (
            "OUT",
            n.local_ip.as_str(),
            local_port,
            n.remote_ip.as_str(),
            Some(n.remote_port),
            n.remote_domain.clone(),
        ),
        ConnectionDirection::Inbound => (
            "IN",
            n.remote_ip.as_str(),
            Some(n.remote_port),
            n.local_ip.as_str(),
            local_port,
            None,
        ),
    };
    let key = |v6_key: &'static str, v4_key: &'static str, ip: &str| {
        if v6(ip) { v6_key } else { v4_key }
    };
    let mut obj = Obj::new()
        .put("Direction", direction)
        .put("Protocol", n.protocol.clone());
    obj = obj.put(key("SourceIpV6", "SourceIpV4", src_ip), src_ip.to_owned());
    obj = obj.opt("SourcePort", src_port);
    obj = obj.put(
        key("DestinationIpV6", "DestinationIpV4", dst_ip),
        dst_ip.to_owned(),
    );
    obj = obj.opt("DestinationPort", dst_port);
    Some(obj.opt("DestinationDomain", dst_domain))
}

fn indicators(finding: &Finding) -> Vec<Value> {
    let category = match super::threat_purpose(&finding.finding_type) {
        "Backdoor" => Some("BACKDOOR"),
        "Trojan" if finding.finding_type.contains("DropPoint") => Some("DROP_SITE"),
        "Trojan" if finding.finding_type.contains("DriveBy") => Some("EXPLOIT_SITE"),
        _ => None,
    };
    finding
        .evidence
        .iter()
        .flat_map(|e| &e.threat_intelligence_details)
        .map(|t| {
            let kind = indicator_type(&t.indicator);
            Obj::new()
                .put("Type", kind)
                .put("Value", t.indicator.clone())
                .opt("Category", category)
                .put("Source", t.threat_list_name.clone())
                .into()
        })
        .collect()
}

/// ASFF `ThreatIntelIndicators[].Type` of an indicator.
fn indicator_type(indicator: &str) -> &'static str {
    if indicator.parse::<std::net::Ipv4Addr>().is_ok() {
        "IPV4_ADDRESS"
    } else if indicator.parse::<std::net::Ipv6Addr>().is_ok() {
        "IPV6_ADDRESS"
    } else if indicator.len() == 64 && indicator.bytes().all(|b| b.is_ascii_hexdigit()) {
        "HASH_SHA256"
    } else if indicator.contains('/') {
        "URL"
    } else {
        "DOMAIN"
    }
}

/// At most `max` characters, cut on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => s[..cut].to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vigil_detection::FindingType;

    use super::*;
    use crate::format::testdata;

    /// The fields `BatchImportFindings` requires.
    const REQUIRED: [&str; 12] = [
        "SchemaVersion",
        "Id",
        "ProductArn",
        "GeneratorId",
        "AwsAccountId",
        "Types",
        "CreatedAt",
        "UpdatedAt",
        "Severity",
        "Title",
        "Description",
        "Resources",
    ];

    #[test]
    fn required_fields_are_always_present() {
        let origin = testdata::aws_origin();
        for f in testdata::all() {
            let doc = render(&f, &origin).unwrap();
            for field in REQUIRED {
                let v = &doc[field];
                assert!(
                    !v.is_null() && v != "" && v != &json!([]),
                    "{field} of {}",
                    f.id
                );
            }
            assert!(doc["Severity"]["Label"].is_string());
            for r in doc["Resources"].as_array().unwrap() {
                assert!(r["Type"].is_string() && r["Id"].is_string(), "{r}");
            }
        }
    }

    #[test]
    fn sample_in_asff() {
        let doc = render(&testdata::sample(), &testdata::aws_origin()).unwrap();
        assert_eq!(doc["SchemaVersion"], "2018-10-08");
        assert_eq!(doc["Id"], "vigil/prod-eu/5f0c1e2a-new-binary-web-1");
        assert_eq!(
            doc["ProductArn"],
            "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"
        );
        assert_eq!(
            doc["GeneratorId"],
            "vigil/Execution:Runtime/NewBinaryExecuted"
        );
        assert_eq!(
            doc["Types"],
            json!(["TTPs/Execution/Execution:Runtime-NewBinaryExecuted"])
        );
        assert_eq!(
            doc["Severity"],
            json!({"Label": "MEDIUM", "Normalized": 50, "Original": "5"})
        );
        assert_eq!(doc["FirstObservedAt"], "2026-11-27T10:00:00.000Z");
        assert_eq!(doc["LastObservedAt"], "2026-11-27T10:05:00.000Z");
        assert_eq!(
            doc["Process"],
            json!({"Name": "curl", "Path": "/usr/bin/curl", "Pid": 4242, "ParentPid": 4200,
                   "LaunchedAt": "2026-11-27T10:00:00.000Z"})
        );
        assert_eq!(
            doc["Resources"][0],
            json!({"Type": "Container", "Id": "3b5f0c9e6d2a", "Partition": "aws",
                   "Region": "eu-west-1", "Details": {"Container": {
                       "Name": "web", "ImageName": "registry.example/shop/web:1.2",
                       "Privileged": false}}})
        );
        assert_eq!(doc["Resources"][1]["Id"], "pod/shop/web-1");
        assert_eq!(
            doc["Resources"][2]["Details"]["Other"]["hostname"],
            "node-a"
        );
        assert_eq!(doc["ProductFields"]["vigil/Count"], "3");
        assert_eq!(doc["ProductFields"]["vigil/ResourceRole"], "ACTOR");
        assert_eq!(doc["RecordState"], "ACTIVE");
        assert_eq!(doc["Workflow"], json!({"Status": "NEW"}));
        assert!(doc.get("Network").is_none());
    }

    #[test]
    fn network_threats_and_archive_state() {
        let doc = render(&testdata::network_on_host(), &testdata::aws_origin()).unwrap();
        assert_eq!(
            doc["Network"],
            json!({"Direction": "OUT", "Protocol": "TCP", "DestinationIpV4": "203.0.113.7",
                   "DestinationPort": 4444, "DestinationDomain": "c2.example.invalid"})
        );
        assert_eq!(
            doc["ThreatIntelIndicators"],
            json!([{"Type": "IPV4_ADDRESS", "Value": "203.0.113.7", "Category": "BACKDOOR",
                    "Source": "c2-ips"}])
        );
        assert_eq!(doc["Severity"]["Label"], "HIGH");
        assert_eq!(doc["Resources"].as_array().unwrap().len(), 1);
        let doc = render(&testdata::rule_archived(), &testdata::aws_origin()).unwrap();
        assert_eq!(doc["RecordState"], "ARCHIVED");
        assert_eq!(doc["Workflow"]["Status"], "SUPPRESSED");
        assert_eq!(doc["GeneratorId"], "vigil/rule/tool-hydra");
        assert_eq!(
            doc["Severity"],
            json!({"Label": "CRITICAL", "Normalized": 95, "Original": "9.5"})
        );
        assert_eq!(
            doc["ProductFields"]["vigil/context/mitreTechniques"],
            "T1110.001,T1046"
        );
        assert!(doc.get("Process").unwrap().get("Path").is_none());
        let doc = render(&testdata::dns_in_container(), &testdata::aws_origin()).unwrap();
        assert_eq!(doc["ThreatIntelIndicators"][0]["Type"], "DOMAIN", "{doc}");
    }

    #[test]
    fn every_finding_type_has_a_three_level_type_and_titles_are_cut() {
        for t in FindingType::ALL {
            let ty = asff_type(t.as_str());
            assert_eq!(ty.split('/').count(), 3, "{ty}");
            assert!(
                ty.starts_with("TTPs/") || ty.starts_with("Effects/"),
                "{ty}: a runtime type maps to a TTP or an effect"
            );
        }
        let mut f = testdata::sample();
        f.title = "é".repeat(300);
        f.description = "x".repeat(2000);
        let doc = render(&f, &testdata::aws_origin()).unwrap();
        assert_eq!(doc["Title"].as_str().unwrap().chars().count(), 256);
        assert_eq!(doc["Description"].as_str().unwrap().len(), 1024);
    }

    #[test]
    fn indicator_types() {
        for (indicator, want) in [
            ("203.0.113.7", "IPV4_ADDRESS"),
            ("2001:db8::1", "IPV6_ADDRESS"),
            ("pool.example", "DOMAIN"),
            ("http://x.example/a", "URL"),
            (&"a".repeat(64), "HASH_SHA256"),
        ] {
            assert_eq!(indicator_type(indicator), want, "{indicator}");
        }
    }

    #[test]
    fn documents_have_the_members_and_types_of_security_hubs_finding_model() {
        let test = "documents_have_the_members_and_types_of_security_hubs_finding_model";
        let Some(python) = testdata::schema_python(test) else {
            return;
        };
        let mut docs: Vec<Value> = testdata::all()
            .iter()
            .map(|f| render(f, &testdata::aws_origin()).unwrap())
            .collect();
        let good = docs.len();
        let mut broken = docs[0].clone();
        broken["Severity"]["Label"] = json!("SEVERE");
        docs.push(broken);
        let mut missing = docs[0].clone();
        missing.as_object_mut().unwrap().remove("GeneratorId");
        docs.push(missing);
        let results = testdata::validate(
            &python,
            "aws_shapes.py",
            &["securityhub", "AwsSecurityFinding"],
            &docs,
        );
        for (doc, errors) in docs.iter().zip(&results).take(good) {
            assert!(errors.is_empty(), "{}: {errors:#?}", doc["Id"]);
        }
        assert!(
            results[good].iter().any(|e| e.contains("SEVERE")),
            "{:?}",
            results[good]
        );
        assert!(
            results[good + 1]
                .iter()
                .any(|e| e.contains("'GeneratorId'")),
            "{:?}",
            results[good + 1]
        );
    }
}
