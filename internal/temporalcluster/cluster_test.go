//go:build cluster

package temporalcluster_test

import (
	"context"
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
