#!/usr/bin/env python3
"""Regenerates src/schema.txt, the compact wire-schema table of kplex-protobuf.

Usage: gen_schema.py <k8s-pb-codegen dir>   (the protos/ and openapi/swagger.json
of a kube-rs/k8s-pb checkout; those files are read here, never committed).

The table keeps only what the codec needs: field number, JSON name, type.
swagger.json is consulted to find Go-embedded (`json:",inline"`) fields, whose
proto field name is not a JSON property, and to cross-check the other names.
"""
import json
import os
import re
import sys

# The API packages whose kinds kplex serves over protobuf.
PACKAGES = [
    "api/core/v1", "api/apps/v1", "api/batch/v1", "api/rbac/v1",
    "api/authentication/v1", "api/authorization/v1", "api/autoscaling/v1",
    "api/autoscaling/v2", "api/policy/v1", "api/networking/v1",
    "api/scheduling/v1", "api/coordination/v1", "api/certificates/v1",
    "api/events/v1", "api/discovery/v1", "api/storage/v1",
    "api/admissionregistration/v1", "api/node/v1", "api/flowcontrol/v1",
    "kube-aggregator/pkg/apis/apiregistration/v1",
    "apimachinery/pkg/apis/meta/v1", "apimachinery/pkg/api/resource",
    "apimachinery/pkg/util/intstr", "apimachinery/pkg/runtime",
    "apimachinery/pkg/runtime/schema",
]
SCALARS = {"string": "s", "bytes": "y", "bool": "b", "int32": "i", "int64": "l",
           "double": "d", "float": "f"}


def short(pkg):
    for pre in ("api.", "apimachinery.pkg.apis.", "apimachinery.pkg.api.",
                "apimachinery.pkg.util.", "apimachinery.pkg.",
                "kube_aggregator.pkg.apis."):
        if pkg.startswith(pre):
            return pkg[len(pre):]
    return pkg


def swagger_name(pkg, msg):
    return "io.k8s." + pkg.replace("kube_aggregator", "kube-aggregator") + "." + msg


def parse(path):
    text = open(path).read()
    pkg = re.search(r"^package ([\w.]+);", text, re.M).group(1)
    msgs = {}
    cur = None
    comments = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("//"):
            comments.append(s)
            continue
        m = re.match(r"message (\w+) \{", s)
        if m:
            cur = (m.group(1), [], any("+protobuf.nullable=true" in c for c in comments))
            msgs[m.group(1)] = cur
        elif s == "}":
            cur = None
        else:
            m = re.match(r"(optional|repeated)?\s*(map<string, *([\w.]+)>|[\w.]+) (\w+) = (\d+)", s)
            if m and cur:
                label, ty, mapval, name, num = m.groups()
                cur[1].append((int(num), name, label == "repeated", mapval or ty, bool(mapval)))
            elif s and cur and not s.startswith("reserved"):
                sys.exit("unparsed: %s: %s" % (path, s))
        if not s.startswith("//"):
            comments = []
    return pkg, msgs


def main():
    root = sys.argv[1]
    swagger = json.load(open(os.path.join(root, "openapi/swagger.json")))["definitions"]
    out = []
    for p in PACKAGES:
        pkg, msgs = parse(os.path.join(root, "protos", p, "generated.proto"))
        for name, fields, wrapper in msgs.values():
            sw = swagger.get(swagger_name(pkg, name), {}).get("properties")
            parts = []
            for num, fname, rep, ty, is_map in sorted(fields):
                if ty in SCALARS:
                    t = SCALARS[ty]
                else:
                    t = short(ty.lstrip(".") if "." in ty else pkg + "." + ty)
                if is_map:
                    t = "%" + t
                elif rep:
                    t = "*" + t
                inline = sw is not None and fname not in sw and ty not in SCALARS and not rep and not is_map
                if sw is not None and not inline and fname not in sw:
                    # A few Go fields keep an odd proto name (uID, aPIGroup).
                    alias = [k for k in sw if k.lower() == fname.lower()]
                    if len(alias) != 1:
                        sys.exit("%s.%s.%s has no JSON name" % (pkg, name, fname))
                    fname = alias[0]
                parts.append("%d:%s%s:%s" % (num, "^" if inline else "", fname, t))
            out.append("%s.%s%s %s" % (short(pkg), name, "[]" if wrapper else "", " ".join(parts)))
    sys.stdout.write("\n".join(out) + "\n")


main()
