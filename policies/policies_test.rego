# Each rule made to pass and to fail, through the same deny/warn entry points conftest uses.
package main_test

import data.main
import rego.v1

restricted_container := {
	"name": "app", "image": "ghcr.io/example/app:1.0",
	"resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
	"securityContext": {
		"runAsNonRoot": true, "allowPrivilegeEscalation": false,
		"capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
	},
}

deployment(container, pod) := {
	"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": "kubeflow"},
	"spec": {"template": {"spec": object.union(pod, {"containers": [container]})}},
}

settings := {"requireResources": true, "allowLoadBalancer": false}

denied(obj, rule) if {
	some msg in main.deny with input as obj with data.settings as settings with data.exceptions as []
	startswith(msg, sprintf("[%s]", [rule]))
}

test_restricted_deployment_passes if {
	count(main.deny) == 0 with input as deployment(restricted_container, {}) with data.settings as settings with data.exceptions as []
}

test_pod_level_context_counts if {
	container := object.remove(restricted_container, ["securityContext"])
	pod := {"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}}
	obj := deployment(object.union(container, {"securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}), pod)
	not denied(obj, "run-as-non-root")
	not denied(obj, "seccomp-runtime-default")
}

test_root_container_fails if {
	denied(deployment(object.union(restricted_container, {"securityContext": {"runAsNonRoot": false}}), {}), "run-as-non-root")
}

test_privilege_escalation_fails if {
	denied(deployment(json.patch(restricted_container, [{"op": "remove", "path": "/securityContext/allowPrivilegeEscalation"}]), {}), "no-privilege-escalation")
}

test_capabilities_fail if {
	denied(deployment(json.patch(restricted_container, [{"op": "replace", "path": "/securityContext/capabilities/drop", "value": ["NET_RAW"]}]), {}), "drop-all-capabilities")
}

test_seccomp_fails if {
	denied(deployment(json.patch(restricted_container, [{"op": "remove", "path": "/securityContext/seccompProfile"}]), {}), "seccomp-runtime-default")
}

test_privileged_fails if {
	denied(deployment(json.patch(restricted_container, [{"op": "add", "path": "/securityContext/privileged", "value": true}]), {}), "no-privileged")
}

test_host_network_and_host_path_fail if {
	obj := deployment(restricted_container, {"hostNetwork": true, "volumes": [{"name": "h", "hostPath": {"path": "/"}}]})
	denied(obj, "no-host-namespaces")
	denied(obj, "no-host-path")
}

test_missing_resources_fail_only_where_required if {
	obj := deployment(object.remove(restricted_container, ["resources"]), {})
	denied(obj, "requests-and-limits")
	count(main.deny) == 0 with input as obj with data.settings as {"requireResources": false} with data.exceptions as []
}

test_unpinned_images_fail if {
	denied(deployment(object.union(restricted_container, {"image": "ghcr.io/example/app:latest"}), {}), "pinned-images")
	denied(deployment(object.union(restricted_container, {"image": "registry:5000/example/app"}), {}), "pinned-images")
	not denied(deployment(object.union(restricted_container, {"image": "registry:5000/example/app@sha256:abc"}), {}), "pinned-images")
}

secret(values) := {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "auth"}, "stringData": values}

test_plaintext_secret_fails if {
	denied(secret({"token": "x"}), "no-plaintext-secrets")
	not denied(secret({}), "no-plaintext-secrets")
}

test_default_credentials_fail if {
	denied(secret({"DEX_USER_PASSWORD": "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72"}), "no-default-credentials")
	denied(secret({"password": "minio123"}), "no-default-credentials")
	not denied(secret({"password": "a-real-generated-value"}), "no-default-credentials")
}

role(rule) := {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}, "rules": [rule]}

test_wildcard_rbac_fails if {
	denied(role({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}), "no-wildcard-rbac")
	not denied(role({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}), "no-wildcard-rbac")
}

service(type) := {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"}, "spec": {"type": type}}

test_load_balancer_only_where_allowed if {
	denied(service("LoadBalancer"), "load-balancer-allowed")
	count(main.deny) == 0 with input as service("LoadBalancer") with data.settings as {"allowLoadBalancer": true} with data.exceptions as []
	not denied(service("ClusterIP"), "load-balancer-allowed")
}

gateway(servers) := {
	"apiVersion": "networking.istio.io/v1beta1", "kind": "Gateway",
	"metadata": {"name": "kubeflow-gateway", "namespace": "kubeflow"}, "spec": {"servers": servers},
}

test_gateway_needs_tls if {
	denied(gateway([{"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["*"]}]), "gateway-tls")
	not denied(
		gateway([
			{"port": {"number": 80, "protocol": "HTTP"}, "tls": {"httpsRedirect": true}},
			{"port": {"number": 443, "protocol": "HTTPS"}, "tls": {"mode": "SIMPLE"}},
		]),
		"gateway-tls",
	)
}

test_exception_turns_a_failure_into_a_warning if {
	obj := service("LoadBalancer")
	exception := {"rule": "load-balancer-allowed", "kind": "Service", "namespace": "n", "name": "s", "reason": "test"}
	count(main.deny) == 0 with input as obj with data.settings as settings with data.exceptions as [exception]
	count(main.warn) == 1 with input as obj with data.settings as settings with data.exceptions as [exception]
}
