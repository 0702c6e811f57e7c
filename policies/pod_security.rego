# Pod Security "restricted": non-root, no privilege escalation, capabilities dropped, RuntimeDefault
# seccomp; and never privileged, host namespaces or hostPath volumes.
package rules

import data.lib
import rego.v1

pod_security_context := object.get(lib.pod_spec, "securityContext", {})

violation contains {"rule": "run-as-non-root", "msg": sprintf("container %q may run as root", [c.name])} if {
	some c in lib.containers
	not object.get(object.get(c, "securityContext", {}), "runAsNonRoot", object.get(pod_security_context, "runAsNonRoot", false))
}

violation contains {"rule": "no-privilege-escalation", "msg": sprintf("container %q allows privilege escalation", [c.name])} if {
	some c in lib.containers
	object.get(object.get(c, "securityContext", {}), "allowPrivilegeEscalation", true) != false
}

violation contains {"rule": "drop-all-capabilities", "msg": sprintf("container %q does not drop ALL capabilities", [c.name])} if {
	some c in lib.containers
	not "ALL" in object.get(object.get(object.get(c, "securityContext", {}), "capabilities", {}), "drop", [])
}

seccomp_type(c) := object.get(object.get(object.get(c, "securityContext", {}), "seccompProfile", {}), "type", object.get(object.get(pod_security_context, "seccompProfile", {}), "type", ""))

violation contains {"rule": "seccomp-runtime-default", "msg": sprintf("container %q has no RuntimeDefault seccomp profile", [c.name])} if {
	some c in lib.containers
	not seccomp_type(c) in {"RuntimeDefault", "Localhost"}
}

violation contains {"rule": "no-privileged", "msg": sprintf("container %q is privileged", [c.name])} if {
	some c in lib.containers
	object.get(object.get(c, "securityContext", {}), "privileged", false) == true
}

violation contains {"rule": "no-host-namespaces", "msg": sprintf("pod uses %s", [field])} if {
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	object.get(lib.pod_spec, field, false) == true
}

violation contains {"rule": "no-host-path", "msg": sprintf("volume %q is a hostPath", [v.name])} if {
	some v in object.get(lib.pod_spec, "volumes", [])
	v.hostPath
}
