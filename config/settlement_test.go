package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga/config"
)

func TestSettlementSettings(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := config.Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, "01:00", c.SettlementTime)
	require.EqualValues(t, 250, c.SettlementFeeBPS)

	c, err = config.Load(env(map[string]string{"PAYSAGA_SETTLEMENT_TIME": "off", "PAYSAGA_SETTLEMENT_FEE_BPS": "0"}))
	require.NoError(t, err)
	require.Empty(t, c.SettlementTime)
	require.Zero(t, c.SettlementFeeBPS)

	for _, bad := range []map[string]string{
		{"PAYSAGA_SETTLEMENT_TIME": "25:00"}, {"PAYSAGA_SETTLEMENT_TIME": "1:00"},
		{"PAYSAGA_SETTLEMENT_FEE_BPS": "10001"}, {"PAYSAGA_SETTLEMENT_FEE_BPS": "-1"}, {"PAYSAGA_SETTLEMENT_FEE_BPS": "2.5"},
	} {
		_, err := config.Load(env(bad))
		require.Error(t, err, "%v", bad)
	}
}
