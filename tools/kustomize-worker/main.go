// Command kustomize-worker runs `kustomize build` of kustomize v5.8.1 on many directories in one
// process. Every build goes through the kustomize CLI's own build command, with its defaults, so the
// output is byte for byte what the kustomize binary prints. What it saves is the binary's start-up
// cost paid per directory: parsing the built-in OpenAPI schema takes about a tenth of a second, more
// than building most small overlays.
//
// Protocol: one directory per line on stdin. For each, one header line on stdout, "ok N" or
// "error N", followed by N bytes: the built YAML, or kustomize's error message.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/kustomize/v5/commands/build"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/openapi/kubernetesapi"
)

func runBuild(fSys filesys.FileSystem, directory string) ([]byte, error) {
	var out bytes.Buffer
	cmd := build.NewCmdBuild(fSys, build.MakeHelp(konfig.ProgramName, "build"), &out)
	build.AddFunctionAlphaEnablementFlags(cmd.Flags())
	cmd.SetArgs([]string{directory})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceErrors = true
	err := cmd.Execute()
	return out.Bytes(), err
}

// schemaPristine says whether kyaml's OpenAPI state is a fresh process's: nothing parsed, no schema
// named. The built-in schema, once parsed, stays for the builds after: that is the time saved.
var schemaPristine = true

func buildOne(fSys filesys.FileSystem, directory string) ([]byte, error) {
	out, err := runBuild(fSys, directory)
	if openapi.GetSchemaVersion() == kubernetesapi.DefaultOpenAPI {
		schemaPristine = false
		return out, err
	}
	// The kustomization named an OpenAPI schema of its own. The binary reads it into an empty state,
	// but here it went on top of the built-in schema an earlier build parsed, and built-in kinds would
	// merge by keys the binary does not know of: build again from a fresh state. Either way the
	// binary forgets the schema when it exits, and so must the next build here.
	openapi.ResetOpenAPI()
	if !schemaPristine {
		out, err = runBuild(fSys, directory)
		openapi.ResetOpenAPI()
	}
	schemaPristine = true
	return out, err
}

func main() {
	// Deprecation warnings would go to stderr; the caller only wants results.
	log.SetOutput(io.Discard)
	// How often garbage is collected is the caller's to set (GOGC, GOMEMLIMIT): kfgen's tools.py.
	// Parse the built-in schema now, while the caller is still deciding what to build: most builds
	// need it, and a worker started ahead of its first directory then answers it at full speed.
	openapi.Schema()
	schemaPristine = false
	fSys := filesys.MakeFsOnDisk()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64*1024), 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	for in.Scan() {
		directory := strings.TrimSpace(in.Text())
		if directory == "" {
			continue
		}
		result, err := buildOne(fSys, directory)
		status := "ok"
		if err != nil {
			status, result = "error", []byte(err.Error())
		}
		fmt.Fprintf(out, "%s %d\n", status, len(result))
		out.Write(result)
		if err := out.Flush(); err != nil {
			os.Exit(1)
		}
	}
}
