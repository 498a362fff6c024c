package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

// newestFirstAfter narrows q, a list read newest first (created_at DESC, id DESC), to the rows
// after the cursor row that the query cursor selects by its id. cursor must be scoped as the
// list is (same owner, same payment…): a cursor from another list is refused like a missing one,
// or the answer would confirm a row the caller may not see and page by a stranger's timestamp.
// what names the list's rows in errors ("a payment"), list the list ("payments").
func newestFirstAfter(ctx context.Context, q, cursor *bun.SelectQuery, what, list string) (*bun.SelectQuery, error) {
	var (
		id      string
		created time.Time
	)
	err := cursor.Column("id", "created_at").Limit(1).Scan(ctx, &id, &created)
	if isNoRows(err) {
		return nil, paysaga.Errorf(paysaga.EINVALID, "starting_after is not %s of this list", what)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: cursor: %w", list, err)
	}
	return q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Where("created_at < ?", created).WhereOr("created_at = ? AND id < ?", created, id)
	}), nil
}
