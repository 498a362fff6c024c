package nh

import (
	"errors"
	"fmt"
)

// Outcome is what a caller must do after a call; Classify computes it from the error.
type Outcome int

const (
	// OutcomeSuccess: the bank answered 00000.
	OutcomeSuccess Outcome = iota
	// OutcomeDeclined: the bank processed the request and refused it. Final: never retry the
	// same request; store Rpcd and Rsms.
	OutcomeDeclined
	// OutcomeInProgress: the bank is still working on it (A0017): ask again later.
	OutcomeInProgress
	// OutcomeUnknown: a money-moving request may or may not have executed. Never send it
	// again blindly: resolve it with the matching CheckOn… call first.
	OutcomeUnknown
	// OutcomeTransient: nothing happened that matters (transport failure on a call that moves
	// no money, the request never left, an inquiry that failed): retrying is safe.
	OutcomeTransient
	// OutcomeInvalid: the request was refused by the client before sending, because the
	// caller passed something malformed. Nothing was sent; retrying the same input cannot help.
	OutcomeInvalid
)

func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeDeclined:
		return "declined"
	case OutcomeInProgress:
		return "in_progress"
	case OutcomeUnknown:
		return "unknown"
	case OutcomeTransient:
		return "transient"
	case OutcomeInvalid:
		return "invalid"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Classify maps an error returned by the client to what the caller must do. Any error the
// client did not produce itself (a cancelled context before sending, a sequencer failure) is
// transient.
func Classify(err error) Outcome {
	if err == nil {
		return OutcomeSuccess
	}
	var (
		declined   *DeclinedError
		inProgress *InProgressError
		unknown    *UnknownOutcomeError
		invalid    *InvalidRequestError
	)
	switch {
	case errors.As(err, &unknown):
		return OutcomeUnknown
	case errors.As(err, &declined):
		return OutcomeDeclined
	case errors.As(err, &inProgress):
		return OutcomeInProgress
	case errors.As(err, &invalid):
		return OutcomeInvalid
	}
	return OutcomeTransient
}

// DeclinedError: the bank answered with a code other than 00000 (and A0017). Final.
type DeclinedError struct {
	API  string
	Rpcd string
	Rsms string
}

func (e *DeclinedError) Error() string {
	return fmt.Sprintf("nh %s declined: %s %s", e.API, e.Rpcd, e.Rsms)
}

// InProgressError: the bank answered A0017, still processing.
type InProgressError struct {
	API  string
	Rpcd string
	Rsms string
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("nh %s in progress: %s %s", e.API, e.Rpcd, e.Rsms)
}

// UnknownOutcomeError: a money-moving request was (or may have been) sent and no usable answer
// came back: a timeout, a reset, an HTTP error status, or a body that could not be decoded.
type UnknownOutcomeError struct {
	API   string
	Cause error
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("nh %s outcome unknown: %v", e.API, e.Cause)
}

func (e *UnknownOutcomeError) Unwrap() error { return e.Cause }

// TransportError: a call that moves no money failed in transport, or a money-moving request
// provably never left this process, or an inquiry was refused by the bank (Rpcd and Rsms set):
// safe to retry.
type TransportError struct {
	API   string
	Cause error
	Rpcd  string
	Rsms  string
}

func (e *TransportError) Error() string {
	if e.Rpcd != "" {
		return fmt.Sprintf("nh %s failed: %s %s", e.API, e.Rpcd, e.Rsms)
	}
	return fmt.Sprintf("nh %s failed: %v", e.API, e.Cause)
}

func (e *TransportError) Unwrap() error { return e.Cause }

// InvalidRequestError: the client refused to send a malformed request. Reason never quotes the
// offending value, which may be an account number.
type InvalidRequestError struct {
	API    string
	Reason string
}

func (e *InvalidRequestError) Error() string {
	return fmt.Sprintf("nh %s: invalid request: %s", e.API, e.Reason)
}
