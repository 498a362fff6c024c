package workflows

import (
	"go.temporal.io/sdk/temporal"

	"paysaga"
)

// Search attributes of payment workflows, for operators in the Web UI and payctl
// (`PaymentStatus="UNKNOWN"` lists the stuck ones). They must be declared on the server:
// `temporal server start-dev --search-attribute PaymentStatus=Keyword …`, see
// SearchAttributeFlags. Only opaque IDs, the amount and the status: never personal data.
var (
	SearchPaymentStatus  = temporal.NewSearchAttributeKeyKeyword("PaymentStatus")
	SearchCustomerID     = temporal.NewSearchAttributeKeyKeyword("CustomerId")
	SearchMerchantID     = temporal.NewSearchAttributeKeyKeyword("MerchantId")
	SearchAmountKRW      = temporal.NewSearchAttributeKeyInt64("AmountKRW")
	SearchNeedsAttention = temporal.NewSearchAttributeKeyBool("NeedsAttention")
)

// SearchAttributeFlags returns the declarations of the search attributes in the form of
// `temporal server start-dev --search-attribute NAME=TYPE` and `temporal operator
// search-attribute create`.
func SearchAttributeFlags() []string {
	return []string{
		SearchPaymentStatus.GetName() + "=Keyword",
		SearchCustomerID.GetName() + "=Keyword",
		SearchMerchantID.GetName() + "=Keyword",
		SearchAmountKRW.GetName() + "=Int",
		SearchNeedsAttention.GetName() + "=Bool",
	}
}

// SearchAttributesForStart returns the search attributes a payment workflow is started with
// (StartWorkflowOptions.TypedSearchAttributes): setting them at start costs no history event.
func SearchAttributesForStart(in PaymentInput) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		SearchPaymentStatus.ValueSet(string(paysaga.PaymentPending)),
		SearchCustomerID.ValueSet(in.CustomerID),
		SearchMerchantID.ValueSet(in.MerchantID),
		SearchAmountKRW.ValueSet(in.Amount),
		SearchNeedsAttention.ValueSet(false),
	)
}
