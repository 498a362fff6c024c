package workflows

import (
	"go.temporal.io/sdk/temporal"

	"paysaga"
)

// Search attributes of payment workflows, for operators in the Web UI and payctl
// (`PaymentStatus="UNKNOWN"` lists the stuck ones). They must be declared on the server:
// `temporal server start-dev --search-attribute PaymentStatus=Keyword …`, see
// SearchAttributeFlags. Only opaque IDs and the status: never an amount nor personal data —
// Temporal keeps visibility in plaintext, unlike payloads, which are encrypted.
var (
	SearchPaymentStatus  = temporal.NewSearchAttributeKeyKeyword("PaymentStatus")
	SearchCustomerID     = temporal.NewSearchAttributeKeyKeyword("CustomerId")
	SearchMerchantID     = temporal.NewSearchAttributeKeyKeyword("MerchantId")
	SearchNeedsAttention = temporal.NewSearchAttributeKeyBool("NeedsAttention")

	// SearchAmountKRW is retired (issue 14): the amount no longer goes to visibility. The key
	// stays so that the code that once set it compiles and replays unchanged (an upsert's
	// content is not compared on replay), and so that readers can still find it on workflows
	// started before; setting it does nothing. Operators find large payments with payctl,
	// from the database.
	SearchAmountKRW = retiredInt64Key{temporal.NewSearchAttributeKeyInt64("AmountKRW")}
)

// retiredInt64Key is a search attribute that is no longer written: ValueSet is a no-op.
type retiredInt64Key struct {
	temporal.SearchAttributeKeyInt64
}

// ValueSet returns an update that changes nothing.
func (retiredInt64Key) ValueSet(int64) temporal.SearchAttributeUpdate {
	return func(*temporal.SearchAttributes) {}
}

// SearchAttributeFlags returns the declarations of the search attributes in the form of
// `temporal server start-dev --search-attribute NAME=TYPE` and `temporal operator
// search-attribute create`.
func SearchAttributeFlags() []string {
	return []string{
		SearchPaymentStatus.GetName() + "=Keyword",
		SearchCustomerID.GetName() + "=Keyword",
		SearchMerchantID.GetName() + "=Keyword",
		SearchNeedsAttention.GetName() + "=Bool",
	}
}

// SearchAttributesForStart returns the search attributes a payment workflow is started with
// (StartWorkflowOptions.TypedSearchAttributes): setting them at start costs no history event.
// The status is PROCESSING, not the row's PENDING: the workflow's first step records
// PROCESSING, and an attribute that already says so needs no upsert (one history event less
// per payment). A payment whose workflow is running is being processed, which is what an
// operator filtering on the attribute wants to know; the row keeps PENDING until that step.
func SearchAttributesForStart(in PaymentInput) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		SearchPaymentStatus.ValueSet(string(paysaga.PaymentProcessing)),
		SearchCustomerID.ValueSet(in.CustomerID),
		SearchMerchantID.ValueSet(in.MerchantID),
		SearchNeedsAttention.ValueSet(false),
	)
}
