package saga_test

import (
	"context"

	"paysaga"
)

// fakeStore holds the rows the workflows wrote: what saga reads once a workflow has closed.
type fakeStore struct {
	payments map[string]*paysaga.Payment
	refunds  map[string]*paysaga.Refund
	accounts map[string]*paysaga.Account
}

func (s fakeStore) GetPayment(_ context.Context, id string) (*paysaga.Payment, error) {
	if p, ok := s.payments[id]; ok {
		return p, nil
	}
	return nil, paysaga.Errorf(paysaga.ENOTFOUND, "no payment %s", id)
}

func (s fakeStore) GetRefund(_ context.Context, id string) (*paysaga.Refund, error) {
	if r, ok := s.refunds[id]; ok {
		return r, nil
	}
	return nil, paysaga.Errorf(paysaga.ENOTFOUND, "no refund %s", id)
}

func (s fakeStore) GetAccount(_ context.Context, id string) (*paysaga.Account, error) {
	if a, ok := s.accounts[id]; ok {
		return a, nil
	}
	return nil, paysaga.Errorf(paysaga.ENOTFOUND, "no account %s", id)
}
