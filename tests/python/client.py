"""Drives kplex with the official Python `kubernetes` client (Debian's python3-kubernetes).

Usage: client.py <kubeconfig>. Prints one JSON object of observations for the Rust test.
"""
import json
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
out = {}

out["namespaces"] = sorted(n.metadata.name for n in core.list_namespace().items)

cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py"), data={"k": "v"})
created = core.create_namespaced_config_map("default", cm)
out["created_rv"] = created.metadata.resource_version
out["read"] = core.read_namespaced_config_map("py", "default").data

try:
    core.create_namespaced_config_map("default", cm)
except ApiException as e:
    out["duplicate"] = [e.status, json.loads(e.body)["reason"]]

try:
    core.read_namespaced_config_map("missing", "default")
except ApiException as e:
    out["missing"] = [e.status, json.loads(e.body)["reason"]]

patched = core.patch_namespaced_config_map("py", "default", {"data": {"k": "w"}})
out["patched"] = patched.data

# A watch from the list's resourceVersion sees a change made after it started.
rv = core.list_namespaced_config_map("default").metadata.resource_version
events = []


def follow():
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, "default",
                       resource_version=rv, timeout_seconds=10):
        events.append([ev["type"], ev["object"].metadata.name])
        if ev["type"] == "DELETED":
            w.stop()


t = threading.Thread(target=follow)
t.start()
core.delete_namespaced_config_map("py", "default")
t.join(15)
out["events"] = events
print(json.dumps(out))
