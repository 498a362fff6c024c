package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/config"
)

func TestNotificationSettings(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(name string) string { return vars[name] }
	}
	c, err := config.Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, c.NotifyReplayWindow)
	require.Equal(t, 5, c.NotifyMaxStreams)
	require.Equal(t, 15*time.Second, c.NotifyHeartbeat)
	require.Empty(t, c.AlertWebhookURL, "no alerts unless configured")

	c, err = config.Load(env(map[string]string{
		"PAYSAGA_NOTIFY_MAX_STREAMS": "2", "PAYSAGA_ALERT_WEBHOOK_URL": "https://hooks.slack.example/services/T/B/x",
	}))
	require.NoError(t, err)
	require.Equal(t, 2, c.NotifyMaxStreams)
	require.Equal(t, "https://hooks.slack.example/services/T/B/x", c.AlertWebhookURL)

	_, err = config.Load(env(map[string]string{"PAYSAGA_NOTIFY_MAX_STREAMS": "0"}))
	require.ErrorContains(t, err, "PAYSAGA_NOTIFY_MAX_STREAMS")
	_, err = config.Load(env(map[string]string{"PAYSAGA_ALERT_WEBHOOK_URL": "hooks.slack.example/secret-token"}))
	require.ErrorContains(t, err, "PAYSAGA_ALERT_WEBHOOK_URL")
	require.NotContains(t, err.Error(), "secret-token", "the URL is a secret")
}
