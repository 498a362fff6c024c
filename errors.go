package paysaga

import (
	"errors"
	"fmt"
)

// Error codes. They are stable: clients see them as the `code` of a problem+json answer. A
// workflow that refuses an Update (a resolution of a payment that is not waiting, an actor
// too long) or a refund's reservation uses EINVALID or ECONFLICT as the type of its Temporal
// application error, which the API and payctl turn back into these codes. The errors of the
// sagas' steps have their own types: activities/errors.go.
const (
	EINVALID      = "invalid"                // the request is malformed or a field is wrong (422)
	EUNAUTHORIZED = "unauthorized"           // no valid credentials (401)
	EFORBIDDEN    = "forbidden"              // authenticated but not allowed (403)
	ENOTFOUND     = "not_found"              // no such thing, or not yours to see (404)
	ECONFLICT     = "conflict"               // the thing is in a state that forbids this (409)
	ERATELIMITED  = "rate_limited"           // too many attempts (429)
	EDECLINED     = "declined"               // the bank refused (402 on the API)
	EUNAVAILABLE  = "unavailable"            // a dependency is down (503)
	EINTERNAL     = "internal"               // a bug or an unexpected failure (500)
	EIDEMPOTENCY  = "idempotency_key_reused" // same key, different request (422)
)

// Error is a domain error: a stable code and a message safe to show a client.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds a domain error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first domain error in err's chain, EINTERNAL otherwise.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	}
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first domain error in err's chain; other errors are
// internal and their text is not for clients.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
