// Command kubeschema writes one strict JSON schema per Kubernetes kind from the OpenAPI
// (swagger 2.0) document of a Kubernetes release — api/openapi-spec/swagger.json of the Go
// module k8s.io/kubernetes — so that kubeconform validates manifests offline:
//
//	go run ./deploy/kubeschema -swagger <module dir>/api/openapi-spec/swagger.json -out var/kubeschemas/v1.34.0
//	kubeconform -strict -schema-location 'var/kubeschemas/v1.34.0/{{ .ResourceKind }}{{ .KindSuffix }}.json' …
//
// Each file is named as kubeconform's template names it (deployment-apps-v1.json,
// service-v1.json) and holds the kind's definition with the definitions it reaches. Strict:
// an object with declared properties admits no other (a misspelt field is an error), as
// kubeconform's -strict schemas do; quantities and int-or-strings take a number or a string.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const refPrefix = "#/definitions/"

func main() {
	swagger := flag.String("swagger", "", "path of swagger.json (k8s.io/kubernetes api/openapi-spec/swagger.json)")
	out := flag.String("out", "", "directory to write the schemas to")
	flag.Parse()
	if *swagger == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	n, err := generate(*swagger, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeschema:", err)
		os.Exit(1)
	}
	fmt.Printf("kubeschema: %d schemas in %s\n", n, *out)
}

type gvk struct {
	Group, Version, Kind string
}

func generate(swaggerPath, outDir string) (int, error) {
	raw, err := os.ReadFile(swaggerPath)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return 0, fmt.Errorf("%s: %w", swaggerPath, err)
	}
	if len(doc.Definitions) == 0 {
		return 0, fmt.Errorf("%s has no definitions", swaggerPath)
	}
	defs := map[string]any{}
	for name, d := range doc.Definitions {
		defs[name] = strictify(d, name)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return 0, err
	}
	names := make([]string, 0, len(doc.Definitions))
	for name := range doc.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)
	written := 0
	for _, name := range names {
		for _, k := range kinds(doc.Definitions[name]) {
			// The list kinds and the watch event are not manifests anyone writes.
			if k.Kind == "WatchEvent" || k.Kind == "DeleteOptions" || strings.HasSuffix(k.Kind, "List") && k.Group != "" {
				continue
			}
			schema := map[string]any{}
			for key, v := range defs[name].(map[string]any) {
				schema[key] = v
			}
			schema["$schema"] = "http://json-schema.org/draft-07/schema#"
			reached := map[string]any{}
			collect(defs[name], defs, reached)
			schema["definitions"] = reached
			b, err := json.Marshal(schema)
			if err != nil {
				return written, err
			}
			if err := os.WriteFile(filepath.Join(outDir, fileName(k)), b, 0o644); err != nil {
				return written, err
			}
			written++
		}
	}
	return written, nil
}

// fileName is kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json for k.
func fileName(k gvk) string {
	suffix := "-" + strings.ToLower(k.Version)
	if k.Group != "" {
		suffix = "-" + strings.ToLower(strings.Split(k.Group, ".")[0]) + suffix
	}
	return strings.ToLower(k.Kind) + suffix + ".json"
}

func kinds(def map[string]any) []gvk {
	list, _ := def["x-kubernetes-group-version-kind"].([]any)
	var out []gvk
	for _, item := range list {
		m, _ := item.(map[string]any)
		g, _ := m["group"].(string)
		v, _ := m["version"].(string)
		k, _ := m["kind"].(string)
		if v != "" && k != "" {
			out = append(out, gvk{g, v, k})
		}
	}
	return out
}

// strictify returns a copy of a definition: objects with properties close to other fields,
// and the two types that are numbers or strings say so.
func strictify(v any, name string) any {
	switch name {
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	}
	return strictNode(v)
}

func strictNode(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			if k == "properties" {
				props := map[string]any{}
				for pk, pv := range x.(map[string]any) {
					props[pk] = strictNode(pv)
				}
				out[k] = props
				continue
			}
			if strings.HasPrefix(k, "x-kubernetes-") {
				continue
			}
			out[k] = strictNode(x)
		}
		if _, ok := t["properties"]; ok {
			if _, set := t["additionalProperties"]; !set {
				out["additionalProperties"] = false
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = strictNode(x)
		}
		return out
	}
	return v
}

// collect adds to reached every definition v refers to, transitively.
func collect(v any, defs map[string]any, reached map[string]any) {
	switch t := v.(type) {
	case map[string]any:
		if ref, ok := t["$ref"].(string); ok && strings.HasPrefix(ref, refPrefix) {
			name := strings.TrimPrefix(ref, refPrefix)
			if _, seen := reached[name]; !seen {
				if d, ok := defs[name]; ok {
					reached[name] = d
					collect(d, defs, reached)
				}
			}
		}
		for _, x := range t {
			collect(x, defs, reached)
		}
	case []any:
		for _, x := range t {
			collect(x, defs, reached)
		}
	}
}
