package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/store/storetest"
)

func TestNextIsTuno(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)

			first, err := db.NextIsTuno(ctx, "20261125")
			require.NoError(t, err)
			require.Equal(t, "20261125000000000001", first)
			other, err := db.NextIsTuno(ctx, "20261126")
			require.NoError(t, err)
			require.Equal(t, "20261126000000000001", other, "each day has its own sequence")

			const n = 50
			got := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { got[i], errs[i] = db.NextIsTuno(ctx, "20261125") })
			}
			wg.Wait()
			seen := map[string]bool{first: true}
			for i := range n {
				require.NoError(t, errs[i])
				require.Len(t, got[i], 20)
				require.False(t, seen[got[i]], "IsTuno %s handed out twice", got[i])
				seen[got[i]] = true
			}
			last, err := db.NextIsTuno(ctx, "20261125")
			require.NoError(t, err)
			require.Equal(t, "20261125000000000052", last, "no gaps, nothing reused")

			for _, bad := range []string{"", "2026112", "2026-11-25", "abcdefgh"} {
				_, err := db.NextIsTuno(ctx, bad)
				require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err), bad)
			}
		})
	}
}
