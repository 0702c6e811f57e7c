# Helpers shared by the rules: where pod specs live in workload kinds, and exceptions.
package lib

import rego.v1

pod_spec := input.spec.template.spec if input.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

pod_spec := input.spec.jobTemplate.spec.template.spec if input.kind == "CronJob"

pod_spec := input.spec if input.kind == "Pod"

containers contains container if {
	some field in ["containers", "initContainers", "ephemeralContainers"]
	some container in object.get(pod_spec, field, [])
}

namespace := object.get(input.metadata, "namespace", "")

name := input.metadata.name

# An exception names the rule, the object's kind, namespace and name, and why.
excepted(rule) if {
	some exception in data.exceptions
	exception.rule == rule
	exception.kind == input.kind
	object.get(exception, "namespace", "") == namespace
	exception.name == name
}

describe := sprintf("%s %s/%s", [input.kind, namespace, name]) if namespace != ""

describe := sprintf("%s %s", [input.kind, name]) if namespace == ""
