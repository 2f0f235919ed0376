//! Builds the data file from k8s-openapi (feature `generate`); see
//! `examples/generate.rs`.

use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, Resource, ResourceScope};
use serde_json::{Value, json};

trait Scope {
    const NAMESPACED: bool;
}
impl Scope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl Scope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

struct Kinds {
    generator: SchemaGenerator,
    kinds: Vec<Value>,
}

impl Kinds {
    fn add<T>(&mut self) -> &mut Self
    where
        T: Resource + JsonSchema,
        T::Scope: Scope + ResourceScope,
    {
        // Registers the schema and everything it references.
        self.generator.subschema_for::<T>();
        self.kinds.push(json!({
            "group": T::GROUP,
            "version": T::VERSION,
            "kind": T::KIND,
            "plural": T::URL_PATH_SEGMENT,
            "namespaced": <T::Scope as Scope>::NAMESPACED,
            "schema": T::schema_name(),
        }));
        self
    }

    /// A kind that is only ever a subresource body (autoscaling/v1 Scale).
    fn add_sub<T: Resource + JsonSchema>(&mut self) -> &mut Self {
        self.generator.subschema_for::<T>();
        self.kinds.push(json!({
            "group": T::GROUP,
            "version": T::VERSION,
            "kind": T::KIND,
            "plural": "",
            "namespaced": true,
            "schema": T::schema_name(),
        }));
        self
    }

    fn meta<T: JsonSchema>(&mut self) -> &mut Self {
        self.generator.subschema_for::<T>();
        self
    }
}

/// The contents of `data/builtin.json`.
pub fn builtin_data() -> Result<String, serde_json::Error> {
    use k8s_openapi::api::{
        admissionregistration, apps, authentication, authorization, autoscaling, batch,
        certificates, coordination, core, discovery, events, flowcontrol, networking, node, policy,
        rbac, scheduling, storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
    use k8s_openapi::apimachinery::pkg::apis::meta;
    use std::fmt::Write;

    let mut k = Kinds {
        generator: SchemaGenerator::new(SchemaSettings::openapi3()),
        kinds: Vec::new(),
    };
    k.add::<core::v1::Namespace>()
        .add::<core::v1::ConfigMap>()
        .add::<core::v1::Secret>()
        .add::<core::v1::ServiceAccount>()
        .add::<core::v1::Event>()
        .add::<core::v1::LimitRange>()
        .add::<core::v1::ResourceQuota>()
        .add::<core::v1::Pod>()
        .add::<core::v1::Service>()
        .add::<core::v1::Endpoints>()
        .add::<core::v1::PersistentVolumeClaim>()
        .add::<core::v1::Node>()
        .add::<core::v1::PersistentVolume>()
        .add::<core::v1::PodTemplate>()
        .add::<core::v1::ReplicationController>()
        .add::<core::v1::ComponentStatus>()
        .add::<apps::v1::Deployment>()
        .add::<apps::v1::ReplicaSet>()
        .add::<apps::v1::StatefulSet>()
        .add::<apps::v1::DaemonSet>()
        .add::<apps::v1::ControllerRevision>()
        .add::<batch::v1::Job>()
        .add::<batch::v1::CronJob>()
        .add::<networking::v1::Ingress>()
        .add::<networking::v1::NetworkPolicy>()
        .add::<networking::v1::IngressClass>()
        .add::<networking::v1::IPAddress>()
        .add::<networking::v1::ServiceCIDR>()
        .add::<discovery::v1::EndpointSlice>()
        .add::<storage::v1::StorageClass>()
        .add::<storage::v1::VolumeAttachment>()
        .add::<storage::v1::CSIDriver>()
        .add::<storage::v1::CSINode>()
        .add::<storage::v1::CSIStorageCapacity>()
        .add::<scheduling::v1::PriorityClass>()
        .add::<node::v1::RuntimeClass>()
        .add::<flowcontrol::v1::FlowSchema>()
        .add::<flowcontrol::v1::PriorityLevelConfiguration>()
        .add::<autoscaling::v1::HorizontalPodAutoscaler>()
        .add::<autoscaling::v2::HorizontalPodAutoscaler>()
        .add::<policy::v1::PodDisruptionBudget>()
        .add::<rbac::v1::Role>()
        .add::<rbac::v1::ClusterRole>()
        .add::<rbac::v1::RoleBinding>()
        .add::<rbac::v1::ClusterRoleBinding>()
        .add::<coordination::v1::Lease>()
        .add::<events::v1::Event>()
        .add::<admissionregistration::v1::MutatingWebhookConfiguration>()
        .add::<admissionregistration::v1::ValidatingWebhookConfiguration>()
        .add::<admissionregistration::v1::ValidatingAdmissionPolicy>()
        .add::<admissionregistration::v1::ValidatingAdmissionPolicyBinding>()
        .add::<certificates::v1::CertificateSigningRequest>()
        .add::<apiextensions::v1::CustomResourceDefinition>()
        .add_sub::<autoscaling::v1::Scale>()
        // Pod subresource bodies: binding (the scheduler's) and eviction.
        .add_sub::<core::v1::Binding>()
        .add_sub::<policy::v1::Eviction>()
        // Bodies answered without being stored: their schemas type-check the requests.
        .add_sub::<authentication::v1::TokenRequest>()
        .add_sub::<authentication::v1::TokenReview>()
        .add_sub::<authentication::v1::SelfSubjectReview>()
        .add_sub::<authorization::v1::SubjectAccessReview>()
        .add_sub::<authorization::v1::SelfSubjectAccessReview>()
        .add_sub::<authorization::v1::SelfSubjectRulesReview>()
        .meta::<meta::v1::ObjectMeta>()
        .meta::<meta::v1::ListMeta>()
        .meta::<meta::v1::Status>()
        .meta::<meta::v1::DeleteOptions>()
        .meta::<meta::v1::Patch>()
        .meta::<meta::v1::Time>();

    let schemas = k.generator.take_definitions(true);
    let mut f = String::new();
    let _ = writeln!(f, "{{\"kinds\":[");
    for (i, kind) in k.kinds.iter().enumerate() {
        let sep = if i + 1 < k.kinds.len() { "," } else { "" };
        let _ = writeln!(f, "{}{sep}", serde_json::to_string(kind)?);
    }
    let _ = writeln!(f, "],\"schemas\":{{");
    let sorted: std::collections::BTreeMap<&String, &Value> = schemas.iter().collect();
    for (i, (name, schema)) in sorted.iter().enumerate() {
        let sep = if i + 1 < sorted.len() { "," } else { "" };
        let _ = writeln!(
            f,
            "{}:{}{sep}",
            serde_json::to_string(name)?,
            serde_json::to_string(schema)?
        );
    }
    let _ = writeln!(f, "}}}}");
    Ok(f)
}
