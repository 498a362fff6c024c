//go:build cluster

package temporalcluster_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"

	"paysaga/internal/temporalcluster"
	"paysaga/workflows"
)

// The cluster serves the namespace with every search attribute the workflows set.
func TestClusterServesTheNamespaceWithTheSearchAttributes(t *testing.T) {
	c := temporalcluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sas, err := c.Client.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: c.Namespace})
	require.NoError(t, err)
	for _, flag := range workflows.SearchAttributeFlags() {
		name, typ, _ := strings.Cut(flag, "=")
		require.Equal(t, typ, sas.CustomAttributes[name].String(), name)
	}
	require.NotEmpty(t, c.Version)
}

// The server of the pinned version knows every key of temporal-config/dynamicconfig.yaml and
// takes its values (it warns, and exits 0, about what it would ignore: the test reads the
// warnings). A misspelt key and a value of the wrong type are caught.
func TestDynamicConfigValidatesOnTheServer(t *testing.T) {
	root, err := temporalcluster.Root()
	require.NoError(t, err)
	bin := os.Getenv("PAYSAGA_TEMPORAL_SERVER_BIN")
	if bin == "" {
		bin = filepath.Join(root, "bin", "temporal-server")
	}
	validate := func(file string) string {
		out, err := exec.Command(bin, "validate-dynamic-config", file).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	out := validate(filepath.Join(root, "temporal-config", "dynamicconfig.yaml"))
	require.NotContains(t, out, "warning", "temporal-config/dynamicconfig.yaml on server %s", bin)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("frontend.enableUpdateWorkflowExecutionn:\n  - value: true\nhistory.maxInFlightUpdates:\n  - value: \"ten\"\n"), 0o644))
	out = validate(bad)
	require.Contains(t, out, `unregistered key "frontend.enableUpdateWorkflowExecutionn"`)
	require.Contains(t, out, `"history.maxInFlightUpdates" value ten`)
}

// temporal-config/setup-schema.sh, which the compose file's temporal-schema job runs, creates
// and updates both databases, and a second run changes nothing and succeeds (a restarted job).
func TestSetupSchemaScriptIsIdempotent(t *testing.T) {
	root, err := temporalcluster.Root()
	require.NoError(t, err)
	tool := os.Getenv("PAYSAGA_TEMPORAL_SQL_TOOL")
	if tool == "" {
		tool = filepath.Join(root, "bin", "temporal-sql-tool")
	}
	pathDir := t.TempDir()
	require.NoError(t, os.Symlink(tool, filepath.Join(pathDir, "temporal-sql-tool")))
	schema, err := temporalcluster.SchemaDir("postgresql", "v12")
	require.NoError(t, err)
	host, port, err := net.SplitHostPort(envOr("PAYSAGA_TEST_POSTGRES_ADDR", "127.0.0.1:5432"))
	require.NoError(t, err)
	suffix := fmt.Sprint(time.Now().UnixNano() % 1_000_000)
	dbs := []string{"tsetup_main_" + suffix, "tsetup_vis_" + suffix}
	t.Cleanup(func() {
		for _, db := range dbs {
			_ = exec.Command(tool, "--plugin", "postgres12", "--ep", host, "-p", port, "-u", envOr("PAYSAGA_TEST_POSTGRES_USER", "postgres"),
				"--db", db, "drop-database", "--force").Run()
		}
	})
	for run := 1; run <= 2; run++ {
		cmd := exec.Command("sh", filepath.Join(root, "temporal-config", "setup-schema.sh"))
		cmd.Env = append(os.Environ(), "PATH="+pathDir+":"+os.Getenv("PATH"), "DB=postgres12", "POSTGRES_SEEDS="+host, "DB_PORT="+port,
			"POSTGRES_USER="+envOr("PAYSAGA_TEST_POSTGRES_USER", "postgres"), "POSTGRES_PWD="+os.Getenv("PGPASSWORD"),
			"DBNAME="+dbs[0], "VISIBILITY_DBNAME="+dbs[1], "SCHEMA_DIR="+schema)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "run %d: %s", run, out)
		require.Contains(t, string(out), "setup-schema: "+dbs[0]+" (temporal) up to date")
		require.Contains(t, string(out), "setup-schema: "+dbs[1]+" (visibility) up to date")
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
