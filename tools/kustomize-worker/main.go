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
	"runtime/debug"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/kustomize/v5/commands/build"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/openapi/kubernetesapi"
)

func buildOne(fSys filesys.FileSystem, directory string) ([]byte, error) {
	var out bytes.Buffer
	cmd := build.NewCmdBuild(fSys, build.MakeHelp(konfig.ProgramName, "build"), &out)
	build.AddFunctionAlphaEnablementFlags(cmd.Flags())
	cmd.SetArgs([]string{directory})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceErrors = true
	err := cmd.Execute()
	// A kustomization may name its own OpenAPI schema; the binary forgets it when it exits, and so
	// must the next build here.
	if openapi.GetSchemaVersion() != kubernetesapi.DefaultOpenAPI {
		openapi.ResetOpenAPI()
	}
	return out.Bytes(), err
}

func main() {
	// Deprecation warnings would go to stderr; the caller only wants results.
	log.SetOutput(io.Discard)
	// Garbage from one build is dead by the next: trade some memory for less collection.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
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
