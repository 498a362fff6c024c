package api

import (
	"fmt"
	"strconv"

	"github.com/gin-gonic/gin"

	"paysaga/store"
)

// listLimit reads the `limit` query parameter of a list route: 0 when absent (the store's
// default), 1 to store.MaxListLimit otherwise. On a bad value it answers 422 and reports false.
func listLimit(c *gin.Context) (int, bool) {
	s := c.Query("limit")
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > store.MaxListLimit {
		Problem(c, &ValidationError{
			Message: fmt.Sprintf("limit must be 1 to %d", store.MaxListLimit),
			Fields:  []FieldError{{Field: "limit", Message: fmt.Sprintf("1 to %d", store.MaxListLimit)}},
		})
		return 0, false
	}
	return n, true
}
