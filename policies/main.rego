# Turns every rule's violations into conftest failures, minus the ones an exception covers;
# excepted violations are reported as warnings so that an exception that matches nothing shows.
package main

import data.lib
import data.rules
import rego.v1

deny contains msg if {
	some violation in rules.violation
	not lib.excepted(violation.rule)
	msg := sprintf("[%s] %s: %s", [violation.rule, lib.describe, violation.msg])
}

warn contains msg if {
	some violation in rules.violation
	lib.excepted(violation.rule)
	msg := sprintf("[excepted:%s] %s", [violation.rule, lib.describe])
}
