package seal_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga/seal"
)

func TestRefundDestinationRoundTrip(t *testing.T) {
	k := seal.NewDevKeyring()
	s, err := k.SealRefundDestination("ref_1", seal.RefundDestination{Number: "3021234567891"})
	require.NoError(t, err)
	require.NotContains(t, string(s.Ciphertext), "3021234567891")

	d, err := k.OpenRefundDestination("ref_1", s)
	require.NoError(t, err)
	require.Equal(t, "3021234567891", d.Number)

	// Bound to its refund: moved to another, it does not open.
	_, err = k.OpenRefundDestination("ref_2", s)
	require.True(t, errors.Is(err, seal.ErrOpen), "%v", err)
}

// What older code sealed (the JSON object with a "holder" beside the number) still opens; the
// holder is ignored. Something that is not a destination is an error that does not echo it.
func TestOpenRefundDestinationFormats(t *testing.T) {
	k := seal.NewDevKeyring()
	old, err := k.Seal([]byte(`{"number":"3021234567891","holder":"최유나"}`), seal.RefundDestinationAD("ref_1"))
	require.NoError(t, err)
	d, err := k.OpenRefundDestination("ref_1", old)
	require.NoError(t, err)
	require.Equal(t, seal.RefundDestination{Number: "3021234567891"}, d)

	garbage, err := k.Seal([]byte("3021234567891"), seal.RefundDestinationAD("ref_1"))
	require.NoError(t, err)
	_, err = k.OpenRefundDestination("ref_1", garbage)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "3021234567891")
}
