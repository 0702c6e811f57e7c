# Exposure: LoadBalancer Services only where the environment allows them, and TLS on the gateway.
package rules

import data.lib
import rego.v1

violation contains {"rule": "load-balancer-allowed", "msg": "Service of type LoadBalancer where the environment allows none"} if {
	input.kind == "Service"
	input.spec.type == "LoadBalancer"
	not allow_load_balancer
}

allow_load_balancer if data.settings.allowLoadBalancer == true

is_gateway if {
	input.kind == "Gateway"
	startswith(input.apiVersion, "networking.istio.io/")
}

violation contains {"rule": "gateway-tls", "msg": sprintf("server on port %v serves plain HTTP without redirecting to HTTPS", [s.port.number])} if {
	is_gateway
	lib.name == "kubeflow-gateway"
	some s in input.spec.servers
	s.port.protocol == "HTTP"
	not object.get(object.get(s, "tls", {}), "httpsRedirect", false)
}

violation contains {"rule": "gateway-tls", "msg": "no HTTPS server"} if {
	is_gateway
	lib.name == "kubeflow-gateway"
	count([s | some s in input.spec.servers; s.port.protocol == "HTTPS"]) == 0
}
