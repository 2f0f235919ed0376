//! The kinds every logical cluster serves (kcp's generic control plane plus the workload
//! kinds that syncers place on real clusters).

use std::sync::Arc;

use kplex_registry::catalog::{
    ALL_VERBS, Cell, Column, Origin, ResourceDesc, ScalePaths, StoredAs, Subresource,
};
use kplex_registry::registry::strategy;
use kplex_registry::shared::SharedObjects;

struct B(ResourceDesc);

fn r(group: &str, version: &str, kind: &str, plural: &str) -> B {
    B(ResourceDesc {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        short_names: vec![],
        categories: vec![],
        namespaced: true,
        status: false,
        scale: None,
        subresources: vec![],
        generation: false,
        columns: vec![],
        field_labels: vec![],
        schema: None,
        builtin_schema: Arc::default(),
        origin: Origin::Builtin,
        verbs: ALL_VERBS.to_vec(),
        conversion: None,
        strategy: strategy::generic(),
        shared: None,
        stored_as: None,
        deprecation_warning: None,
    })
}

fn col(name: &str, type_: &str, priority: i32, cell: Cell) -> Column {
    Column {
        name: name.into(),
        type_: type_.into(),
        format: if matches!(cell, Cell::Name) {
            "name".into()
        } else {
            String::new()
        },
        description: String::new(),
        priority,
        cell,
    }
}

/// Column spec shorthand: `"Name"`, `"Age"`, `".json.path"`, or `"=computed"`.
fn cell(spec: &str) -> Cell {
    if let Some(c) = spec.strip_prefix('=') {
        return Cell::Computed(Box::leak(c.to_string().into_boxed_str()));
    }
    match spec {
        "Name" => Cell::Name,
        "Age" => Cell::Age,
        path => match kplex_schema::jsonpath::parse(path) {
            Ok(p) => Cell::Path(Arc::new(p)),
            // The table is ours; a bad path is a programming error caught by tests.
            Err(_) => Cell::Computed("invalid"),
        },
    }
}

impl B {
    fn cluster(mut self) -> Self {
        self.0.namespaced = false;
        self
    }
    /// Objects every workspace has without storing them (after `cluster()`: only
    /// cluster-scoped kinds have them).
    fn shared(mut self, objects: Arc<SharedObjects>) -> Self {
        debug_assert!(!self.0.namespaced);
        self.0.shared = Some(objects);
        self
    }
    fn short(mut self, names: &[&str]) -> Self {
        self.0.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }
    fn all(mut self) -> Self {
        self.0.categories = vec!["all".into()];
        self
    }
    fn status(mut self) -> Self {
        self.0.status = true;
        self
    }
    fn scale(mut self) -> Self {
        self.0.scale = Some(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".status.selector".into()),
        });
        self
    }
    fn generation(mut self) -> Self {
        self.0.generation = true;
        self
    }
    fn fields(mut self, labels: &[(&str, &str)]) -> Self {
        self.0.field_labels = labels
            .iter()
            .map(|(l, p)| (l.to_string(), p.to_string()))
            .collect();
        self
    }
    /// Columns as (header, type, priority, cell spec).
    fn cols(mut self, cols: &[(&str, &str, i32, &str)]) -> Self {
        self.0.columns = cols
            .iter()
            .map(|(n, t, p, c)| col(n, t, *p, cell(c)))
            .collect();
        self
    }
}

const NAME: (&str, &str, i32, &str) = ("Name", "string", 0, "Name");
const AGE: (&str, &str, i32, &str) = ("Age", "date", 0, "Age");
const CREATED_AT: (&str, &str, i32, &str) = ("Created At", "date", 0, "=createdAt");

const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject.kind", ".involvedObject.kind"),
    ("involvedObject.namespace", ".involvedObject.namespace"),
    ("involvedObject.name", ".involvedObject.name"),
    ("involvedObject.uid", ".involvedObject.uid"),
    ("involvedObject.apiVersion", ".involvedObject.apiVersion"),
    (
        "involvedObject.resourceVersion",
        ".involvedObject.resourceVersion",
    ),
    ("involvedObject.fieldPath", ".involvedObject.fieldPath"),
    ("reason", ".reason"),
    ("reportingComponent", ".reportingComponent"),
    ("source", ".source.component"),
    ("type", ".type"),
];

const EVENT_COLS: &[(&str, &str, i32, &str)] = &[
    ("Last Seen", "string", 0, "=eventLastSeen"),
    ("Type", "string", 0, ".type"),
    ("Reason", "string", 0, ".reason"),
    ("Object", "string", 0, "=eventObject"),
    ("Message", "string", 0, "=eventMessage"),
];

const WORKLOAD_WIDE: &[(&str, &str, i32, &str)] = &[
    ("Containers", "string", 1, "=containers"),
    ("Images", "string", 1, "=images"),
    ("Selector", "string", 1, "=selector"),
];

fn with(
    base: &[(&'static str, &'static str, i32, &'static str)],
    extra: &[(&'static str, &'static str, i32, &'static str)],
) -> Vec<(&'static str, &'static str, i32, &'static str)> {
    base.iter().chain(extra).copied().collect()
}

/// Every built-in resource, in discovery order.
pub fn all() -> Vec<ResourceDesc> {
    let v = vec![
        // core/v1
        r("", "v1", "Namespace", "namespaces")
            .cluster()
            .short(&["ns"])
            .status()
            .sub("finalize", None, &["update"])
            .fields(&[("status.phase", ".status.phase")])
            .cols(&[NAME, ("Status", "string", 0, ".status.phase"), AGE]),
        r("", "v1", "ConfigMap", "configmaps")
            .short(&["cm"])
            .cols(&[NAME, ("Data", "integer", 0, "=dataCount"), AGE]),
        r("", "v1", "Secret", "secrets")
            .fields(&[("type", ".type")])
            .cols(&[
                NAME,
                ("Type", "string", 0, ".type"),
                ("Data", "integer", 0, "=dataCount"),
                AGE,
            ]),
        // Deprecated in kube 1.19 and still served: probed on each read, never stored.
        r("", "v1", "ComponentStatus", "componentstatuses")
            .cluster()
            .short(&["cs"])
            .read_only()
            .cols(&[
                NAME,
                ("Status", "string", 0, "=componentHealth"),
                ("Message", "string", 0, ".conditions[0].message"),
                ("Error", "string", 0, ".conditions[0].error"),
            ]),
        r("", "v1", "ServiceAccount", "serviceaccounts")
            .short(&["sa"])
            .sub(
                "token",
                Some(("authentication.k8s.io", "v1", "TokenRequest")),
                &["create"],
            )
            .cols(&[NAME, ("Secrets", "integer", 0, "=secretsCount"), AGE]),
        r("", "v1", "Event", "events")
            .short(&["ev"])
            .fields(EVENT_FIELDS)
            .cols(EVENT_COLS),
        r("", "v1", "LimitRange", "limitranges")
            .short(&["limits"])
            .cols(&[NAME, CREATED_AT]),
        r("", "v1", "ResourceQuota", "resourcequotas")
            .short(&["quota"])
            .status()
            .cols(&[NAME, AGE]),
        r("", "v1", "Pod", "pods")
            .short(&["po"])
            .all()
            .status()
            .sub("binding", Some(("", "v1", "Binding")), &["create"])
            .sub("ephemeralcontainers", None, &["get", "patch", "update"])
            .sub("eviction", Some(("policy", "v1", "Eviction")), &["create"])
            .fields(&[
                ("spec.nodeName", ".spec.nodeName"),
                ("spec.restartPolicy", ".spec.restartPolicy"),
                ("spec.schedulerName", ".spec.schedulerName"),
                ("spec.serviceAccountName", ".spec.serviceAccountName"),
                ("spec.hostNetwork", ".spec.hostNetwork"),
                ("status.phase", ".status.phase"),
                ("status.podIP", ".status.podIP"),
                ("status.nominatedNodeName", ".status.nominatedNodeName"),
            ])
            .cols(&[
                NAME,
                ("Ready", "string", 0, "=podReady"),
                ("Status", "string", 0, "=podStatus"),
                ("Restarts", "string", 0, "=podRestarts"),
                AGE,
                ("IP", "string", 1, ".status.podIP"),
                ("Node", "string", 1, ".spec.nodeName"),
            ]),
        r("", "v1", "Service", "services")
            .short(&["svc"])
            .all()
            .status()
            .cols(&[
                NAME,
                ("Type", "string", 0, ".spec.type"),
                ("Cluster-IP", "string", 0, ".spec.clusterIP"),
                ("External-IP", "string", 0, "=externalIPs"),
                ("Port(s)", "string", 0, "=servicePorts"),
                AGE,
                ("Selector", "string", 1, "=serviceSelector"),
            ]),
        r("", "v1", "Endpoints", "endpoints").short(&["ep"]).cols(&[
            NAME,
            ("Endpoints", "string", 0, "=endpoints"),
            AGE,
        ]),
        r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
            .short(&["pvc"])
            .status()
            .cols(&[
                NAME,
                ("Status", "string", 0, ".status.phase"),
                ("Volume", "string", 0, ".spec.volumeName"),
                ("Capacity", "string", 0, ".status.capacity.storage"),
                ("Access Modes", "string", 0, "=accessModes"),
                ("StorageClass", "string", 0, ".spec.storageClassName"),
                AGE,
            ]),
        r("", "v1", "Node", "nodes")
            .cluster()
            .short(&["no"])
            .status()
            .fields(&[("spec.unschedulable", ".spec.unschedulable")])
            .cols(&[
                NAME,
                ("Status", "string", 0, "=nodeStatus"),
                ("Roles", "string", 0, "=nodeRoles"),
                AGE,
                ("Version", "string", 0, ".status.nodeInfo.kubeletVersion"),
                ("Internal-IP", "string", 1, "=nodeInternalIP"),
                ("OS-Image", "string", 1, ".status.nodeInfo.osImage"),
                (
                    "Kernel-Version",
                    "string",
                    1,
                    ".status.nodeInfo.kernelVersion",
                ),
                (
                    "Container-Runtime",
                    "string",
                    1,
                    ".status.nodeInfo.containerRuntimeVersion",
                ),
            ]),
        r("", "v1", "PersistentVolume", "persistentvolumes")
            .cluster()
            .short(&["pv"])
            .status()
            .cols(&[
                NAME,
                ("Capacity", "string", 0, ".spec.capacity.storage"),
                ("Access Modes", "string", 0, "=accessModes"),
                (
                    "Reclaim Policy",
                    "string",
                    0,
                    ".spec.persistentVolumeReclaimPolicy",
                ),
                ("Status", "string", 0, ".status.phase"),
                ("Claim", "string", 0, "=pvClaim"),
                ("StorageClass", "string", 0, ".spec.storageClassName"),
                ("Reason", "string", 0, ".status.reason"),
                AGE,
                ("VolumeMode", "string", 1, ".spec.volumeMode"),
            ]),
        r("", "v1", "PodTemplate", "podtemplates").cols(&[
            NAME,
            ("Containers", "string", 0, "=templateContainers"),
            ("Images", "string", 0, "=templateImages"),
            ("Pod Labels", "string", 0, "=templateLabels"),
        ]),
        r("", "v1", "ReplicationController", "replicationcontrollers")
            .short(&["rc"])
            .all()
            .status()
            .scale()
            .generation()
            .cols(&with(
                &[
                    NAME,
                    ("Desired", "integer", 0, "=specReplicas"),
                    ("Current", "integer", 0, "=statusReplicas"),
                    ("Ready", "integer", 0, "=readyReplicas"),
                    AGE,
                ],
                WORKLOAD_WIDE,
            )),
        // apps/v1
        r("apps", "v1", "Deployment", "deployments")
            .short(&["deploy"])
            .all()
            .status()
            .scale()
            .generation()
            .cols(&with(
                &[
                    NAME,
                    ("Ready", "string", 0, "=readyOfReplicas"),
                    ("Up-to-date", "integer", 0, "=updatedReplicas"),
                    ("Available", "integer", 0, "=availableReplicas"),
                    AGE,
                ],
                WORKLOAD_WIDE,
            )),
        r("apps", "v1", "ReplicaSet", "replicasets")
            .short(&["rs"])
            .all()
            .status()
            .scale()
            .generation()
            .cols(&with(
                &[
                    NAME,
                    ("Desired", "integer", 0, "=specReplicas"),
                    ("Current", "integer", 0, "=statusReplicas"),
                    ("Ready", "integer", 0, "=readyReplicas"),
                    AGE,
                ],
                WORKLOAD_WIDE,
            )),
        r("apps", "v1", "StatefulSet", "statefulsets")
            .short(&["sts"])
            .all()
            .status()
            .scale()
            .generation()
            .cols(&with(
                &[NAME, ("Ready", "string", 0, "=readyOfReplicas"), AGE],
                &WORKLOAD_WIDE[..2],
            )),
        r("apps", "v1", "DaemonSet", "daemonsets")
            .short(&["ds"])
            .all()
            .status()
            .generation()
            .cols(&with(
                &[
                    NAME,
                    ("Desired", "integer", 0, "=dsDesired"),
                    ("Current", "integer", 0, "=dsCurrent"),
                    ("Ready", "integer", 0, "=dsReady"),
                    ("Up-to-date", "integer", 0, "=dsUpdated"),
                    ("Available", "integer", 0, "=dsAvailable"),
                    ("Node Selector", "string", 0, "=nodeSelector"),
                    AGE,
                ],
                WORKLOAD_WIDE,
            )),
        r("apps", "v1", "ControllerRevision", "controllerrevisions").cols(&[
            NAME,
            ("Controller", "string", 0, "=ownerController"),
            ("Revision", "integer", 0, ".revision"),
            AGE,
        ]),
        // batch/v1
        r("batch", "v1", "Job", "jobs")
            .all()
            .status()
            .generation()
            .cols(&with(
                &[
                    NAME,
                    ("Status", "string", 0, "=jobStatus"),
                    ("Completions", "string", 0, "=jobCompletions"),
                    ("Duration", "string", 0, "=jobDuration"),
                    AGE,
                ],
                WORKLOAD_WIDE,
            )),
        r("batch", "v1", "CronJob", "cronjobs")
            .short(&["cj"])
            .all()
            .status()
            .generation()
            .cols(&[
                NAME,
                ("Schedule", "string", 0, ".spec.schedule"),
                ("Timezone", "string", 0, "=timeZone"),
                ("Suspend", "boolean", 0, "=suspend"),
                ("Active", "integer", 0, "=activeCount"),
                ("Last Schedule", "string", 0, "=lastSchedule"),
                AGE,
            ]),
        // networking.k8s.io/v1
        r("networking.k8s.io", "v1", "Ingress", "ingresses")
            .short(&["ing"])
            .status()
            .generation()
            .cols(&[
                NAME,
                ("Class", "string", 0, "=ingressClass"),
                ("Hosts", "string", 0, "=ingressHosts"),
                ("Address", "string", 0, "=ingressAddress"),
                ("Ports", "string", 0, "=ingressPorts"),
                AGE,
            ]),
        r(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
        )
        .short(&["netpol"])
        .generation()
        .cols(&[NAME, ("Pod-Selector", "string", 0, "=podSelector"), AGE]),
        r("networking.k8s.io", "v1", "IngressClass", "ingressclasses")
            .cluster()
            .cols(&[
                NAME,
                ("Controller", "string", 0, ".spec.controller"),
                ("Parameters", "string", 0, "=ingressClassParameters"),
                AGE,
            ]),
        r("networking.k8s.io", "v1", "IPAddress", "ipaddresses")
            .cluster()
            .short(&["ip"])
            .cols(&[NAME, ("ParentRef", "string", 0, "=ipParentRef")]),
        r("networking.k8s.io", "v1", "ServiceCIDR", "servicecidrs")
            .cluster()
            .status()
            .cols(&[NAME, ("CIDRs", "string", 0, "=cidrs"), AGE]),
        // discovery.k8s.io/v1
        r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices").cols(&[
            NAME,
            ("AddressType", "string", 0, ".addressType"),
            ("Ports", "string", 0, "=slicePorts"),
            ("Endpoints", "string", 0, "=sliceEndpoints"),
            AGE,
        ]),
        // storage.k8s.io/v1
        r("storage.k8s.io", "v1", "StorageClass", "storageclasses")
            .cluster()
            .short(&["sc"])
            .cols(&[
                NAME,
                ("Provisioner", "string", 0, ".provisioner"),
                ("ReclaimPolicy", "string", 0, "=reclaimPolicy"),
                ("VolumeBindingMode", "string", 0, "=volumeBindingMode"),
                ("AllowVolumeExpansion", "string", 0, "=allowVolumeExpansion"),
                AGE,
            ]),
        r(
            "storage.k8s.io",
            "v1",
            "VolumeAttachment",
            "volumeattachments",
        )
        .cluster()
        .status()
        .cols(&[
            NAME,
            ("Attacher", "string", 0, ".spec.attacher"),
            ("PV", "string", 0, ".spec.source.persistentVolumeName"),
            ("Node", "string", 0, ".spec.nodeName"),
            ("Attached", "boolean", 0, "=attached"),
            AGE,
        ]),
        r("storage.k8s.io", "v1", "CSIDriver", "csidrivers")
            .cluster()
            .cols(&[
                NAME,
                ("AttachRequired", "boolean", 0, ".spec.attachRequired"),
                ("PodInfoOnMount", "boolean", 0, ".spec.podInfoOnMount"),
                ("StorageCapacity", "boolean", 0, ".spec.storageCapacity"),
                ("Modes", "string", 0, "=csiModes"),
                AGE,
            ]),
        r("storage.k8s.io", "v1", "CSINode", "csinodes")
            .cluster()
            .cols(&[NAME, ("Drivers", "integer", 0, "=csiDrivers"), AGE]),
        r(
            "storage.k8s.io",
            "v1",
            "CSIStorageCapacity",
            "csistoragecapacities",
        )
        .cols(&[
            NAME,
            ("StorageClassName", "string", 0, ".storageClassName"),
            ("Capacity", "string", 0, ".capacity"),
        ]),
        // scheduling.k8s.io/v1, node.k8s.io/v1
        r(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
        )
        .cluster()
        .short(&["pc"])
        .cols(&[
            NAME,
            ("Value", "integer", 0, ".value"),
            ("Global-Default", "boolean", 0, "=globalDefault"),
            AGE,
            ("PreemptionPolicy", "string", 0, ".preemptionPolicy"),
        ]),
        r("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses")
            .cluster()
            .cols(&[NAME, ("Handler", "string", 0, ".handler"), AGE]),
        // flowcontrol.apiserver.k8s.io/v1
        r(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "FlowSchema",
            "flowschemas",
        )
        .cluster()
        .status()
        .generation()
        .cols(&[
            NAME,
            (
                "PriorityLevel",
                "string",
                0,
                ".spec.priorityLevelConfiguration.name",
            ),
            (
                "MatchingPrecedence",
                "string",
                0,
                ".spec.matchingPrecedence",
            ),
            ("DistinguisherMethod", "string", 0, "=distinguisherMethod"),
            AGE,
        ]),
        r(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "PriorityLevelConfiguration",
            "prioritylevelconfigurations",
        )
        .cluster()
        .status()
        .generation()
        .cols(&[NAME, ("Type", "string", 0, ".spec.type"), AGE]),
        // autoscaling
        r(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
        )
        .short(&["hpa"])
        .all()
        .status()
        .cols(&[
            NAME,
            ("Reference", "string", 0, "=hpaReference"),
            ("MinPods", "integer", 0, ".spec.minReplicas"),
            ("MaxPods", "integer", 0, ".spec.maxReplicas"),
            ("Replicas", "integer", 0, ".status.currentReplicas"),
            AGE,
        ]),
        r(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
        )
        .short(&["hpa"])
        .stored_as_hpa_v2()
        .status()
        .cols(&[
            NAME,
            ("Reference", "string", 0, "=hpaReference"),
            ("MinPods", "integer", 0, ".spec.minReplicas"),
            ("MaxPods", "integer", 0, ".spec.maxReplicas"),
            ("Replicas", "integer", 0, ".status.currentReplicas"),
            AGE,
        ]),
        // policy/v1
        r(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
        )
        .short(&["pdb"])
        .status()
        .generation()
        .cols(&[
            NAME,
            ("Min Available", "string", 0, "=minAvailable"),
            ("Max Unavailable", "string", 0, "=maxUnavailable"),
            (
                "Allowed Disruptions",
                "integer",
                0,
                ".status.disruptionsAllowed",
            ),
            AGE,
        ]),
        // rbac.authorization.k8s.io/v1
        r("rbac.authorization.k8s.io", "v1", "Role", "roles").cols(&[NAME, CREATED_AT]),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
        )
        .cluster()
        .shared(kplex_auth::authz::bootstrap::shared_cluster_roles())
        .cols(&[NAME, CREATED_AT]),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
        )
        .cols(&[
            NAME,
            ("Role", "string", 0, "=roleRef"),
            AGE,
            ("Users", "string", 1, "=bindingUsers"),
            ("Groups", "string", 1, "=bindingGroups"),
            ("ServiceAccounts", "string", 1, "=bindingServiceAccounts"),
        ]),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
        )
        .cluster()
        .shared(kplex_auth::authz::bootstrap::shared_cluster_role_bindings())
        .cols(&[
            NAME,
            ("Role", "string", 0, "=roleRef"),
            AGE,
            ("Users", "string", 1, "=bindingUsers"),
            ("Groups", "string", 1, "=bindingGroups"),
            ("ServiceAccounts", "string", 1, "=bindingServiceAccounts"),
        ]),
        // coordination.k8s.io/v1
        r("coordination.k8s.io", "v1", "Lease", "leases").cols(&[
            NAME,
            ("Holder", "string", 0, ".spec.holderIdentity"),
            AGE,
        ]),
        // events.k8s.io/v1
        // Stored as core/v1 Events (one resource in two versions, as in kube): field
        // selectors read the stored form.
        r("events.k8s.io", "v1", "Event", "events")
            .short(&["ev"])
            .stored_as_core_events()
            .fields(&[
                ("regarding.kind", ".involvedObject.kind"),
                ("regarding.name", ".involvedObject.name"),
                ("regarding.namespace", ".involvedObject.namespace"),
                ("regarding.uid", ".involvedObject.uid"),
                ("reason", ".reason"),
                ("type", ".type"),
                ("reportingController", ".reportingComponent"),
            ])
            .cols(EVENT_COLS),
        // admissionregistration.k8s.io/v1
        r(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
        )
        .cluster()
        .generation()
        .cols(&[NAME, ("Webhooks", "integer", 0, "=webhooksCount"), AGE]),
        r(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
        )
        .cluster()
        .generation()
        .cols(&[NAME, ("Webhooks", "integer", 0, "=webhooksCount"), AGE]),
        r(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
        )
        .cluster()
        .status()
        .generation()
        .categories(&["api-extensions"])
        .cols(&[
            NAME,
            ("Validations", "integer", 0, "=validationsCount"),
            ("ParamKind", "string", 0, "=paramKind"),
            AGE,
        ]),
        r(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
        )
        .cluster()
        .generation()
        .categories(&["api-extensions"])
        .cols(&[
            NAME,
            ("PolicyName", "string", 0, ".spec.policyName"),
            ("ParamRef", "string", 0, "=paramRef"),
            AGE,
        ]),
        // certificates.k8s.io/v1
        r(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
        )
        .cluster()
        .short(&["csr"])
        .status()
        .sub("approval", None, &["get", "patch", "update"])
        .fields(&[("spec.signerName", ".spec.signerName")])
        .cols(&[
            NAME,
            AGE,
            ("SignerName", "string", 0, ".spec.signerName"),
            ("Requestor", "string", 0, ".spec.username"),
            ("Condition", "string", 0, "=csrCondition"),
        ]),
        // authorization.k8s.io/v1: reviews, answered and never stored
        r(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
        )
        .cluster()
        .create_only(),
        r(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
        )
        .cluster()
        .create_only(),
        r(
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
            "subjectaccessreviews",
        )
        .cluster()
        .create_only(),
        r(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
        )
        .create_only(),
        // authentication.k8s.io/v1: reviews, answered by `authn` and never stored
        r(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
        )
        .cluster()
        .create_only(),
        r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews")
            .cluster()
            .create_only(),
        // apiextensions.k8s.io/v1
        r(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        )
        .cluster()
        .short(&["crd", "crds"])
        .categories(&["api-extensions"])
        .status()
        .generation()
        .cols(&[NAME, CREATED_AT]),
    ];
    v.into_iter()
        .map(|b| {
            let strategy = super::strategies::for_kind(&b.0.group, &b.0.plural);
            b.0.with_strategy(strategy)
        })
        .collect()
}

impl B {
    /// Reviews: POST only, answered without being stored.
    fn create_only(mut self) -> Self {
        self.0.verbs = vec!["create"];
        self
    }

    /// events.k8s.io/v1 Events: a view of core/v1 Events' storage.
    fn stored_as_core_events(mut self) -> Self {
        self.0.stored_as = Some(StoredAs {
            group: "",
            version: None,
            to_storage: crate::events::to_core,
        });
        self.0.conversion = Some(crate::events::to_events_v1);
        self
    }

    /// autoscaling/v1 HorizontalPodAutoscalers: a view of the v2 objects stored.
    fn stored_as_hpa_v2(mut self) -> Self {
        self.0.stored_as = Some(StoredAs {
            group: "autoscaling",
            version: Some("v2"),
            to_storage: crate::hpa::to_v2,
        });
        self.0.conversion = Some(crate::hpa::to_version);
        self
    }

    /// Read, never written (answered without being stored).
    fn read_only(mut self) -> Self {
        self.0.verbs = vec!["get", "list"];
        self
    }

    /// A subresource discovery lists (the kind's strategy or a virtual resource serves it).
    fn sub(
        mut self,
        name: &'static str,
        kind: Option<(&'static str, &'static str, &'static str)>,
        verbs: &'static [&'static str],
    ) -> Self {
        self.0.subresources.push(Subresource { name, kind, verbs });
        self
    }

    fn categories(mut self, c: &[&str]) -> Self {
        self.0.categories = c.iter().map(|s| s.to_string()).collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_well_formed() {
        let all = all();
        let mut seen = std::collections::HashSet::new();
        for d in &all {
            assert!(
                d.columns
                    .iter()
                    .all(|c| !matches!(c.cell, Cell::Computed("invalid"))),
                "{}",
                d.kind
            );
            assert!(
                d.verbs == ["create"] || !d.columns.is_empty(),
                "{} has no columns",
                d.kind
            );
            assert!(
                seen.insert((d.group.clone(), d.version.clone(), d.plural.clone())),
                "duplicate {}",
                d.plural
            );
        }
    }
}
