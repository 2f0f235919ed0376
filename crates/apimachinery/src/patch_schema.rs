//! Patch metadata of the built-in types, as data: each field's
//! `patchStrategy`/`patchMergeKey` Go struct tags and the
//! `x-kubernetes-list-type`/`x-kubernetes-list-map-keys` OpenAPI declares.
//! Strategic merge patch reads it through [`PatchSchema`]; server-side apply
//! can read the same [`TypeDef`]s.
//!
//! Fields not listed behave as untyped: maps merge and lists are replaced,
//! which is kube's behaviour for fields without patch tags.

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A string, number or bool.
    Scalar,
    /// Unknown or free-form content: maps merge, lists replace.
    Untyped,
    /// A named [`TypeDef`].
    Struct(&'static str),
    /// `map[string]T`.
    Map(&'static Ty),
    /// `[]T`.
    List(&'static Ty),
}

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: Ty,
    /// The Go `patchStrategy` tag, e.g. "merge", "merge,retainKeys", "replace".
    pub patch_strategy: &'static str,
    /// The Go `patchMergeKey` tag ("" if none).
    pub merge_key: &'static str,
    pub list_type: Option<ListType>,
    pub list_map_keys: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeDef {
    pub name: &'static str,
    pub fields: &'static [FieldDef],
}

impl TypeDef {
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Parsed `patchStrategy` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PatchStrategy {
    pub merge: bool,
    pub replace: bool,
    pub retain_keys: bool,
}

impl PatchStrategy {
    pub fn parse(tag: &str) -> Self {
        let mut s = PatchStrategy::default();
        for part in tag.split(',') {
            match part {
                "merge" => s.merge = true,
                "replace" => s.replace = true,
                "retainKeys" => s.retain_keys = true,
                _ => {}
            }
        }
        s
    }
}

/// Patch metadata of one field.
#[derive(Clone, Copy)]
pub struct FieldPatch<'a> {
    pub strategy: PatchStrategy,
    /// Merge key for lists of objects ("" if none).
    pub merge_key: &'a str,
    /// Schema of the field's value, or of its elements for lists.
    pub schema: &'a dyn PatchSchema,
}

/// Answers, for a field of the object it describes, how to patch it.
pub trait PatchSchema: Sync {
    fn lookup(&self, field: &str) -> FieldPatch<'_>;
}

static UNTYPED: Ty = Ty::Untyped;

/// A schema that knows nothing: every map merges, every list is replaced.
pub fn untyped() -> &'static dyn PatchSchema {
    &UNTYPED
}

fn element(ty: &'static Ty) -> &'static Ty {
    match ty {
        Ty::List(e) => element(e),
        other => other,
    }
}

impl PatchSchema for Ty {
    fn lookup(&self, field: &str) -> FieldPatch<'_> {
        let plain = |schema: &'static Ty| FieldPatch {
            strategy: PatchStrategy::default(),
            merge_key: "",
            schema,
        };
        match self {
            Ty::Struct(name) => match type_def(name).and_then(|t| t.field(field)) {
                Some(f) => FieldPatch {
                    strategy: PatchStrategy::parse(f.patch_strategy),
                    merge_key: f.merge_key,
                    schema: element(&f.ty),
                },
                None => plain(&UNTYPED),
            },
            Ty::Map(elem) => plain(element(elem)),
            _ => plain(&UNTYPED),
        }
    }
}

/// Looks up a named type of the built-in table.
pub fn type_def(name: &str) -> Option<&'static TypeDef> {
    TYPES.iter().find(|t| t.name == name)
}

/// The top-level type name for a built-in kind, e.g. ("apps", "Deployment").
pub fn builtin_type_name(group: &str, kind: &str) -> Option<&'static str> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.kind == kind)
        .and_then(|k| match k.ty {
            Ty::Struct(name) => Some(name),
            _ => None,
        })
}

/// The patch schema of a built-in kind, or `None` for kinds we do not know
/// (custom resources, which kube does not allow strategic merge patch on).
pub fn builtin_patch_schema(group: &str, kind: &str) -> Option<&'static dyn PatchSchema> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.kind == kind)
        .map(|k| &k.ty as &dyn PatchSchema)
}

struct KindDef {
    group: &'static str,
    kind: &'static str,
    ty: Ty,
}

const fn kind(group: &'static str, kind: &'static str, ty: &'static str) -> KindDef {
    KindDef {
        group,
        kind,
        ty: Ty::Struct(ty),
    }
}

static KINDS: &[KindDef] = &[
    kind("", "Pod", "Pod"),
    kind("", "PodTemplate", "PodTemplate"),
    kind("", "ReplicationController", "ReplicationController"),
    kind("apps", "Deployment", "Deployment"),
    kind("apps", "ReplicaSet", "ReplicaSet"),
    kind("apps", "StatefulSet", "StatefulSet"),
    kind("apps", "DaemonSet", "DaemonSet"),
    kind("batch", "Job", "Job"),
    kind("batch", "CronJob", "CronJob"),
    kind("", "Service", "Service"),
    kind("", "Endpoints", "Endpoints"),
    kind("", "ConfigMap", "ConfigMap"),
    kind("", "Secret", "Secret"),
    kind("", "Namespace", "Namespace"),
    kind("", "ServiceAccount", "ServiceAccount"),
    kind("networking.k8s.io", "Ingress", "Ingress"),
    kind("networking.k8s.io", "NetworkPolicy", "NetworkPolicy"),
    kind("", "PersistentVolumeClaim", "PersistentVolumeClaim"),
    kind(
        "autoscaling",
        "HorizontalPodAutoscaler",
        "HorizontalPodAutoscaler",
    ),
    kind("policy", "PodDisruptionBudget", "PodDisruptionBudget"),
    kind("rbac.authorization.k8s.io", "Role", "Role"),
    kind("rbac.authorization.k8s.io", "ClusterRole", "ClusterRole"),
    kind("rbac.authorization.k8s.io", "RoleBinding", "RoleBinding"),
    kind(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "RoleBinding",
    ),
    kind("", "LimitRange", "LimitRange"),
    kind("", "ResourceQuota", "ResourceQuota"),
    kind("", "Event", "Event"),
    kind("events.k8s.io", "Event", "Event"),
    kind("coordination.k8s.io", "Lease", "Lease"),
];

const fn field(name: &'static str, ty: Ty) -> FieldDef {
    FieldDef {
        name,
        ty,
        patch_strategy: "",
        merge_key: "",
        list_type: None,
        list_map_keys: &[],
    }
}

const fn strct(name: &'static str, ty: &'static str) -> FieldDef {
    field(name, Ty::Struct(ty))
}

const fn with_strategy(name: &'static str, ty: &'static str, strategy: &'static str) -> FieldDef {
    FieldDef {
        patch_strategy: strategy,
        ..strct(name, ty)
    }
}

const fn atomic(name: &'static str, elem: &'static Ty) -> FieldDef {
    FieldDef {
        list_type: Some(ListType::Atomic),
        ..field(name, Ty::List(elem))
    }
}

/// `patchStrategy:"merge"` on a list of scalars, `listType=set`.
const fn merge_set(name: &'static str) -> FieldDef {
    FieldDef {
        patch_strategy: "merge",
        list_type: Some(ListType::Set),
        ..field(name, Ty::List(&Ty::Scalar))
    }
}

/// A `listType=map` list with a patch merge key.
const fn merge_map(
    name: &'static str,
    elem: &'static Ty,
    strategy: &'static str,
    key: &'static str,
    map_keys: &'static [&'static str],
) -> FieldDef {
    FieldDef {
        patch_strategy: strategy,
        merge_key: key,
        list_type: Some(ListType::Map),
        list_map_keys: map_keys,
        ..field(name, Ty::List(elem))
    }
}

/// A `listType=map` list without patch tags (replaced by strategic merge patch).
const fn plain_map(
    name: &'static str,
    elem: &'static Ty,
    map_keys: &'static [&'static str],
) -> FieldDef {
    merge_map(name, elem, "", "", map_keys)
}

const fn conditions(list_type: ListType) -> FieldDef {
    FieldDef {
        patch_strategy: "merge",
        merge_key: "type",
        list_type: Some(list_type),
        list_map_keys: if matches!(list_type, ListType::Map) {
            &["type"]
        } else {
            &[]
        },
        ..field("conditions", Ty::List(&Ty::Untyped))
    }
}

const STRINGS: Ty = Ty::Map(&Ty::Scalar);
const SCALAR: Ty = Ty::Scalar;
const UNTYPED_TY: Ty = Ty::Untyped;

const fn typ(name: &'static str, fields: &'static [FieldDef]) -> TypeDef {
    TypeDef { name, fields }
}

static CONTAINER_FIELDS: &[FieldDef] = &[
    atomic("command", &SCALAR),
    atomic("args", &SCALAR),
    merge_map(
        "ports",
        &Ty::Untyped,
        "merge",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    atomic("envFrom", &UNTYPED_TY),
    merge_map("env", &Ty::Untyped, "merge", "name", &["name"]),
    strct("resources", "ResourceRequirements"),
    atomic("resizePolicy", &UNTYPED_TY),
    atomic("restartPolicyRules", &UNTYPED_TY),
    merge_map(
        "volumeMounts",
        &Ty::Untyped,
        "merge",
        "mountPath",
        &["mountPath"],
    ),
    merge_map(
        "volumeDevices",
        &Ty::Untyped,
        "merge",
        "devicePath",
        &["devicePath"],
    ),
    strct("securityContext", "SecurityContext"),
    strct("livenessProbe", "Probe"),
    strct("readinessProbe", "Probe"),
    strct("startupProbe", "Probe"),
];

static TYPES: &[TypeDef] = &[
    typ(
        "ObjectMeta",
        &[
            field("labels", STRINGS),
            field("annotations", STRINGS),
            merge_map("ownerReferences", &Ty::Untyped, "merge", "uid", &["uid"]),
            merge_set("finalizers"),
            atomic("managedFields", &UNTYPED_TY),
        ],
    ),
    typ(
        "LabelSelector",
        &[
            field("matchLabels", STRINGS),
            atomic("matchExpressions", &UNTYPED_TY),
        ],
    ),
    typ(
        "Pod",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "PodSpec"),
            strct("status", "PodStatus"),
        ],
    ),
    typ(
        "PodTemplate",
        &[
            strct("metadata", "ObjectMeta"),
            strct("template", "PodTemplateSpec"),
        ],
    ),
    typ(
        "PodTemplateSpec",
        &[strct("metadata", "ObjectMeta"), strct("spec", "PodSpec")],
    ),
    typ(
        "PodSpec",
        &[
            merge_map(
                "volumes",
                &Ty::Struct("Volume"),
                "merge,retainKeys",
                "name",
                &["name"],
            ),
            merge_map(
                "initContainers",
                &Ty::Struct("Container"),
                "merge",
                "name",
                &["name"],
            ),
            merge_map(
                "containers",
                &Ty::Struct("Container"),
                "merge",
                "name",
                &["name"],
            ),
            merge_map(
                "ephemeralContainers",
                &Ty::Struct("Container"),
                "merge",
                "name",
                &["name"],
            ),
            merge_map("imagePullSecrets", &Ty::Untyped, "merge", "name", &["name"]),
            atomic("tolerations", &UNTYPED_TY),
            merge_map(
                "hostAliases",
                &Ty::Struct("HostAlias"),
                "merge",
                "ip",
                &["ip"],
            ),
            atomic("readinessGates", &UNTYPED_TY),
            merge_map(
                "topologySpreadConstraints",
                &Ty::Struct("TopologySpreadConstraint"),
                "merge",
                "topologyKey",
                &["topologyKey", "whenUnsatisfiable"],
            ),
            merge_map("schedulingGates", &Ty::Untyped, "merge", "name", &["name"]),
            merge_map(
                "resourceClaims",
                &Ty::Untyped,
                "merge,retainKeys",
                "name",
                &["name"],
            ),
            field("nodeSelector", STRINGS),
            field("overhead", STRINGS),
            strct("affinity", "Affinity"),
            strct("securityContext", "PodSecurityContext"),
            strct("dnsConfig", "PodDNSConfig"),
            strct("resources", "ResourceRequirements"),
        ],
    ),
    typ("Container", CONTAINER_FIELDS),
    typ(
        "Volume",
        &[
            strct("configMap", "KeyToPathSource"),
            strct("secret", "KeyToPathSource"),
            strct("projected", "ProjectedVolumeSource"),
            strct("downwardAPI", "DownwardAPIVolumeSource"),
        ],
    ),
    typ("KeyToPathSource", &[atomic("items", &UNTYPED_TY)]),
    typ("ProjectedVolumeSource", &[atomic("sources", &UNTYPED_TY)]),
    typ("DownwardAPIVolumeSource", &[atomic("items", &UNTYPED_TY)]),
    typ("HostAlias", &[atomic("hostnames", &SCALAR)]),
    typ(
        "TopologySpreadConstraint",
        &[
            strct("labelSelector", "LabelSelector"),
            atomic("matchLabelKeys", &SCALAR),
        ],
    ),
    typ(
        "ResourceRequirements",
        &[
            field("limits", STRINGS),
            field("requests", STRINGS),
            plain_map("claims", &Ty::Untyped, &["name"]),
        ],
    ),
    typ("SecurityContext", &[strct("capabilities", "Capabilities")]),
    typ(
        "Capabilities",
        &[atomic("add", &SCALAR), atomic("drop", &SCALAR)],
    ),
    typ(
        "Probe",
        &[
            strct("exec", "ExecAction"),
            strct("httpGet", "HTTPGetAction"),
        ],
    ),
    typ("ExecAction", &[atomic("command", &SCALAR)]),
    typ("HTTPGetAction", &[atomic("httpHeaders", &UNTYPED_TY)]),
    typ(
        "PodSecurityContext",
        &[
            atomic("supplementalGroups", &SCALAR),
            atomic("sysctls", &UNTYPED_TY),
        ],
    ),
    typ(
        "PodDNSConfig",
        &[
            atomic("nameservers", &SCALAR),
            atomic("searches", &SCALAR),
            atomic("options", &UNTYPED_TY),
        ],
    ),
    typ(
        "Affinity",
        &[
            strct("nodeAffinity", "NodeAffinity"),
            strct("podAffinity", "PodAffinity"),
            strct("podAntiAffinity", "PodAffinity"),
        ],
    ),
    typ(
        "NodeAffinity",
        &[
            strct(
                "requiredDuringSchedulingIgnoredDuringExecution",
                "NodeSelector",
            ),
            atomic(
                "preferredDuringSchedulingIgnoredDuringExecution",
                &UNTYPED_TY,
            ),
        ],
    ),
    typ("NodeSelector", &[atomic("nodeSelectorTerms", &UNTYPED_TY)]),
    typ(
        "PodAffinity",
        &[
            atomic(
                "requiredDuringSchedulingIgnoredDuringExecution",
                &UNTYPED_TY,
            ),
            atomic(
                "preferredDuringSchedulingIgnoredDuringExecution",
                &UNTYPED_TY,
            ),
        ],
    ),
    typ(
        "PodStatus",
        &[
            conditions(ListType::Map),
            FieldDef {
                list_type: Some(ListType::Atomic),
                list_map_keys: &[],
                ..merge_map("hostIPs", &Ty::Untyped, "merge", "ip", &[])
            },
            merge_map("podIPs", &Ty::Untyped, "merge", "ip", &["ip"]),
            atomic("initContainerStatuses", &UNTYPED_TY),
            atomic("containerStatuses", &UNTYPED_TY),
            atomic("ephemeralContainerStatuses", &UNTYPED_TY),
            merge_map(
                "resourceClaimStatuses",
                &Ty::Untyped,
                "merge,retainKeys",
                "name",
                &["name"],
            ),
        ],
    ),
    typ(
        "ReplicationController",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "ReplicationControllerSpec"),
            strct("status", "ConditionsStatus"),
        ],
    ),
    typ(
        "ReplicationControllerSpec",
        &[
            field("selector", STRINGS),
            strct("template", "PodTemplateSpec"),
        ],
    ),
    typ(
        "Deployment",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "DeploymentSpec"),
            strct("status", "ConditionsStatus"),
        ],
    ),
    typ(
        "DeploymentSpec",
        &[
            strct("selector", "LabelSelector"),
            strct("template", "PodTemplateSpec"),
            with_strategy("strategy", "DeploymentStrategy", "retainKeys"),
        ],
    ),
    typ("DeploymentStrategy", &[]),
    typ("ConditionsStatus", &[conditions(ListType::Map)]),
    typ(
        "ReplicaSet",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "WorkloadSpec"),
            strct("status", "ConditionsStatus"),
        ],
    ),
    typ(
        "DaemonSet",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "WorkloadSpec"),
            strct("status", "ConditionsStatus"),
        ],
    ),
    typ(
        "WorkloadSpec",
        &[
            strct("selector", "LabelSelector"),
            strct("template", "PodTemplateSpec"),
        ],
    ),
    typ(
        "StatefulSet",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "StatefulSetSpec"),
            strct("status", "ConditionsStatus"),
        ],
    ),
    typ(
        "StatefulSetSpec",
        &[
            strct("selector", "LabelSelector"),
            strct("template", "PodTemplateSpec"),
            atomic("volumeClaimTemplates", &UNTYPED_TY),
        ],
    ),
    typ(
        "Job",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "JobSpec"),
            strct("status", "JobStatus"),
        ],
    ),
    typ(
        "JobSpec",
        &[
            strct("selector", "LabelSelector"),
            strct("template", "PodTemplateSpec"),
            strct("podFailurePolicy", "PodFailurePolicy"),
        ],
    ),
    typ("PodFailurePolicy", &[atomic("rules", &UNTYPED_TY)]),
    typ("JobStatus", &[conditions(ListType::Atomic)]),
    typ(
        "CronJob",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "CronJobSpec"),
            strct("status", "CronJobStatus"),
        ],
    ),
    typ("CronJobSpec", &[strct("jobTemplate", "JobTemplateSpec")]),
    typ(
        "JobTemplateSpec",
        &[strct("metadata", "ObjectMeta"), strct("spec", "JobSpec")],
    ),
    typ("CronJobStatus", &[atomic("active", &UNTYPED_TY)]),
    typ(
        "Service",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "ServiceSpec"),
            strct("status", "ServiceStatus"),
        ],
    ),
    typ(
        "ServiceSpec",
        &[
            merge_map(
                "ports",
                &Ty::Untyped,
                "merge",
                "port",
                &["port", "protocol"],
            ),
            field("selector", STRINGS),
            atomic("clusterIPs", &SCALAR),
            atomic("externalIPs", &SCALAR),
            atomic("loadBalancerSourceRanges", &SCALAR),
            atomic("ipFamilies", &SCALAR),
        ],
    ),
    typ(
        "ServiceStatus",
        &[
            conditions(ListType::Map),
            strct("loadBalancer", "LoadBalancerStatus"),
        ],
    ),
    typ("LoadBalancerStatus", &[atomic("ingress", &UNTYPED_TY)]),
    typ(
        "Endpoints",
        &[
            strct("metadata", "ObjectMeta"),
            atomic("subsets", &Ty::Struct("EndpointSubset")),
        ],
    ),
    typ(
        "EndpointSubset",
        &[
            atomic("addresses", &UNTYPED_TY),
            atomic("notReadyAddresses", &UNTYPED_TY),
            atomic("ports", &UNTYPED_TY),
        ],
    ),
    typ(
        "ConfigMap",
        &[
            strct("metadata", "ObjectMeta"),
            field("data", STRINGS),
            field("binaryData", STRINGS),
        ],
    ),
    typ(
        "Secret",
        &[
            strct("metadata", "ObjectMeta"),
            field("data", STRINGS),
            field("stringData", STRINGS),
        ],
    ),
    typ(
        "Namespace",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "NamespaceSpec"),
            strct("status", "ConditionsStatus"),
        ],
    ),
    typ("NamespaceSpec", &[atomic("finalizers", &SCALAR)]),
    typ(
        "ServiceAccount",
        &[
            strct("metadata", "ObjectMeta"),
            merge_map("secrets", &Ty::Untyped, "merge", "name", &["name"]),
            atomic("imagePullSecrets", &UNTYPED_TY),
        ],
    ),
    typ(
        "Ingress",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "IngressSpec"),
            strct("status", "IngressStatus"),
        ],
    ),
    typ(
        "IngressSpec",
        &[atomic("tls", &UNTYPED_TY), atomic("rules", &UNTYPED_TY)],
    ),
    typ(
        "IngressStatus",
        &[strct("loadBalancer", "LoadBalancerStatus")],
    ),
    typ(
        "NetworkPolicy",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "NetworkPolicySpec"),
        ],
    ),
    typ(
        "NetworkPolicySpec",
        &[
            strct("podSelector", "LabelSelector"),
            atomic("ingress", &UNTYPED_TY),
            atomic("egress", &UNTYPED_TY),
            atomic("policyTypes", &SCALAR),
        ],
    ),
    typ(
        "PersistentVolumeClaim",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "PersistentVolumeClaimSpec"),
            strct("status", "PersistentVolumeClaimStatus"),
        ],
    ),
    typ(
        "PersistentVolumeClaimSpec",
        &[
            atomic("accessModes", &SCALAR),
            strct("selector", "LabelSelector"),
            strct("resources", "ResourceRequirements"),
        ],
    ),
    typ(
        "PersistentVolumeClaimStatus",
        &[
            atomic("accessModes", &SCALAR),
            conditions(ListType::Map),
            field("capacity", STRINGS),
        ],
    ),
    typ(
        "HorizontalPodAutoscaler",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "HorizontalPodAutoscalerSpec"),
            strct("status", "HorizontalPodAutoscalerStatus"),
        ],
    ),
    typ(
        "HorizontalPodAutoscalerSpec",
        &[atomic("metrics", &UNTYPED_TY)],
    ),
    typ(
        "HorizontalPodAutoscalerStatus",
        &[
            conditions(ListType::Map),
            atomic("currentMetrics", &UNTYPED_TY),
        ],
    ),
    typ(
        "PodDisruptionBudget",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "PodDisruptionBudgetSpec"),
            strct("status", "ConditionsStatus"),
        ],
    ),
    typ(
        "PodDisruptionBudgetSpec",
        &[with_strategy("selector", "LabelSelector", "replace")],
    ),
    typ(
        "Role",
        &[
            strct("metadata", "ObjectMeta"),
            atomic("rules", &UNTYPED_TY),
        ],
    ),
    typ(
        "ClusterRole",
        &[
            strct("metadata", "ObjectMeta"),
            atomic("rules", &UNTYPED_TY),
            strct("aggregationRule", "AggregationRule"),
        ],
    ),
    typ(
        "AggregationRule",
        &[atomic("clusterRoleSelectors", &UNTYPED_TY)],
    ),
    typ(
        "RoleBinding",
        &[
            strct("metadata", "ObjectMeta"),
            atomic("subjects", &UNTYPED_TY),
        ],
    ),
    typ(
        "LimitRange",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "LimitRangeSpec"),
        ],
    ),
    typ("LimitRangeSpec", &[atomic("limits", &UNTYPED_TY)]),
    typ(
        "ResourceQuota",
        &[
            strct("metadata", "ObjectMeta"),
            strct("spec", "ResourceQuotaSpec"),
            strct("status", "ResourceQuotaStatus"),
        ],
    ),
    typ(
        "ResourceQuotaSpec",
        &[
            field("hard", STRINGS),
            atomic("scopes", &SCALAR),
            strct("scopeSelector", "ScopeSelector"),
        ],
    ),
    typ("ScopeSelector", &[atomic("matchExpressions", &UNTYPED_TY)]),
    typ(
        "ResourceQuotaStatus",
        &[field("hard", STRINGS), field("used", STRINGS)],
    ),
    typ("Event", &[strct("metadata", "ObjectMeta")]),
    typ("Lease", &[strct("metadata", "ObjectMeta")]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_kubernetes() {
        let cases = [
            ("PodSpec", "containers", "merge", "name", &["name"][..]),
            ("PodSpec", "volumes", "merge,retainKeys", "name", &["name"]),
            ("PodSpec", "hostAliases", "merge", "ip", &["ip"]),
            (
                "PodSpec",
                "topologySpreadConstraints",
                "merge",
                "topologyKey",
                &["topologyKey", "whenUnsatisfiable"],
            ),
            (
                "Container",
                "ports",
                "merge",
                "containerPort",
                &["containerPort", "protocol"],
            ),
            (
                "Container",
                "volumeMounts",
                "merge",
                "mountPath",
                &["mountPath"],
            ),
            (
                "ServiceSpec",
                "ports",
                "merge",
                "port",
                &["port", "protocol"],
            ),
            ("ObjectMeta", "ownerReferences", "merge", "uid", &["uid"]),
        ];
        for (ty, field, strategy, key, map_keys) in cases {
            let f = type_def(ty).and_then(|t| t.field(field));
            assert_eq!(
                f.map(|f| (f.patch_strategy, f.merge_key, f.list_map_keys)),
                Some((strategy, key, map_keys)),
                "{ty}.{field}"
            );
        }
        let tol = type_def("PodSpec").and_then(|t| t.field("tolerations"));
        assert_eq!(tol.and_then(|f| f.list_type), Some(ListType::Atomic));
    }

    #[test]
    fn every_reference_resolves() {
        fn check(ty: &Ty) {
            match ty {
                Ty::Struct(n) => assert!(type_def(n).is_some(), "{n}"),
                Ty::Map(e) | Ty::List(e) => check(e),
                _ => {}
            }
        }
        TYPES
            .iter()
            .flat_map(|t| t.fields)
            .for_each(|f| check(&f.ty));
        KINDS.iter().for_each(|k| check(&k.ty));
        let pod = builtin_patch_schema("", "Pod")
            .map(|s| s.lookup("spec").schema.lookup("containers").merge_key);
        assert_eq!(pod, Some("name"));
        assert_eq!(builtin_type_name("apps", "Deployment"), Some("Deployment"));
        assert!(builtin_patch_schema("example.com", "Foo").is_none());
    }
}
