package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The chart names the Temporal server version the Makefile pins (and docker-compose.yml runs).
// The chart's rendering checks need helm and kubeconform: make helm-check (helm_test.go).
func TestHelmValuesNameTheMakefilesTemporalVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("helm", "paysaga", "values.yaml"))
	require.NoError(t, err)
	var v struct {
		Temporal struct {
			ServerVersion string `yaml:"serverVersion"`
		} `yaml:"temporal"`
	}
	require.NoError(t, yaml.Unmarshal(b, &v))
	require.Equal(t, strings.TrimPrefix(makeVar(t, "TEMPORAL_SERVER_VERSION"), "v"), v.Temporal.ServerVersion)
}
