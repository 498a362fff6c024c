package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"paysaga"
	"paysaga/store"
)

// claimKey claims a request's Idempotency-Key together with a fresh ID (with prefix) for the
// resource the request creates: every concurrent duplicate reads the winner's ID. When the key
// was used before, claimKey answers for the caller and reports handled: a different request is
// refused (422), a finished one is replayed as it was first answered, with location(rec) — if
// not empty — as its Location. Otherwise the caller goes on with rec.ResourceID; created tells
// whether this request claimed the key.
func claimKey(c *gin.Context, s IdempotencyStore, scope, key, hash, prefix string, ttl time.Duration,
	location func(rec *store.IdempotencyRecord) string) (rec *store.IdempotencyRecord, created, handled bool) {
	rec, created, err := s.ClaimIdempotencyKeyFor(c.Request.Context(), scope, key, hash, paysaga.NewID(prefix), ttl)
	if err != nil {
		Problem(c, err)
		return nil, false, true
	}
	if created {
		return rec, true, false
	}
	if rec.RequestHash != hash {
		Problem(c, paysaga.Errorf(paysaga.EIDEMPOTENCY, "this Idempotency-Key was used for a different request"))
		return nil, false, true
	}
	if !rec.Completed() {
		return rec, false, false
	}
	c.Header("Idempotent-Replayed", "true")
	if loc := location(rec); loc != "" {
		// The stored answer, headers included: the first one pointed at the resource too.
		c.Header("Location", loc)
	}
	writeAnswer(c, rec.ResponseStatus, rec.ResponseBody)
	return nil, false, true
}

// writeAnswer writes a stored or fresh answer; problems are not to be cached, like every
// other problem answer.
func writeAnswer(c *gin.Context, status int, body []byte) {
	// Its length, so that the answer is whole once flushed (payments: answer), not chunked
	// until the handler returns.
	c.Header("Content-Length", strconv.Itoa(len(body)))
	if status >= 400 {
		c.Header("Cache-Control", "no-store")
		c.Data(status, ProblemContentType, body)
		return
	}
	c.Data(status, "application/json; charset=utf-8", body)
}

// maxIdempotencyKey matches the store's column.
const maxIdempotencyKey = 255

// idempotencyKey reads the Idempotency-Key header every creating POST requires. A missing or
// malformed key is 400 Bad Request, as the IETF Idempotency-Key draft asks, with the stable
// code "invalid" naming the header.
func idempotencyKey(c *gin.Context) (string, error) {
	key := c.GetHeader("Idempotency-Key")
	if key == "" || len(key) > maxIdempotencyKey {
		return "", &ValidationError{
			Message: "an Idempotency-Key header of 1 to 255 characters is required",
			Fields:  []FieldError{{Field: "Idempotency-Key", Message: "required header, 1 to 255 characters"}},
			Status:  http.StatusBadRequest,
		}
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return "", &ValidationError{
				Message: "the Idempotency-Key header must be printable ASCII without spaces",
				Fields:  []FieldError{{Field: "Idempotency-Key", Message: "printable ASCII only"}},
				Status:  http.StatusBadRequest,
			}
		}
	}
	return key, nil
}
