# Least privilege: no wildcard verbs, resources or API groups in RBAC rules.
package rules

import rego.v1

violation contains {"rule": "no-wildcard-rbac", "msg": sprintf("rule %d grants * in %s", [i, field])} if {
	input.kind in {"Role", "ClusterRole"}
	some i, rule in object.get(input, "rules", [])
	some field in ["verbs", "resources", "apiGroups"]
	"*" in object.get(rule, field, [])
}
