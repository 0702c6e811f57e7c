// Command yaml2json reads a stream of YAML documents (kustomize build output) on stdin and writes
// each document as one line of JSON, converted the way Kubernetes clients read YAML. Parsing in Go
// is many times faster than in Python, and JSON loads in Python many times faster than YAML.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/yaml"
)

// documents splits a YAML stream at its separator lines: "---" followed by nothing but spaces and tabs.
// Done by hand: the regular expression it replaces took a quarter of the converter's time.
func documents(input []byte) [][]byte {
	var found [][]byte
	start := 0
	for lineStart := 0; lineStart < len(input); {
		lineEnd := bytes.IndexByte(input[lineStart:], '\n')
		next := len(input)
		if lineEnd < 0 {
			lineEnd = len(input)
		} else {
			lineEnd += lineStart
			next = lineEnd + 1
		}
		if isSeparator(input[lineStart:lineEnd]) {
			found = append(found, input[start:lineStart])
			start = lineEnd
		}
		lineStart = next
	}
	return append(found, input[start:])
}

func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	for _, c := range line[3:] {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "yaml2json:", err)
		os.Exit(1)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	for index, document := range documents(input) {
		if len(bytes.TrimSpace(document)) == 0 {
			continue
		}
		converted, err := yaml.YAMLToJSON(document)
		if err != nil {
			fmt.Fprintf(os.Stderr, "yaml2json: document %d: %v\n", index+1, err)
			os.Exit(1)
		}
		if string(converted) == "null" {
			continue
		}
		out.Write(converted)
		out.WriteByte('\n')
	}
}
