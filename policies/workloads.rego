# Requests and limits on every container (where the environment asks for them), and pinned images.
package rules

import data.lib
import rego.v1

violation contains {"rule": "requests-and-limits", "msg": sprintf("container %q lacks %s", [c.name, need])} if {
	data.settings.requireResources == true
	some c in lib.containers
	some need in ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"]
	parts := split(need, ".")
	object.get(object.get(c, "resources", {}), parts, null) == null
}

image_untagged(image) if {
	not contains(image, "@")
	last := regex.split("/", image)[count(regex.split("/", image)) - 1]
	not contains(last, ":")
}

violation contains {"rule": "pinned-images", "msg": sprintf("container %q uses image %q without a tag or digest", [c.name, c.image])} if {
	some c in lib.containers
	image_untagged(c.image)
}

violation contains {"rule": "pinned-images", "msg": sprintf("container %q uses the mutable tag latest (%q)", [c.name, c.image])} if {
	some c in lib.containers
	endswith(c.image, ":latest")
}
