package auth_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga/auth"
)

func TestPasswordHash(t *testing.T) {
	p := auth.PasswordParams{Memory: 8 * 1024, Time: 1, Threads: 1}
	h, err := auth.HashPassword("correct horse battery", p)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=8192,t=1,p=1$"), h)
	h2, err := auth.HashPassword("correct horse battery", p)
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "salted")

	require.True(t, auth.VerifyPassword("correct horse battery", h))
	for name, tc := range map[string]struct{ password, hash string }{
		"wrong password":   {"correct horse batterY", h},
		"empty password":   {"", h},
		"empty hash":       {"correct horse battery", ""},
		"bcrypt-looking":   {"correct horse battery", "$2a$10$abcdefghijklmnopqrstuv"},
		"absurd memory":    {"correct horse battery", strings.Replace(h, "m=8192", "m=99999999", 1)},
		"changed params":   {"correct horse battery", strings.Replace(h, "t=1", "t=2", 1)},
		"truncated digest": {"correct horse battery", h[:len(h)-4]},
	} {
		require.False(t, auth.VerifyPassword(tc.password, tc.hash), name)
	}
}
