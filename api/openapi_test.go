package api_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"paysaga/api"
)

// openAPIDoc is the part of the document the tests check.
type openAPIDoc struct {
	OpenAPI string                               `yaml:"openapi"`
	Paths   map[string]map[string]map[string]any `yaml:"paths"`
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

func loadOpenAPI(t *testing.T) (openAPIDoc, map[string]any) {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, yaml.Unmarshal(api.OpenAPI(), &doc))
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal(api.OpenAPI(), &raw))
	return doc, raw
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPIMatchesRoutes fails when the router has a route the document lacks, or the document
// describes one the router does not serve. Add a route → add its path to openapi.yaml.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3.1"), "OpenAPI 3.1, got %q", doc.OpenAPI)

	env := newTestEnv(t)
	var routes []string
	for _, r := range env.srv.Engine().Routes() {
		// gin writes /payments/:id, OpenAPI /payments/{id}.
		routes = append(routes, r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}"))
	}
	var documented []string
	for path, item := range doc.Paths {
		for key := range item {
			if slices.Contains(httpMethods, key) {
				documented = append(documented, strings.ToUpper(key)+" "+path)
			}
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	var undocumented, unserved []string
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			undocumented = append(undocumented, r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			unserved = append(unserved, d)
		}
	}
	require.Empty(t, undocumented, "routes missing from api/openapi.yaml")
	require.Empty(t, unserved, "api/openapi.yaml documents routes the router does not serve")
	require.NotEmpty(t, routes)
}

// TestOpenAPIIsConsistent catches the mistakes a YAML parser does not: dangling $refs, duplicate
// operation IDs, operations without responses.
func TestOpenAPIIsConsistent(t *testing.T) {
	doc, raw := loadOpenAPI(t)
	ids := map[string]string{}
	for path, item := range doc.Paths {
		for method, op := range item {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			where := strings.ToUpper(method) + " " + path
			id, _ := op["operationId"].(string)
			require.NotEmpty(t, id, "%s has no operationId", where)
			require.NotContains(t, ids, id, "%s reuses operationId of %s", where, ids[id])
			ids[id] = where
			require.NotEmpty(t, op["responses"], "%s has no responses", where)
		}
	}

	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if ref, ok := child.(string); ok && k == "$ref" {
					require.Truef(t, resolves(raw, ref), "dangling $ref %q", ref)
				}
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(raw)
}

func resolves(doc map[string]any, ref string) bool {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false // only local references are used in this document
	}
	var cur any = doc
	for _, part := range strings.Split(ptr, "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

func TestOpenAPIIsServed(t *testing.T) {
	env := newTestEnv(t)
	rec := env.do(t, req{method: http.MethodGet, path: "/openapi.yaml"})
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
	require.Equal(t, string(api.OpenAPI()), rec.Body.String())
}
