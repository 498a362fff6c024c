package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"paysaga/internal/devserver"
	"paysaga/internal/temporaltest"
	"paysaga/workflows"
)

const script = "../temporal-config/register-search-attributes.sh"

// scriptAttributes returns the NAME=Type lines of the script's ATTRIBUTES list.
func scriptAttributes(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(script)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?s)\nATTRIBUTES='(.*?)'`).FindSubmatch(b)
	require.NotNil(t, m, "no ATTRIBUTES='…' list in the script")
	return strings.Fields(string(m[1]))
}

func TestRegisterScriptDeclaresTheWorkflowsSearchAttributes(t *testing.T) {
	require.ElementsMatch(t, workflows.SearchAttributeFlags(), scriptAttributes(t),
		"temporal-config/register-search-attributes.sh must declare exactly workflows.SearchAttributeFlags()")
}

type dynamicConfig map[string][]struct {
	Value       any            `yaml:"value"`
	Constraints map[string]any `yaml:"constraints"`
}

func loadDynamicConfig(t *testing.T) dynamicConfig {
	t.Helper()
	b, err := os.ReadFile("../temporal-config/dynamicconfig.yaml")
	require.NoError(t, err)
	var dc dynamicConfig
	require.NoError(t, yaml.Unmarshal(b, &dc))
	return dc
}

func TestDynamicConfigEnablesWhatTheEngineUses(t *testing.T) {
	dc := loadDynamicConfig(t)
	for _, key := range []string{"frontend.enableUpdateWorkflowExecution", "frontend.enableExecuteMultiOperation"} {
		require.Len(t, dc[key], 1, key)
		require.Equal(t, true, dc[key][0].Value, "%s: the API's Update-with-Start and the operators' resolve need it", key)
	}
	for key, entries := range dc {
		for _, e := range entries {
			require.NotNil(t, e.Value, "%s has an entry without a value", key)
		}
	}
	sig := dc["history.maximumSignalsPerExecution"]
	require.NotEmpty(t, sig)
	require.Positive(t, sig[0].Value)

	// Every key is a setting this Temporal server knows: a misspelt key would be ignored
	// silently by the server.
	bin, err := temporaltest.Binary()
	require.NoError(t, err)
	server, err := os.ReadFile(bin)
	require.NoError(t, err, "the Temporal CLI (make temporal)")
	for key := range dc {
		require.True(t, bytes.Contains(server, []byte(key)), "%s is not a dynamic config key of Temporal server in %s", key, bin)
	}
}

// TestTemporalConfigOnADevServer starts a dev server with the dynamic config and without the
// search attributes, runs the registration script twice (the second run changes nothing),
// and checks that the attributes exist with their types. A namespace where an attribute has
// another type makes the script fail instead of carrying on.
func TestTemporalConfigOnADevServer(t *testing.T) {
	bin, err := temporaltest.Binary()
	require.NoError(t, err)
	var args []string
	for key, entries := range loadDynamicConfig(t) {
		v, err := json.Marshal(entries[0].Value)
		require.NoError(t, err)
		args = append(args, "--dynamic-config-value", key+"="+string(v))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: bin, LogLevel: "error", ExtraArgs: args, Stdout: io.Discard, Stderr: io.Discard,
		ClientOptions: &client.Options{Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))},
	})
	require.NoError(t, err, "the dev server refused temporal-config/dynamicconfig.yaml")
	t.Cleanup(func() { _ = srv.Stop() })
	c := srv.Client()

	run := func(namespace string, env ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "sh", script)
		cmd.Env = append(append(os.Environ(), "TEMPORAL_CLI="+bin, "TEMPORAL_ADDRESS="+srv.FrontendHostPort(),
			"TEMPORAL_NAMESPACE="+namespace, "WAIT_SECONDS=30"), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("default")
	require.NoError(t, err, out)
	require.Contains(t, out, "created PaymentStatus (Keyword)")
	out, err = run("default")
	require.NoError(t, err, out)
	require.NotContains(t, out, "created", "a second run changes nothing")
	require.Contains(t, out, "exists  NeedsAttention (Bool)")

	sas, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	require.NoError(t, err)
	for _, flag := range workflows.SearchAttributeFlags() {
		name, typ, _ := strings.Cut(flag, "=")
		got, ok := sas.CustomAttributes[name]
		require.True(t, ok, "%s not registered", name)
		require.Equal(t, typ, got.String(), name)
	}

	// docker-compose.yml's job creates its namespace (TEMPORAL_NAMESPACE_RETENTION), then
	// registers the attributes there.
	out, err = run("fresh", "TEMPORAL_NAMESPACE_RETENTION=24h")
	require.NoError(t, err, out)
	require.Contains(t, out, "created namespace fresh (retention 24h)")
	require.Contains(t, out, "created PaymentStatus (Keyword)")
	out, err = run("fresh", "TEMPORAL_NAMESPACE_RETENTION=24h")
	require.NoError(t, err, out)
	require.NotContains(t, out, "created", "a second run changes nothing")

	// Another namespace, where CustomerId was once made an Int by hand.
	_, err = c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: "clash", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: "clash", SearchAttributes: map[string]enumspb.IndexedValueType{"CustomerId": enumspb.INDEXED_VALUE_TYPE_INT}})
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "the new namespace never took a search attribute")
	out, err = run("clash")
	require.Error(t, err, out)
	require.Contains(t, out, "CustomerId exists as Int, paysaga needs Keyword")
}

// The cluster and the dev server read their transfer queues alike: tasks reach workers as
// quickly on either (internal/devserver.TransferPollRPS says why it is raised).
func TestClusterAndDevServerReadTheTransferQueueAlike(t *testing.T) {
	dc := loadDynamicConfig(t)
	v, ok := dc["history.transferProcessorMaxPollRPS"]
	require.True(t, ok, "temporal-config/dynamicconfig.yaml must set history.transferProcessorMaxPollRPS")
	require.Len(t, v, 1)
	require.Equal(t, devserver.TransferPollRPS, v[0].Value)
	require.Equal(t, strconv.Itoa(devserver.TransferPollRPS), devserver.DynamicConfig["history.transferProcessorMaxPollRPS"])
	require.Greater(t, devserver.TransferPollRPS, 20, "the server's default, 20 reads/s per shard, is what made tasks wait")
}
