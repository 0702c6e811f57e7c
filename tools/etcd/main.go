// Command etcd is the etcd server of the release that the pinned Kubernetes uses, built from the Go
// module proxy for the control plane of the tests (tests/controlplane.py, `make controlplane`).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
