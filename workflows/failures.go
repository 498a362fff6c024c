package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"paysaga/activities"
)

// Failure codes a payment, refund or registration gets when the bank gave no Rpcd of its own
// (payments.failure_code, refunds.failure_code — at most 16 characters —,
// accounts.failure_code). A refusal by the bank stores the bank's Rpcd instead.
const (
	FailureNotExecuted     = "not_executed"     // every transfer attempt certainly failed to execute
	FailureAccountUnusable = "account_unusable" // the account is missing, inactive or not the customer's
	FailureInvalidRequest  = "invalid_request"  // the bank client refused the request as malformed
	FailureUnsupported     = "unsupported"      // e.g. manual capture, which is not available yet
	FailureOperator        = "operator_failed"  // an operator resolved an UNKNOWN payment or refund as failed
	FailureNameMismatch    = "name_mismatch"    // a typed-in account belongs to someone else
	FailureCanceled        = "canceled"         // the refund was cancelled before the credit
	FailureInternal        = "internal"         // a refund's step could not finish
	FailureIssuanceTimeout = "issuance_timeout" // the bank kept answering "in progress" past the deadline
	FailureBankUnavailable = "bank_unavailable" // the bank could not be reached until the deadline
)

// errType is the type of the application error in err's chain, "" when there is none.
func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// failure is why a payment, refund or registration failed: the bank's answer when it gave one,
// and the code and message stored with it.
type failure struct {
	rpcd, rsms    string
	code, message string
}

// failureOf reads a bank step's error as a final refusal — the bank's (its code and message),
// or one the activity made before sending anything — of an account to be verb ("debited",
// "credited"). ok is false for any other error: the workflow decides what it means.
func failureOf(err error, verb string) (f failure, ok bool) {
	switch errType(err) {
	case activities.ErrTypeDeclined:
		var ans activities.BankAnswer
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.HasDetails() {
			_ = appErr.Details(&ans)
		}
		return failure{rpcd: ans.Rpcd, rsms: ans.Rsms, code: ans.Rpcd, message: ans.Rsms}, true
	case activities.ErrTypeAccountUnusable:
		return failure{code: FailureAccountUnusable, message: "the account cannot be " + verb}, true
	case activities.ErrTypeInvalidRequest:
		return failure{code: FailureInvalidRequest, message: "the bank request was refused as malformed"}, true
	case activities.ErrTypeNameMismatch:
		return failure{code: FailureNameMismatch, message: "the account holder's name does not match"}, true
	}
	return failure{}, false
}
