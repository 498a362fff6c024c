// Package observability holds the Prometheus alert rules and the Grafana dashboard of the
// engine (alerts.yml, alerts_test.yml, dashboard.json). This test keeps them honest without a
// running engine: the dashboard is valid JSON whose panels all query something, every metric
// they name is defined in the engine's code (paysaga_…) or by the Temporal SDK (temporal_…),
// and every alert is explained in the runbook. promtool checks and unit-tests the rules
// (make observability-check); e2e/observability_test.go checks the names against the metrics a
// real payment's run exports.
package observability

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var metricName = regexp.MustCompile(`\b(?:paysaga|temporal)_[a-z0-9_]+`)

type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

type rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestDashboardIsValidAndQueriesKnownMetrics(t *testing.T) {
	raw, err := os.ReadFile("dashboard.json")
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d), "dashboard.json is not valid JSON")
	require.NotEmpty(t, d.UID)
	var exprs []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q queries nothing", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, strings.TrimSpace(tg.Expr), "panel %q has an empty query", p.Title)
			exprs = append(exprs, tg.Expr)
		}
	}
	checkNames(t, "dashboard.json", exprs)
}

func TestAlertsAreExplainedAndQueryKnownMetrics(t *testing.T) {
	raw, err := os.ReadFile("alerts.yml")
	require.NoError(t, err)
	var r rules
	require.NoError(t, yaml.Unmarshal(raw, &r))
	runbook, err := os.ReadFile("../../docs/operations.md")
	require.NoError(t, err)
	var exprs []string
	n := 0
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			n++
			require.NotEmpty(t, rule.Alert, "group %s: a rule without a name", g.Name)
			require.Contains(t, []string{"page", "ticket"}, rule.Labels["severity"], rule.Alert)
			require.NotEmpty(t, rule.Annotations["summary"], rule.Alert)
			require.NotEmpty(t, rule.Annotations["description"], rule.Alert)
			require.True(t, strings.Contains(string(runbook), "`"+rule.Alert+"`"), "docs/operations.md does not say what %s means", rule.Alert)
			exprs = append(exprs, rule.Expr)
		}
	}
	require.GreaterOrEqual(t, n, 6)
	checkNames(t, "alerts.yml", exprs)
}

// checkNames fails for a paysaga_ metric no Go file of the engine defines, or a temporal_ metric
// the Temporal SDK does not emit.
func checkNames(t *testing.T, file string, exprs []string) {
	t.Helper()
	defined := engineMetricNames(t)
	sdk := sdkMetricNames(t)
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			switch {
			case strings.HasPrefix(name, "paysaga_"):
				require.True(t, defined[base(name, defined)], "%s queries %s, which no Go file of the engine defines", file, name)
			default:
				require.True(t, sdk[sdkBase(name)], "%s queries %s, which the Temporal SDK does not emit", file, name)
			}
		}
	}
}

// base strips the series suffixes of a histogram.
func base(name string, known map[string]bool) string {
	if known[name] {
		return name
	}
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, s); ok && known[b] {
			return b
		}
	}
	return name
}

// sdkBase is the SDK's name of a metric as the OpenTelemetry→Prometheus bridge exports it:
// counters get _total, durations _seconds (and a histogram's series suffixes).
func sdkBase(name string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		name = strings.TrimSuffix(name, s)
	}
	name = strings.TrimSuffix(name, "_total")
	return strings.TrimSuffix(name, "_seconds")
}

var quoted = regexp.MustCompile(`"((?:paysaga)_[a-z0-9_]+)"`)

func engineMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "var" || d.Name() == "bin" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range quoted.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
		return nil
	})
	require.NoError(t, err)
	return names
}

var sdkConst = regexp.MustCompile(`TemporalMetricsPrefix \+ "([a-z0-9_]+)"`)

func sdkMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.temporal.io/sdk").Output()
	require.NoError(t, err)
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "internal", "common", "metrics", "constants.go"))
	require.NoError(t, err)
	names := map[string]bool{}
	for _, m := range sdkConst.FindAllStringSubmatch(string(src), -1) {
		names["temporal_"+m[1]] = true
	}
	// temporal_request_failure and friends are built from TemporalRequest.
	for _, n := range []string{"request", "long_request"} {
		for _, s := range []string{"", "_failure", "_latency", "_resource_exhausted"} {
			names["temporal_"+n+s] = true
		}
	}
	require.NotEmpty(t, names)
	return names
}
