// One binary for the parts of Argo CD that the end-to-end tests run as processes: the application
// controller and the repo server (tests/e2e/argocd.py). Like Argo CD's own image, it picks the
// command from the name it is invoked by, so .tools/bin/argocd-application-controller and
// .tools/bin/argocd-repo-server are symlinks to it. Only these commands are imported, so the API
// server, the UI and the CLI are not compiled.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/util/log"
)

// The repo server runs git with GIT_ASKPASS=argocd and ARGOCD_BINARY_NAME=argocd-git-ask-pass, so
// that git asks it for credentials through this binary: the variable wins over the invoked name.
const binaryNameEnv = "ARGOCD_BINARY_NAME"

func init() {
	// klog (client-go) logs through Argo CD's logger, with its level and format.
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func main() {
	name := filepath.Base(os.Args[0])
	if v := os.Getenv(binaryNameEnv); v != "" {
		name = v
	}
	var command *cobra.Command
	switch name {
	case "argocd-application-controller":
		command = appcontroller.NewCommand()
	case "argocd-repo-server":
		command = reposerver.NewCommand()
	case "argocd-git-ask-pass":
		command = gitaskpass.NewCommand()
	default:
		fmt.Fprintf(os.Stderr, "%s: unknown command name; invoke as argocd-application-controller, "+
			"argocd-repo-server or argocd-git-ask-pass (or set %s)\n", name, binaryNameEnv)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
