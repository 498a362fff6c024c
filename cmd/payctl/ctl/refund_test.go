package ctl_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga/cmd/payctl/ctl"
)

// refund resolve checks its arguments before it talks to Temporal.
func TestRefundResolveUsageErrorsExitTwo(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
	}{
		{map[string]string{"USER": "ops"}, []string{"refund", "resolve"}},
		{map[string]string{"USER": "ops"}, []string{"refund", "resolve", "pay_x", "--as", "failed", "--reason", "r"}},
		{map[string]string{"USER": "ops"}, []string{"refund", "resolve", "ref_x", "--as", "maybe", "--reason", "r"}},
		{map[string]string{"USER": "ops"}, []string{"refund", "resolve", "ref_x", "--as", "failed"}},
		{map[string]string{"USER": "ops"}, []string{"refund", "resolve", "ref_x", "--as", "succeeded", "--reason", "  "}},
		{map[string]string{}, []string{"refund", "resolve", "ref_x", "--as", "succeeded", "--reason", "r"}},
	} {
		code, _, stderr := run(t, tc.env, tc.args...)
		require.Equal(t, ctl.ExitUsage, code, "%v: %s", tc.args, stderr)
		require.Contains(t, stderr, "payctl:", "%v", tc.args)
	}
}
