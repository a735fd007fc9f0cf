//! GuardDuty's finding JSON: the field names and nesting of a runtime finding in the output of
//! GuardDuty's `GetFindings` (PascalCase, as the API returns it), so that tools built for
//! GuardDuty findings read Vigil's unchanged.
//!
//! - `Resource.ResourceType` is `EKSCluster` for a finding in a pod (with
//!   `KubernetesDetails.KubernetesWorkloadDetails` and, when the cluster is named,
//!   `EksClusterDetails.Name`), `Container` for a container outside a pod (`ContainerDetails`),
//!   and `Instance` for the host.
//! - `Service.RuntimeDetails.Process` and `.Context` carry the process, its lineage and the
//!   type-specific context; `Service.Action` the connection (`NETWORK_CONNECTION`) or the DNS
//!   request (`DNS_REQUEST`); `Service.Evidence.ThreatIntelligenceDetails` the list matches.
//! - What GuardDuty has no field for (host name, kernel, node, Vigil's finding id and free-form
//!   context) is in `Service.AdditionalInfo`, a JSON string with `Type: "default"`, as GuardDuty
//!   writes its own extra information.
//! - `AccountId`, `Region`, `Partition` and `Arn` are present only when configured: the `Arn`
//!   names Vigil as the detector (`detector/vigil`), since there is no GuardDuty detector.

use serde_json::Value;
use vigil_crds::finding::{ConnectionDirection, Finding, LineageEntry, ProcessDetails, UNKNOWN_ID};

use super::{iso_millis, json::Obj, known_time};

/// GuardDuty's finding schema version that this shape follows.
pub(crate) const SCHEMA_VERSION: &str = "2.0";

pub(crate) fn render(finding: &Finding, origin: &super::Origin) -> Value {
    let partition = origin.partition();
    let arn = match (&origin.account_id, &origin.region, partition) {
        (Some(account), Some(region), Some(partition)) => Some(format!(
            "arn:{partition}:guardduty:{region}:{account}:detector/vigil/finding/{}",
            finding.id
        )),
        _ => None,
    };
    Obj::new()
        .put("SchemaVersion", SCHEMA_VERSION)
        .opt("AccountId", origin.account_id.clone())
        .opt("Region", origin.region.clone())
        .opt("Partition", partition)
        .opt("Arn", arn)
        .put("Id", finding.id.clone())
        .put("Type", finding.finding_type.clone())
        .put("Title", finding.title.clone())
        .put("Description", finding.description.clone())
        .put("Severity", finding.severity)
        .opt("CreatedAt", known_time(&finding.created_at).map(iso_millis))
        .opt("UpdatedAt", known_time(&finding.updated_at).map(iso_millis))
        .put("Resource", resource(finding, origin))
        .put("Service", service(finding, origin))
        .into()
}

fn resource(finding: &Finding, origin: &super::Origin) -> Value {
    let r = &finding.resource;
    let container = r.container.as_ref().map(|c| {
        let security = Obj::new()
            .opt("Privileged", c.privileged)
            .opt("AllowPrivilegeEscalation", c.allow_privilege_escalation);
        Obj::new()
            .opt("ContainerRuntime", c.container_runtime.clone())
            .put("Id", c.id.clone())
            .put("Name", c.name.clone())
            .opt("Image", c.image.clone())
            .opt("ImagePrefix", c.image_prefix.clone())
            .put("SecurityContext", security)
    });
    match (&r.pod, container) {
        (Some(pod), container) => {
            // GuardDuty names the workload that owns the pod; a bare pod is its own workload.
            let (kind, name, uid) = match &pod.workload {
                Some(w) => (w.kind.clone(), w.name.clone(), w.uid.clone()),
                None => ("Pod".to_owned(), pod.name.clone(), pod.uid.clone()),
            };
            let volumes: Vec<Value> = pod
                .host_path_volumes
                .iter()
                .map(|path| {
                    Obj::new()
                        .put("HostPath", Obj::new().put("Path", path.clone()))
                        .into()
                })
                .collect();
            let workload = Obj::new()
                .put("Name", name)
                .put("Type", kind)
                .opt("Uid", uid)
                .put("Namespace", pod.namespace.clone())
                .opt("ServiceAccountName", pod.service_account_name.clone())
                .opt("HostNetwork", pod.host_network)
                .opt("HostPID", pod.host_pid)
                .opt("HostIPC", pod.host_ipc)
                .put(
                    "Containers",
                    container.into_iter().map(Value::from).collect::<Vec<_>>(),
                )
                .put("Volumes", volumes);
            Obj::new()
                .put("ResourceType", "EKSCluster")
                .put(
                    "EksClusterDetails",
                    Obj::new().opt("Name", origin.cluster.clone()),
                )
                .put(
                    "KubernetesDetails",
                    Obj::new().put("KubernetesWorkloadDetails", workload),
                )
                .into()
        }
        (None, Some(container)) => Obj::new()
            .put("ResourceType", "Container")
            .put("ContainerDetails", container)
            .into(),
        (None, None) => Obj::new().put("ResourceType", "Instance").into(),
    }
}

fn service(finding: &Finding, origin: &super::Origin) -> Value {
    let ctx = &finding.context;
    let context = Obj::new()
        .opt(
            "ModifyingProcess",
            ctx.modifying_process.as_ref().map(process),
        )
        .opt(
            "ModifiedAt",
            ctx.modified_at
                .as_ref()
                .and_then(known_time)
                .map(iso_millis),
        )
        .opt("TargetProcess", ctx.target_process.as_ref().map(process))
        .opt("FilePath", ctx.file_path.clone())
        .opt("FileOperation", ctx.file_operation.clone())
        .opt("ModuleName", ctx.module_name.clone())
        .opt("ModuleSha256", ctx.module_sha256.clone())
        .opt("MountSource", ctx.mount_source.clone())
        .opt("MountTarget", ctx.mount_target.clone())
        .opt("SocketPath", ctx.socket_path.clone())
        .opt("LdPreloadValue", ctx.ld_preload_value.clone())
        .opt("ToolName", ctx.tool_name.clone())
        .opt("ToolCategory", ctx.tool_category.clone())
        .opt("CommandLineExample", ctx.command_line_example.clone());
    let runtime = Obj::new()
        .opt("Process", finding.process.as_ref().map(process))
        .put("Context", context);
    let evidence: Vec<Value> = finding
        .evidence
        .iter()
        .flat_map(|e| &e.threat_intelligence_details)
        .map(|t| {
            let sha = is_sha256(&t.indicator).then(|| t.indicator.clone());
            Obj::new()
                .put("ThreatListName", t.threat_list_name.clone())
                .opt("ThreatFileSha256", sha)
                .into()
        })
        .collect();
    Obj::new()
        .put("ServiceName", "guardduty")
        .put("FeatureName", "RuntimeMonitoring")
        .put("Archived", finding.archived)
        .put("Count", finding.count)
        .opt(
            "EventFirstSeen",
            known_time(&finding.event_first_seen).map(iso_millis),
        )
        .opt(
            "EventLastSeen",
            known_time(&finding.event_last_seen).map(iso_millis),
        )
        .put("ResourceRole", resource_role(finding))
        .opt("Action", action(finding))
        .put(
            "Evidence",
            Obj::new().put("ThreatIntelligenceDetails", evidence),
        )
        .put("RuntimeDetails", runtime)
        .put(
            "AdditionalInfo",
            Obj::new()
                .put("Value", additional_info(finding, origin))
                .put("Type", "default"),
        )
        .into()
}

fn resource_role(finding: &Finding) -> Value {
    serde_json::to_value(finding.resource_role).unwrap_or(Value::Null)
}

fn action(finding: &Finding) -> Option<Obj> {
    if let Some(n) = &finding.network {
        let ip = |addr: &str| {
            if addr.contains(':') {
                Obj::new().put("IpAddressV6", addr.to_owned())
            } else {
                Obj::new().put("IpAddressV4", addr.to_owned())
            }
        };
        let direction = match n.connection_direction {
            ConnectionDirection::Outbound => "OUTBOUND",
            ConnectionDirection::Inbound => "INBOUND",
        };
        let local_port = (n.local_port != 0).then_some(n.local_port);
        let connection = Obj::new()
            .put("ConnectionDirection", direction)
            .put("Protocol", n.protocol.clone())
            .put("LocalIpDetails", ip(&n.local_ip))
            .opt(
                "LocalPortDetails",
                local_port.map(|p| Obj::new().put("Port", p)),
            )
            .put("RemoteIpDetails", ip(&n.remote_ip))
            .put("RemotePortDetails", Obj::new().put("Port", n.remote_port));
        return Some(
            Obj::new()
                .put("ActionType", "NETWORK_CONNECTION")
                .put("NetworkConnectionAction", connection),
        );
    }
    finding.dns.as_ref().map(|d| {
        Obj::new().put("ActionType", "DNS_REQUEST").put(
            "DnsRequestAction",
            Obj::new()
                .put("Domain", d.domain.clone())
                .put("Protocol", d.protocol.clone()),
        )
    })
}

/// What GuardDuty has no field for, as the JSON string GuardDuty's `AdditionalInfo.Value` is.
fn additional_info(finding: &Finding, origin: &super::Origin) -> String {
    let host = &finding.resource.host;
    let pod = finding.resource.pod.as_ref();
    let info: Value = Obj::new()
        .put("vigilFindingId", finding.id.clone())
        .put("severityLabel", finding.severity_label.to_string())
        .put("resourceDisplayName", finding.resource.display_name.clone())
        .put("hostname", host.hostname.clone())
        .opt("nodeName", host.node_name.clone())
        .opt("kernelVersion", host.kernel_version.clone())
        .opt("osImage", host.os_image.clone())
        .opt("cluster", origin.cluster.clone())
        .opt("podName", pod.map(|p| p.name.clone()))
        .opt("podUid", pod.and_then(|p| p.uid.clone()))
        .opt(
            "remoteDomain",
            finding
                .network
                .as_ref()
                .and_then(|n| n.remote_domain.clone()),
        )
        .put(
            "indicators",
            finding
                .evidence
                .iter()
                .flat_map(|e| &e.threat_intelligence_details)
                .map(|t| Value::from(t.indicator.clone()))
                .collect::<Vec<_>>(),
        )
        .put(
            "context",
            serde_json::to_value(&finding.context.additional).unwrap_or(Value::Null),
        )
        .into();
    info.to_string()
}

/// `Process` of `RuntimeDetails` (GuardDuty's `ProcessDetails`).
fn process(p: &ProcessDetails) -> Value {
    let lineage: Vec<Value> = p.lineage.iter().map(lineage_entry).collect();
    Obj::new()
        .put("Name", p.name.clone())
        .put("ExecutablePath", p.executable_path.clone())
        .opt("ExecutableSha256", p.executable_sha256.clone())
        .opt("NamespacePid", p.namespace_pid)
        .opt("Pwd", p.pwd.clone())
        .put("Pid", p.pid)
        .opt("StartTime", known_time(&p.start_time).map(iso_millis))
        .put("Uuid", p.uuid.clone())
        .opt("ParentUuid", p.parent_uuid.clone())
        .opt("User", p.user.clone())
        .opt("UserId", known_id(p.uid))
        .opt("Euid", known_id(p.euid))
        .put("Lineage", lineage)
        .into()
}

fn lineage_entry(l: &LineageEntry) -> Value {
    Obj::new()
        .opt("StartTime", known_time(&l.start_time).map(iso_millis))
        .opt("NamespacePid", l.namespace_pid)
        .opt("UserId", known_id(l.uid))
        .put("Name", l.name.clone())
        .put("Pid", l.pid)
        .put("Uuid", l.uuid.clone())
        .put("ExecutablePath", l.executable_path.clone())
        .opt("Euid", known_id(l.euid))
        .opt("ParentUuid", l.parent_uuid.clone())
        .into()
}

fn known_id(id: u32) -> Option<u32> {
    (id != UNKNOWN_ID).then_some(id)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::format::{Origin, testdata};

    #[test]
    fn pod_finding_has_the_getfindings_shape() {
        let doc = render(&testdata::sample(), &testdata::aws_origin());
        let want = json!({
            "SchemaVersion": "2.0",
            "AccountId": "123456789012",
            "Region": "eu-west-1",
            "Partition": "aws",
            "Arn": "arn:aws:guardduty:eu-west-1:123456789012:detector/vigil/finding/5f0c1e2a-new-binary-web-1",
            "Id": "5f0c1e2a-new-binary-web-1",
            "Type": "Execution:Runtime/NewBinaryExecuted",
            "Title": "A newly created or modified binary was executed in a container.",
            "Description": "Process curl executed /usr/bin/curl, which was written after the container started.",
            "Severity": 5.0,
            "CreatedAt": "2026-11-27T10:00:00.000Z",
            "UpdatedAt": "2026-11-27T10:05:00.000Z",
            "Resource": {
                "ResourceType": "EKSCluster",
                "EksClusterDetails": {"Name": "prod-eu"},
                "KubernetesDetails": {"KubernetesWorkloadDetails": {
                    "Name": "web-1", "Type": "Pod", "Uid": "0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
                    "Namespace": "shop",
                    "Containers": [{
                        "ContainerRuntime": "containerd", "Id": "3b5f0c9e6d2a", "Name": "web",
                        "Image": "registry.example/shop/web:1.2",
                        "ImagePrefix": "registry.example/shop/web",
                        "SecurityContext": {"Privileged": false}
                    }]
                }}
            },
            "Service": {
                "ServiceName": "guardduty",
                "FeatureName": "RuntimeMonitoring",
                "Archived": false,
                "Count": 3,
                "EventFirstSeen": "2026-11-27T10:00:00.000Z",
                "EventLastSeen": "2026-11-27T10:05:00.000Z",
                "ResourceRole": "ACTOR",
                "RuntimeDetails": {
                    "Process": {
                        "Name": "curl", "ExecutablePath": "/usr/bin/curl",
                        "ExecutableSha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                        "NamespacePid": 42, "Pwd": "/srv", "Pid": 4242,
                        "StartTime": "2026-11-27T10:00:00.000Z",
                        "Uuid": "6e0a8a0e-4d0f-4a7b-9d1e-7c2b3a4d5e6f",
                        "ParentUuid": "1a2b3c4d-0000-4000-8000-000000000001",
                        "User": "app", "UserId": 1000, "Euid": 1000,
                        "Lineage": [
                            {"StartTime": "2026-11-27T09:59:00.000Z", "NamespacePid": 7, "UserId": 1000,
                             "Name": "bash", "Pid": 4200, "Uuid": "1a2b3c4d-0000-4000-8000-000000000001",
                             "ExecutablePath": "/bin/bash", "Euid": 1000,
                             "ParentUuid": "1a2b3c4d-0000-4000-8000-000000000000"},
                            {"StartTime": "2026-11-27T09:58:00.000Z", "UserId": 0,
                             "Name": "containerd-shim", "Pid": 4100,
                             "Uuid": "1a2b3c4d-0000-4000-8000-000000000000",
                             "ExecutablePath": "/usr/bin/containerd-shim-runc-v2", "Euid": 0}
                        ]
                    },
                    "Context": {
                        "ModifyingProcess": {
                            "Name": "sh", "ExecutablePath": "/bin/sh", "Pid": 4190,
                            "StartTime": "2026-11-27T09:59:30.000Z",
                            "Uuid": "1a2b3c4d-0000-4000-8000-000000000002",
                            "UserId": 1000, "Euid": 1000
                        },
                        "ModifiedAt": "2026-11-27T09:59:40.000Z",
                        "FilePath": "/usr/bin/curl",
                        "FileOperation": "write",
                        "CommandLineExample": "curl -H 'Authorization: Bearer <redacted>' https://example.invalid/x"
                    }
                },
                "AdditionalInfo": {"Type": "default", "Value": ""}
            }
        });
        let mut doc = doc;
        let info = doc["Service"]["AdditionalInfo"]["Value"].take();
        doc["Service"]["AdditionalInfo"]["Value"] = json!("");
        assert_eq!(doc, want);
        let info: Value = serde_json::from_str(info.as_str().unwrap()).unwrap();
        assert_eq!(
            info,
            json!({
                "vigilFindingId": "5f0c1e2a-new-binary-web-1", "severityLabel": "Medium",
                "resourceDisplayName": "shop/web-1/web", "hostname": "node-a", "nodeName": "node-a",
                "kernelVersion": "6.8.0-45-generic", "osImage": "Ubuntu 24.04.1 LTS",
                "cluster": "prod-eu", "podName": "web-1",
                "podUid": "0b9a4f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
            })
        );
    }

    #[test]
    fn host_connection_has_an_action_evidence_and_no_unknown_values() {
        let doc = render(&testdata::network_on_host(), &Origin::default());
        for absent in ["AccountId", "Region", "Partition", "Arn"] {
            assert!(doc.get(absent).is_none(), "{absent} without an origin");
        }
        assert_eq!(doc["Resource"], json!({"ResourceType": "Instance"}));
        assert_eq!(
            doc["Service"]["Action"],
            json!({
                "ActionType": "NETWORK_CONNECTION",
                "NetworkConnectionAction": {
                    "ConnectionDirection": "OUTBOUND", "Protocol": "TCP",
                    "RemoteIpDetails": {"IpAddressV4": "203.0.113.7"},
                    "RemotePortDetails": {"Port": 4444}
                }
            })
        );
        assert_eq!(
            doc["Service"]["Evidence"],
            json!({"ThreatIntelligenceDetails": [{"ThreatListName": "c2-ips"}]})
        );
        // The ancestor the agent never saw: no UserId, Euid, StartTime, Uuid or path.
        assert_eq!(
            doc["Service"]["RuntimeDetails"]["Process"]["Lineage"],
            json!([{"Name": "sshd", "Pid": 900}])
        );
        let text = doc.to_string();
        for placeholder in ["4294967295", "1970-01-01"] {
            assert!(!text.contains(placeholder), "{placeholder} in {text}");
        }
        let info: Value =
            serde_json::from_str(doc["Service"]["AdditionalInfo"]["Value"].as_str().unwrap())
                .unwrap();
        assert_eq!(info["remoteDomain"], "c2.example.invalid");
        assert_eq!(info["indicators"], json!(["203.0.113.7"]));
        assert_eq!(info["context"], json!({"connectResult": "-111"}));
    }

    #[test]
    fn container_dns_and_archived_rule_findings() {
        let doc = render(&testdata::dns_in_container(), &Origin::default());
        assert_eq!(doc["Resource"]["ResourceType"], "Container");
        assert_eq!(doc["Resource"]["ContainerDetails"]["Id"], "3b5f0c9e6d2a");
        assert_eq!(
            doc["Service"]["Action"],
            json!({"ActionType": "DNS_REQUEST",
                   "DnsRequestAction": {"Domain": "pool.minexmr.example", "Protocol": "UDP"}})
        );
        let doc = render(&testdata::rule_archived(), &Origin::default());
        assert_eq!(doc["Service"]["Archived"], true);
        assert_eq!(doc["Severity"], 9.5);
        assert_eq!(
            doc["Service"]["RuntimeDetails"]["Process"],
            json!({"Name": "hydra", "Pid": 77})
        );
        assert_eq!(
            doc["Service"]["RuntimeDetails"]["Context"],
            json!({"ToolName": "hydra", "ToolCategory": "Brute-forcer",
                   "CommandLineExample": "hydra -l root -P words.txt ssh://10.0.0.1"})
        );
    }

    #[test]
    fn a_hash_indicator_is_the_threat_file_sha256_and_workloads_are_named() {
        let mut f = testdata::sample();
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        f.evidence = Some(vigil_crds::finding::Evidence {
            threat_intelligence_details: vec![vigil_crds::finding::ThreatIntelligenceDetail {
                threat_list_name: "malware-sha256".into(),
                indicator: sha.into(),
            }],
        });
        let pod = f.resource.pod.as_mut().unwrap();
        pod.workload = Some(vigil_crds::finding::WorkloadDetails {
            kind: "Deployment".into(),
            name: "web".into(),
            uid: None,
        });
        pod.host_path_volumes = vec!["/var/run/docker.sock".into()];
        pod.host_pid = Some(true);
        let doc = render(&f, &Origin::default());
        assert_eq!(
            doc["Service"]["Evidence"]["ThreatIntelligenceDetails"],
            json!([{"ThreatListName": "malware-sha256", "ThreatFileSha256": sha}])
        );
        let w = &doc["Resource"]["KubernetesDetails"]["KubernetesWorkloadDetails"];
        assert_eq!(w["Type"], "Deployment");
        assert_eq!(w["Name"], "web");
        assert!(w.get("Uid").is_none());
        assert_eq!(w["HostPID"], true);
        assert_eq!(
            w["Volumes"],
            json!([{"HostPath": {"Path": "/var/run/docker.sock"}}])
        );
        // No cluster configured: no EksClusterDetails rather than an empty name.
        assert!(doc["Resource"].get("EksClusterDetails").is_none());
    }

    #[test]
    fn documents_have_the_members_and_types_of_guarddutys_finding_model() {
        let test = "documents_have_the_members_and_types_of_guarddutys_finding_model";
        let Some(python) = testdata::schema_python(test) else {
            return;
        };
        // With an origin, every member the model requires; without one, all but the three
        // that only an origin gives (left out rather than invented).
        let with: Vec<Value> = testdata::all()
            .iter()
            .map(|f| render(f, &testdata::aws_origin()))
            .collect();
        let without: Vec<Value> = testdata::all()
            .iter()
            .map(|f| render(f, &Origin::default()))
            .collect();
        let mut broken = with[0].clone();
        broken["Service"]["RuntimeDetails"]["Process"]["Uid"] = json!(1000);
        let mut missing = with[0].clone();
        missing.as_object_mut().unwrap().remove("Severity");
        let mut docs = with.clone();
        docs.push(broken);
        docs.push(missing);
        let results =
            testdata::validate(&python, "aws_shapes.py", &["guardduty", "Finding"], &docs);
        for (doc, errors) in docs.iter().zip(&results).take(with.len()) {
            assert!(errors.is_empty(), "{}: {errors:#?}", doc["Id"]);
        }
        assert!(
            results[with.len()].iter().any(|e| e.contains("'Uid'")),
            "{:?}",
            results[with.len()]
        );
        assert!(
            results[with.len() + 1]
                .iter()
                .any(|e| e.contains("'Severity'")),
            "{:?}",
            results[with.len() + 1]
        );
        let results = testdata::validate(
            &python,
            "aws_shapes.py",
            &["guardduty", "Finding", "AccountId,Arn,Region"],
            &without,
        );
        for (doc, errors) in without.iter().zip(&results) {
            assert!(errors.is_empty(), "{}: {errors:#?}", doc["Id"]);
        }
    }
}
