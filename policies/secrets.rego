# Secrets never carry values in git, and no object carries a credential upstream publishes.
package rules

import data.lib
import rego.v1

violation contains {"rule": "no-plaintext-secrets", "msg": sprintf("Secret holds values for %v", [sort(keys)])} if {
	input.kind == "Secret"
	keys := {k | some k, _ in object.get(input, "data", {})} | {k | some k, _ in object.get(input, "stringData", {})}
	count(keys) > 0
}

# Upstream's example login, its bcrypt hash, and the default object-store and database passwords
# (plain and base64).
default_credentials := {
	"12341234", "MTIzNDEyMzQ=",
	"$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72",
	"minio123", "bWluaW8xMjM=",
	"minio", "bWluaW8=",
	"test", "dGVzdA==",
}

violation contains {"rule": "no-default-credentials", "msg": sprintf("field %s holds a published default credential", [concat(".", [format_path(path)])])} if {
	input.kind in {"Secret", "ConfigMap"}
	walk(input, [path, value])
	is_string(value)
	some credential in default_credentials
	credential_in(value, credential)
	path[0] in {"data", "stringData"}
}

credential_in(value, credential) if value == credential

credential_in(value, credential) if {
	count(credential) >= 8
	contains(value, credential)
}

format_path(path) := concat(".", [sprintf("%v", [p]) | some p in path])
